"""The ask/tell interface every search strategy implements.

A strategy keeps its settings, a seeded generator and the list of trials it issued; the
history it learns from is that list, read afresh on every ask. Model-based strategies
(GP-EI, TPE) therefore see completed values, failures and the trials still pending in
one place, and a strategy can be restored by replaying trials into it.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np

from hpo.checks import better, check_direction, check_value
from hpo.space import Space, as_space


class TrialState(StrEnum):
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"

    @property
    def is_finished(self) -> bool:
        return self is not TrialState.RUNNING


@dataclass
class Trial:
    """One configuration issued by a strategy.

    ``assignment`` is the strategy's flat view (parameter key -> value, a `Choice` as its
    option index); ``params`` is the nested dict the objective receives; ``flat_params``
    maps dotted names to values, as logged to MLflow.
    """

    number: int
    assignment: dict[str, Any]
    params: dict[str, Any]
    flat_params: dict[str, Any]
    state: TrialState = TrialState.RUNNING
    value: float | None = None
    error: str | None = None
    # For a pruned trial: (step, value) of the watched metric it was pruned on, when that
    # metric is comparable to objective values (TPE ranks pruned trials by it).
    intermediate: tuple[int, float] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)  # free for the user's own notes


def fresh_seed() -> int:
    """A seed from OS entropy, so that a sweep run without one can still be replayed."""
    return int(np.random.SeedSequence().entropy % (2**31))


def _check_options(configure: Any, options: dict[str, Any], owner: str) -> None:
    """TypeError naming an option the strategy does not take, and the ones it does."""
    parameters = inspect.signature(configure).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return  # passed on (to an Optuna sampler, which checks them)
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        known = ", ".join(parameters) or "none"
        raise TypeError(f"{owner} has no option {unknown[0]!r} (its options: {known})")


def best_of(trials: Iterable[Trial], direction: str) -> Trial | None:
    """The completed trial with the best value; of equal values, the first issued."""
    best = None
    for t in trials:
        if t.state is not TrialState.COMPLETE:
            continue
        if best is None or better(t.value, best.value, direction):
            best = t
        elif t.value == best.value and t.number < best.number:
            best = t
    return best


class Strategy:
    """Base class: ``ask`` issues trials, ``tell`` reports how they ended.

    Subclasses implement `_suggest`, which may read ``self.trials`` (history, failures,
    pending) and must draw randomness only from ``self.rng``.

    Parameters
    ----------
    space : Space or dict
        The search space.
    direction : {"minimize", "maximize"}
    seed : int, optional
        Seed of the strategy's generator; a fresh one is drawn (and kept in ``seed``)
        when omitted.
    **options
        The strategy's own settings, taken by its `_configure`.
    """

    name: ClassVar[str] = "base"

    def __init__(
        self,
        space: Space | Mapping[str, Any],
        *,
        direction: str = "minimize",
        seed: int | None = None,
        **options: Any,
    ) -> None:
        self.space = as_space(space)
        self.direction = check_direction(direction)
        if seed is not None and (not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = fresh_seed() if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.trials: list[Trial] = []  # in issue order
        self._by_number: dict[int, Trial] = {}
        self._free_numbers: list[int] = []  # gaps left by a restore, issued first
        self._next_number = 0
        # How to make this strategy again (resume): a `make_strategy` name and its options.
        self.recipe: dict[str, Any] = {"strategy": self.name, "options": {}}
        _check_options(self._configure, options, type(self).__name__)
        self._configure(**options)

    # -- the interface -------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Trial]:
        """Up to ``n`` new trials; fewer (possibly none) once the strategy is exhausted."""
        if not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"ask(n) needs an int n >= 1, got {n!r}")
        return [self._issue(a) for a in self._suggest(int(n))]

    def tell(
        self,
        trial: Trial,
        value: float | None = None,
        *,
        failed: bool = False,
        pruned: bool = False,
        error: str | None = None,
        intermediate: tuple[int, float] | None = None,
    ) -> None:
        """Report the end of ``trial``: its value, or ``failed=True``, or ``pruned=True``
        (with the ``intermediate`` (step, value) it was pruned on, when comparable)."""
        if self._by_number.get(trial.number) is not trial:
            raise ValueError(f"trial {trial.number} was not issued by this strategy")
        if trial.state.is_finished:
            raise ValueError(f"trial {trial.number} was already told ({trial.state.value})")
        if (value is not None) + failed + pruned != 1:
            raise ValueError(
                "tell() needs exactly one of a value, failed=True or pruned=True, got "
                f"(value={value!r}, failed={failed}, pruned={pruned})"
            )
        if value is not None:
            trial.value, trial.state = check_value(value), TrialState.COMPLETE
        else:
            trial.state = TrialState.FAILED if failed else TrialState.PRUNED
            trial.error = error
            trial.intermediate = intermediate if pruned else None
        self._on_tell(trial)

    def restore(
        self,
        number: int,
        assignment: dict[str, Any],
        state: TrialState,
        value: float | None = None,
        error: str | None = None,
    ) -> Trial:
        """Put back a trial of an earlier run of this sweep (resume), before any `ask`.

        A RUNNING trial is issued again under its number, to be run and told as usual.
        """
        if not isinstance(number, numbers.Integral) or number < 0 or number in self._by_number:
            raise ValueError(f"cannot restore trial number {number!r}: taken or not an int >= 0")
        self.space.validate(assignment)
        if state is TrialState.COMPLETE:
            value = check_value(value)
        trial = Trial(
            number=int(number),
            assignment=dict(assignment),
            params=self.space.build(assignment),
            flat_params=self.space.flat(assignment),
            state=state,
            value=value if state is TrialState.COMPLETE else None,
            error=error,
        )
        self.trials.append(trial)
        self._by_number[trial.number] = trial
        if trial.number >= self._next_number:
            self._free_numbers.extend(range(self._next_number, trial.number))
            self._next_number = trial.number + 1
        elif trial.number in self._free_numbers:
            self._free_numbers.remove(trial.number)
        self._on_restore(trial)
        return trial

    @property
    def exhausted(self) -> bool:
        """True when `ask` will issue nothing more (a finished grid)."""
        return False

    def artifacts(self) -> dict[str, bytes]:
        """Files the strategy adds to the sweep's parent run at its end (e.g. a model plot)."""
        return {}

    def settings(self) -> dict[str, Any]:
        """What the parent run records about this strategy."""
        return {"strategy": self.name, "direction": self.direction, "seed": self.seed}

    # -- history -------------------------------------------------------------------------
    @property
    def pending(self) -> list[Trial]:
        return [t for t in self.trials if t.state is TrialState.RUNNING]

    @property
    def completed(self) -> list[Trial]:
        return [t for t in self.trials if t.state is TrialState.COMPLETE]

    def best_trial(self) -> Trial | None:
        return best_of(self.trials, self.direction)

    # -- for subclasses ------------------------------------------------------------------
    def _configure(self) -> None:
        """Take the strategy's own options (keyword arguments of the constructor) and set
        up what it needs beyond the base class's state."""

    def _suggest(self, n: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _on_tell(self, trial: Trial) -> None:
        """Hook for strategies that update a model incrementally."""

    def _on_restore(self, trial: Trial) -> None:
        """Hook for strategies that keep their own record of trials (Optuna, hyperopt, grid)."""

    def _upcoming_numbers(self, n: int) -> list[int]:
        """The numbers the next ``n`` issued trials will get (gaps of a restore first)."""
        gaps = self._free_numbers[:n]
        return gaps + list(range(self._next_number, self._next_number + n - len(gaps)))

    def _issue(self, assignment: dict[str, Any]) -> Trial:
        if self._free_numbers:
            number = self._free_numbers.pop(0)
        else:
            number, self._next_number = self._next_number, self._next_number + 1
        trial = Trial(
            number=number,
            assignment=assignment,
            params=self.space.build(assignment),
            flat_params=self.space.flat(assignment),
        )
        self.trials.append(trial)
        self._by_number[number] = trial
        return trial

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(direction={self.direction!r}, seed={self.seed}, "
            f"trials={len(self.trials)})"
        )
