"""hpo: hyperparameter optimisation on a Ray worker pool, tracked in MLflow.

>>> import hpo
>>> from hpo.space import Float
>>> s = hpo.make_strategy("random", {"x": Float(0.0, 1.0)}, seed=0)
>>> [t] = s.ask(1)
>>> s.tell(t, t.params["x"])
"""

from hpo.driver import run
from hpo.pruners import ASHAPruner, MedianPruner, TrialPruned
from hpo.result import SweepResult
from hpo.resume import resume
from hpo.strategies import make_strategy

__version__ = "0.1.0"
__all__ = [
    "ASHAPruner",
    "MedianPruner",
    "SweepResult",
    "TrialPruned",
    "make_strategy",
    "resume",
    "run",
]
