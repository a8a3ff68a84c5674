"""hpo: hyperparameter optimisation on a Ray worker pool, tracked in MLflow.

>>> import hpo
>>> from hpo.core.space import Float
>>> s = hpo.make_strategy("random", {"x": Float(0.0, 1.0)}, seed=0)
>>> [t] = s.ask(1)
>>> s.tell(t, t.params["x"])
"""

import os

# No network at run time: MLflow's and Ray's usage telemetry stay off unless the user has
# turned them on (MLflow's fetches a config and posts usage records on its calls; Ray's
# reports from the clusters it starts).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from hpo.core.directions import Directions
from hpo.core.result import SweepResult, TrialResult
from hpo.core.trial import TrialState
from hpo.execution.jobs import SubmittedSweep
from hpo.execution.jobs import submit_sweep as submit
from hpo.execution.kept_workers import release_workers
from hpo.strategies import make_strategy
from hpo.strategies.pruners import ASHAPruner, HyperbandPruner, MedianPruner, TrialPruned
from hpo.sweep.config import SweepConfig
from hpo.sweep.replay import replay_schedule
from hpo.sweep.resume import resume
from hpo.sweep.start import run
from hpo.tracking.best_model import load_best_model, load_trial_model
from hpo.tracking.outage import TrackingUnavailable
from hpo.tracking.reader import load_sweep

__version__ = "0.1.0"
__all__ = [
    "ASHAPruner",
    "Directions",
    "HyperbandPruner",
    "MedianPruner",
    "SearchCV",
    "SubmittedSweep",
    "SweepConfig",
    "SweepResult",
    "TrackingUnavailable",
    "TrialPruned",
    "TrialResult",
    "TrialState",
    "load_best_model",
    "load_sweep",
    "load_trial_model",
    "make_strategy",
    "release_workers",
    "replay_schedule",
    "resume",
    "run",
    "submit",
]


def __getattr__(name: str):
    # SearchCV imports scikit-learn's model selection: only when it is asked for.
    if name == "SearchCV":
        from hpo.integrations.searchcv import SearchCV

        return SearchCV
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
