"""The multi-machine form run for real: docker-compose.yml's services on separate network
hosts (namespaces), sweeps launched as the compose file's `sweep` service launches them,
hosts lost and restarted under them, and the results read back through the MLflow server
(see `compose_cluster.py` for the stand-ins). The tests share one cluster and run in file order."""

from __future__ import annotations

import base64
import json
import re
import shutil
import textwrap
import time
import urllib.error
import urllib.request

import pytest
from hosts import available
from servers import pg

from hpo.strategies.base import TrialState
from hpo.tracking.schema import RUN_STATUS


def why_not() -> str | None:
    if shutil.which("moto_server") is None:
        return "needs moto's server (pip: moto[server])"
    try:
        pg("postgres")
    except FileNotFoundError as exc:
        return str(exc)
    return available()


if why_not() is not None:
    pytest.skip(f"the deployment run on namespace hosts: {why_not()}", allow_module_level=True)

from compose_cluster import (  # noqa: E402
    DASHBOARD,
    ROOT,
    TRACKING,
    USERS,
    VALUES,
    Cluster,
    service,
)
from conftest import by_trial, child_runs  # noqa: E402
from invariants import check_invariants  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOST_SWEEP = "tests/integration/host_experiments/host_sweep.py"
MODEL_SWEEP = "tests/integration/host_experiments/host_model_sweep.py"
CHAOS = [HOST_SWEEP, "--seed", "0", "--no-progress"]
CURVE = ("loss", range(10))  # every step of every COMPLETE trial, logged once
# A sweep submitted to the head's dashboard, recording into the MLflow server.
SUBMIT = ["submit", HOST_SWEEP, "--address", DASHBOARD]
SUBMIT += ["--tracking-uri", TRACKING, "--seed", "0"]

# Run on a host: the HTTP status of a GET of URL with a Host header, as the MLflow user of
# the environment...
STATUS = textwrap.dedent(
    """
    import base64, os, sys, urllib.request as u
    url, host = sys.argv[1:]
    login = f"{os.environ['MLFLOW_TRACKING_USERNAME']}:{os.environ['MLFLOW_TRACKING_PASSWORD']}"
    auth = "Basic " + base64.b64encode(login.encode()).decode()
    try:
        request = u.Request(url, headers={"Host": host, "Authorization": auth})
        print(u.urlopen(request, timeout=10).status)
    except u.HTTPError as e:
        print(e.code)
    """
)
# ...and whether a TCP port of an address accepts connections.
PROBE = textwrap.dedent(
    """
    import socket, sys
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
        print("open")
    except OSError:
        print("closed")
    """
)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.close()


def sweep_id_of(output: str) -> str:
    return output.split("sweep ", 1)[1].split(":", 1)[0]


def wait_for(what, seconds=180.0):
    """Poll ``what()`` until it returns something true; that value."""
    deadline = time.monotonic() + seconds
    while not (value := what()):
        assert time.monotonic() < deadline, f"waited {seconds} s for {what.__doc__}"
        time.sleep(1.0)  # each poll is a search through the server's login checks
    return value


def sweep_runs(client, experiment):
    """the experiment's runs"""
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def once_complete(client, experiment, n):
    """The experiment's runs, once ``n`` of its trials are COMPLETE."""

    def complete():
        runs = sweep_runs(client, experiment)
        return sum(r.data.tags.get("hpo.state") == "COMPLETE" for r in runs) >= n and runs

    complete.__doc__ = f"{n} COMPLETE trials in {experiment}"
    return wait_for(complete)


def trial_worker_on(cluster, host):
    """a trial worker process on the host"""
    for pid in cluster.hosts.pids(host):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"TrialWorker" in f.read():
                    return pid
        except OSError:
            pass
    return None


