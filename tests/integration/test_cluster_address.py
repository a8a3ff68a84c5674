"""`hpo run --address` against a Ray cluster started on its own with `ray start --head`, and
the one-line errors at the edges of connecting to Ray."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port

pytestmark = pytest.mark.integration

EXPERIMENT = textwrap.dedent(
    """
    from pathlib import Path
    from hpo.space import Float

    space = {"x": Float(0.0, 1.0), "out": OUT}

    def objective(params, report):
        import ray
        address = ray.get_runtime_context().gcs_address
        Path(params["out"], f"{params['x']}.txt").write_text(address)
        report(0, loss=params["x"])
        return params["x"]
    """
)


@contextlib.contextmanager
def _unanswered_port() -> Iterator[int]:
    """A port held bound and never listening: nothing answers there, and no other process
    (a Ray agent of another test picks free ports too) can take it meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


# Ray's record of the versions a cluster runs (read by Ray when a driver joins), rewritten
# as if the cluster ran another Ray: `python -c CODE ADDRESS VERSION` prints the old record.
REWRITE_VERSION = textwrap.dedent(
    """
    import json, sys
    from ray._raylet import GcsClient
    key, space = b"CLUSTER_METADATA", b"cluster"
    gcs = GcsClient(address=sys.argv[1])
    old = gcs.internal_kv_get(key, namespace=space)
    record = {**json.loads(old), "ray_version": sys.argv[2]}
    gcs.internal_kv_put(key, json.dumps(record).encode(), True, namespace=space)
    print(old.decode())
    """
)


DASHBOARD_PORT = free_port()  # the head's dashboard: where sweeps are submitted


