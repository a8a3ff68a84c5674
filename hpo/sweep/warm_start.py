"""Warm starts: the finished trials of earlier sweeps in the store, as history for a new
sweep's strategy (learnt from, never run again, not counted in the budget).

A trial is carried over by its nested parameters (the ``hpo.params`` tag), mapped into the
new space with `Space.assignment_of`: so an option index means the same option even when
options were removed, and a trial with a value outside the new space (a narrowed range, a
removed option) or without a value for one of its parameters (a new parameter) is left out
and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpo.core.directions import Directions
from hpo.core.space import Space
from hpo.core.trial import TrialState
from hpo.tracking.reader import read_sweep


@dataclass
class History:
    """What a warm start gives the strategy, and what it left out."""

    sweep_ids: list[str]
    # (assignment, state, value): a tuple of values with several objectives
    trials: list[tuple[dict[str, Any], TrialState, Any]] = field(default_factory=list)
    left_out: int = 0
    objective_names: tuple[str, ...] | None = None  # several objectives: as the sweeps named them

    def describe(self) -> str:
        line = (
            f"warm start: {len(self.trials)} finished trials of {len(self.sweep_ids)} earlier "
            f"sweep{'s' if len(self.sweep_ids) > 1 else ''} as history"
        )
        if self.left_out:
            line += f"; {self.left_out} left out (their parameters fall outside this space)"
        return line


def load_history(
    sweep_ids: list[str],
    space: Space,
    directions: Directions | str,
    tracking_uri: str,
    names: tuple[str, ...] | None = None,
) -> History:
    """The finished trials of ``sweep_ids`` that fit ``space``; ValueError for a sweep that
    is not in the store, that optimised in another direction, or (several objectives,
    ``names`` given) that named its objectives otherwise."""
    from mlflow.tracking import MlflowClient

    if isinstance(sweep_ids, str) or not all(isinstance(s, str) for s in sweep_ids):
        raise ValueError(f"warm_start must be a list of sweep ids, got {sweep_ids!r}")
    directions = Directions.parse(directions)
    client = MlflowClient(tracking_uri)
    history = History(list(dict.fromkeys(sweep_ids)))
    for sweep_id in history.sweep_ids:
        stored = read_sweep(client, sweep_id, tracking_uri)
        if stored.directions != directions:
            raise ValueError(
                f"warm_start: sweep {sweep_id!r} was to {stored.directions} its objective, this "
                f"one is to {directions} it; a warm start needs the same direction"
            )
        theirs_named = stored.objective_names
        names = names or history.objective_names  # named here, or by the first sweep
        named = directions.several and theirs_named  # () before any result
        if named and names is not None and theirs_named != names:
            raise ValueError(
                f"warm_start: sweep {sweep_id!r}'s objectives are {list(theirs_named)}, this "
                f"one's are {list(names)}; a warm start needs the same objectives"
            )
        if named:
            history.objective_names = theirs_named
        for trial in stored.trials:  # in number order: a fixed order
            if not trial.state.is_finished or (
                trial.state is TrialState.COMPLETE and not trial.complete
            ):
                continue  # never finished: nothing to learn from
            try:
                assignment = space.assignment_of(trial.params)
                space.validate(assignment)
            except (KeyError, ValueError):
                history.left_out += 1
                continue
            value = None
            if trial.complete:
                value = trial.values if directions.several else trial.values[0]
            history.trials.append((assignment, trial.state, value))
    return history
