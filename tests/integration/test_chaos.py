"""Chaos: killed workers, a killed driver then `hpo resume`, a hanging trial, failing objectives.

Each test checks the invariants afterwards, with MlflowClient: exactly one terminal child run
per trial number, the budget met, no run left RUNNING, every reported (metric, step) present
once, and no worker process of the sweep still running.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import objectives
import pytest
from conftest import by_trial, child_runs
from invariants import (
    check_invariants,
    cluster_workers,
    is_raylet,
    processes,
    wait_gone,
    worker_pids,
)
from ray import cloudpickle

import hpo
from hpo.space import Choice, Float, Int

cloudpickle.register_pickle_by_value(objectives)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_three_workers_sigkilled_during_a_30_trial_sweep(ray_cluster, tracking_uri, client):
    kills = []

    def killer():
        rng = random.Random(0)
        while len(kills) < 3:
            time.sleep(1.5)
            pids = cluster_workers()
            if pids:
                victim = rng.choice(pids)
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = hpo.run(
        {"x": Float(0.0, 1.0)},
        objectives.slow_curve,
        n_trials=30,
        workers=2,
        seed=0,
        max_retries=2,
        tracking_uri=tracking_uri,
        experiment_name="chaos-workers",
        progress=False,
    )
    thread.join(timeout=60)
    assert len(kills) == 3
    runs = check_invariants(
        client, result.sweep_id, 30, curve=("loss", range(20)), workers=cluster_workers
    )
    retried = [r for r in runs.values() if int(r.data.tags["hpo.attempt"]) > 1]
    assert retried, "a killed worker's trial is retried in the same run"
    assert all("hpo.attempt_1_error" in r.data.tags for r in retried)


DRIVER_EXPERIMENT = textwrap.dedent(
    """
    import time
    from hpo.space import Float

    space = {"x": Float(0.0, 1.0)}

    def objective(params, report):
        for step in range(10):
            time.sleep(0.08)
            report(step, loss=params["x"] + 1.0 / (step + 1))
        return params["x"]
    """
)


def test_the_driver_sigkilled_halfway_then_hpo_resume(tmp_path, hpo_env, client, tracking_uri):
    (tmp_path / "chaos.py").write_text(DRIVER_EXPERIMENT)
    common = ["--tracking-uri", tracking_uri, "--no-progress"]
    run = [sys.executable, "-m", "hpo.cli", "run", "chaos.py", "--trials", "16", "--seed", "1"]
    proc = subprocess.Popen(
        run + ["--workers", "2", *common],
        cwd=tmp_path,
        env=hpo_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, finished, sweep_id = time.monotonic() + 180, [], None
    while time.monotonic() < deadline and len(finished) < 8:
        time.sleep(0.3)
        experiment = client.get_experiment_by_name("chaos")
        if experiment is None:
            continue
        runs = client.search_runs([experiment.experiment_id])
        finished = [r for r in runs if r.data.tags.get("hpo.state") == "COMPLETE"]
        sweep_id = next((r.info.run_id for r in runs if r.data.tags.get("hpo.sweep")), None)
    assert len(finished) >= 8, "the sweep did not get halfway in three minutes"
    [raylet] = [p for p, pp, args in processes() if pp == proc.pid and is_raylet(args)]
    killed_workers = worker_pids(raylet)
    assert killed_workers
    proc.kill()  # SIGKILL: no clean-up of any kind
    proc.communicate(timeout=60)
    before = by_trial(child_runs(client, sweep_id))
    lost = [n for n, r in before.items() if r.data.tags["hpo.state"] == "RUNNING"]
    done = {n: r.data.metrics["objective"] for n, r in before.items() if n not in lost}
    assert client.get_run(sweep_id).info.status == "RUNNING"

    resumed = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "resume", sweep_id, "--workers", "2", *common],
        cwd=tmp_path,
        env=hpo_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    # The dead driver's workers went with it (their node is the driver's own local cluster).
    def still_there():
        alive = {p for p, _, _ in processes()}
        return [p for p in killed_workers if p in alive]

    assert wait_gone(still_there) == []
    runs = check_invariants(client, sweep_id, 16, curve=("loss", range(10)))
    for number, value in done.items():  # finished trials kept, not run again
        assert runs[number].data.metrics["objective"] == value
        assert runs[number].data.tags["hpo.attempt"] == "1"
    for number in lost:  # the dead driver's trials, run again in their own runs
        tags = runs[number].data.tags
        assert tags["hpo.attempt"] == "2" and tags["hpo.attempt_1_error"] == "driver lost"
        assert runs[number].info.run_id == before[number].info.run_id
    tags = client.get_run(sweep_id).data.tags
    assert tags["hpo.n_complete"] == "16" and tags["hpo.resumed"] == "1"
    assert float(tags["hpo.best_value"]) == min(r.data.metrics["objective"] for r in runs.values())


def test_a_sweep_stopped_by_its_timeout_is_resumed_to_its_budget(
    ray_cluster, tracking_uri, client, tmp_path
):
    space = {"x": Float(0.0, 1.0)}
    queued = [{"x": x / 20} for x in range(1, 14, 2)]  # 7: more than 2.5 s can start
    # Trials past the first are held until the timeout has cancelled them: with plain
    # one-second trials the timeout could fall just as the running ones finished.
    hold = tmp_path / "hold"
    hold.touch()
    objective = functools.partial(objectives.one_second_unless_held, hold=str(hold))
    first = hpo.run(
        space,
        objective,
        n_trials=8,
        workers=2,
        seed=5,
        strategy="tpe",
        enqueue=queued,
        timeout=2.5,
        tracking_uri=tracking_uri,
        experiment_name="timeout-resume",
        progress=False,
    )
    assert first.timed_out and len(first.trials) < 7  # so the resume starts queued ones
    cancelled = [t.number for t in first.trials if "timeout" in (t.error or "")]
    assert cancelled
    hold.unlink()
    second = hpo.resume(first.sweep_id, space, objective, tracking_uri=tracking_uri, progress=False)
    assert not second.timed_out and second.n_complete == 8
    runs = check_invariants(
        client, first.sweep_id, 8, curve=("loss", range(10)), workers=cluster_workers
    )
    # The queued configurations ran first, in order, those the timeout kept from starting
    # after the resume; then the strategy's own.
    for number, run in runs.items():
        enqueued = run.data.tags.get("hpo.enqueued") == "true"
        assert enqueued == (number < 7)
        if enqueued:
            assert float(run.data.params["x"]) == queued[number]["x"]
    for number in cancelled:
        tags = runs[number].data.tags
        assert tags["hpo.state"] == "COMPLETE" and "hpo.error" not in tags
        assert "timeout of 2.5 s was reached" in tags["hpo.attempt_1_error"]
        assert (
            tags["hpo.attempt"] == "2"
            and "hpo.timed_out" not in client.get_run(first.sweep_id).data.tags
        )
    with pytest.raises(ValueError, match="already ran its 8 trials; there is nothing to resume"):
        hpo.resume(first.sweep_id, space, objectives.one_second, tracking_uri=tracking_uri)
    with pytest.raises(ValueError, match="the space given differs"):
        hpo.resume(
            first.sweep_id, {"x": Float(0.0, 2.0)}, objectives.one_second, tracking_uri=tracking_uri
        )


def test_resume_closes_a_finished_trials_run_whose_closing_was_cut_off(
    ray_cluster, tracking_uri, client
):
    # What a server that went away between a trial's last log_batch (hpo.state COMPLETE,
    # its objective) and its set_terminated leaves behind, then the sweep stopped.
    space = {"x": Float(0.0, 1.0)}
    first = hpo.run(
        space,
        objectives.quadratic,
        n_trials=3,
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="chaos-cut-close",
        progress=False,
    )
    cut = by_trial(child_runs(client, first.sweep_id))[1]
    client.update_run(cut.info.run_id, status="RUNNING")
    client.update_run(first.sweep_id, status="KILLED")

    result = hpo.resume(first.sweep_id, space, objectives.quadratic, tracking_uri=tracking_uri)
    assert result.n_complete == 3
    run = client.get_run(cut.info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["hpo.attempt"] == "1"  # not rerun
    check_invariants(client, first.sweep_id, 3, workers=cluster_workers)


def test_a_hanging_trial_with_a_trial_timeout(ray_cluster, tracking_uri, client):
    # 4 s: with 1.5 s, a trial that does not hang (one report, then return) once timed out
    # on the loaded CI machine.
    space = {"x": Float(0.0, 1.0, grid=3), "hang": Choice([False, True])}
    result = hpo.run(
        space,
        objectives.hangs_when_told,
        strategy="grid",
        workers=2,
        trial_timeout=4,
        tracking_uri=tracking_uri,
        experiment_name="chaos-hang",
        progress=False,
    )
    assert result.n_complete == 3 and result.n_failed == 3
    assert {t.error for t in result.trials if t.params["hang"]} == {"timeout after 4 s"}
    check_invariants(client, result.sweep_id, 6, workers=cluster_workers)


def test_the_trial_clock_starts_once_the_worker_is_up(ray_cluster, tracking_uri, client):
    # The workers take 6 s to start (their data unpickles slowly); the trials take no time.
    # A trial timeout of 4 s counts from when a trial runs, not from the worker's start
    # (4 s: a trial's round trip took over 2 s once on the loaded CI machine).
    result = hpo.run(
        {"x": Float(0.0, 1.0)},
        objectives.quick_with_data,
        n_trials=4,
        workers=2,
        trial_timeout=4.0,
        data=objectives.SlowToLoad(6.0),
        tracking_uri=tracking_uri,
        experiment_name="chaos-slow-start",
        progress=False,
    )
    assert result.n_complete == 4, [t.error for t in result.trials]
    check_invariants(client, result.sweep_id, 4, workers=cluster_workers)


def test_objectives_that_raise_return_nan_or_diverge(ray_cluster, tracking_uri, client):
    from sklearn.datasets import load_iris

    space = {"i": Int(0, 19)}
    result = hpo.run(
        space,
        objectives.chaotic,
        strategy="grid",
        workers=2,
        data=load_iris(return_X_y=True),
        tracking_uri=tracking_uri,
        experiment_name="chaos-failures",
        progress=False,
    )
    runs = check_invariants(client, result.sweep_id, 20, workers=cluster_workers)
    errors = {t.params["i"]: runs[t.number].data.tags.get("hpo.error", "") for t in result.trials}
    assert all("fails on purpose" in errors[i] for i in range(0, 20, 5))
    assert "not a finite number" in errors[7] and "DivergenceError" in errors[11]
    assert result.n_failed == 6 and result.n_complete == 14


def test_a_sweep_its_patience_stopped_resumes_only_with_a_larger_budget(
    ray_cluster, tracking_uri, client
):
    space = {"x": Float(0.0, 1.0)}
    first = hpo.run(
        space,
        objectives.quadratic,
        n_trials=40,
        workers=2,
        seed=1,
        patience=3,
        tracking_uri=tracking_uri,
        experiment_name="patience",
        progress=False,
    )
    ran = len(first.trials)
    assert first.stopped_by.startswith("patience: no improvement in the last") and ran < 40
    assert first.n_complete == ran  # the trial running when the rule was met finished
    assert client.get_run(first.sweep_id).data.tags["hpo.stopped_by"] == first.stopped_by
    with pytest.raises(ValueError, match=r"stopped early by its rule \(patience: .*larger budget"):
        hpo.resume(first.sweep_id, space, objectives.quadratic, tracking_uri=tracking_uri)
    second = hpo.resume(
        first.sweep_id,
        space,
        objectives.quadratic,
        tracking_uri=tracking_uri,
        n_trials=ran + 3,
        progress=False,
    )
    assert len(second.trials) == ran + 3 and second.stopped_by is None  # the rule is not re-applied
    check_invariants(client, first.sweep_id, ran + 3, curve=("loss", range(5)))
    assert "hpo.stopped_by" not in client.get_run(first.sweep_id).data.tags


def test_a_trial_killed_twice_goes_on_from_its_checkpoint_each_time(
    ray_cluster, tracking_uri, client, tmp_path
):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    digits = train_test_split(X / 16.0, y, test_size=0.3, random_state=0)
    log = tmp_path / "epochs"
    params = {"every": 3, "kill_at": [7, 14], "log": str(log)}
    result = hpo.run(
        params,  # constants only: one configuration
        objectives.checkpointed,
        n_trials=1,
        workers=1,
        max_retries=2,
        data=digits,
        tracking_uri=tracking_uri,
        experiment_name="checkpoints",
        progress=False,
    )
    [trial] = result.trials
    assert trial.state.value == "COMPLETE" and trial.attempts == 3  # killed twice, then done
    epochs = [int(line) for line in log.read_text().split()]
    # Killed at 7 (checkpoint at 6): 7 again; killed at 14 (checkpoint at 12): 13, 14 again.
    assert epochs == [*range(1, 8), *range(7, 15), *range(13, 21)]
    assert len(epochs) - 20 <= 2 * params["every"]  # at most one interval repeated per loss
    [run] = child_runs(client, result.sweep_id)
    for metric in ("train_loss", "val_loss", "val_accuracy"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
        assert sorted(steps) == list(range(1, 21)), metric  # every step logged once, no gap
    # The interrupted training went on exactly: the same score as one uninterrupted fit.
    from models import MLPClassifier

    X_train, X_val, y_train, y_val = digits
    whole = MLPClassifier((32,), solver="adam", max_iter=20, n_iter_no_change=20, random_state=0)
    assert trial.value == whole.fit(X_train, y_train).score(X_val, y_val)
    assert "checkpoint.pkl" in {a.path for a in client.list_artifacts(run.info.run_id)}
