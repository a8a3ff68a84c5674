"""The sweep's best model: published when the sweep ends, loaded back by `load_best_model`
(and any trial's model by `load_trial_model`).

When the best trial (the one the sweep's summary names) stored a model with
``report.model``, the end of the sweep makes it one of MLflow's logged models (listed on
the parent run, tagged with the sweep and the trial) and, with ``register_model=NAME``, a
new version of NAME in the Model Registry, once per sweep even when it is resumed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from hpo.tracking.schema import ModelTag, SweepTag, sweep_directions
from hpo.tracking.store import resolve_tracking_uri


def publish_best_model(
    client: Any,
    *,
    experiment_id: str,
    sweep_id: str,
    name: str,
    best: Any,
    objective: str,
    register_as: str | None,
    previous_tags: dict[str, str],
) -> dict[str, str]:
    """Make ``best``'s model (a `TrialRecord` with ``models``) the sweep's best model;
    return the parent run's tags that say where it is."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    folder = best.models[0]
    uri = f"runs:/{best.run_id}/{folder}"
    tags = {SweepTag.BEST_MODEL_URI: uri, SweepTag.BEST_MODEL_TRIAL: str(best.number)}
    model_id = previous_tags.get(SweepTag.BEST_MODEL_ID)
    if previous_tags.get(SweepTag.BEST_MODEL_URI) != uri or model_id is None:  # a new best model
        logged = client.create_logged_model(
            experiment_id,
            name=name,
            source_run_id=best.run_id,
            tags={ModelTag.SWEEP_ID: sweep_id, ModelTag.TRIAL: str(best.number)},
            params={k: str(v) for k, v in best.flat_params.items()},
        )
        model_id = logged.model_id
        with tempfile.TemporaryDirectory(prefix="hpo-best-model-") as tmp, _no_progress_bar():
            local = client.download_artifacts(best.run_id, folder, tmp)
            client.log_model_artifacts(model_id, local)
        client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        client.log_outputs(sweep_id, [LoggedModelOutput(model_id, step=0)])
    tags[SweepTag.BEST_MODEL_ID] = model_id
    if register_as is not None:
        tags[SweepTag.REGISTERED_MODEL] = _register(
            client, register_as, client.get_logged_model(model_id), best, sweep_id, objective
        )
    return tags


def _register(client: Any, name: str, logged: Any, best: Any, sweep_id: str, objective: str) -> str:
    """A new version of registered model ``name`` for this sweep (its existing one when the
    sweep registered already, e.g. before a resume): "NAME/VERSION"."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Best models of hpo sweeps")
    for version in client.search_model_versions(f"name = '{name}'"):
        if version.tags.get(ModelTag.SWEEP_ID) == sweep_id:
            return f"{name}/{version.version}"
    version = client.create_model_version(
        name,
        # Where the logged model's files are: a models:/ URI would be resolved against
        # MLflow's global tracking URI, not this client's store.
        source=logged.artifact_location,
        run_id=sweep_id,  # listed on the sweep's page; the model's source run is the trial
        model_id=logged.model_id,
        tags={
            ModelTag.SWEEP_ID: sweep_id,
            ModelTag.TRIAL: str(best.number),
            ModelTag.OBJECTIVE: objective,
        },
    )
    return f"{name}/{version.version}"


def load_best_model(sweep_id: str, *, tracking_uri: str | None = None) -> Any:
    """The best model of sweep ``sweep_id``, loaded with ``mlflow.sklearn.load_model``.

    Examples
    --------
    >>> model = hpo.load_best_model(result.sweep_id)  # doctest: +SKIP
    >>> model.predict(X_test)  # doctest: +SKIP
    """
    client, tags, _ = _sweep(sweep_id, tracking_uri)
    uri = tags.get(SweepTag.BEST_MODEL_URI)
    if uri is None and sweep_directions(tags).several:
        raise ValueError(
            f"sweep {sweep_id!r} has several objectives, so no one best model: pick a trial "
            "of its Pareto front (result.best_trials, pareto_front.csv, hpo show) and load "
            f"its model with hpo.load_trial_model({sweep_id!r}, TRIAL)"
        )
    if uri is None:
        raise ValueError(
            f"sweep {sweep_id!r} has no best model: its best trial stored none (an objective "
            "stores one with report.model(estimator)), or the sweep has not ended"
        )
    run_id, folder = uri[len("runs:/") :].split("/", 1)
    return _load(client, run_id, folder)


def load_trial_model(
    sweep_id: str, trial: int, *, name: str = "model", tracking_uri: str | None = None
) -> Any:
    """The model trial number ``trial`` of sweep ``sweep_id`` stored with
    ``report.model(estimator, name)``, loaded with ``mlflow.sklearn.load_model``: a trial
    of a Pareto front, or any other that is not the best. With repeats, each repeat's model
    is ``repeat_R/model``.

    Examples
    --------
    >>> front = hpo.load_sweep(sweep_id).best_trials  # doctest: +SKIP
    >>> model = hpo.load_trial_model(sweep_id, front[0].number)  # doctest: +SKIP
    """
    from hpo.core.checks import int_at_least
    from hpo.tracking.reader import trial_run

    int_at_least("trial", trial, 0)
    client, _, experiment_id = _sweep(sweep_id, tracking_uri)
    run = trial_run(client, experiment_id, sweep_id, trial)
    if run is None:
        raise ValueError(f"sweep {sweep_id!r} has no trial {trial}")
    run_id = run.info.run_id
    stored = {a.path for a in client.list_artifacts(run_id, name)}
    if f"{name}/MLmodel" not in stored:
        raise ValueError(
            f"trial {trial} of sweep {sweep_id!r} stored no model named {name!r} (an "
            "objective stores one with report.model(estimator, name))"
        )
    return _load(client, run_id, name)


def _sweep(sweep_id: str, tracking_uri: str | None) -> tuple[Any, dict[str, str], str]:
    """(an MLflow client of the store, the sweep run's tags, its experiment id)."""
    from mlflow.tracking import MlflowClient

    from hpo.tracking.reader import sweep_run

    where = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(where)
    run = sweep_run(client, sweep_id, where)
    return client, run.data.tags, run.info.experiment_id


def _load(client: Any, run_id: str, folder: str) -> Any:
    import mlflow.sklearn

    with tempfile.TemporaryDirectory(prefix="hpo-load-model-") as tmp, _no_progress_bar():
        return mlflow.sklearn.load_model(client.download_artifacts(run_id, folder, tmp))


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a progress bar for every download; a sweep's screen is hpo's own."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ[key]
        else:
            os.environ[key] = before
