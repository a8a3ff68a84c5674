"""Resources per trial on a real local Ray cluster with two logical GPUs (see conftest):
what each trial asked for and saw, how many run at once, fresh worker processes."""

from __future__ import annotations

import json
import time

import objectives
import pytest
from conftest import by_trial, child_runs
from ray import cloudpickle

import hpo
from hpo.space import Float

cloudpickle.register_pickle_by_value(objectives)

pytestmark = pytest.mark.integration


def sweep(tracking_uri, out, *, hold=0.0, n_trials=2, **settings):
    """A sweep of `objectives.where_it_runs`: (its result, what each trial saw, by x)."""
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    result = hpo.run(
        {"x": Float(0.0, 1.0), "out": str(out), "hold": hold},
        objectives.where_it_runs,
        n_trials=n_trials,
        seed=0,
        tracking_uri=tracking_uri,
        experiment_name="resources",
        progress=False,
        **settings,
    )
    assert result.n_complete == n_trials, [t.error for t in result.trials]
    seen = {
        t.params["x"]: json.loads((out / f"{t.params['x']}.json").read_text())
        for t in result.trials
    }
    return result, seen


def overlapped(seen) -> bool:
    spans = sorted((s["began"], s["ended"]) for s in seen.values())
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def test_a_gpu_trial_sees_only_its_device_and_fractions_share_one(
    ray_cluster, tracking_uri, client, tmp_path
):
    # One GPU each, two at once on the two devices: each trial sees its own device only.
    result, seen = sweep(tracking_uri, tmp_path / "whole", hold=3.0, resources={"gpu": 1})
    assert overlapped(seen)
    devices = {x: s["devices"] for x, s in seen.items()}
    assert sorted(devices.values()) == ["0", "1"]
    runs = by_trial(child_runs(client, result.sweep_id))
    for trial in result.trials:
        tags = runs[trial.number].data.tags
        assert tags["hpo.resources"] == "cpu=1, gpu=1"
        assert tags["hpo.gpus"] == devices[trial.params["x"]]
        assert tags["hpo.node"]
    parent = client.get_run(result.sweep_id).data.params
    assert parent["trial_resources"] == "cpu=1, gpu=1" and parent["workers"] == "2"

    # Half a GPU each: every trial is given one device, never a share of two.
    result, seen = sweep(tracking_uri, tmp_path / "half", n_trials=3, resources={"gpu": 0.5})
    for trial in result.trials:
        device = seen[trial.params["x"]]["devices"]
        assert device in {"0", "1"}
        tags = by_trial(child_runs(client, result.sweep_id))[trial.number].data.tags
        assert tags["hpo.gpus"] == device and tags["hpo.resources"] == "cpu=1, gpu=0.5"


def test_a_trial_runs_as_many_threads_as_its_cpus_and_as_many_trials_fit(
    ray_cluster, tracking_uri, client, tmp_path
):
    # Two CPUs each on the two-CPU cluster: one trial at a time, each with two threads.
    result, seen = sweep(tracking_uri, tmp_path / "two", hold=0.5, resources={"cpu": 2})
    assert not overlapped(seen)
    for s in seen.values():
        assert s["omp"] == "2" and s["blas"] == [2]
        assert not s["devices"]  # no GPU asked: none seen
    assert client.get_run(result.sweep_id).data.params["workers"] == "1"
    for run in child_runs(client, result.sweep_id):
        assert run.data.tags["hpo.resources"] == "cpu=2" and "hpo.gpus" not in run.data.tags

    # The default, one CPU: two at once, one thread each.
    result, seen = sweep(tracking_uri, tmp_path / "one", hold=3.0)
    assert overlapped(seen)
    assert all(s["omp"] == "1" and s["blas"] == [1] for s in seen.values())


def test_a_worker_process_is_replaced_after_its_share_of_trials(
    ray_cluster, tracking_uri, client, tmp_path
):
    result, seen = sweep(tracking_uri, tmp_path / "kept", n_trials=3, workers=1)
    assert len({s["pid"] for s in seen.values()}) == 1

    result, seen = sweep(
        tracking_uri, tmp_path / "fresh", n_trials=3, workers=1, max_trials_per_worker=1
    )
    assert len({s["pid"] for s in seen.values()}) == 3
    assert client.get_run(result.sweep_id).data.params["max_trials_per_worker"] == "1"


def test_kept_workers_serve_the_next_sweep_of_their_kind_until_released(
    ray_cluster, tracking_uri, client
):
    import psutil

    def pids_and_values(value, **settings):
        result = hpo.run(
            {"x": Float(0.0, 1.0), "hold": 0.5},
            objectives.pid_and_data,
            data={"value": value},
            n_trials=4,
            seed=int(value),
            tracking_uri=tracking_uri,
            experiment_name="kept",
            progress=False,
            **settings,
        )
        assert result.n_complete == 4, [t.error for t in result.trials]
        return {int(t.metrics["pid"]) for t in result.trials}, {t.value for t in result.trials}

    def gone(pids):
        deadline = time.monotonic() + 20
        while any(psutil.pid_exists(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        return not any(psutil.pid_exists(p) for p in pids)

    first, values = pids_and_values(1.0, keep_workers=60)  # two workers: the cluster's CPUs
    assert len(first) == 2 and values == {1.0}
    assert all(psutil.pid_exists(p) for p in first)  # kept up after the sweep
    assert ray_cluster.available_resources().get("CPU", 0) == 0  # holding their CPUs

    # The next sweep of the same kind runs in them, on its own objective's data.
    second, values = pids_and_values(2.0, keep_workers=60)
    assert second == first and values == {2.0}

    # Another kind (two CPUs a trial) ends them first; without keep_workers its own end
    # with it.
    third, values = pids_and_values(3.0, resources={"cpu": 2})
    assert not third & first and values == {3.0}
    assert gone(first) and gone(third)

    fourth, _ = pids_and_values(4.0, keep_workers=60)
    assert hpo.release_workers() == 2
    assert gone(fourth)
    assert hpo.release_workers() == 0


def test_a_sweep_with_no_room_says_it_waits_and_a_submitted_one_leaves_room(
    ray_cluster, tracking_uri, client, tmp_path, monkeypatch, capsys
):
    import threading

    from hpo.sweep import loop

    monkeypatch.setattr(loop, "WAITING_NOTICE_SECONDS", 2.0)

    @ray_cluster.remote(num_cpus=1)
    class Holder:  # what another sweep's worker holds
        def ping(self):
            return True

    holders = [Holder.remote() for _ in range(2)]
    ray_cluster.get([h.ping.remote() for h in holders])  # both CPUs held
    release = threading.Timer(8.0, lambda: [ray_cluster.kill(h) for h in holders])
    release.start()
    try:
        result, _ = sweep(tracking_uri, tmp_path / "waits")
    finally:
        release.join()
    said = capsys.readouterr().err
    assert (
        "hpo: waiting for resources: none of the 2 workers (cpu=1 each) has started after "
        "2 s; free on the cluster: " in said
    )
    assert "hpo: the workers are starting" in said
    assert client.get_run(result.sweep_id).data.tags["hpo.waiting"] == ""  # the wait is over

    # A submitted sweep's driver takes by default what is free, not the whole cluster.
    holder = Holder.remote()
    ray_cluster.get(holder.ping.remote())
    monkeypatch.setenv("HPO_JOB_ID", "hpo-leaves-room")
    try:
        result, _ = sweep(tracking_uri, tmp_path / "submitted")
    finally:
        ray_cluster.kill(holder)
    assert client.get_run(result.sweep_id).data.params["workers"] == "1"
