"""Reading sweeps back from MLflow: the one place that rebuilds a sweep and its trials
from runs.

`read_sweep` turns a parent run and its child runs into a `StoredSweep` of `StoredTrial`s,
exactly as the store holds them (no repair, no write). `hpo.load_sweep`, `hpo resume`,
warm starts, `hpo show` and the best-model code all read through it, so each of them sees
a trial's state, values and error the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hpo.core.directions import Directions
from hpo.core.result import SweepResult, TrialResult
from hpo.core.trial import TrialState
from hpo.tracking.access import refusal, without_credentials
from hpo.tracking.schema import (
    SweepTag,
    TrialTag,
    flag,
    job_filter,
    objective_names,
    objective_values,
    param_value,
    segment_attrs,
    sweep_directions,
    sweep_filter,
    trials_filter,
)
from hpo.tracking.store import resolve_tracking_uri

PAGE = 1000  # runs per search_runs call


@dataclass(frozen=True)
class StoredTrial:
    """One child run, read as a trial. ``state`` is the ``hpo.state`` tag (RUNNING when the
    run never got one); ``values`` are set when the run has every objective's metric."""

    number: int
    run_id: str
    run_status: str  # MLflow's: RUNNING, FINISHED, FAILED, KILLED
    artifact_uri: str
    start_ms: int
    state: TrialState
    assignment: dict[str, Any]
    params: dict[str, Any]
    flat_params: dict[str, Any]
    values: tuple[float, ...] | None
    metrics: dict[str, float]  # the other metrics' latest values
    error: str | None  # why it failed, or why it was pruned
    attempts: int
    seconds: float | None
    enqueued: bool
    infeasible: bool
    cancelled: bool  # by an interrupt or the sweep's timeout: a resume runs it again
    pruned_step: int | None
    pruner: str | None
    tags: Mapping[str, str] = field(repr=False, default_factory=dict)

    @property
    def complete(self) -> bool:
        """COMPLETE with every objective's value (a failed trial may hold a curve named
        like an objective; a complete one cut off before its values were written is not)."""
        return self.state is TrialState.COMPLETE and self.values is not None

    @property
    def recorded_state(self) -> TrialState:
        """The state as far as the record goes: a COMPLETE tag without the values (the end
        was cut off before they were written) is a trial still RUNNING."""
        cut_off = self.state is TrialState.COMPLETE and not self.complete
        return TrialState.RUNNING if cut_off else self.state

    def result(self) -> TrialResult:
        done = self.complete
        return TrialResult(
            number=self.number,
            state=self.recorded_state,
            params=self.params,
            flat_params=self.flat_params,
            values=self.values if done else None,
            metrics=self.metrics,
            run_id=self.run_id,
            seconds=self.seconds,
            attempts=self.attempts,
            error=self.error,
            enqueued=self.enqueued,
            infeasible=self.infeasible,
            segment=segment_attrs(self.tags),
        )


@dataclass(frozen=True)
class StoredSweep:
    """A parent run, read as a sweep, with its trials in number order."""

    sweep_id: str
    experiment_id: str
    tracking_uri: str
    run_status: str
    tags: Mapping[str, str]
    params: dict[str, Any]  # the parent run's params (the sweep's settings)
    directions: Directions
    objective_names: tuple[str, ...]  # () while several objectives were not yet named
    trials: list[StoredTrial]

    @property
    def named_objectives(self) -> bool:
        """Whether the objectives' names are recorded (several objectives, once named)."""
        return SweepTag.OBJECTIVES in self.tags

    @property
    def recipe(self) -> dict[str, Any] | None:
        text = self.tags.get(SweepTag.RECIPE)
        return None if text is None else json.loads(text)

    @property
    def stopped_by(self) -> str | None:
        return self.tags.get(SweepTag.STOPPED_BY)

    def result(self) -> SweepResult:
        return SweepResult(
            sweep_id=self.sweep_id,
            experiment_id=self.experiment_id,
            tracking_uri=self.tracking_uri,
            directions=self.directions,
            trials=[t.result() for t in self.trials],
            interrupted=flag(self.tags, SweepTag.INTERRUPTED),
            timed_out=flag(self.tags, SweepTag.TIMED_OUT),
            stopped_by=self.stopped_by,
            settings={k: param_value(v) for k, v in self.params.items()},
            objective_names=self.objective_names,
        )


def sweep_run(client: Any, sweep_id: str, where: str) -> Any:
    """The parent run of sweep ``sweep_id`` in the store at ``where``; ValueError when
    there is none."""
    from mlflow.exceptions import MlflowException

    try:
        parent = client.get_run(sweep_id)
    except MlflowException as exc:
        denied = refusal(exc, where, f"the experiment of sweep {sweep_id}")
        if denied is not None:  # it may well exist: the user may not see it
            raise denied from None
        where = without_credentials(where)
        raise ValueError(f"no sweep {sweep_id!r} in {where}: {exc.message}") from None
    if not flag(parent.data.tags, SweepTag.SWEEP):
        raise ValueError(f"run {sweep_id!r} is not an hpo sweep (it has no {SweepTag.SWEEP} tag)")
    return parent


