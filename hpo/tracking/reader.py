"""Reading sweeps back from the MLflow store: the parent run, its child runs, and a
`SweepResult` of any sweep in the store (`load_sweep`), not only the live one."""

from __future__ import annotations

import json
from typing import Any

from hpo.core.checks import several_objectives
from hpo.strategies.base import Trial, TrialState
from hpo.sweep.lifecycle import TrialRecord
from hpo.tracking.writer import resolve_tracking_uri

PAGE = 1000  # runs per search_runs call


def sweep_run(client: Any, sweep_id: str, where: str) -> Any:
    """The parent run of sweep ``sweep_id`` in the store at ``where``; ValueError when
    there is none."""
    from mlflow.exceptions import MlflowException

    try:
        parent = client.get_run(sweep_id)
    except MlflowException as exc:
        raise ValueError(f"no sweep {sweep_id!r} in {where}: {exc.message}") from None
    if parent.data.tags.get("hpo.sweep") != "true":
        raise ValueError(f"run {sweep_id!r} is not an hpo sweep (it has no hpo.sweep tag)")
    return parent


def child_runs(client: Any, experiment_id: str, sweep_id: str) -> list[Any]:
    """Every child run of the sweep (one per trial), page by page."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{sweep_id}'",
            max_results=PAGE,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def objective_names(sweep_tags: dict[str, str]) -> tuple[str, ...]:
    """The metric names of a sweep's objectives: "objective", or those of several (its
    ``hpo.objectives`` tag, set when they were named)."""
    if not several_objectives(sweep_tags.get("hpo.direction", "")):
        return ("objective",)
    return tuple(json.loads(sweep_tags.get("hpo.objectives", "[]")))


def objective_values(metrics: dict[str, float], names: tuple[str, ...]) -> tuple[float, ...] | None:
    """A child run's value of each objective, or None unless it has them all."""
    if not names or any(n not in metrics for n in names):
        return None
    return tuple(metrics[n] for n in names)


def trial_value(values: tuple[float, ...] | None) -> float | None:
    """`Trial.value` of a trial with ``values``: the one value, None with several."""
    return values[0] if values is not None and len(values) == 1 else None


def param_value(text: str) -> Any:
    """A param as MLflow stores it (a string) back as the number, bool or None it was."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


def load_sweep(sweep_id: str, *, tracking_uri: str | None = None) -> Any:
    """The `hpo.SweepResult` of sweep ``sweep_id`` (its parent run id), read from the store.

    Each trial's ``params`` are the nested values it ran with, ``flat_params`` its MLflow
    params, ``value`` its objective (``values`` with several), ``seconds`` the objective's
    time, and its reported metrics their last values (for `SweepResult.to_dataframe`).

    Examples
    --------
    >>> result = hpo.load_sweep(sweep_id)  # doctest: +SKIP
    >>> result.to_dataframe().sort_values("value").head()  # doctest: +SKIP
    """
    from mlflow.tracking import MlflowClient

    from hpo.core.result import SweepResult

    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(uri)
    parent = sweep_run(client, sweep_id, uri)
    tags = parent.data.tags
    names = objective_names(tags)
    runs = child_runs(client, parent.info.experiment_id, sweep_id)
    records = [_record(run, names) for run in runs]
    records.sort(key=lambda r: r.number)
    return SweepResult(
        sweep_id=sweep_id,
        experiment_id=parent.info.experiment_id,
        tracking_uri=uri,
        direction=tags.get("hpo.direction", "minimize"),
        trials=records,
        interrupted=tags.get("hpo.interrupted") == "true",
        timed_out=tags.get("hpo.timed_out") == "true",
        stopped_by=tags.get("hpo.stopped_by"),
        settings={k: param_value(v) for k, v in parent.data.params.items()},
        objective_names=names,
    )


def _record(run: Any, names: tuple[str, ...]) -> TrialRecord:
    tags, metrics = run.data.tags, run.data.metrics
    state = TrialState(tags.get("hpo.state", "RUNNING"))
    values = objective_values(metrics, names) if state is TrialState.COMPLETE else None
    flat = {k: param_value(v) for k, v in run.data.params.items()}
    trial = Trial(
        number=int(tags["hpo.trial"]),
        assignment=json.loads(tags.get("hpo.assignment", "{}")),
        params=json.loads(tags["hpo.params"]) if "hpo.params" in tags else flat,
        flat_params=flat,
        state=state,
        value=trial_value(values),
        error=tags.get("hpo.error") or tags.get("hpo.prune_reason"),
        values=values,
    )
    seconds = tags.get("hpo.seconds")
    return TrialRecord(
        trial,
        run_id=run.info.run_id,
        attempts=int(tags.get("hpo.attempt", "1")),
        # MLflow keeps each metric's value at its latest step.
        last_metrics={k: (0, v) for k, v in metrics.items() if k not in names},
        seconds=None if seconds is None else float(seconds),
    )
