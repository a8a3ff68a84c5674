"""The ask/tell interface every search strategy implements.

A strategy keeps its settings, a seeded generator and the list of trials it issued; the
history it learns from is that list, read afresh on every ask. Model-based strategies
(GP-EI, TPE) therefore see completed values, failures and the trials still pending in
one place, and a strategy can be restored by replaying trials into it.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from hpo.core.checks import check_value, check_values
from hpo.core.directions import Directions
from hpo.core.space import Space, as_space
from hpo.core.trial import Trial, TrialState, best_of

# Named in the refusal of the strategies that optimise one objective only.
MULTI_OBJECTIVE_STRATEGIES = "random, grid, gp, tpe, optuna:nsgaii or optuna:nsgaiii"


class NoFeasibleConfiguration(RuntimeError):
    """The strategy kept suggesting configurations the sweep's constraints refuse."""


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


class Strategy:
    """Base class: ``ask`` issues trials, ``tell`` reports how they ended.

    Subclasses implement `_suggest`, which may read ``self.trials`` (history, failures,
    pending) and must draw randomness only from ``self.rng``.

    Parameters
    ----------
    space : Space or dict
        The search space.
    direction : {"minimize", "maximize"} or list of them
        One per objective: with several, ``tell`` takes a tuple of values and the
        strategy searches for their Pareto front (if it can: ``multi_objective``).
    seed : int, optional
        Seed of the strategy's generator; a fresh one is drawn (and kept in ``seed``)
        when omitted.
    **options
        The strategy's own settings, taken by its `_configure`.
    """

    name: ClassVar[str] = "base"
    # Whether it can search for the Pareto front of several objectives.
    multi_objective: ClassVar[bool] = False
    # Suggestions in a row the constraints may refuse before `ask` gives up (None: never,
    # for a strategy that walks a finite set, such as a grid).
    max_infeasible: ClassVar[int | None] = 100
    # Whether it judges trials by the curves they report (population-based training), so
    # that the sweep watches a metric (the pruner's) even without a pruner.
    watches_curves: ClassVar[bool] = False

    def __init__(
        self,
        space: Space | Mapping[str, Any],
        *,
        direction: str = "minimize",
        seed: int | None = None,
        **options: Any,
    ) -> None:
        self.space = as_space(space)
        self.directions = Directions.parse(direction)
        if len(self.directions) > 1 and not self.multi_objective:
            raise ValueError(
                f"the {self.name} strategy optimises one objective, got "
                f"{len(self.directions)} directions {list(self.directions)}; for several use "
                f"{MULTI_OBJECTIVE_STRATEGIES}"
            )
        if seed is not None and (not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = fresh_seed() if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.trials: list[Trial] = []  # in issue order
        # Finished trials of earlier sweeps (`warm_start`): learnt from, never run or counted.
        self.history: list[Trial] = []
        self._by_number: dict[int, Trial] = {}
        self._free_numbers: list[int] = []  # gaps left by a restore, issued first
        self._next_number = 0
        self._queue: list[dict[str, Any]] = []  # enqueued (partial) assignments, run first
        # ``constraints(params) -> bool``: False for a configuration that must not run.
        self.constraints: Callable[[dict[str, Any]], Any] | None = None
        self.rejected: list[Trial] = []  # refused suggestions, until `take_rejected`
        self._refused_in_a_row = 0
        # How to make this strategy again (resume): a `make_strategy` name and its options.
        self.recipe: dict[str, Any] = {"strategy": self.name, "options": {}}
        _check_options(self._configure, options, type(self).__name__)
        self._configure(**options)

    # -- the interface -------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Trial]:
        """Up to ``n`` new trials, enqueued ones first; fewer (possibly none) once the
        strategy is exhausted."""
        if not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"ask(n) needs an int n >= 1, got {n!r}")
        given = []
        while self._queue and len(given) < n:
            assignment = self._feasible_completion(self._queue.pop(0))
            # As a trial handed back by a resume: each strategy takes it as its own (grid
            # marks the point done, Optuna and hyperopt record it), and is told its end.
            trial = self.restore(self._upcoming_numbers(1)[0], assignment, TrialState.RUNNING)
            trial.attrs["enqueued"] = True
            given.append(trial)
        out = given
        while len(out) < n and not self.exhausted:
            batch = [self._issue(a) for a in self._suggest(int(n) - len(out))]
            if not batch:
                break
            for trial in batch:
                if self.feasible(trial.params):
                    out.append(trial)
                    self._refused_in_a_row = 0
                else:
                    self._refuse(trial)
        return out

    def feasible(self, params: dict[str, Any]) -> bool:
        """Whether the sweep's ``constraints`` accept ``params`` (True without any)."""
        if self.constraints is None:
            return True
        try:
            verdict = self.constraints(params)
        except Exception as exc:
            raise ValueError(
                f"constraints raised {type(exc).__name__}: {exc} for params {params!r}"
            ) from exc
        if not isinstance(verdict, bool | np.bool_):
            raise TypeError(
                f"constraints must return True or False, got {verdict!r} for {params!r}"
            )
        return bool(verdict)

    def _feasible_completion(self, partial: dict[str, Any]) -> dict[str, Any]:
        """``partial`` with what it leaves out drawn at random, redrawn until the
        constraints accept it."""
        for _ in range(self.max_infeasible or 100):
            assignment = self.space.complete(partial, self.rng)
            if self.feasible(self.space.build(assignment)):
                return assignment
        raise NoFeasibleConfiguration(
            "the constraints refused an enqueued configuration for every drawing of the "
            f"parameters it leaves out (it sets {sorted(partial)})"
        )

    def take_rejected(self) -> list[Trial]:
        """The suggestions the constraints refused since the last call (for the record)."""
        taken, self.rejected = self.rejected, []
        return taken

    def _refuse(self, trial: Trial) -> None:
        """An infeasible suggestion: never run, told as a failure (learnt from: as bad as
        the worst value seen, see `worst_value`), kept for the record."""
        trial.state, trial.error = TrialState.FAILED, "infeasible: the constraints returned False"
        trial.attrs["infeasible"] = True
        self._on_tell(trial)
        self.rejected.append(trial)
        self._refused_in_a_row += 1
        if self.max_infeasible is not None and self._refused_in_a_row >= self.max_infeasible:
            raise NoFeasibleConfiguration(
                f"the {self.name} strategy suggested {self._refused_in_a_row} configurations in "
                "a row that the constraints refuse; loosen the constraints, or narrow the "
                "space to where they hold"
            )

    @property
    def direction(self) -> str:
        """The directions as text: "minimize", or "minimize,maximize" with several
        objectives (``directions`` is the type hpo works with)."""
        return str(self.directions)

    @property
    def n_objectives(self) -> int:
        return len(self.directions)

    def worst_value(self) -> float | tuple[float, ...] | None:
        """The worst value completed so far (history included), in the sweep's direction;
        with several objectives, the worst of each."""
        rows = [t.values for t in self.known if t.state is TrialState.COMPLETE]
        if not rows:
            return None
        worst = tuple(
            max(column) if d == "minimize" else min(column)
            for d, column in zip(self.directions, zip(*rows, strict=True), strict=True)
        )
        return worst if self.n_objectives > 1 else worst[0]

    def checked_result(self, value: Any) -> tuple[float | None, tuple[float, ...]]:
        """``(value, values)`` of a completed trial: a real for one objective, a tuple of
        one real per direction for several."""
        if self.n_objectives == 1:
            value = check_value(value)
            return value, (value,)
        return None, check_values(value, self.n_objectives)

    def warm_start(self, trials: Iterable[tuple[dict[str, Any], TrialState, Any]]) -> None:
        """Learn from finished trials of earlier sweeps, given as (assignment in this
        space, state, value: a tuple with several objectives), before any `ask`: they
        are history, not trials of this
        sweep (numbered -1, -2, ...; not in ``trials``, so not run and not counted)."""
        for assignment, state, value in trials:
            if not state.is_finished:
                raise ValueError(f"a warm start takes finished trials, got one {state.value}")
            self.space.validate(assignment)
            trial = Trial(
                number=-len(self.history) - 1,
                assignment=dict(assignment),
                params=self.space.build(assignment),
                flat_params=self.space.flat(assignment),
                state=state,
            )
            if state is TrialState.COMPLETE:
                trial.value, trial.values = self.checked_result(value)
            self.history.append(trial)
            self._on_restore(trial)  # as a finished trial of a resume, to those that keep one

    def enqueue(self, params: Mapping[str, Any]) -> None:
        """Have the next ask issue ``params`` (nested, shaped like the objective's) before
        anything the strategy suggests. Parameters it leaves out are drawn at random from
        their ranges (a branch it leaves out too). Raises ValueError, naming the parameter,
        for a value the space does not hold."""
        self._queue.append(self.space.assignment_of(params))

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
        """Report the end of ``trial``: its value (a tuple of one per direction with several
        objectives), or ``failed=True``, or ``pruned=True``
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
            trial.value, trial.values = self.checked_result(value)
            trial.state = TrialState.COMPLETE
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
        attrs: dict[str, Any] | None = None,
    ) -> Trial:
        """Put back a trial of an earlier run of this sweep (resume), before any `ask`,
        with the ``attrs`` the strategy gave it (read back from its run's tags).

        A RUNNING trial is issued again under its number, to be run and told as usual.
        """
        if not isinstance(number, numbers.Integral) or number < 0 or number in self._by_number:
            raise ValueError(f"cannot restore trial number {number!r}: taken or not an int >= 0")
        self.space.validate(assignment)
        trial = Trial(
            number=int(number),
            assignment=dict(assignment),
            params=self.space.build(assignment),
            flat_params=self.space.flat(assignment),
            state=state,
            error=error,
            attrs=dict(attrs or {}),
        )
        if state is TrialState.COMPLETE:
            trial.value, trial.values = self.checked_result(value)
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
        """True when `ask` will issue nothing more (a finished grid, its queue empty)."""
        return False

    def continuations(self, n: int) -> list[Trial]:
        """Up to ``n`` trials that go on with trials already counted (the next segments of
        population-based training): outside the sweep's budget. None for most strategies."""
        return []

    def waiting_to_continue(self) -> bool:
        """Whether `continuations` has trials to give now."""
        return False

    def artifacts(self) -> dict[str, bytes]:
        """Files the strategy adds to the sweep's parent run at its end (e.g. a model plot)."""
        return {}

    def settings(self) -> dict[str, Any]:
        """What the parent run records about this strategy."""
        return {"strategy": self.name, "direction": self.direction, "seed": self.seed}

    # -- history -------------------------------------------------------------------------
    @property
    def known(self) -> list[Trial]:
        """Every trial the strategy learns from: a warm start's history, then this sweep's."""
        return self.history + self.trials

    @property
    def pending(self) -> list[Trial]:
        return [t for t in self.trials if t.state is TrialState.RUNNING]

    @property
    def completed(self) -> list[Trial]:
        return [t for t in self.trials if t.state is TrialState.COMPLETE]

    def best_trial(self) -> Trial | None:
        return best_of(self.trials, self.directions)

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