def _search(client: Any, experiment_ids: list[str], filter_string: str, **kw: Any) -> Iterator:
    token = None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string=filter_string, max_results=PAGE, page_token=token, **kw
        )
        yield from page
        token = page.token
        if not token:
            return


def read_sweep(client: Any, sweep_id: str, where: str, *, parent: Any = None) -> StoredSweep:
    """Sweep ``sweep_id`` and every trial of it, as the store at ``where`` holds them;
    ValueError when there is no such sweep, or it has two runs of one trial."""
    parent = parent or sweep_run(client, sweep_id, where)
    tags = parent.data.tags
    names = objective_names(tags)
    trials: dict[int, StoredTrial] = {}
    for run in _search(client, [parent.info.experiment_id], trials_filter(sweep_id)):
        trial = read_trial(run, names)
        if trial.number in trials:
            raise ValueError(f"sweep {sweep_id!r} has two child runs for trial {trial.number}")
        trials[trial.number] = trial
    return StoredSweep(
        sweep_id=sweep_id,
        experiment_id=parent.info.experiment_id,
        tracking_uri=where,
        run_status=parent.info.status,
        tags=dict(tags),
        params=dict(parent.data.params),
        directions=sweep_directions(tags),
        objective_names=names,
        trials=[trials[n] for n in sorted(trials)],
    )


def read_trial(run: Any, names: tuple[str, ...]) -> StoredTrial:
    """A child run as a trial of a sweep whose objectives are ``names``."""
    tags, metrics = run.data.tags, run.data.metrics
    flat = {k: param_value(v) for k, v in run.data.params.items()}
    seconds = tags.get(TrialTag.SECONDS)
    pruned_step = tags.get(TrialTag.PRUNED_STEP)
    return StoredTrial(
        number=int(tags[TrialTag.TRIAL]),
        run_id=run.info.run_id,
        run_status=run.info.status,
        artifact_uri=run.info.artifact_uri,
        start_ms=run.info.start_time or 0,
        state=TrialState(tags.get(TrialTag.STATE, TrialState.RUNNING.value)),
        assignment=json.loads(tags.get(TrialTag.ASSIGNMENT, "{}")),
        params=json.loads(tags[TrialTag.PARAMS]) if TrialTag.PARAMS in tags else flat,
        flat_params=flat,
        values=objective_values(metrics, names),
        metrics={k: v for k, v in metrics.items() if k not in names},
        error=tags.get(TrialTag.ERROR) or tags.get(TrialTag.PRUNE_REASON),
        attempts=int(tags.get(TrialTag.ATTEMPT, "1")),
        seconds=None if seconds is None else float(seconds),
        enqueued=flag(tags, TrialTag.ENQUEUED),
        infeasible=flag(tags, TrialTag.INFEASIBLE),
        cancelled=flag(tags, TrialTag.CANCELLED),
        pruned_step=None if pruned_step is None else int(pruned_step),
        pruner=tags.get(TrialTag.PRUNER),
        tags=dict(tags),
    )


def trial_run(client: Any, experiment_id: str, sweep_id: str, number: int) -> Any:
    """The child run of trial ``number`` of the sweep, or None."""
    found = client.search_runs(
        [experiment_id], filter_string=trials_filter(sweep_id, number), max_results=1
    )
    return found[0] if found else None


def recent_sweeps(client: Any, experiment_ids: list[str], most: int = 20) -> list[Any]:
    """The parent runs of the latest sweeps in these experiments, newest first."""
    return client.search_runs(
        experiment_ids,
        filter_string=sweep_filter(),
        order_by=["attributes.start_time DESC"],
        max_results=most,
    )


def sweep_of_job(client: Any, job_id: str) -> Any:
    """The parent run of the sweep Ray job ``job_id`` runs (a submitted sweep), or None."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return None
    runs = client.search_runs(experiments, filter_string=job_filter(job_id), max_results=1)
    return runs[0] if runs else None


def logged_steps(client: Any, run_id: str, keys: Any) -> set[tuple[str, int]]:
    """Every (metric, step) run ``run_id`` holds of the metrics ``keys``."""
    return {(key, m.step) for key in keys for m in client.get_metric_history(run_id, key)}


def load_sweep(sweep_id: str, *, tracking_uri: str | None = None) -> SweepResult:
    """The `hpo.SweepResult` of sweep ``sweep_id`` (its parent run id), read from the store.

    Each trial (a `hpo.TrialResult`) has the nested ``params`` it ran with, ``flat_params``
    (its MLflow params), ``value`` (``values`` with several objectives), ``seconds`` (the
    objective's time) and ``metrics`` (each reported metric's last value).

    Examples
    --------
    >>> result = hpo.load_sweep(sweep_id)  # doctest: +SKIP
    >>> result.to_dataframe().sort_values("value").head()  # doctest: +SKIP
    """
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    return read_sweep(MlflowClient(uri), sweep_id, uri).result()
