"""A tracking server that goes away: a real `mlflow server` on PostgreSQL, stopped mid-sweep.

Up to the sweep's patience nothing is lost (writes are buffered and retried); past it the
sweep stops cleanly with a message saying how to resume, and `hpo.resume` finishes it.
"""

from __future__ import annotations

import threading
import time

import objectives
import pytest
from invariants import check_invariants, cluster_workers, wait_gone
from mlflow.tracking import MlflowClient
from ray import cloudpickle
from servers import MlflowServer, Postgres

import hpo
from hpo.space import Float
from hpo.tracking.outage import TrackingUnavailable

cloudpickle.register_pickle_by_value(objectives)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    postgres = Postgres()
    mlflow = MlflowServer(postgres.url, tmp_path_factory.mktemp("artifacts"))
    try:
        mlflow.start()
        yield mlflow
    finally:
        mlflow.stop()
        postgres.stop()


def run_in_thread(**kwargs):
    outcome = {}

    def target():
        try:
            outcome["result"] = hpo.run(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - looked at by the test
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def wait_for_trials(client, experiment_name, n, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            runs = client.search_runs([experiment.experiment_id])
            if sum(r.data.tags.get("hpo.state") == "COMPLETE" for r in runs) >= n:
                return
        time.sleep(0.3)
    raise AssertionError(f"{n} trials did not complete within {seconds} s")


def test_a_server_down_for_a_while_loses_nothing(ray_cluster, server):
    client = MlflowClient(server.url)
    thread, outcome = run_in_thread(
        space={"x": Float(0.0, 1.0)},
        objective=objectives.one_second,
        n_trials=24,
        workers=2,
        seed=0,
        tracking_uri=server.url,
        experiment_name="outage-short",
        progress=False,
    )
    wait_for_trials(client, "outage-short", 2)
    server.stop()
    time.sleep(10)  # trials go on finishing (most of the 24); their results wait in the buffers
    server.start()
    thread.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.n_complete == 24
    runs = check_invariants(
        client, result.sweep_id, 24, curve=("loss", range(10)), workers=cluster_workers
    )
    for trial in result.trials:
        run = runs[trial.number]
        assert run.data.metrics["objective"] == trial.value
        assert float(run.data.params["x"]) == trial.params["x"]
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["learning_curves.png"]
    assert {a.path for a in client.list_artifacts(result.sweep_id)} >= {"trials.csv"}


def test_a_longer_outage_stops_the_sweep_cleanly_and_it_resumes(ray_cluster, server):
    client = MlflowClient(server.url)
    space = {"x": Float(0.0, 1.0)}
    thread, outcome = run_in_thread(
        space=space,
        objective=objectives.one_second,
        n_trials=16,
        workers=2,
        seed=1,
        tracking_uri=server.url,
        experiment_name="outage-long",
        progress=False,
        tracking_patience=4.0,
    )
    wait_for_trials(client, "outage-long", 2)
    server.stop()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the sweep did not stop after its patience ran out"
    error = outcome.get("error")
    assert isinstance(error, TrackingUnavailable), outcome
    message = str(error)
    assert "did not answer for" in message and f"--tracking-uri {server.url}" in message
    sweep_id = message.split("hpo resume ")[1].split()[0]
    assert wait_gone(cluster_workers) == [], "the stopped sweep left a worker running"
    server.start()
    result = hpo.resume(
        sweep_id, space, objectives.one_second, tracking_uri=server.url, progress=False
    )
    assert result.n_complete == 16
    check_invariants(client, sweep_id, 16, curve=("loss", range(10)), workers=cluster_workers)


def test_files_and_models_reach_a_tracking_server_through_its_artifact_proxy(
    ray_cluster, server, tmp_path
):
    from sklearn.datasets import load_iris

    from hpo.space import Int

    X, y = load_iris(return_X_y=True)
    result = hpo.run(
        {"units": Int(1, 16)},
        objectives.with_model,
        strategy=hpo.make_strategy("grid", {"units": Int(4, 5)}, direction="maximize"),
        data=(X / 8.0, y),
        direction="maximize",
        workers=2,
        tracking_uri=server.url,
        experiment_name="server-models",
        progress=False,
        register_model="server-best",
    )
    assert result.n_complete == 2
    client = MlflowClient(server.url)
    for trial in result.trials:
        paths = {a.path for a in client.list_artifacts(trial.run_id)}
        assert {"notes", "weights.bin", "folder", "model", "learning_curves.png"} <= paths
        nested = {a.path for a in client.list_artifacts(trial.run_id, "folder/sub")}
        assert nested == {"folder/sub/b.txt"}  # folders keep their layout through the proxy
    # Stored where the server keeps artifacts, which only the server writes to.
    assert list(server.artifacts.rglob("model/MLmodel"))
    model = hpo.load_best_model(result.sweep_id, tracking_uri=server.url)
    assert model.score(X / 8.0, y) == result.best_value
    [version] = client.search_model_versions("name = 'server-best'")
    assert version.tags["hpo.sweep_id"] == result.sweep_id
