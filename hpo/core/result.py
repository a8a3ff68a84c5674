"""What a sweep returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hpo.core.checks import check_directions
from hpo.core.pareto import pareto_front
from hpo.strategies.base import TrialState, best_of
from hpo.sweep.lifecycle import TrialRecord, count_states

SUMMARY_FRONT = 20  # trials of a Pareto front the summary lists


@dataclass
class SweepResult:
    """The outcome of `hpo.run`.

    ``trials`` are the sweep's `hpo.sweep.lifecycle.TrialRecord`s in issue order: each has the
    trial's ``number``, ``params``, ``flat_params``, ``state``, ``value`` and ``error``,
    and ``run_id`` (its MLflow child run), ``seconds`` (objective time) and ``attempts``.

    With several objectives ``direction`` is "minimize,maximize" (one per objective, in
    the order of ``objective_names``), each completed trial has ``values`` (``value`` is
    None), and `best_trials` (the Pareto front) replaces the best trial.
    """

    sweep_id: str
    experiment_id: str
    tracking_uri: str
    direction: str
    trials: list[TrialRecord]
    interrupted: bool = False
    timed_out: bool = False
    stopped_by: str | None = None  # the stopping rule that ended the sweep early, in words
    settings: dict[str, Any] = field(default_factory=dict)
    objective_names: tuple[str, ...] = ("objective",)

    @property
    def directions(self) -> tuple[str, ...]:
        return check_directions(self.direction)

    @property
    def best_trials(self) -> list[TrialRecord]:
        """The completed trials on the Pareto front (none beaten in every objective by
        another), in the order of the first objective; the best trial alone for one."""
        if len(self.directions) == 1:
            best = self.best_trial
            return [] if best is None else [best]
        return pareto_front(self.trials, self.directions)

    @property
    def counts(self) -> dict[TrialState, int]:
        return count_states(self.trials)

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
    def best_trial(self) -> TrialRecord | None:
        """The completed trial with the best value (ValueError with several objectives,
        which have `best_trials`)."""
        return best_of(self.trials, self.direction)

    @property
    def best_value(self) -> float | None:
        best = self.best_trial
        return None if best is None else best.value

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
            row.update({f"metrics.{k}": t.last(k) for k in sorted(t.last_metrics)})
            rows.append(row)
        return pd.DataFrame(rows, columns=list(dict.fromkeys(k for r in rows for k in r)) or None)

    def _objective_columns(self, trial: TrialRecord) -> dict[str, float | None]:
        """``value``, or with several objectives ``values.NAME`` for each."""
        if len(self.directions) == 1:
            return {"value": trial.value}
        values = trial.values or (None,) * len(self.objective_names)
        return {f"values.{n}": v for n, v in zip(self.objective_names, values, strict=True)}

    def summary(self) -> str:
        lines = [
            f"sweep {self.sweep_id}: {len(self.trials)} trials, {self.n_complete} complete, "
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
        return "\n".join(lines)