def test_a_sweep_of_digits_tpe_runs_on_the_worker_hosts_and_reads_back_through_the_server(
    cluster,
):
    # Seeded: four configurations that train in seconds (an unseeded draw may take batch 16
    # with two layers of 1000 units, which is slow).
    run = ["hpo", "run", "experiments/digits_tpe.py", "--trials", "4", "--seed", "17"]
    out = cluster.sweep(run)
    assert "4 trials, 4 complete" in out
    client = cluster.client()
    runs = check_invariants(client, sweep_id_of(out), 4)
    for run in runs.values():
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) > 1
        assert run.data.params.keys() >= {"learning_rate", "batch_size", "activation"}
        # Proxied by the server: clients and workers hold no storage credentials...
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        names = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert "learning_curves.png" in names
        assert client.download_artifacts(run.info.run_id, "learning_curves.png")
    # ...and nothing was left on a worker's disk.
    for host in ("worker-1", "worker-2"):
        assert list(cluster.hosts.home(host).rglob("*.png")) == []


def test_a_worker_host_lost_mid_sweep(cluster):
    proc = cluster.launch(["hpo", "run", *CHAOS, "--trials", "6", "--experiment-name", "lost"])
    wait_for(lambda: trial_worker_on(cluster, "worker-1"))
    time.sleep(1.0)  # a few steps into its trial
    assert cluster.hosts.kill("worker-1") > 0  # the machine is gone, all of it at once
    assert proc.wait(timeout=300) == 0, cluster.log("driver").read_text()[-4000:]
    cluster.hosts.kill("driver")
    out = cluster.log("driver").read_text()
    client = cluster.client()
    runs = check_invariants(client, sweep_id_of(out), 6, curve=CURVE)
    retried = [r for r in runs.values() if r.data.tags["hpo.attempt"] == "2"]
    assert retried, "the lost host's trial was run again"
    for run in retried:  # in its own run, which now holds the whole curve
        assert run.data.tags["hpo.state"] == "COMPLETE"
        assert run.data.tags.get("hpo.attempt_1_error")
    cluster.start_worker("worker-1")  # the host comes back for the tests that follow
    cluster.wait_ray(nodes=3)


def test_the_mlflow_servers_host_restarted_mid_sweep(cluster):
    client = cluster.client()
    proc = cluster.launch(["hpo", "run", *CHAOS, "--trials", "8", "--experiment-name", "outage"])

    def stepping():
        """a trial that has logged steps"""
        return any(r.data.metrics for r in sweep_runs(client, "outage"))

    wait_for(stepping)
    cluster.hosts.kill("mlflow")
    time.sleep(6)  # trials go on logging meanwhile; the sweep holds what it cannot send
    cluster.start_mlflow()
    assert proc.wait(timeout=300) == 0, cluster.log("driver").read_text()[-4000:]
    cluster.hosts.kill("driver")
    out = cluster.log("driver").read_text()
    assert "8 trials, 8 complete" in out
    check_invariants(client, sweep_id_of(out), 8, curve=CURVE)


def test_the_drivers_host_killed_halfway_then_hpo_resume_from_another_host(cluster):
    client = cluster.client()
    proc = cluster.launch(["hpo", "run", *CHAOS, "--trials", "8", "--experiment-name", "driver"])

    runs = once_complete(client, "driver", 3)
    cluster.hosts.kill("driver")  # the driver's machine is gone, its Ray node with it
    proc.wait(timeout=60)
    [sweep_id] = [r.info.run_id for r in runs if r.data.tags.get("hpo.sweep")]
    before = settled_trials(client, sweep_id)
    done = {n: r for n, r in before.items() if r.data.tags["hpo.state"] != "RUNNING"}
    assert client.get_run(sweep_id).info.status == "RUNNING"

    cluster.sweep(["hpo", "resume", sweep_id, "--no-progress"], host="driver-2")
    runs = check_invariants(client, sweep_id, 8, curve=CURVE)
    for number, run in done.items():  # finished trials kept, not run again
        assert runs[number].data.tags["hpo.attempt"] == "1"
        assert runs[number].data.metrics == run.data.metrics
        if run.info.status == "RUNNING":
            # The kill fell between the trial's end and its run's closing: resume closes it.
            state = TrialState(run.data.tags["hpo.state"])
            assert runs[number].info.status == RUN_STATUS[state]
        else:
            assert runs[number].info.end_time == run.info.end_time
    for number in set(before) - set(done):  # the lost driver's trials, run again
        assert runs[number].data.tags["hpo.attempt_1_error"] == "driver lost"
        assert runs[number].info.run_id == before[number].info.run_id
    assert client.get_run(sweep_id).data.tags["hpo.n_complete"] == "8"


