"""What hpo takes from Ray's and MLflow's internals, checked against the installed versions.

hpo uses a few things neither library documents (a private client, a registry function,
the wording of some errors). pyproject.toml pins the versions they were tested with; an
upgrade that moves one fails here, naming it, instead of hpo silently taking a slower or
vaguer path at run time.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest


def test_ray_s_private_gcs_client_still_takes_an_address():
    """`hpo.execution.cluster._check_gcs`: says a refused token at once (ray.init retries
    it for 20 s)."""
    try:
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError as exc:
        pytest.fail(f"ray._raylet.GcsClient or ray.exceptions.AuthenticationError moved: {exc}")
    assert isinstance(GcsClient, type) and issubclass(AuthenticationError, Exception)
    # A compiled class shows no signature: Ray's own callers show how it is called.
    import ray

    callers = [
        path
        for path in Path(ray.__file__).parent.rglob("*.py")
        if "GcsClient(address=" in path.read_text(errors="ignore")
    ]
    assert callers, "Ray no longer calls ray._raylet.GcsClient(address=...) itself"


def test_ray_s_actor_errors_still_say_whether_the_actor_could_not_start():
    """`hpo.execution.pool.WorkerPool.wait`: a worker that cannot start is not retried."""
    from ray.exceptions import RayActorError

    assert hasattr(RayActorError, "actor_init_failed"), "RayActorError.actor_init_failed moved"


def test_ray_s_version_mismatch_message_is_the_one_hpo_reads():
    """`hpo.execution.cluster._explain` reads the two versions out of this message."""
    import ray._private.utils as utils

    source = Path(utils.__file__).read_text()
    assert "Version mismatch" in source, "ray._private.utils no longer says 'Version mismatch'"


def test_ray_s_cloudpickle_still_pickles_a_module_by_value():
    """`hpo.execution.pool._ship_by_value`: an experiment file travels to the workers."""
    from ray import cloudpickle

    assert callable(getattr(cloudpickle, "register_pickle_by_value", None))


def test_mlflow_s_artifact_repository_registry_is_where_hpo_reaches_it():
    """`hpo.execution.artifacts.write_artifacts`: a store other than a local folder."""
    try:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    except ImportError as exc:
        pytest.fail(f"mlflow's get_artifact_repository moved: {exc}")
    assert "tracking_uri" in inspect.signature(get_artifact_repository).parameters


def test_mlflow_s_refused_connection_reads_as_a_transient_error(monkeypatch):
    """`hpo.tracking.outage.is_transient` matches MLflow's words for a server that does not
    answer: asked for real, at a loopback port nobody listens on."""
    from mlflow.tracking import MlflowClient

    from hpo.tracking.outage import is_transient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(Exception) as refused:
        MlflowClient("http://127.0.0.1:9").search_experiments()
    assert is_transient(refused.value), f"MLflow's wording changed: {refused.value}"


def test_mlflow_s_host_header_refusal_is_the_one_hpo_recognises():
    """`hpo.tracking.outage.refused_host` recognises MLflow 3's DNS-rebinding answer."""
    try:
        from mlflow.server.fastapi_security import INVALID_HOST_MSG
    except ImportError as exc:
        pytest.fail(f"mlflow.server.fastapi_security.INVALID_HOST_MSG moved: {exc}")
    assert "Host header" in INVALID_HOST_MSG, f"MLflow now says: {INVALID_HOST_MSG!r}"
