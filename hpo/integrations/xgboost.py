"""`XGBoostCallback`: each boosting round's evaluation metrics through ``report``.

>>> model = xgboost.XGBClassifier(callbacks=[XGBoostCallback(report)])   # doctest: +SKIP
>>> model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)])           # doctest: +SKIP

The curves grow in MLflow as the model trains (``validation_0-logloss``, ... as XGBoost
names them), and a pruner acts on them: a pruned trial stops training at the round its
``report`` raises `hpo.TrialPruned`, and ends PRUNED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xgboost.callback import TrainingCallback


class XGBoostCallback(TrainingCallback):
    """Report the last value of every evaluation metric after each boosting round.

    Parameters
    ----------
    report : callable
        The trial's ``report``.
    metrics : list of str, optional
        Only these ``DATA-METRIC`` names (e.g. ``["validation_0-logloss"]``); all when
        omitted.
    """

    def __init__(self, report: Callable[..., None], metrics: list[str] | None = None) -> None:
        super().__init__()
        self.report, self.metrics = report, metrics

    def __getstate__(self) -> dict[str, Any]:
        # The model keeps its callbacks: without the trial's report (its queue and thread
        # cannot be pickled), ``report.model(model)`` can store it.
        return {**self.__dict__, "report": None}

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        values = {
            f"{data}-{metric}": float(_last(history))
            for data, by_metric in evals_log.items()
            for metric, history in by_metric.items()
        }
        if self.metrics is not None:
            values = {name: v for name, v in values.items() if name in self.metrics}
        if values and self.report is not None:
            self.report(epoch, **values)  # raises TrialPruned: training stops here
        return False


def _last(history: Any) -> float:
    """The last entry of a metric's history (with ``xgb.cv``, a (mean, std) pair)."""
    last = history[-1]
    return last[0] if isinstance(last, tuple) else last
