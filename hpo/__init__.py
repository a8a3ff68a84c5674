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

from hpo.core.result import SweepResult  # noqa: E402
from hpo.strategies import make_strategy  # noqa: E402
from hpo.strategies.pruners import ASHAPruner, MedianPruner, TrialPruned  # noqa: E402
from hpo.sweep.loop import run  # noqa: E402
from hpo.sweep.resume import resume  # noqa: E402
from hpo.tracking.best_model import load_best_model, load_trial_model  # noqa: E402
from hpo.tracking.reader import load_sweep  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "ASHAPruner",
    "MedianPruner",
    "SweepResult",
    "TrialPruned",
    "load_best_model",
    "load_sweep",
    "load_trial_model",
    "make_strategy",
    "resume",
    "run",
]
