"""How long a submitted sweep takes to start: `hpo submit` against `ray job submit` of the
same entrypoint by hand, on a Ray head started here with `ray start --head` (2 CPUs, its
dashboard on) and an `mlflow server` on sqlite, both on this machine.

For each way, alternating, ``--repeats`` times: the seconds from the command's start to its
return, and to the first trial running (the objective's first step reports `time.time()`;
one machine, one clock). `hpo submit` returns once the driver has made the sweep's run, to
print the sweep's id and link; `ray job submit --no-wait` returns once Ray has the job.

    .venv/bin/python benchmarks/submit_latency.py [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import _report  # noqa: E402
from servers import MlflowServer, free_port  # noqa: E402

EXPERIMENT = """
import time
from hpo.space import Float

space = {"x": Float(0.0, 1.0)}
strategy = "random"


def objective(params, report):
    report(0, began=time.time())
    return params["x"]
"""
BIN = Path(sys.executable).parent


def start_head(ray_dir: str, dashboard: int, env: dict) -> subprocess.Popen:
    command = [str(BIN / "ray"), "start", "--head", f"--port={free_port()}"]
    command += ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=true"]
    command += ["--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}"]
    command += [f"--dashboard-agent-listen-port={free_port()}"]
    command += [f"--dashboard-agent-grpc-port={free_port()}"]
    command += [f"--metrics-export-port={free_port()}", "--block", f"--temp-dir={ray_dir}"]
    head = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    probe = "import sys; from ray.job_submission import JobSubmissionClient as C; "
    probe += "C(sys.argv[1]).list_jobs()"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{dashboard}"
        answered = subprocess.run(
            [sys.executable, "-c", probe, url], env=env, capture_output=True
        ).returncode
        if answered == 0:
            return head
        time.sleep(2)
    raise RuntimeError("the Ray head's job API did not answer within 180 s")


def first_trial_began(uri: str, experiment: str, seconds: float = 180) -> float:
    """The moment the experiment's first trial reported its first step."""
    from mlflow.tracking import MlflowClient

    store = MlflowClient(uri)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = store.get_experiment_by_name(experiment)
        runs = store.search_runs([found.experiment_id]) if found else []
        began = [r.data.metrics["began"] for r in runs if "began" in r.data.metrics]
        if began:
            return min(began)
        time.sleep(0.2)
    raise RuntimeError(f"no trial of {experiment} began within {seconds} s")


def wait_job(dashboard: str, job: str, env: dict) -> None:
    """Until the job has ended, so that runs do not overlap."""
    for _ in range(300):
        said = subprocess.run(
            [str(BIN / "ray"), "job", "status", "--address", dashboard, job],
            env=env,
            capture_output=True,
            text=True,
        ).stdout.upper()
        if any(end in said for end in ("SUCCEEDED", "FAILED", "STOPPED")):
            return
        time.sleep(1)
    raise RuntimeError(f"job {job} did not end")


def one(way: str, n: int, folder: Path, dashboard: str, uri: str, env: dict) -> tuple:
    experiment = f"{way}-{n}"
    sweep = ["--trials", "2", "--workers", "1", "--experiment-name", experiment]
    if way == "hpo submit":
        command = [str(BIN / "hpo"), "submit", str(folder / "latency.py"), *sweep]
        command += ["--address", dashboard, "--tracking-uri", uri]
    else:  # the same driver command, submitted by hand
        job = ["hpo", "run", "latency.py", *sweep, "--tracking-uri", uri, "--no-progress"]
        command = [str(BIN / "ray"), "job", "submit", "--address", dashboard, "--no-wait"]
        command += ["--working-dir", str(folder), "--", *job]
    began = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=folder)
    returned = time.time() - began
    if done.returncode != 0:
        raise RuntimeError(f"{way} failed: {done.stdout}{done.stderr[-2000:]}")
    running = first_trial_began(uri, experiment) - began
    text = done.stdout + done.stderr
    job_id = text.split("submitted job ")[1].split()[0] if way == "hpo submit" else None
    if job_id is None:
        job_id = text.split("Job '")[1].split("'")[0]
    wait_job(dashboard, job_id, env)
    return returned, running


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hpo-bench-submit-"))
    folder = work / "experiment"
    folder.mkdir()
    (folder / "latency.py").write_text(EXPERIMENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = os.urandom(16).hex()
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    server = MlflowServer(f"sqlite:///{work / 'mlflow.db'}", work / "artifacts")
    ray_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Unix sockets: a short path
    dashboard_port = free_port()
    head = None
    try:
        server.start()
        head = start_head(ray_dir, dashboard_port, env)
        dashboard = f"http://127.0.0.1:{dashboard_port}"
        times: dict[str, list[tuple[float, float]]] = {"hpo submit": [], "ray job submit": []}
        for n in range(args.repeats):
            for way in times:
                times[way].append(one(way, n, folder, dashboard, server.url, env))
                returned, running = times[way][-1]
                print(f"{way} {n}: {returned:.2f} s to return, {running:.2f} s to a trial")
    finally:
        if head is not None:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=60)
        server.stop()
        shutil.rmtree(ray_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    rows = [["way", "returns (median s)", "first trial running (median s)", "runs"]]
    for way, measured in times.items():
        returned = statistics.median(t for t, _ in measured)
        running = statistics.median(r for _, r in measured)
        rows.append([f"`{way}`", f"{returned:.1f}", f"{running:.1f}", str(len(measured))])
    ours, theirs = (statistics.median(r for _, r in times[w]) for w in times)
    body = (
        "## Submitting a sweep: `hpo submit` against `ray job submit`\n\n"
        f"`benchmarks/submit_latency.py`, {_report.machine()}: a Ray head (`ray start --head`, "
        "2 CPUs, token authentication) and an `mlflow server` on sqlite, on this machine. "
        "The same driver (`hpo run` of a 2-trial experiment, one worker) submitted by "
        "`hpo submit` and by hand with `ray job submit --no-wait --working-dir`, alternating, "
        f"{args.repeats} times each. *Returns*: from the command's start to its exit. *First "
        "trial running*: to the first step the first trial reports.\n\n"
        f"{_report.table(rows)}\n\n"
        f"To the first trial running, `hpo submit` takes {ours / theirs:.2f}x the time of "
        "`ray job submit`: both wait on the same things (Ray's job agent starting the "
        "driver, the driver starting a worker). `hpo submit` returns later because it waits "
        "for the driver to make the sweep's run, to print the sweep's id and MLflow link "
        "(up to 20 s; without it the user has only a job id).\n"
    )
    print(body)
    if not args.no_write:
        _report.write_section("submit-latency", body)


if __name__ == "__main__":
    main()