def settled_trials(client, sweep_id, reads=10):
    """The sweep's trial runs once two reads 1 s apart agree: a request the killed driver
    sent just before can still land on the server after the kill. Suspected, not shown,
    behind one CI failure: a trial read as running was kept by resume, not run again."""

    def seen(runs):
        return {
            n: (r.data.tags.get("hpo.state"), r.info.status, r.data.metrics)
            for n, r in runs.items()
        }

    runs = by_trial(child_runs(client, sweep_id))
    for _ in range(reads):
        time.sleep(1.0)
        again = by_trial(child_runs(client, sweep_id))
        if seen(again) == seen(runs):
            return again
        runs = again
    return runs


def job_of(output: str) -> str:
    return output.split("submitted job ", 1)[1].split()[0]


def wait_job(cluster, job, host="driver", seconds=240):
    """Until the job has ended (asked of the head's dashboard, a request each 2 s: an `hpo
    status` is a process importing Ray and MLflow); what `hpo status JOB` from ``host`` says."""
    deadline = time.monotonic() + seconds
    while (state := cluster.job_state(job)) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.monotonic() < deadline, f"job {job} did not end: {state}"
        time.sleep(2)
    done = cluster.hpo(host, ["status", job, "--address", DASHBOARD, "--tracking-uri", TRACKING])
    assert f"job {job}: {state}" in done.stdout, done.stdout + done.stderr[-2000:]
    return done.stdout


def complete_trials(client, sweep_id, n):
    """``n`` COMPLETE trials of the sweep"""
    runs = child_runs(client, sweep_id)
    return sum(r.data.tags.get("hpo.state") == "COMPLETE" for r in runs) >= n


def test_what_a_submission_from_a_laptop_refuses(cluster):
    h, env = cluster.hosts, cluster.sweep_env()
    # The laptop reaches the head's dashboard and the MLflow server, nothing else.
    for host, port, state in [
        ("ray-head", 8265, "open"),
        ("mlflow", 5000, "open"),
        ("ray-head", 6379, "closed"),
        ("worker-1", 8076, "closed"),
        ("postgres", 5432, "closed"),
    ]:
        done = h.run("laptop", ["python", "-c", PROBE, h.address[host], str(port)], env)
        assert done.stdout.strip() == state, (host, port, done.stdout, done.stderr)
    run = ["--trials", "2", "--experiment-name", "refused-submit"]
    for args, token, says in [
        ([*SUBMIT, *run], "not-the-token-" * 4, "refused this machine's token"),
        (
            [*SUBMIT, *run, "--tracking-uri", "sqlite:///mlflow.db"],
            VALUES["RAY_AUTH_TOKEN"],
            "cannot reach the tracking store 'sqlite:///mlflow.db' on this machine",
        ),
        (
            ["submit", "tests/integration/no_such_sweep.py", *SUBMIT[2:], *run],
            VALUES["RAY_AUTH_TOKEN"],
            "experiment file not found",
        ),
        (  # the MLflow server answers HTTP, but it is no Ray dashboard
            [*SUBMIT, *run, "--address", TRACKING],
            VALUES["RAY_AUTH_TOKEN"],
            f"no Ray dashboard answered at {TRACKING}",
        ),
    ]:
        done = cluster.hpo("laptop", args, token=token)
        assert done.returncode == 2, (args, done.stdout, done.stderr[-2000:])
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("hpo: error: ") and says in line, (args, line)
    listed = cluster.hpo("laptop", ["status", "--address", DASHBOARD])
    assert listed.stdout.strip() == "no submitted sweeps", listed.stdout + listed.stderr
    assert cluster.client().get_experiment_by_name("refused-submit") is None


