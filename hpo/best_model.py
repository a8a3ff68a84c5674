"""The sweep's best model: published when the sweep ends, loaded back by `load_best_model`.

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

BEST_MODEL_TAG = "hpo.best_model_uri"  # runs:/<run id>/<folder> of the best trial's model


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
    tags = {BEST_MODEL_TAG: uri, "hpo.best_model_trial": str(best.number)}
    model_id = previous_tags.get("hpo.best_model_id")
    if previous_tags.get(BEST_MODEL_TAG) != uri or model_id is None:  # a new best model
        logged = client.create_logged_model(
            experiment_id,
            name=name,
            source_run_id=best.run_id,
            tags={"hpo.sweep_id": sweep_id, "hpo.trial": str(best.number)},
            params={k: str(v) for k, v in best.flat_params.items()},
        )
        model_id = logged.model_id
        with tempfile.TemporaryDirectory(prefix="hpo-best-model-") as tmp, _no_progress_bar():
            local = client.download_artifacts(best.run_id, folder, tmp)
            client.log_model_artifacts(model_id, local)
        client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        client.log_outputs(sweep_id, [LoggedModelOutput(model_id, step=0)])
    tags["hpo.best_model_id"] = model_id
    if register_as is not None:
        tags["hpo.registered_model"] = _register(
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
        if version.tags.get("hpo.sweep_id") == sweep_id:
            return f"{name}/{version.version}"
    version = client.create_model_version(
        name,
        # Where the logged model's files are: a models:/ URI would be resolved against
        # MLflow's global tracking URI, not this client's store.
        source=logged.artifact_location,
        run_id=sweep_id,  # listed on the sweep's page; the model's source run is the trial
        model_id=logged.model_id,
        tags={"hpo.sweep_id": sweep_id, "hpo.trial": str(best.number), "hpo.objective": objective},
    )
    return f"{name}/{version.version}"


def load_best_model(sweep_id: str, *, tracking_uri: str | None = None) -> Any:
    """The best model of sweep ``sweep_id``, loaded with ``mlflow.sklearn.load_model``.

    Examples
    --------
    >>> model = hpo.load_best_model(result.sweep_id)  # doctest: +SKIP
    >>> model.predict(X_test)  # doctest: +SKIP
    """
    import mlflow.sklearn
    from mlflow.tracking import MlflowClient

    from hpo.checks import several_objectives
    from hpo.store import sweep_run
    from hpo.tracking import resolve_tracking_uri

    where = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(where)
    tags = sweep_run(client, sweep_id, where).data.tags
    uri = tags.get(BEST_MODEL_TAG)
    if uri is None and several_objectives(tags.get("hpo.direction", "")):
        raise ValueError(
            f"sweep {sweep_id!r} has several objectives, so no one best model: pick a trial "
            "of its Pareto front (pareto_front.csv, hpo show) and load its model with "
            "mlflow.sklearn.load_model('runs:/RUN_ID/model')"
        )
    if uri is None:
        raise ValueError(
            f"sweep {sweep_id!r} has no best model: its best trial stored none (an objective "
            "stores one with report.model(estimator)), or the sweep has not ended"
        )
    run_id, folder = uri[len("runs:/") :].split("/", 1)
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
