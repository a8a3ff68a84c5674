"""hyperopt's TPE (the tool the source material used) behind the ask/tell interface.

The space becomes hyperopt expressions labelled with our parameter keys: `hp.uniform` and
`hp.loguniform` for floats, `hp.quniform` and `hp.qloguniform` (quantised log-uniform) for
integers, and `hp.choice` for a `Choice`, whose options hold the expressions of their
branch, so the tree stays a tree. hyperopt reports the active labels' values, which are our
assignment once integers are snapped back to their lattice.

hyperopt has no ask/tell API of its own: each ask inserts the documents `tpe.suggest`
returns into a `Trials` store, and each tell completes one. Trials still running are not
seen by hyperopt's TPE (it has no constant liar); failed and pruned trials are stored as
failed, which TPE ignores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hpo.core.directions import loss_sign
from hpo.core.space import Choice, Float, Int, Param
from hpo.strategies.base import Strategy, Trial, TrialState


class HyperoptTPE(Strategy):
    """TPE by hyperopt's ``tpe.suggest``.

    Examples
    --------
    >>> from hpo.core.space import Float
    >>> s = HyperoptTPE({"x": Float(0.0, 1.0)}, seed=0)
    >>> [t] = s.ask()
    >>> s.tell(t, t.params["x"])
    """

    name = "hyperopt-tpe"

    def _configure(self) -> None:
        from hyperopt import Trials, base

        self._domain = base.Domain(lambda params: 0.0, self._expression(()))
        self._store = Trials()
        self._docs: dict[int, dict[str, Any]] = {}  # our trial number -> hyperopt document

    def _expression(self, condition: tuple[tuple[str, int], ...]) -> dict[str, Any]:
        """The hyperopt expressions of the parameters directly under ``condition``."""
        return {p.key: self._node(p) for p in self.space.params if p.condition == condition}

    def _node(self, p: Param) -> Any:
        from hyperopt import hp

        dim = p.dim
        if isinstance(dim, Choice):
            return hp.choice(
                p.key,
                [self._expression((*p.condition, (p.key, i))) for i in range(len(dim.options))],
            )
        if isinstance(dim, Float):
            if dim.log:
                return hp.loguniform(p.key, math.log(dim.low), math.log(dim.high))
            return hp.uniform(p.key, dim.low, dim.high)
        if dim.log:  # widened by half a step so the end values are drawn as often as others
            return hp.qloguniform(
                p.key,
                math.log(dim.low - 0.5 if dim.low > 0.5 else dim.low),
                math.log(dim.high + 0.5),
                1,
            )
        return hp.quniform(p.key, dim.low - dim.step / 2, dim.high + dim.step / 2, dim.step)

    def _suggest(self, n: int) -> list[dict[str, Any]]:
        from hyperopt import tpe

        out = []
        for number in self._upcoming_numbers(n):
            ids = self._store.new_trial_ids(1)
            self._store.refresh()
            seed = int(self.rng.integers(2**31))
            [doc] = tpe.suggest(ids, self._domain, self._store, seed)
            self._store.insert_trial_docs([doc])
            self._store.refresh()
            self._docs[number] = doc
            out.append(self._assignment(doc["misc"]["vals"]))
        return out

    def _on_restore(self, trial: Trial) -> None:
        """A document for a trial of an earlier run, as `tpe.suggest` would have made it."""
        [tid] = self._store.new_trial_ids(1)
        vals = {
            p.key: [trial.assignment[p.key]] if p.key in trial.assignment else []
            for p in self.space.params
        }
        misc = {
            "tid": tid,
            "cmd": ("domain_attachment", "FMinIter_Domain"),
            "workdir": None,
            "idxs": {k: [tid] if v else [] for k, v in vals.items()},
            "vals": vals,
        }
        [doc] = self._store.new_trial_docs([tid], [None], [{"status": "new"}], [misc])
        self._store.insert_trial_docs([doc])
        self._store.refresh()
        self._docs[trial.number] = doc
        if trial.state is not TrialState.RUNNING:
            self._on_tell(trial)

    def _assignment(self, vals: Mapping[str, list[Any]]) -> dict[str, Any]:
        assignment: dict[str, Any] = {}
        for p in self.space.params:
            if not vals.get(p.key):
                continue
            value = vals[p.key][0]
            if isinstance(p.dim, Choice):
                assignment[p.key] = int(value)
            elif isinstance(p.dim, Int):
                assignment[p.key] = p.dim._snap(float(value))
            else:
                assignment[p.key] = min(max(float(value), p.dim.low), p.dim.high)
        return assignment

    def _on_tell(self, trial: Trial) -> None:
        from hyperopt import JOB_STATE_DONE, JOB_STATE_ERROR, STATUS_FAIL, STATUS_OK

        doc = self._docs.pop(trial.number)
        # An infeasible suggestion counts as bad as the worst value seen, so TPE avoids it.
        worst = self.worst_value() if trial.attrs.get("infeasible") else None
        value = worst if worst is not None else trial.value
        if trial.state is TrialState.COMPLETE or worst is not None:
            doc["result"] = {"loss": loss_sign(self.direction) * value, "status": STATUS_OK}
            doc["state"] = JOB_STATE_DONE
        else:
            doc["result"] = {"status": STATUS_FAIL}
            doc["state"] = JOB_STATE_ERROR
        self._store.refresh()