def test_a_sweep_submitted_from_a_laptop_that_then_goes_away(cluster):
    # 24 trials of 2.5 s on the two single-CPU worker hosts: 30 s of trials at least after
    # the run exists (with 8, a slow return of `hpo submit` once found the sweep finished).
    run = ["--trials", "24", "--experiment-name", "laptop"]
    began = time.monotonic()
    done = cluster.hpo("laptop", [*SUBMIT, *run])
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert time.monotonic() - began < 60  # it returns; the sweep runs on
    job, sweep_id = job_of(done.stdout), sweep_id_of(done.stdout)
    assert f"{TRACKING}/#/experiments/" in done.stdout
    cluster.hosts.remove("laptop")  # the lid closes: the laptop is gone from the network
    client = cluster.client()
    assert client.get_run(sweep_id).info.status == "RUNNING"  # it left while the sweep ran
    said = wait_job(cluster, job)
    assert f"job {job}: SUCCEEDED" in said and "24 complete, 0 failed" in said, said
    check_invariants(client, sweep_id, 24, curve=CURVE)
    assert client.get_run(sweep_id).data.tags["hpo.job_id"] == job
    # Followed from any machine with the token: its output, and the list of sweeps.
    logs = cluster.hpo("driver", ["logs", job, "--address", DASHBOARD])
    assert "24 trials, 24 complete" in logs.stdout, logs.stdout[-2000:] + logs.stderr[-2000:]
    listed = cluster.hpo("driver", ["status", "--address", DASHBOARD]).stdout
    assert job in listed and "host_sweep.py" in listed, listed


def test_hpo_stop_from_another_host_then_resume_submit_completes_the_sweep(cluster):
    client = cluster.client()
    done = cluster.hpo("driver", [*SUBMIT, "--trials", "10", "--experiment-name", "stopped"])
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    job, sweep_id = job_of(done.stdout), sweep_id_of(done.stdout)
    wait_for(lambda: complete_trials(client, sweep_id, 2))
    stopped = cluster.hpo("driver-2", ["stop", job, "--address", DASHBOARD])
    assert f"job {job}: STOPPED" in stopped.stdout, stopped.stdout + stopped.stderr[-2000:]
    parent = client.get_run(sweep_id)
    assert parent.info.status == "KILLED"  # closed with why, resumable
    before = by_trial(child_runs(client, sweep_id))
    assert 2 <= len(before) < 10
    assert all(r.info.status != "RUNNING" for r in before.values())
    finished = {n for n, r in before.items() if r.data.tags["hpo.state"] == "COMPLETE"}

    resume = ["resume", sweep_id, "--submit", "--file", HOST_SWEEP]
    done = cluster.hpo("driver-2", [*resume, "--address", DASHBOARD, "--tracking-uri", TRACKING])
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    again = job_of(done.stdout)
    said = wait_job(cluster, again, host="driver-2")
    assert f"job {again}: SUCCEEDED" in said, said
    runs = check_invariants(client, sweep_id, 10, curve=CURVE)
    for number in finished:  # not run again
        assert runs[number].data.tags["hpo.attempt"] == "1"
        assert runs[number].data.metrics == before[number].data.metrics
    assert client.get_run(sweep_id).data.tags["hpo.job_id"] == again


# Run on a host as a user: the value the sweep's best model predicts.
LOAD_BEST = textwrap.dedent(
    """
    import sys, hpo
    model = hpo.load_best_model(sys.argv[1], tracking_uri="http://mlflow:5000")
    print(model.predict([[0.0]])[0])
    """
)


