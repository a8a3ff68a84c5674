"""A real local Ray cluster for the session and a real sqlite MLflow store per test."""

from __future__ import annotations

import os
import shutil
import sys

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    # Two logical GPUs: Ray counts them and sets CUDA_VISIBLE_DEVICES as for real ones.
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def no_kept_workers():
    """Each test starts without workers an earlier test's sweeps kept up (`hpo.SearchCV`
    keeps its own for a minute): they would hold the session cluster's CPUs."""
    yield
    if "hpo" in sys.modules:
        sys.modules["hpo"].release_workers()


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory):
    """An MLflow sqlite store with its tables made: MLflow's migrations take one to three
    seconds per new store, and nearly every test makes one."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path, empty_store):
    """A new store of the test's own: a copy of the migrated empty one."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def client(tracking_uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


@pytest.fixture
def hpo_env(tmp_path):
    """Environment for `hpo` subprocesses: the venv's tools first, no inherited tracking URI."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def child_runs(client, sweep_id):
    parent = client.get_run(sweep_id)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{sweep_id}'",
        max_results=5000,
    )


def by_trial(runs):
    return {int(r.data.tags["hpo.trial"]): r for r in runs}
