"""A trial as a strategy issues it (`Trial`) and the states a trial goes through."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hpo.core.directions import Directions, better


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
    value: float | None = None  # COMPLETE, one objective
    error: str | None = None
    # For a pruned trial: (step, value) of the watched metric it was pruned on, when that
    # metric is comparable to objective values (TPE ranks pruned trials by it).
    intermediate: tuple[int, float] | None = None
    # The pruner's metric by step, as the trial reports it, when comparable to objective
    # values: what model-based strategies learn from before trials end (`fidelity`).
    curve: dict[int, float] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)  # free for the user's own notes
    # COMPLETE: one value per objective, in the order of the directions (``(value,)`` for
    # one objective; with several, ``value`` stays None: no one of them is "the" value).
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.values is None and self.value is not None:
            self.values = (self.value,)


# The attributes of a population-based training segment (`hpo.strategies.pbt`), in a
# `Trial`'s ``attrs`` and a `TrialResult`'s ``segment``: the member it trains, the trial it
# went on from, the step it starts after, its last step, the member it exploited, and the
# step of the checkpoint it ended on when its member went on (unset for a member's end).
MEMBER, PARENT, FROM_STEP, UNTIL, DONOR, END = (
    "member",
    "parent",
    "from_step",
    "until_step",
    "donor",
    "end_step",
)
SEGMENT_KEYS = (MEMBER, PARENT, FROM_STEP, UNTIL, DONOR, END)


def paused(trial: Any) -> bool:
    """Whether ``trial`` (a `Trial`, a record of one, or a `TrialResult`) is a segment of
    population-based training whose member went on: its value is a training's middle, not
    its end, so it is not a candidate for the sweep's best."""
    segment = getattr(trial, "segment", None)
    if segment is None:
        segment = getattr(getattr(trial, "trial", trial), "attrs", {})
    return END in segment


def best_of(trials: Iterable[Any], directions: Directions | str) -> Any:
    """The completed trial with the best value; of equal values, the first issued
    (ValueError with several objectives: they have a Pareto front instead). A segment of
    population-based training counts only where its member's training ended."""
    direction = Directions.parse(directions).single
    best = None
    for t in trials:
        if t.state is not TrialState.COMPLETE or paused(t):
            continue
        if best is None or better(t.value, best.value, direction):
            best = t
        elif t.value == best.value and t.number < best.number:
            best = t
    return best


def counts_in_budget(trial: Trial) -> bool:
    """Whether ``trial`` counts against the sweep's ``n_trials``: not a configuration the
    constraints refused, nor a segment that goes on with a population member's training."""
    return not trial.attrs.get("infeasible") and trial.attrs.get(PARENT) is None