def one_line_error(done, says):
    """``done`` failed with one line of error that says ``says``"""
    assert done.returncode != 0, done.stdout[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert says in line, line
    return line


def test_a_users_sweep_is_theirs_and_others_see_only_what_they_are_granted(cluster):
    h = cluster.hosts
    out = cluster.sweep(
        [
            "hpo",
            "run",
            MODEL_SWEEP,
            "--trials",
            "3",
            "--seed",
            "0",
            "--experiment-name",
            "alices",
            "--no-progress",
        ]
    )
    sweep_id, admin = sweep_id_of(out), cluster.client()
    experiment = admin.get_experiment_by_name("alices").experiment_id
    # Made by alice, hers: MANAGE, as MLflow gives a user the experiments they create.
    mine = cluster.auth().get_user_permission("alice", "experiment", experiment)
    assert mine.permission == "MANAGE", vars(mine)
    show = ["show", sweep_id, "--tracking-uri", TRACKING]
    resume = ["resume", sweep_id, "--file", MODEL_SWEEP]
    resume += ["--tracking-uri", TRACKING, "--trials", "4"]
    load = ["python", "-c", LOAD_BEST, sweep_id]
    bob = {**cluster.sweep_env("bob"), "MLFLOW_TRACKING_URI": TRACKING}
    # bob, without a permission on it: refused reading, resuming and loading, one line each.
    refused = f"user 'bob' has no permission on the experiment of sweep {sweep_id} at "
    one_line_error(cluster.hpo("driver-2", show, user="bob"), refused)
    one_line_error(cluster.hpo("driver-2", resume, user="bob"), refused)
    done = h.run("driver-2", load, bob, cwd=ROOT)
    assert done.returncode != 0 and refused in done.stderr.strip().splitlines()[-1], done.stderr
    assert "403" in done.stderr.strip().splitlines()[-1]
    # Granted READ, he shows it and loads its model; alice's sweep is unchanged.
    cluster.auth().grant_user_permission("bob", "experiment", experiment, "READ")
    shown = cluster.hpo("driver-2", show, user="bob")
    assert shown.returncode == 0 and sweep_id in shown.stdout, shown.stderr[-2000:]
    done = h.run("driver-2", load, bob, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    best = min(float(r.data.params["x"]) for r in child_runs(admin, sweep_id))
    assert float(done.stdout.strip().splitlines()[-1]) == pytest.approx(best)
    assert admin.get_run(sweep_id).data.tags["hpo.n_complete"] == "3"
    # Granted EDIT, he goes on with it (a larger budget), from his own machine.
    cluster.auth().revoke_user_permission("bob", "experiment", experiment)  # READ, replaced
    cluster.auth().grant_user_permission("bob", "experiment", experiment, "EDIT")
    cluster.sweep(["hpo", *resume, "--no-progress"], host="driver-2", user="bob")
    assert admin.get_run(sweep_id).data.tags["hpo.n_complete"] == "4"


def test_a_wrong_password_stops_hpo_run_in_one_line_with_nothing_created(cluster):
    env = {**cluster.sweep_env("alice"), "MLFLOW_TRACKING_PASSWORD": "not-alices-password"}
    run = ["hpo", "run", *CHAOS, "--trials", "2", "--experiment-name", "wrong-password"]
    done = cluster.hosts.run("driver-2", [*service("sweep")["entrypoint"], *run], env, cwd=ROOT)
    cluster.hosts.kill("driver-2")
    line = one_line_error(done, "did not accept the credentials of user 'alice' (401)")
    assert line.startswith("hpo: error: the tracking server at http://mlflow:5000 ")
    assert cluster.client().get_experiment_by_name("wrong-password") is None


def test_a_permission_revoked_mid_sweep_stops_it_and_resume_completes_it(cluster):
    admin = cluster.client()
    proc = cluster.launch(["hpo", "run", *CHAOS, "--trials", "8", "--experiment-name", "revoked"])

    runs = once_complete(admin, "revoked", 2)
    [sweep_id] = [r.info.run_id for r in runs if r.data.tags.get("hpo.sweep")]
    experiment = admin.get_experiment_by_name("revoked").experiment_id
    cluster.auth().revoke_user_permission("alice", "experiment", experiment)
    assert proc.wait(timeout=120) == 1, cluster.log("driver").read_text()[-3000:]
    cluster.hosts.kill("driver")
    said = cluster.log("driver").read_text().strip().splitlines()
    assert said[-1].startswith("hpo: error: user 'alice' has no permission on experiment"), said
    assert (
        f"the sweep stopped. Once it is granted again, continue it with: hpo resume {sweep_id}"
        in said[-1]
    )
    assert admin.get_run(sweep_id).info.status == "RUNNING"  # resumable: nothing closed
    before = by_trial(child_runs(admin, sweep_id))
    finished = {n for n, r in before.items() if r.data.tags["hpo.state"] == "COMPLETE"}

    cluster.auth().grant_user_permission("alice", "experiment", experiment, "MANAGE")
    cluster.sweep(["hpo", "resume", sweep_id, "--no-progress"], host="driver-2")
    runs = check_invariants(admin, sweep_id, 8, curve=CURVE)
    for number in finished:  # nothing finished is run again
        assert runs[number].data.tags["hpo.attempt"] == "1"


def test_what_the_cluster_refuses(cluster):
    h = cluster.hosts
    env = cluster.sweep_env()
    no_token = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    # A machine without the token cannot join the cluster (asked once: Ray's `ray start`
    # retries a refused token for 20 s)...
    no_token["RAY_gcs_server_port_wait_time_s"] = "1"
    joined = h.run("driver-2", ["ray", "start", "--address=ray-head:6379"], no_token)
    assert joined.returncode != 0 and "InvalidAuthToken" in joined.stderr, joined.stderr[-2000:]
    # ...and hpo, on a machine that joined with it, says which token is wrong, in one line.
    join = "ray start --address=ray-head:6379 --num-cpus=0 >/dev/null 2>&1"
    join += ' && RAY_AUTH_TOKEN="$WRONG_TOKEN" exec "$@"'
    run = ["hpo", "run", *CHAOS, "--trials", "1", "--experiment-name", "refused"]
    wrong = {**env, "WRONG_TOKEN": "not-the-token-" * 4}
    done = h.run("driver-2", ["sh", "-c", join, "sh", *run], wrong)
    h.kill("driver-2")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(
        "hpo: error: the Ray cluster at ray-head:6379 refused this machine's token (the one "
        "in RAY_AUTH_TOKEN): set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH, or put the "
        "cluster's token in "
    ) and line.endswith("auth_token (`ray get-auth-token` on the head prints it)")
    # An address nobody answers at, and no Ray node to join through: one line each.
    for address, says in [
        ("worker-2:6379", "the Ray cluster at worker-2:6379 does not answer"),
        ("ray-head:6379", "no Ray node runs on this machine"),
    ]:
        done = h.run("driver-2", [*run, "--address", address], env)
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
        assert done.stderr.startswith(f"hpo: error: {says}"), done.stderr
    assert cluster.client().get_experiment_by_name("refused") is None  # nothing created

    # The MLflow server answers the names the compose file allows, and 403 to others.
    api = "/api/2.0/mlflow/experiments/search?max_results=1"
    for host_header, status in [("mlflow:5000", "200"), ("evil.example:5000", "403")]:
        done = h.run(
            "driver", ["python", "-c", STATUS, f"http://mlflow:5000{api}", host_header], env
        )
        assert done.stdout.strip() == status, done.stderr

    # Published ports: on this machine (the Docker host) at 127.0.0.1 only, nowhere else.
    mlflow_ui = f"http://127.0.0.1:{VALUES['MLFLOW_PORT']}/"
    dashboard = f"http://127.0.0.1:{VALUES['RAY_DASHBOARD_PORT']}/"
    with pytest.raises(urllib.error.HTTPError, match="401"):  # the UI asks for a login
        urllib.request.urlopen(mlflow_ui, timeout=10)
    login = base64.b64encode(f"admin:{VALUES['MLFLOW_ADMIN_PASSWORD']}".encode()).decode()
    logged_in = urllib.request.Request(mlflow_ui, headers={"Authorization": f"Basic {login}"})
    assert urllib.request.urlopen(logged_in, timeout=10).status == 200
    assert urllib.request.urlopen(dashboard, timeout=10).status == 200
    for port in (VALUES["MLFLOW_PORT"], VALUES["RAY_DASHBOARD_PORT"], "5432", "8333", "6379"):
        done = h.run("driver", ["python", "-c", PROBE, h.gateway, port], env)
        assert done.stdout.strip() == "closed", f"port {port} of the Docker host answers"


def test_the_head_host_lost_under_a_submitted_sweep_then_resume_submit(cluster):
    """Last: it restarts the whole Ray cluster."""
    h, client = cluster.hosts, cluster.client()
    done = cluster.hpo("driver", [*SUBMIT, "--trials", "6", "--experiment-name", "headless"])
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    sweep_id = sweep_id_of(done.stdout)
    wait_for(lambda: complete_trials(client, sweep_id, 2))
    assert h.kill("ray-head") > 0  # the head's machine is gone, the sweep's driver with it
    # Each worker's raylet exits once the head has been gone for Ray's reconnect timeout,
    # and compose's `restart: unless-stopped` starts it again; here both happen at once.
    for worker in ("worker-1", "worker-2"):
        h.kill(worker)
    before = by_trial(child_runs(client, sweep_id))
    assert client.get_run(sweep_id).info.status == "RUNNING"
    finished = {n for n, r in before.items() if r.data.tags["hpo.state"] == "COMPLETE"}
    cluster.start_head()
    cluster.start_worker("worker-1")
    cluster.start_worker("worker-2")
    cluster.wait_ray(nodes=3)

    resume = ["resume", sweep_id, "--submit", "--file", HOST_SWEEP]
    done = cluster.hpo("driver", [*resume, "--address", DASHBOARD, "--tracking-uri", TRACKING])
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    said = wait_job(cluster, job_of(done.stdout))
    assert "SUCCEEDED" in said, said
    runs = check_invariants(client, sweep_id, 6, curve=CURVE)
    for number in finished:  # nothing finished is run again
        assert runs[number].data.tags["hpo.attempt"] == "1"
        assert runs[number].info.end_time == before[number].info.end_time
    for number in set(before) - finished:  # the lost driver's trials, run again
        assert runs[number].info.run_id == before[number].info.run_id
        assert runs[number].data.tags["hpo.state"] == "COMPLETE"


# Run on a host with the cluster's token: every Ray job's record and output, as JSON.
RAY_JOBS = textwrap.dedent(
    """
    import json, sys
    from ray.job_submission import JobSubmissionClient
    jobs = JobSubmissionClient(sys.argv[1])
    print(json.dumps([
        {"job": job.model_dump(mode="json") if hasattr(job, "model_dump") else str(job),
         "logs": jobs.get_job_logs(job.submission_id) if job.submission_id else ""}
        for job in jobs.list_jobs()
    ], default=str))
    """
)
SECRET_NAME = re.compile(r"_PASSWORD$|_TOKEN$|_SECRET")


def test_no_secret_is_in_anything_the_sweeps_wrote(cluster):
    """Last: it reads what every test of the module wrote. The secrets are the values of
    the environment's *_PASSWORD, *_TOKEN and *_SECRET* variables: the deployment's .env and
    the users' MLflow passwords."""
    secrets = {v for k, v in VALUES.items() if SECRET_NAME.search(k)} | set(USERS.values())
    admin = cluster.client()
    found: list[str] = []

    def scan(where: str, data: bytes | str) -> None:
        raw = data if isinstance(data, bytes) else data.encode()
        found.extend(f"{where}: {s[:4]}..." for s in secrets if s.encode() in raw)

    runs = 0
    for experiment in admin.search_experiments():
        scan(f"experiment {experiment.name}", json.dumps(experiment.tags))
        for run in admin.search_runs([experiment.experiment_id], max_results=5000):
            runs += 1
            data = run.data
            scan(f"run {run.info.run_id}", json.dumps([data.tags, data.params, list(data.metrics)]))
    # Every artifact of every run, read where the server keeps them (the S3 store).
    store = cluster.artifact_store()
    listed = store.get_paginator("list_objects_v2").paginate(Bucket=VALUES["S3_BUCKET"])
    keys = [item["Key"] for page in listed for item in page.get("Contents", [])]
    assert any(k.endswith("/model/MLmodel") for k in keys) and len(keys) > runs
    for key in keys:
        body = store.get_object(Bucket=VALUES["S3_BUCKET"], Key=key)["Body"].read()
        scan(f"artifact {key}", body)
    assert runs > 50  # the module's sweeps, all of them
    done = cluster.hosts.run(
        "driver", ["python", "-c", RAY_JOBS, DASHBOARD], cluster.sweep_env(), cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    jobs = json.loads(done.stdout.strip().splitlines()[-1])
    assert jobs and all(job["job"]["entrypoint"] for job in jobs)  # since the head restarted
    scan("Ray jobs", done.stdout)
    # What hpo and the services printed, and Ray's own logs and files on every host.
    for path in cluster.dir.rglob("*"):
        if path.is_file() and "pg" not in path.relative_to(cluster.dir).parts[:1]:
            if path.name == "basic_auth.ini":
                continue  # the MLflow server's settings: they hold its database's password
            scan(str(path.relative_to(cluster.dir)), path.read_bytes())
    assert found == []
