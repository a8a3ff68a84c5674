"""The tracker's own writes, on a real sqlite store in a temporary directory (no Ray)."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from hpo.execution.artifacts import local_artifact_dir
from hpo.strategies.base import TrialState
from hpo.tracking.writer import Tracker


def test_local_artifact_dir_only_for_local_folders(tmp_path):
    assert local_artifact_dir(tmp_path.as_uri()) == tmp_path
    assert local_artifact_dir(str(tmp_path)) == tmp_path
    assert local_artifact_dir("file:///a%20b/c") == Path("/a b/c")
    for remote in ("mlflow-artifacts:/1/abc/artifacts", "s3://bucket/x", "http://h:5000/x"):
        assert local_artifact_dir(remote) is None


def test_artifacts_written_in_place_are_read_back_by_mlflow(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "e")
    tracker.start_sweep(run_name="s", tags={}, params={"n_trials": 1})
    tracker.start_trial(0, {"x": 1.0}, {})
    content = {"learning_curves.png": b"\x89PNG fake", "nested/traceback.txt": b"boom"}
    tracker.end_trial(0, TrialState.COMPLETE, objectives={"objective": 1.0}, artifacts=content)
    tracker.end_sweep(status="FINISHED", tags={}, artifacts={"trials.csv": b"number\n0\n"})

    client = MlflowClient(uri)
    run_id = tracker.run_id(0)
    for name, data in content.items():
        local = client.download_artifacts(run_id, name, str(tmp_path / "down"))
        assert Path(local).read_bytes() == data
    listed = {a.path for a in client.list_artifacts(run_id)}
    assert listed == {"learning_curves.png", "nested"}  # no temporary file left behind
    parent = client.download_artifacts(tracker.sweep_id, "trials.csv", str(tmp_path / "p"))
    assert Path(parent).read_text() == "number\n0\n"
    assert client.get_run(run_id).info.status == "FINISHED"


def test_the_writer_pauses_for_a_burst_only_when_woken_from_idle(tmp_path, monkeypatch):
    # Woken from idle, it waits a moment so that a trial's reports go out in one call.
    # Events that came in while it was writing mean it is behind: a pause would only add
    # to its backlog.
    import time
    import types

    import hpo.tracking.writer as tracking

    pauses: list[float] = []
    clock = types.SimpleNamespace(sleep=pauses.append, monotonic=time.monotonic, time=time.time)
    monkeypatch.setattr(tracking, "time", clock)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "e")
    tracker._closing = True  # one pass of the loop, then it returns

    tracker._wake.set()  # as when events arrived during the last flush
    tracker._write_loop()
    assert pauses == [] and tracker._error is None

    tracker._wake.clear()  # idle: nothing arrived since
    tracker._write_loop()
    assert pauses == [tracking.BURST_SECONDS] and tracker._error is None


def _env_after_import(extra: dict[str, str]) -> list[str]:
    import os
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_DISABLE_TELEMETRY", "RAY_USAGE_STATS_ENABLED")
    }
    code = (
        "import os, hpo; print(os.environ['MLFLOW_DISABLE_TELEMETRY'], "
        "os.environ['RAY_USAGE_STATS_ENABLED'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_importing_hpo_turns_usage_telemetry_off_unless_the_user_chose():
    assert _env_after_import({}) == ["true", "0"]
    assert _env_after_import(
        {"MLFLOW_DISABLE_TELEMETRY": "false", "RAY_USAGE_STATS_ENABLED": "1"}
    ) == [
        "false",
        "1",
    ]


def test_a_create_run_whose_answer_was_lost_does_not_make_a_second_run(tmp_path):
    # The server made the run but the reply never arrived (it stopped mid-request, as in
    # the outage tests): the retry must find that run, not create another.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "e")
    real_create = tracker.client.create_run
    lost = []

    def create_then_lose_the_reply(*args, **kwargs):
        run = real_create(*args, **kwargs)
        if not lost:
            lost.append(run.info.run_id)
            raise ConnectionError("Connection aborted: remote end closed connection")
        return run

    tracker.start_sweep(run_name="s", tags={}, params={"n_trials": 1})
    tracker.client.create_run = create_then_lose_the_reply  # for the trials' runs
    tracker.start_trial(0, {"x": 1.0}, {})
    tracker.end_trial(0, TrialState.COMPLETE, objectives={"objective": 1.0})
    tracker.end_sweep(status="FINISHED", tags={}, artifacts={})

    client = MlflowClient(uri)
    children = client.search_runs(
        [tracker.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracker.sweep_id}'"
    )
    assert lost and [r.info.run_id for r in children] == lost
    [child] = children
    assert child.info.status == "FINISHED" and child.data.metrics["objective"] == 1.0
    assert child.data.tags["hpo.state"] == "COMPLETE" and child.data.params == {"x": "1.0"}


def _journal_mode(db: Path) -> str:
    import sqlite3

    connection = sqlite3.connect(db)
    try:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()


def test_a_sqlite_store_is_switched_to_write_ahead_logging(tmp_path):
    db = tmp_path / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # a store made by MLflow itself
    assert _journal_mode(db) == "delete"
    Tracker(f"sqlite:///{db}", "e")
    assert _journal_mode(db) == "wal"  # the mode stays with the file, for every client


def test_a_store_on_a_network_file_system_keeps_its_rollback_journal(tmp_path):
    from hpo.tracking.store import use_write_ahead_log

    db = tmp_path / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    mounts = ["/dev/vda / ext4 rw 0 0", f"server:/export {tmp_path} nfs4 rw 0 0"]
    assert not use_write_ahead_log(db, mounts)
    assert _journal_mode(db) == "delete"
    local = ["/dev/vda / ext4 rw 0 0", f"server:/export {tmp_path}/other nfs4 rw 0 0"]
    assert use_write_ahead_log(db, local) and _journal_mode(db) == "wal"


def test_a_reader_in_the_middle_of_a_transaction_does_not_hold_up_the_writes(tmp_path):
    # What the MLflow UI does while a user browses a running sweep. Under sqlite's default
    # rollback journal the writer's commit would wait for the reader (up to MLflow's 20 s
    # busy timeout, then fail with "database is locked").
    import sqlite3
    import threading

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    tracker = Tracker(uri, "e")
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM runs").fetchone() == (0,)  # holds a read lock
    done = threading.Event()

    def sweep():
        tracker.start_sweep(run_name="s", tags={}, params={"n_trials": 1})
        tracker.start_trial(0, {"x": 1.0}, {})
        tracker.end_trial(0, TrialState.COMPLETE, objectives={"objective": 1.0})
        tracker.end_sweep(status="FINISHED", tags={}, artifacts={})
        done.set()

    writer = threading.Thread(target=sweep, daemon=True)
    writer.start()
    try:
        assert done.wait(15), "the sweep's writes waited for the reader"
    finally:
        reader.execute("COMMIT")
        reader.close()
        writer.join()
    assert MlflowClient(uri).get_run(tracker.run_id(0)).info.status == "FINISHED"


def test_a_trial_is_recorded_once_it_ended_and_its_files_are_in_the_store(tmp_path):
    import time

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "e")
    tracker.start_sweep(run_name="s", tags={}, params={"n_trials": 1})
    tracker.start_trial(0, {"x": 1.0}, {})
    assert not tracker.recorded(0) and not tracker.recorded(7)  # running; unknown
    tracker.log_artifacts(0, {"checkpoint.pkl": b"state"})
    tracker.end_trial(0, TrialState.COMPLETE, objectives={"objective": 1.0})
    deadline = time.monotonic() + 30
    while not tracker.recorded(0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tracker.recorded(0)
    local = MlflowClient(uri).download_artifacts(tracker.run_id(0), "checkpoint.pkl", str(tmp_path))
    assert Path(local).read_bytes() == b"state"  # what "recorded" promises
    tracker.end_sweep(status="FINISHED", tags={}, artifacts={})


def test_the_sweep_runs_own_writes_wait_a_second_between_them_and_all_go_out_at_its_end(
    tmp_path, monkeypatch
):
    # Each write of the sweep's run costs as much as a trial's; its best value changes with
    # every trial that ends, which a short trial does a few times a second.
    import time
    import types

    import hpo.tracking.writer as tracking

    now = [100.0]
    clock = types.SimpleNamespace(sleep=time.sleep, monotonic=lambda: now[0], time=time.time)
    monkeypatch.setattr(tracking, "time", clock)
    monkeypatch.setattr(Tracker, "_start_writer", lambda self: None)  # flushed by hand here
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "e")
    sweep_id = tracker.start_sweep(run_name="s", tags={}, params={})
    client = MlflowClient(uri)

    def best_values():
        return [m.value for m in client.get_metric_history(sweep_id, "best_objective")]

    tracker.log_sweep_metrics(1, {"best_objective": 3.0})
    tracker._flush()
    tracker.log_sweep_metrics(2, {"best_objective": 2.0})
    tracker.set_sweep_tags({"hpo.waiting": "for a CPU"})
    tracker._flush()  # within the second: held
    assert best_values() == [3.0]
    now[0] += tracking.SWEEP_FLUSH_SECONDS
    tracker.log_sweep_metrics(3, {"best_objective": 1.0})
    tracker._flush()
    assert best_values() == [3.0, 2.0, 1.0]
    assert client.get_run(sweep_id).data.tags["hpo.waiting"] == "for a CPU"
    tracker.log_sweep_metrics(4, {"best_objective": 0.5})
    tracker.end_sweep(status="FINISHED", tags={}, artifacts={})  # its end: at once
    assert best_values() == [3.0, 2.0, 1.0, 0.5]
    assert client.get_run(sweep_id).info.status == "FINISHED"