def _start_head(ray_dir: str, port: int, env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=4",  # logical: two sweeps of two workers side by side
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={DASHBOARD_PORT}",
            # Ports of its own: other Rays on this machine (the suite's) may hold defaults.
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            "--block",
            f"--temp-dir={ray_dir}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _takes_jobs(head: subprocess.Popen, env: dict, seconds: float) -> bool:
    """Whether the head is up and its job API answers within ``seconds`` (its agents start
    last; on a loaded machine one may fail, and the raylet then exits)."""
    probe = (
        "import sys; from ray.job_submission import JobSubmissionClient as C; "
        "C(sys.argv[1]).list_jobs()"
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and head.poll() is None:
        done = subprocess.run(
            [sys.executable, "-c", probe, f"http://127.0.0.1:{DASHBOARD_PORT}"],
            env=env,
            capture_output=True,
            timeout=60,
        )
        if done.returncode == 0:
            time.sleep(3)  # still alive a moment later: its agents are up
            return head.poll() is None
        time.sleep(2)
    return False


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A Ray head started with `ray start`, its dashboard on: (its address, the environment
    to reach it). Started again (up to 3 times) if it does not come up whole."""
    tmp_path = tmp_path_factory.mktemp("head")
    env = dict(os.environ, RAY_AUTH_MODE="token")
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    log = open(tmp_path / "head.log", "w")  # noqa: SIM115 - closed in finally
    started: list[tuple[subprocess.Popen, str]] = []
    try:
        for _ in range(3):
            # Ray's Unix sockets live under --temp-dir, whose path must stay short.
            ray_dir, port = tempfile.mkdtemp(prefix="ray-", dir="/tmp"), free_port()
            started.append((_start_head(ray_dir, port, env, log), ray_dir))
            if _takes_jobs(started[-1][0], env, seconds=120):
                break
            os.killpg(started[-1][0].pid, signal.SIGKILL)
            started[-1][0].wait(timeout=60)
        else:
            pytest.fail(f"the Ray head did not come up in 3 attempts: {tmp_path / 'head.log'}")
        yield f"127.0.0.1:{port}", env
    finally:
        for process, ray_dir in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the whole head (SIGTERM takes 30 s)
            process.wait(timeout=60)
            shutil.rmtree(ray_dir, ignore_errors=True)
        log.close()


def hpo_command(tmp_path, env, *args, timeout=240):
    """`hpo ARGS` run in ``tmp_path``, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "hpo.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def hpo(tmp_path, env, *args, timeout=240):
    """A sweep's command (`hpo run ...`) without its progress bar."""
    return hpo_command(tmp_path, env, *args, "--no-progress", timeout=timeout)


def test_trials_run_on_the_cluster_at_the_address(tmp_path, head):
    address, env = head
    out = tmp_path / "seen"
    out.mkdir()
    (tmp_path / "remote.py").write_text(EXPERIMENT.replace("OUT", repr(str(out))))
    done = None
    for _ in range(3):  # the head may still be starting
        done = hpo(tmp_path, env, "run", "remote.py", "--trials", "4", "--address", address)
        if done.returncode == 0:
            break
        time.sleep(5)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 trials, 4 complete" in done.stdout
    # The GCS reports the machine's address, not loopback; its port is this cluster's.
    seen_ports = {p.read_text().rsplit(":", 1)[1] for p in out.iterdir()}
    assert seen_ports == {address.rsplit(":", 1)[1]}


def one_line_error(done) -> str:
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    [line] = done.stderr.strip().splitlines()
    return line


def test_an_address_nobody_answers_at_a_web_server_a_wrong_token_and_another_ray_version(
    tmp_path, head
):
    address, env = head
    (tmp_path / "remote.py").write_text(EXPERIMENT.replace("OUT", repr(str(tmp_path))))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = ["run", "remote.py", "--trials", "1", "--tracking-uri", uri]
    with _unanswered_port() as port:
        nobody = f"127.0.0.1:{port}"
        line = one_line_error(hpo(tmp_path, env, *run, "--address", nobody))
    assert line.startswith(f"hpo: error: the Ray cluster at {nobody} does not answer")
    assert "ray start --head" in line

    # A web server (the dashboard's port, a classic slip) or an HTTP address: Ray would
    # wait for a GCS there for minutes.
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        dashboard = f"127.0.0.1:{web.server_address[1]}"
        line = one_line_error(hpo(tmp_path, env, *run, "--address", dashboard))
    finally:
        web.shutdown()
        web.server_close()
    assert line.startswith(f"hpo: error: {dashboard} is a web server (the Ray dashboard's port?)")
    line = one_line_error(hpo(tmp_path, env, *run, "--address", f"http://{dashboard}"))
    assert line.startswith(f"hpo: error: http://{dashboard} is an HTTP address")
    assert "6379 by default" in line

    wrong = {**env, "RAY_AUTH_TOKEN": "not-the-token-" * 4}
    line = one_line_error(hpo(tmp_path, wrong, *run, "--address", address))
    assert line.startswith(
        f"hpo: error: the Ray cluster at {address} refused this machine's token (the one in "
        "RAY_AUTH_TOKEN): set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH, or put the cluster's "
        "token in "
    ) and line.endswith("auth_token (`ray get-auth-token` on the head prints it)")

    rewrite = [sys.executable, "-c", REWRITE_VERSION, address]
    old = subprocess.run([*rewrite, "2.0.0"], env=env, capture_output=True, text=True)
    assert old.returncode == 0, old.stderr[-2000:]
    try:
        line = one_line_error(hpo(tmp_path, env, *run, "--address", address))
    finally:
        restored = json.loads(old.stdout)["ray_version"]
        subprocess.run([*rewrite, restored], env=env, capture_output=True, check=True)
    import ray

    assert line.startswith(f"hpo: error: the Ray cluster at {address} runs Ray 2.0.0 on")
    assert f"this machine Ray {ray.__version__} on" in line
    assert not (tmp_path / "mlflow.db").exists(), "a run was created"


def test_a_local_cluster_that_fails_to_start_names_rays_log(tmp_path, hpo_env):
    (tmp_path / "remote.py").write_text(EXPERIMENT.replace("OUT", repr(str(tmp_path))))
    ray_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    with socket.socket() as taken:  # the port Ray's GCS is told to take is held here
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        env = {**hpo_env, "RAY_TMPDIR": ray_dir, "RAY_GCS_SERVER_PORT": str(taken.getsockname()[1])}
        # Ray's client waits 5 s to connect to the GCS before its own 30 s (not settable
        # without Ray then exiting on its own, without hpo's line): the first cut to 1 s.
        env["RAY_gcs_rpc_server_connect_timeout_s"] = "1"
        try:
            line = one_line_error(hpo(tmp_path, env, "run", "remote.py", "--trials", "1"))
            assert line.startswith(
                "hpo: error: the local Ray cluster did not start (Failed to start GCS"
            )
            log = Path(line.rsplit("Ray's log: ", 1)[1])
            assert log.name == "gcs_server.err" and log.is_relative_to(ray_dir)
            assert "Failed to start the grpc server" in log.read_text()
        finally:
            shutil.rmtree(ray_dir, ignore_errors=True)


# -- submitted sweeps: the driver runs on the cluster as a Ray job --------------------------

QUICK = textwrap.dedent(
    """
    import time
    from hpo.space import Float

    space = {"x": Float(0.0, 1.0)}

    def objective(params, report):
        for step in range(3):
            report(step, loss=params["x"] + step)
            time.sleep(HOLD)
        return params["x"]
    """
)


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    from servers import MlflowServer

    folder = tmp_path_factory.mktemp("server")
    server = MlflowServer(f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _wait_for_state(tmp_path, env, dashboard, job, states, seconds=180):
    said = ""
    for _ in range(seconds):
        said = hpo_command(tmp_path, env, "status", job, "--address", dashboard).stdout
        if any(f"job {job}: {state}" in said for state in states):
            return said
        time.sleep(1)
    raise AssertionError(f"job {job} did not reach {states}: {said}")


def test_what_a_submission_refuses_in_one_line(tmp_path, head, tracking_server):
    _, env = head
    dashboard = f"http://127.0.0.1:{DASHBOARD_PORT}"
    (tmp_path / "quick.py").write_text(QUICK.replace("HOLD", "0.0"))
    with _unanswered_port() as port:
        cases = [
            (
                ["quick.py", "--address", dashboard, "--tracking-uri", "sqlite:///mlflow.db"],
                env,
                "cannot reach the tracking store 'sqlite:///mlflow.db' on this machine",
            ),
            (
                ["missing.py", "--address", dashboard, "--tracking-uri", tracking_server],
                env,
                "experiment file not found",
            ),
            (
                ["quick.py", "--address", head[0], "--tracking-uri", tracking_server],
                env,
                "a sweep is submitted to the Ray dashboard's address, http://HEAD:8265",
            ),
            (
                [
                    "quick.py",
                    "--address",
                    f"http://127.0.0.1:{port}",
                    "--tracking-uri",
                    tracking_server,
                ],
                env,
                "no Ray dashboard answered at",
            ),
            (
                ["quick.py", "--address", dashboard, "--tracking-uri", tracking_server],
                {**env, "RAY_AUTH_TOKEN": "not-the-token-" * 4},
                "refused this machine's token",
            ),
        ]
        for args, case_env, says in cases:
            done = hpo_command(tmp_path, case_env, "submit", *args)
            assert done.returncode == 2, (args, done.stdout, done.stderr[-2000:])
            [line] = done.stderr.strip().splitlines()
            assert line.startswith("hpo: error: ") and says in line, (args, line)


def _trial_spans(store, sweep):
    """(start, end) of each of the sweep's trial runs, in seconds."""
    runs = store.search_runs(
        [sweep.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{sweep.info.run_id}'",
    )
    return [(r.info.start_time / 1e3, r.info.end_time / 1e3) for r in runs]


def _most_at_once(spans):
    """The most spans that overlap at one moment."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in edges:  # an end sorts before a start at the same moment
        running += change
        most = max(most, running)
    return most


def test_two_sweeps_submitted_at_once_run_side_by_side(tmp_path, head, tracking_server):
    from mlflow.tracking import MlflowClient

    _, env = head
    dashboard = f"http://127.0.0.1:{DASHBOARD_PORT}"
    (tmp_path / "side.py").write_text(QUICK.replace("HOLD", "1.0"))
    # Both at once: each `hpo submit` returns once its driver has made the sweep's run.
    submits = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hpo.cli",
                "submit",
                "side.py",
                "--address",
                dashboard,
                "--tracking-uri",
                tracking_server,
                "--trials",
                "8",
                "--workers",
                "2",
                "--experiment-name",
                name,
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("left", "right")
    }
    jobs = {}
    for name, submit in submits.items():
        out, err = submit.communicate(timeout=240)
        assert submit.returncode == 0, out + err[-3000:]
        jobs[name] = out.split("submitted job ")[1].split()[0]
    store = MlflowClient(tracking_server)
    spans = {}
    for name, job in jobs.items():
        said = _wait_for_state(tmp_path, env, dashboard, job, ["SUCCEEDED", "FAILED"])
        assert f"job {job}: SUCCEEDED" in said and "8 complete" in said, said
        [sweep] = store.search_runs(
            [store.get_experiment_by_name(name).experiment_id],
            filter_string=f"tags.`hpo.job_id` = '{job}'",
        )
        assert "hpo.waiting" not in sweep.data.tags  # neither waited for the other's CPUs
        spans[name] = _trial_spans(store, sweep)
        assert _most_at_once(spans[name]) == 2  # its two workers, busy together
    # Side by side: trials of both sweeps ran at the same moments, four at once.
    assert _most_at_once(spans["left"] + spans["right"]) >= 3


HANDLE = textwrap.dedent(
    """
    import sys
    import hpo

    sweep = hpo.submit(sys.argv[1], address=sys.argv[2], tracking_uri=sys.argv[3],
                       args=["--trials", "3", "--experiment-name", "handle"])
    state = sweep.wait(timeout=180)
    result = sweep.result()
    print(state, sweep.status(), result.sweep_id == sweep.sweep_id, result.n_complete)
    print("3 trials, 3 complete" in sweep.logs())
    """
)


def test_hpo_submit_returns_a_handle_to_follow_the_sweep_by(tmp_path, head, tracking_server):
    _, env = head
    (tmp_path / "quick.py").write_text(QUICK.replace("HOLD", "0.0"))
    dashboard = f"http://127.0.0.1:{DASHBOARD_PORT}"
    done = subprocess.run(
        [sys.executable, "-c", HANDLE, "quick.py", dashboard, tracking_server],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["SUCCEEDED", "SUCCEEDED", "True", "3", "True"]
