"""What a trial's worker sends to the driver: reports and artifacts while it runs, then
one outcome.

Named tuples: the stream stays cheap to pickle, and both sides read fields by name.
"""

from __future__ import annotations

from typing import NamedTuple

from hpo.strategies.base import TrialState


class Report(NamedTuple):
    """One ``report(step, **metrics)`` call of the objective."""

    step: int
    metrics: dict[str, float]
    seconds: float  # since the trial began, timed in the worker


class Artifact(NamedTuple):
    """Files of one ``report.artifact`` or ``report.model`` call, for the trial's run."""

    files: dict[str, bytes]  # path in the run's artifacts -> content, for the driver to store
    model: str | None = None  # the folder of a model in MLflow's format, for report.model
    stored: tuple[str, ...] = ()  # paths the worker stored in the run itself (no content)


class Outcome(NamedTuple):
    """How a trial's attempt ended: the last event of its stream.

    Made by the worker (COMPLETE, FAILED, PRUNED) or by the driver for a trial it ended
    itself (a timeout, a dead worker out of retries, a cancellation): then only ``state``
    and ``error`` are set.
    """

    state: TrialState
    # COMPLETE: the objective (the mean of the repeats); with several objectives, a tuple
    # or a dict by name, as the objective returned them
    value: float | tuple[float, ...] | dict[str, float] | None = None
    error: str | None = None  # FAILED: the reason, one line
    traceback: str | None = None  # FAILED in the objective: the full traceback
    seconds: float | None = None  # the objective's time
    curves: bytes | None = None  # the learning-curve PNG
    repeat_values: list[float] | None = None  # each repeat's value, with repeats > 1
    placement: dict[str, str] | None = None  # the worker's node and GPUs (`TrialWorker`)
    # A population-based training segment that reached its last step: the step of the
    # checkpoint it ended on (its value is read from its curve there, by the driver).
    segment_end: int | None = None

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls(TrialState.FAILED, error=reason)


Event = Report | Artifact | Outcome
