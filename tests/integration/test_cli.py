"""The `hpo` command end to end, each invocation starting its own local Ray cluster."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import by_trial, child_runs
from servers import free_port

from hpo.cli import exposure_warning, ui_command, ui_environment

pytestmark = pytest.mark.integration

EXPERIMENT = textwrap.dedent(
    """
    from hpo.space import Choice, Float

    direction = "maximize"
    space = {
        "lr": Float(1e-3, 1.0, log=True, grid=3),
        "act": Choice(["relu", "tanh"]),
    }

    def load_data():
        from sklearn.datasets import load_iris
        return load_iris(return_X_y=True)

    def objective(params, report, data):
        from models import MLPClassifier
        X, y = data
        model = MLPClassifier((8,), activation=params["act"], solver="sgd",
                              learning_rate_init=params["lr"], max_iter=15, n_iter_no_change=15,
                              random_state=0,
                              epoch_callback=lambda e, m: report(e, **m))
        model.fit(X, y, eval_set=(X, y))
        return model.score(X, y)
    """
)

SLOW = textwrap.dedent(
    """
    import time
    from hpo.space import Float

    space = {"x": Float(0.0, 1.0)}

    def objective(params, report):
        for step in range(600):
            report(step, loss=params["x"])
            time.sleep(0.05)
        return params["x"]
    """
)


def hpo_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpo.cli", *args]


def test_hpo_run_records_a_sweep_that_hpo_show_reads(tmp_path, hpo_env, client, tracking_uri):
    (tmp_path / "iris_grid.py").write_text(EXPERIMENT)
    (tmp_path / "queued.json").write_text('[{"lr": 1.0, "act": "tanh"}]')  # a grid point
    done = subprocess.run(
        hpo_cmd(
            "run",
            "iris_grid.py",
            "--strategy",
            "grid",
            "--workers",
            "2",
            "--tracking-uri",
            tracking_uri,
            "--enqueue",
            "queued.json",
        ),
        cwd=tmp_path,
        env=hpo_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 trials, 6 complete, 0 failed" in done.stdout
    assert "hpo ui --tracking-uri" in done.stdout
    assert "trial/s" in done.stderr or "s/trial" in done.stderr  # the progress bar ran
    # hpo's own lines only: not Ray's token notice nor MLflow's schema announcements.
    assert "Token authentication is enabled" not in done.stderr
    assert "MLflow database tables" not in done.stderr + done.stdout
    [parent] = client.search_runs(
        [client.get_experiment_by_name("iris_grid").experiment_id],
        filter_string="tags.`hpo.sweep` = 'true'",
    )
    assert parent.data.tags["hpo.strategy"] == "grid" and parent.info.status == "FINISHED"
    runs = by_trial(child_runs(client, parent.info.run_id))
    assert sorted(runs) == list(range(6))
    # The queued grid point ran first, tagged, and the grid did not run it again.
    assert runs[0].data.params == {"lr": "1.0", "act": "tanh"}
    assert [n for n, r in runs.items() if r.data.tags.get("hpo.enqueued") == "true"] == [0]
    assert len({tuple(sorted(r.data.params.items())) for r in runs.values()}) == 6
    for run in runs.values():
        assert run.info.status == "FINISHED" and set(run.data.params) == {"lr", "act"}
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == list(range(1, 16))
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "heatmap.png" in artifacts and "trials.csv" in artifacts
    heatmap = client.download_artifacts(parent.info.run_id, "heatmap.png", str(tmp_path))
    assert open(heatmap, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    shown = subprocess.run(
        hpo_cmd("show", parent.info.run_id, "--tracking-uri", tracking_uri),
        capture_output=True,
        text=True,
        env=hpo_env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "trials: 6 COMPLETE" in shown.stdout and "best 6 trials" in shown.stdout
    listed = subprocess.run(
        hpo_cmd("show", "--tracking-uri", tracking_uri),
        capture_output=True,
        text=True,
        env=hpo_env,
        timeout=120,
    )
    assert parent.info.run_id in listed.stdout and "iris_grid" in listed.stdout

    # What the MLflow UI shows: the model-training view, and a description of the sweep.
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    note = parent.data.tags["mlflow.note.content"]
    best = parent.data.tags["hpo.best_trial"]
    # It starts with links into the model-training view: the trials, and the best one's run.
    eid, best_run = experiment.experiment_id, parent.data.tags["hpo.best_run_id"]
    assert note.splitlines()[0] == (
        f"[All trials in the model-training view](#/experiments/{eid}/runs?workflowType="
        f"machine_learning) · [best trial {best}](#/experiments/{eid}/runs/{best_run}"
        "?workflowType=machine_learning)"
    )
    assert "grid, maximize the objective: 6 of 6 trials (6 complete" in note
    assert f"(trial {best})" in note and f"#/experiments/{experiment.experiment_id}/runs/" in note
    # Of tied best values, the summary and `hpo show` name the same trial.
    table = shown.stdout.split("best 6 trials:")[1].splitlines()
    assert table[2].split()[0] == best

    # The summary names the run's figures and how to open one without the UI.
    figures = [a for a in artifacts if a.endswith(".png")]
    assert f"figures in the sweep's run: {', '.join(sorted(figures))}; open one" in done.stdout
    (tmp_path / "sub").mkdir()
    opened = subprocess.run(
        hpo_cmd(
            "show", parent.info.run_id, "--open", "heatmap.png", "--tracking-uri", tracking_uri
        ),
        cwd=tmp_path / "sub",
        capture_output=True,
        text=True,
        env={**hpo_env, "BROWSER": "true"},  # the desktop's viewer: a command that does nothing
        timeout=120,
    )
    assert opened.returncode == 0, opened.stderr
    assert (tmp_path / "sub" / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(tmp_path / "sub" / "heatmap.png") in opened.stdout
    missing = subprocess.run(
        hpo_cmd("show", parent.info.run_id, "--open", "nope.png", "--tracking-uri", tracking_uri),
        capture_output=True,
        text=True,
        env=hpo_env,
        timeout=120,
    )
    assert missing.returncode == 2 and "has no figure 'nope.png'; its figures: " in missing.stderr

    as_csv = subprocess.run(
        hpo_cmd("show", parent.info.run_id, "--csv", "--tracking-uri", tracking_uri),
        capture_output=True,
        text=True,
        env=hpo_env,
        timeout=120,
    )
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [int(r["number"]) for r in rows] == list(range(6))
    for row in rows:
        run = runs[int(row["number"])]
        assert row["state"] == "COMPLETE" and float(row["value"]) == run.data.metrics["objective"]
        assert float(row["duration"]) > 0 and row["run_id"] == run.info.run_id
        assert row["params.act"] == run.data.params["act"]
        assert float(row["params.lr"]) == float(run.data.params["lr"])
        assert float(row["metrics.val_accuracy"]) == run.data.metrics["val_accuracy"]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["missing.py"], "experiment file not found: 'missing.py'"),
        (
            "space = {'x': {1, 2}}\ndef objective(p, r): return 0.0\n",
            ["exp.py"],
            r"unsupported value at 'x': {1, 2} (set)",
        ),
        (
            "from hpo.space import Float\nspace = {'x': Float(0, 1)}\n",
            ["exp.py"],
            "must define objective",
        ),
        (
            "from hpo.space import Float\nspace = {'x': Float(0, 1)}\n"
            "def objective(p, r): return 0.0\n",
            ["exp.py", "--strategy", "bayes"],
            "unknown strategy 'bayes'; choose one of: bohb, gp, grid, hyperopt-tpe, pbt, "
            "pbt-replay, random, tpe, optuna:NAME",
        ),
        (
            "from hpo.space import Float\nspace = {'x': Float(0, 1)}\n"
            "def objective(p, r, data): return 0.0\n",
            ["exp.py"],
            "defines no load_data()",
        ),
        (
            "from hpo.space import Float\nspace = {'x': Float(0, 1)}\n"
            "def objective(p, r): return 0.0\n",
            ["exp.py", "--enqueue", "queued.json"],
            "enqueue[1] {'x': 2}: 'x' must be in Float(0, 1), got 2",
        ),
        (
            "from hpo.space import Float\nspace = {'x': Float(0, 1)}\n"
            "def objective(p, r): return 0.0\n",
            ["exp.py", "--trial-resources", "cpu=2,gpu=1.5"],
            "resources: gpu above 1 must be a whole number of devices (a fraction shares one "
            "device), got 1.5",
        ),
        (
            "from hpo.space import Float\nspace = {'x': Float(0, 1)}\nresources = {'gpus': 1}\n"
            "def objective(p, r): return 0.0\n",
            ["exp.py"],
            "resources: unknown key 'gpus' (known: cpu, gpu, memory, custom;",
        ),
        (
            "from hpo.space import Float\nspace = {'x': Float(0, 1)}\n"
            "def objective(p, r): return 0.0\n",
            ["exp.py", "--max-trials-per-worker", "0"],
            "max_trials_per_worker must be an int >= 1, got 0",
        ),
        (
            None,
            [str(Path(__file__).resolve().parents[2] / "experiments" / "mnist_mlp.py")],
            "put mnist.npz (as distributed with Keras) on this machine and name it in HPO_MNIST",
        ),
    ],
)
def test_bad_input_gets_a_clear_error_and_creates_nothing(tmp_path, hpo_env, setup, args, message):
    if setup is not None:
        (tmp_path / "exp.py").write_text(setup)
    hpo_env.pop("HPO_MNIST", None)  # the MNIST experiment is run without its file
    (tmp_path / "queued.json").write_text('[{"x": 0.5}, {"x": 2}]')
    done = subprocess.run(
        hpo_cmd("run", *args),
        cwd=tmp_path,
        env=hpo_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# A process started in the background by a non-interactive shell (a CI job) inherits SIGINT
# ignored, and Python then installs no Ctrl-C handler of its own: hpo installs one. SIGTERM
# (a process manager, `hpo stop`) ends it the same way, though ray.init sets its own handler.
@pytest.mark.parametrize("inherited", ["default", "ignored", "sigterm"])
def test_ctrl_c_closes_the_sweep_cleanly(tmp_path, hpo_env, client, tracking_uri, inherited):
    (tmp_path / "slow.py").write_text(SLOW)
    proc = subprocess.Popen(
        hpo_cmd(
            "run",
            "slow.py",
            "--trials",
            "4",
            "--workers",
            "2",
            "--tracking-uri",
            tracking_uri,
            "--no-progress",
        ),
        cwd=tmp_path,
        env=hpo_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if inherited == "ignored" else None,
    )
    deadline = time.monotonic() + 120
    running = []
    while time.monotonic() < deadline and len(running) < 2:  # wait for trials with curves
        time.sleep(1.0)
        experiment = client.get_experiment_by_name("slow")
        if experiment is not None:
            running = [
                r
                for r in client.search_runs(
                    [experiment.experiment_id], filter_string="tags.`hpo.trial` != ''"
                )
                if r.data.metrics.get("loss") is not None
            ]
    assert len(running) == 2, "no trial started within two minutes"
    proc.send_signal(signal.SIGTERM if inherited == "sigterm" else signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "(interrupted)" in out
    [parent] = client.search_runs(
        [client.get_experiment_by_name("slow").experiment_id],
        filter_string="tags.`hpo.sweep` = 'true'",
    )
    assert parent.info.status == "KILLED" and parent.data.tags["hpo.interrupted"] == "true"
    children = child_runs(client, parent.info.run_id)
    assert children and all(r.info.status == "KILLED" for r in children)
    assert all(r.data.tags["hpo.state"] == "FAILED" for r in children)
    assert all(r.data.tags["hpo.error"] == "interrupted by the user (Ctrl-C)" for r in children)


def test_hpo_ui_warns_when_it_listens_beyond_loopback():
    assert exposure_warning("127.0.0.1", 5000, "sqlite:///mlflow.db") is None
    warning = exposure_warning("0.0.0.0", 5000, "sqlite:///mlflow.db")
    assert "every machine that can reach this one" in warning and "sqlite:///mlflow.db" in warning
    assert ui_command("u", "0.0.0.0", 1, "ui.example")[-2:] == ["--allowed-hosts", "ui.example"]


def test_hpo_ui_leaves_mlflows_server_jobs_off_unless_the_user_turns_them_on():
    jobs = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
    assert ui_environment({"PATH": "/bin"}) == {jobs: "false", "PATH": "/bin"}
    assert ui_environment({jobs: "true"})[jobs] == "true"


def test_hpo_ui_serves_the_store_on_localhost(tmp_path, hpo_env, client, tracking_uri):
    import psutil

    experiment = client.create_experiment("seen-in-ui")
    sweep = client.create_run(experiment, tags={"hpo.sweep": "true"}, run_name="ui-sweep")
    client.create_experiment("no-sweeps-here")
    port = free_port()
    assert ui_command(tracking_uri, "127.0.0.1", port)[3:5] == ["ui", "--backend-store-uri"]
    proc = subprocess.Popen(
        hpo_cmd("ui", "--tracking-uri", tracking_uri, "--port", str(port)),
        env=hpo_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        # The real links: each experiment with a sweep, and its latest sweep's run.
        printed = [proc.stdout.readline() for _ in range(3)]
        base = f"http://127.0.0.1:{port}"
        assert printed[1].strip() == (
            f"seen-in-ui: {base}/#/experiments/{experiment}/runs?workflowType=machine_learning"
        )
        assert printed[2].strip() == (
            f"latest sweep ui-sweep: {base}/#/experiments/{experiment}/runs/{sweep.info.run_id}"
        )
        url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10"
        body = None
        for _ in range(120):
            try:
                body = urllib.request.urlopen(url, timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None and "seen-in-ui" in body
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert "<html" in page.lower()
        # A page asked for under a foreign name (DNS rebinding) is refused.
        foreign = urllib.request.Request(url, headers={"Host": "attacker.example:80"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(foreign, timeout=5)
        assert refused.value.code == 403
        # SIGTERM to hpo alone (as `kill PID` or a process manager sends it) stops the
        # server and every worker it started: none is left serving on the port.
        server = psutil.Process(proc.pid).children(recursive=True)
        assert server, "the UI server runs as hpo's child"
        commands = [" ".join(p.cmdline()) for p in server]
        assert not [c for c in commands if "mlflow.server.jobs" in c], commands
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(server, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=5)
    finally:
        import os

        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_a_tracking_server_that_refuses_the_host_header_gets_one_line_and_no_run(
    tmp_path, hpo_env, tracking_uri, client
):
    (tmp_path / "iris_grid.py").write_text(EXPERIMENT)
    port = free_port()
    server = subprocess.Popen(  # reached as 127.0.0.1, it allows another name only
        hpo_cmd(
            "ui",
            "--tracking-uri",
            tracking_uri,
            "--port",
            str(port),
            "--allowed-hosts",
            "a.example",
        ),
        env=hpo_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except urllib.error.HTTPError:  # the guard answers: the server is up
                break
            except OSError:
                time.sleep(0.5)
        done = subprocess.run(
            hpo_cmd("run", "iris_grid.py", "--strategy", "grid", "--tracking-uri", url),
            cwd=tmp_path,
            env=hpo_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        import os

        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert done.returncode == 1, done.stderr[-2000:]
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("hpo: error:")]
    assert f"refuses the Host header '127.0.0.1:{port}'" in line and "--allowed-hosts" in line
    assert "Traceback" not in done.stderr
    # Nothing was created: no experiment of the file's, no run anywhere.
    assert client.get_experiment_by_name("iris_grid") is None
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_without_an_address_a_stale_cluster_file_is_not_waited_on(tmp_path, hpo_env):
    """Ray's current-cluster file still names a cluster that was killed: `hpo run` without
    --address starts a cluster of its own instead of waiting on the dead one."""
    import shutil
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="r-", dir="/tmp")  # Ray's sockets need a short path
    try:
        (Path(ray_tmp) / "ray").mkdir()
        dead = f"127.0.0.1:{free_port()}"  # nothing listens there
        (Path(ray_tmp) / "ray" / "ray_current_cluster").write_text(dead)
        (tmp_path / "quick.py").write_text(
            "from hpo.space import Float\nspace = {'x': Float(0, 1)}\n"
            "def objective(p, r):\n    return p['x']\n"
        )
        env = {**hpo_env, "RAY_TMPDIR": ray_tmp}
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run(
            hpo_cmd("run", "quick.py", "--trials", "2", "--no-progress"),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "2 trials, 2 complete" in done.stdout
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
