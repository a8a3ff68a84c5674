"""The sweep invariants, checked with MlflowClient after a sweep, and the process helpers
the chaos tests need (which trial workers of which Ray node are alive)."""

from __future__ import annotations

import subprocess
import time

from conftest import by_trial, child_runs

TERMINAL = {"COMPLETE", "FAILED", "PRUNED"}


def processes() -> list[tuple[int, int, str]]:
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True
    ).stdout
    return [
        (int(p), int(pp), args) for p, pp, args in (ln.split(None, 2) for ln in out.splitlines())
    ]


def raylet_of(node_id: str) -> int:
    [pid] = [p for p, _, args in processes() if is_raylet(args) and f"--node_id={node_id}" in args]
    return pid


def is_raylet(args: str) -> bool:
    return args.split()[0].endswith("/raylet")


def worker_pids(raylet: int) -> list[int]:
    """The trial workers of one Ray node (other clusters on the machine are not ours)."""
    return [p for p, pp, args in processes() if pp == raylet and "ray::TrialWorker" in args]


def cluster_workers() -> list[int]:
    import ray

    return worker_pids(raylet_of(ray.get_runtime_context().get_node_id()))


def wait_gone(pids_now, seconds=20.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := pids_now()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def check_invariants(client, sweep_id, budget, *, curve=None, workers=None):
    """The sweep's invariants; ``curve`` = (metric, steps) every COMPLETE trial reported."""
    parent = client.get_run(sweep_id)
    assert parent.info.status == "FINISHED"
    runs = child_runs(client, sweep_id)
    numbers = sorted(int(r.data.tags["hpo.trial"]) for r in runs)
    assert numbers == list(range(budget)), "one child run per trial number, budget met"
    counts = {state: 0 for state in TERMINAL}
    for run in runs:
        state = run.data.tags["hpo.state"]
        assert state in TERMINAL and run.info.status != "RUNNING", run.data.tags
        counts[state] += 1
        for key in run.data.metrics:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(steps) == len(set(steps)), f"{key} logged twice at a step"
        if curve is not None and state == "COMPLETE":
            metric, expected = curve
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))
            assert steps == list(expected)
    tags = parent.data.tags
    assert [int(tags[f"hpo.n_{s.lower()}"]) for s in sorted(TERMINAL)] == [
        counts[s] for s in sorted(TERMINAL)
    ]
    if workers is not None:
        assert wait_gone(workers) == [], "a worker of the sweep is still running"
    return by_trial(runs)
