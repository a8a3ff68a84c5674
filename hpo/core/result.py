"""What a sweep returns: `SweepResult`, and one frozen `TrialResult` per trial."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hpo.core.directions import Directions
from hpo.core.pareto import pareto_front
from hpo.core.trial import TrialState, best_of

SUMMARY_FRONT = 20  # trials of a Pareto front the summary lists


@dataclass(frozen=True)
class TrialResult:
    """One trial of a sweep as it ended (or as the store holds it): read-only.

    Attributes
    ----------
    number : int
        The trial's number in its sweep (0, 1, ... in issue order).
    state : TrialState
        COMPLETE, FAILED, PRUNED, or RUNNING (read back from a sweep that did not end).
    params : dict
        The nested values it ran with; ``flat_params`` by dotted name, as in MLflow.
    values : tuple of float or None
        A completed trial's value of each objective; ``value`` is the one value of a
        sweep of one objective.
    metrics : mapping
        The last value of each metric it reported.
    run_id : str or None
        Its MLflow child run.
    seconds : float or None
        The objective's time in its last attempt.
    attempts : int
        How many times it was started (more than 1 after its worker died).
    error : str or None
        Why it failed, or why it was pruned.
    intermediate : (step, value) or None
        For a pruned trial, where the pruner stopped it and the watched metric's value there.
    enqueued, infeasible : bool
        Queued by the user (``enqueue``); refused by the constraints (never ran).
    segment : mapping
        For a segment of population-based training (``strategy="pbt"``): ``member``,
        ``parent`` (the trial it went on from), ``from_step``, ``until_step``, ``donor``
        (the member it exploited) and ``end_step`` (where it ended, when its member went
        on), each when set; empty for any other trial. See `hpo.lineage`.

    Examples
    --------
    >>> t = TrialResult(number=0, state=TrialState.COMPLETE, params={"x": 0.5},
    ...                 flat_params={"x": 0.5}, values=(0.25,), metrics={"loss": 0.25})
    >>> t.value, t.last("loss")
    (0.25, 0.25)
    """

    number: int
    state: TrialState
    params: dict[str, Any]
    flat_params: dict[str, Any]
    values: tuple[float, ...] | None = None
    metrics: MappingProxyType[str, float] | dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    seconds: float | None = None
    attempts: int = 1
    error: str | None = None
    intermediate: tuple[int, float] | None = None
    enqueued: bool = False
    infeasible: bool = False
    segment: MappingProxyType[str, int] | dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "segment", MappingProxyType(dict(self.segment)))

    @property
    def value(self) -> float | None:
        """The objective of a completed trial of a one-objective sweep, else None."""
        return self.values[0] if self.values is not None and len(self.values) == 1 else None

    def last(self, metric: str) -> float | None:
        """The last value ``metric`` was reported with, or None."""
        return self.metrics.get(metric)


@dataclass
class SweepResult:
    """The outcome of `hpo.run`.

    ``trials`` are its `TrialResult`s in issue order. ``directions`` has one direction per
    objective, in the order of ``objective_names`` (``direction`` is their text,
    "minimize" or "minimize,maximize"). With several objectives each completed trial has
    ``values`` (``value`` is None), and `best_trials` (the Pareto front) replaces the best
    trial.
    """

    sweep_id: str
    experiment_id: str
    tracking_uri: str
    directions: Directions
    trials: list[TrialResult]
    interrupted: bool = False
    timed_out: bool = False
    stopped_by: str | None = None  # the stopping rule that ended the sweep early, in words
    settings: dict[str, Any] = field(default_factory=dict)
    objective_names: tuple[str, ...] = ("objective",)
    best_model: str | None = None  # the best trial's model, runs:/RUN/FOLDER
    registered_model: str | None = None  # its version in the Model Registry, NAME/VERSION
    model_note: str | None = None  # why the sweep has no (registered) best model
    figures: tuple[str, ...] = ()  # the figures in the sweep's run (PNG artifacts)

    @property
    def direction(self) -> str:
        return str(self.directions)

    @property
    def best_trials(self) -> list[TrialResult]:
        """The completed trials on the Pareto front (none beaten in every objective by
        another), in the order of the first objective; the best trial alone for one."""
        if len(self.directions) == 1:
            best = self.best_trial
            return [] if best is None else [best]
        return pareto_front(self.trials, self.directions)

    @property
    def counts(self) -> dict[TrialState, int]:
        return Counter(t.state for t in self.trials)

    @property
    def n_complete(self) -> int:
        return self.counts[TrialState.COMPLETE]

    @property
    def n_failed(self) -> int:
        return self.counts[TrialState.FAILED]

    @property
    def n_pruned(self) -> int:
        return self.counts[TrialState.PRUNED]

    @property
    def best_trial(self) -> TrialResult | None:
        """The completed trial with the best value (ValueError with several objectives,
        which have `best_trials`)."""
        return best_of(self.trials, self.directions)

    @property
    def best_value(self) -> float | None:
        best = self.best_trial
        return None if best is None else best.value

    def lineage(self, trial: int | None = None) -> list[TrialResult]:
        """The segments of population-based training whose training led to trial
        ``trial``'s state (the best trial's when None), first to last: each one's
        ``parent`` is the one before. Their ``params`` and steps are the schedule.

        >>> [s.segment["member"] for s in result.lineage()]  # doctest: +SKIP
        [3, 3, 0, 0]
        """
        by_number = {t.number: t for t in self.trials}
        if trial is None:
            best = self.best_trial
            if best is None:
                raise ValueError(f"sweep {self.sweep_id!r} has no completed trial")
            trial = best.number
        if trial not in by_number:
            raise ValueError(f"sweep {self.sweep_id!r} has no trial {trial!r}")
        if not by_number[trial].segment:
            raise ValueError(
                f"trial {trial} of sweep {self.sweep_id!r} is not a segment of "
                "population-based training (strategy='pbt'): it has no lineage"
            )
        chain, number = [], trial
        while number is not None:
            chain.append(by_number[number])
            number = chain[-1].segment.get("parent")
        return chain[::-1]

    @property
    def best_params(self) -> dict[str, Any] | None:
        best = self.best_trial
        return None if best is None else best.params

    def to_dataframe(self) -> Any:
        """One row per trial: ``number``, ``state``, ``value`` (with several objectives
        ``values.NAME``, one per objective), ``duration`` (the
        objective's seconds), ``attempts``, ``run_id``, ``error``, then ``params.NAME``
        for every flat parameter and ``metrics.NAME`` for the last value of every
        reported metric (MLflow's column names). A pandas DataFrame.

        Examples
        --------
        >>> df = result.to_dataframe()  # doctest: +SKIP
        >>> df.sort_values("value").head(3)  # doctest: +SKIP
        """
        import pandas as pd

        rows = []
        for t in self.trials:
            row = {
                "number": t.number,
                "state": t.state.value,
                **self._objective_columns(t),
                "duration": t.seconds,
                "attempts": t.attempts,
                "run_id": t.run_id,
                "error": t.error,
            }
            row.update({f"params.{k}": v for k, v in t.flat_params.items()})
            row.update({f"metrics.{k}": v for k, v in sorted(t.metrics.items())})
            rows.append(row)
        return pd.DataFrame(rows, columns=list(dict.fromkeys(k for r in rows for k in r)) or None)

    def _objective_columns(self, trial: TrialResult) -> dict[str, float | None]:
        """``value``, or with several objectives ``values.NAME`` for each."""
        if len(self.directions) == 1:
            return {"value": trial.value}
        values = trial.values or (None,) * len(self.objective_names)
        return {f"values.{n}": v for n, v in zip(self.objective_names, values, strict=True)}

    def summary(self) -> str:
        members = {t.segment["member"] for t in self.trials if "member" in t.segment}
        trials = (  # population-based training: a trial is a segment of a member's training
            f"{len(members)} members in {len(self.trials)} segments"
            if members
            else f"{len(self.trials)} trials"
        )
        lines = [
            f"sweep {self.sweep_id}: {trials}, {self.n_complete} complete, "
            f"{self.n_failed} failed, {self.n_pruned} pruned"
            + (" (interrupted)" if self.interrupted else "")
            + (" (sweep timeout reached)" if self.timed_out else "")
            + (f" (stopped early, {self.stopped_by})" if self.stopped_by else "")
        ]
        if len(self.directions) > 1:
            front = self.best_trials
            goal = ", ".join(
                f"{d} {n}" for d, n in zip(self.directions, self.objective_names, strict=True)
            )
            lines.append(
                f"Pareto front ({goal}): {len(front)} trials" if front else "no trial completed"
            )
            for t in front[:SUMMARY_FRONT]:
                values = ", ".join(
                    f"{n}={v:.6g}" for n, v in zip(self.objective_names, t.values, strict=True)
                )
                lines.append(f"  trial {t.number}: {values}")
            if len(front) > SUMMARY_FRONT:
                lines.append(f"  ... and {len(front) - SUMMARY_FRONT} more (result.best_trials)")
            return "\n".join(lines)
        best = self.best_trial
        if best is None:
            lines.append("no trial completed")
        else:
            lines.append(
                f"best objective ({self.direction}): {best.value:.6g} in trial {best.number}"
            )
            lines.extend(f"  {k} = {v!r}" for k, v in best.flat_params.items())
        if self.best_model is not None:
            registered = self.registered_model
            lines.append(
                f"best model: {self.best_model}"
                + (f" (registered as {registered})" if registered else "")
            )
        if self.model_note is not None:
            lines.append(f"warning: {self.model_note}")
        return "\n".join(lines)
