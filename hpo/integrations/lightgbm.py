"""`LightGBMCallback`: each boosting round's evaluation metrics through ``report``.

>>> booster = lightgbm.train(params, train_set, valid_sets=[valid],
...                          callbacks=[LightGBMCallback(report)])            # doctest: +SKIP

The curves grow in MLflow as the model trains (``valid_0-l2``, ... as LightGBM names
them), and a pruner acts on them: a pruned trial stops training at the round its
``report`` raises `hpo.TrialPruned`, and ends PRUNED. Works with the scikit-learn API too
(``LGBMRegressor().fit(..., callbacks=[LightGBMCallback(report)])``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LightGBMCallback:
    """Report every evaluation result after each boosting round.

    Parameters
    ----------
    report : callable
        The trial's ``report``.
    metrics : list of str, optional
        Only these ``DATA-METRIC`` names (e.g. ``["valid_0-l2"]``); all when omitted.
    """

    order = 30  # after LightGBM's own logging (10) and before its early stopping (30+)

    def __init__(self, report: Callable[..., None], metrics: list[str] | None = None) -> None:
        self.report, self.metrics = report, metrics

    def __call__(self, env: Any) -> None:
        # Each entry is (data, metric, value, higher_is_better), with the std after it
        # under lightgbm.cv.
        values = {f"{entry[0]}-{entry[1]}": float(entry[2]) for entry in env.evaluation_result_list}
        if self.metrics is not None:
            values = {name: v for name, v in values.items() if name in self.metrics}
        if values:
            self.report(env.iteration, **values)  # raises TrialPruned: training stops here
