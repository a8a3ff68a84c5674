"""The Optuna study a sampler asks from when it learns from the trials' curves.

`hpo.strategies.fidelity` says what the model sees at an ask: the trials that reached the
view's budget (their value there), those that failed, those that stopped below it, and those
still running below it. A study made afresh at each ask copies every trial into it each
time; with ASHA's rungs from the first epoch, where most trials stop after one and each is
followed by an ask, those copies took most of a search's time. TPE's own work at an ask
still grows with the trials it models.

Kept instead, each trial enters the study once: as a running trial while the view has it
pending, then as what the view settles it to (a value at the budget, a stop below it, a
failure), which does not change while the budget stays. Its running copy is told failed
then (Optuna's samplers skip failed trials), so the running copy cannot be counted twice.
The study is made afresh only when the budget rises, or, with trials the constraints refused
(taken as the worst value at the budget), when that worst value changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpo.core.directions import loss_sign
from hpo.strategies.base import Trial
from hpo.strategies.fidelity import FidelityView


class CurveStudy:
    """One Optuna study kept in step with the fidelity view across asks.

    ``make_study`` makes an empty study with the sampler; ``frozen(trial, state, values,
    intermediate)`` is an hpo trial as a frozen Optuna trial (`OptunaSampler._frozen`)."""

    def __init__(self, make_study: Callable[[], Any], frozen: Callable[..., Any]) -> None:
        self._make_study, self._frozen = make_study, frozen
        self._key: Any = object()  # no study yet: the first ask makes one
        self.study: Any = None
        self._live: dict[int, int] = {}  # id of an hpo trial -> its running Optuna trial
        self._settled: set[int] = set()  # ids of hpo trials in the study for good
        self._asked: dict[int, int] = {}  # hpo number to be issued -> its Optuna trial
        self._count = 0  # Optuna trials in the study: the next one's number

    def update(
        self, view: FidelityView | None, pending: list[Trial], issued: list[Trial], direction: str
    ) -> None:
        """Bring the study to ``view`` (None: the start-up, every trial in ``pending``);
        ``issued``: the sweep's trials, the last ones those the last ask suggested."""
        from optuna.trial import TrialState as OptunaState

        self._adopt(issued)
        observed = view.observed if view is not None else []
        failed = view.failed if view is not None else []
        sign = loss_sign(direction)
        worst = max((v for _, v in observed), key=lambda v: sign * v, default=None)
        refused = any(t.attrs.get("infeasible") for t in failed)
        key = (None if view is None else view.budget, worst if refused else None)
        if key != self._key:
            self._afresh(key)
        for t, value in observed:
            self._settle(t, OptunaState.COMPLETE, [value])
        for t in failed:
            if t.attrs.get("infeasible") and worst is not None:  # as the worst: avoided
                self._settle(t, OptunaState.COMPLETE, [worst])
            else:
                self._settle(t, OptunaState.FAIL)
        for t in view.stopped if view is not None else []:
            step = max(t.curve)  # Optuna ranks it below the observed: deeper, then better
            self._settle(t, OptunaState.PRUNED, intermediate={step: t.curve[step]})
        pending = view.pending if view is not None else pending
        waiting = {id(t) for t in pending}
        for t in pending:
            if id(t) not in self._live and id(t) not in self._settled:
                self.study.add_trial(self._frozen(t, OptunaState.RUNNING))
                self._live[id(t)] = self._next()
        for gone in [i for i in self._live if i not in waiting]:  # left out of the view
            self._fail(self._live.pop(gone))

    def ask(self, number: int) -> Any:
        """A running Optuna trial for the hpo trial ``number`` about to be issued."""
        trial = self.study.ask()
        self._asked[number] = self._next()
        return trial

    def _adopt(self, issued: list[Trial]) -> None:
        """Take the trials the last ask's suggestions became as the sweep's own."""
        if not self._asked:
            return
        for t in issued[-len(self._asked) :]:
            if t.number in self._asked:
                self._live[id(t)] = self._asked.pop(t.number)
        for number in self._asked.values():  # never issued: not pending
            self._fail(number)
        self._asked.clear()

    def _afresh(self, key: Any) -> None:
        self._key, self.study = key, self._make_study()
        self._live, self._settled, self._asked, self._count = {}, set(), {}, 0

    def _settle(self, trial: Trial, state: Any, values: Any = None, **frozen: Any) -> None:
        if id(trial) in self._settled:
            return
        running = self._live.pop(id(trial), None)
        if running is not None:
            self._fail(running)
        self.study.add_trial(self._frozen(trial, state, values, **frozen))
        self._next()
        self._settled.add(id(trial))

    def _fail(self, number: int) -> None:
        from optuna.trial import TrialState as OptunaState

        self.study.tell(number, state=OptunaState.FAIL)

    def _next(self) -> int:
        self._count += 1
        return self._count - 1
