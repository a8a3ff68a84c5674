"""Sweeps submitted to a Ray cluster with Ray Job Submission: the sweep's driver (`hpo run`)
runs on the cluster as a Ray job, to its end whatever becomes of the machine that
submitted it (a laptop that closes). Ray's dashboard address (``http://HEAD:8265``) takes
the submission; its job id is recorded on the sweep's parent run (`SweepTag.JOB_ID`).

What can go wrong at submission gets one line, before anything is submitted: a tracking
store the cluster cannot reach (a local sqlite file, a relative path), an experiment file
that does not exist, an address that is not a Ray dashboard, a token the cluster refuses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpo.execution.cluster import cluster_token, use_token_if_available
from hpo.tracking.access import CREDENTIAL_VARIABLES, credentials, without_credentials
from hpo.tracking.store import is_server

JOB_ID_VARIABLE = "HPO_JOB_ID"  # set for the driver: the job id it tags its sweep with
# The submitting user's MLflow credentials travel sealed with a key derived from the
# cluster's token: Ray's job record (its environment, shown by the dashboard and `ray job
# list`) and the packages it keeps on every node's disk hold only the sealed form; the
# driver, which has the token as every process of the cluster does, opens them.
CREDENTIALS_VARIABLE = "HPO_SEALED_MLFLOW_CREDENTIALS"
# How long `hpo stop` lets the driver cancel its running trials and close its sweep after
# SIGTERM before Ray kills it (Ray's own default, 3 s, would leave runs RUNNING).
STOP_WAIT_SECONDS = 120
EXCLUDES = [".git", ".venv", "__pycache__", "mlruns", "mlartifacts", "mlflow.db*", "*.pyc"]
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
AGENT_WAIT_SECONDS = 60.0  # for a head that has just started to take submissions


class SubmissionError(RuntimeError):
    """The cluster refused or could not take a submission; the message says what to do."""


def check_reachable_store(tracking_uri: str) -> None:
    """A submitted sweep records from the cluster: its store must be a server."""
    if not is_server(tracking_uri):
        raise ValueError(
            f"a submitted sweep records from the cluster, which cannot reach the tracking store "
            f"{tracking_uri!r} on this machine: use the tracking server "
            "(--tracking-uri http://HOST:5000)"
        )


def client(address: str) -> Any:
    """Ray's job client for the dashboard at ``address``, with one-line errors."""
    use_token_if_available()  # before Ray is imported: it reads the mode then
    from ray.job_submission import JobSubmissionClient

    if not address.startswith(("http://", "https://")):
        raise SubmissionError(
            f"a sweep is submitted to the Ray dashboard's address, http://HEAD:8265, got "
            f"{address!r} (the GCS address HEAD:6379 is for `hpo run --address`)"
        )
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # Ray says it as a ConnectionError or RuntimeError with its body
        raise SubmissionError(_explain(address, exc)) from None


def _refused_token(exc: Exception) -> bool:
    """Whether the dashboard refused the token. Ray raises its AuthenticationError for a
    401 or 403; the words are its other ways of saying so. Not a bare "401" in the text:
    the address in it may hold those digits (a port 40107 that nothing answers)."""
    from ray.exceptions import AuthenticationError

    text = str(exc)
    said = ("Authentication failed", "Authentication required", "Unauthenticated", "InvalidAuth")
    return (
        isinstance(exc, AuthenticationError)
        or re.search(r"status code 40[13]\b", text) is not None
        or any(words in text for words in said)
    )


def _explain(address: str, exc: Exception) -> str:
    text = str(exc)
    if _refused_token(exc):
        return (
            f"the Ray cluster at {address} refused this machine's token: set RAY_AUTH_TOKEN "
            "(or RAY_AUTH_TOKEN_PATH, or put it in ~/.ray/auth_token) to the cluster's token "
            "(`ray get-auth-token` on the head prints it)"
        )
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return f"no Ray dashboard answered at {address} ({first}): check the address and port"


FILE = "{file}"  # in a submitted command: the experiment file, as the cluster sees it


def submit(
    address: str,
    file: str | Path,
    run_args: Sequence[str],
    *,
    tracking_uri: str,
    cluster_tracking_uri: str | None = None,
    working_dir: str | Path | None = None,
    command: Sequence[str] = ("run", FILE),
) -> str:
    """Submit ``hpo COMMAND RUN_ARGS`` (``hpo run FILE ...`` by default) to the cluster at
    ``address``, the folder of ``file`` shipped with it; its job id. The driver records into
    ``cluster_tracking_uri``: the tracking server as the cluster reaches it, when that is
    not ``tracking_uri`` (a laptop's SSH tunnel, ``http://127.0.0.1:5000``, is
    ``http://mlflow:5000`` inside the deployment)."""
    check_reachable_store(tracking_uri)
    cluster_tracking_uri = cluster_tracking_uri or tracking_uri
    check_reachable_store(cluster_tracking_uri)
    file = Path(file).resolve()
    if not file.is_file():
        raise ValueError(f"experiment file not found: {str(file)!r}")
    folder = Path(working_dir).resolve() if working_dir is not None else file.parent
    if not file.is_relative_to(folder):
        raise ValueError(f"the experiment file {str(file)!r} is not inside --working-dir {folder}")
    jobs = client(address)
    job_id = f"hpo-{uuid.uuid4().hex[:12]}"
    shipped = str(file.relative_to(folder))
    command = ["hpo", *(shipped if part == FILE else part for part in command), *run_args]
    command += ["--tracking-uri", without_credentials(cluster_tracking_uri), "--no-progress"]
    runtime_env = {
        "working_dir": str(folder),
        "excludes": EXCLUDES,
        "env_vars": {
            JOB_ID_VARIABLE: job_id,
            "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_SECONDS),
        },
    }
    metadata = {
        "hpo": "sweep",
        "tracking_uri": without_credentials(tracking_uri),
        "cluster_tracking_uri": without_credentials(cluster_tracking_uri),
        "file": file.name,
    }
    login = {**credentials(), **_credentials_in(cluster_tracking_uri)}
    if login:
        token = cluster_token()
        if token is None:
            raise SubmissionError(
                "your MLflow credentials go to the cluster sealed with its token, and this "
                "machine has none: set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the "
                "cluster's token (`ray get-auth-token` on the head prints it)"
            )
        runtime_env["env_vars"][CREDENTIALS_VARIABLE] = _seal(login, token)
    # Ray runs the entrypoint with a shell and, to stop it, signals the shell and its
    # children: `exec` leaves one process, the driver, so none is orphaned (an orphan's exit
    # goes unreaped where PID 1 does not reap, as in a container without an init, and Ray
    # would wait out its 120 s before STOPPED).
    _submit(jobs, address, job_id, "exec " + shlex.join(command), runtime_env, metadata)
    return job_id


def _credentials_in(uri: str) -> dict[str, str]:
    """The user and password of ``http://user:pass@host``, as MLflow's variables."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if parts.username is None:
        return {}
    return {
        "MLFLOW_TRACKING_USERNAME": unquote(parts.username),
        "MLFLOW_TRACKING_PASSWORD": unquote(parts.password or ""),
    }


def _fernet(token: str) -> Any:
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(b"hpo: a submitted sweep's MLflow credentials\0" + token.encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


def _seal(login: dict[str, str], token: str) -> str:
    return _fernet(token).encrypt(json.dumps(login).encode()).decode()


def adopt_credentials() -> None:
    """In a submitted sweep's driver: open the submitting user's sealed MLflow credentials
    (the variable goes: the trial workers get them as an argument, as for any sweep)."""
    sealed = os.environ.pop(CREDENTIALS_VARIABLE, None)
    token = cluster_token()
    if not sealed or token is None:
        return
    login = json.loads(_fernet(token).decrypt(sealed.encode()))
    os.environ.update({k: v for k, v in login.items() if k in CREDENTIAL_VARIABLES})


def _submit(
    jobs: Any, address: str, job_id: str, entrypoint: str, runtime_env: dict, metadata: dict
) -> None:
    """Hand the job to Ray, waiting out a head whose job agent is still starting."""
    deadline = time.monotonic() + AGENT_WAIT_SECONDS
    while True:
        try:
            jobs.submit_job(
                entrypoint=entrypoint,
                submission_id=job_id,
                runtime_env=runtime_env,
                metadata=metadata,
            )
            return
        except Exception as exc:
            # A head just started answers before its job agent is up ("try again later").
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise SubmissionError(_explain(address, exc)) from None
            time.sleep(2.0)


def job_id_here() -> str | None:
    """The job id of the submitted sweep this driver runs, if it runs one."""
    return os.environ.get(JOB_ID_VARIABLE) or None


def find_sweep(tracking_uri: str, job_id: str, seconds: float = 0.0) -> Any:
    """The parent run of the sweep job ``job_id`` runs, waiting up to ``seconds`` for its
    driver to make it; None when it has not (yet)."""
    from mlflow.tracking import MlflowClient

    from hpo.tracking.reader import sweep_of_job

    store = MlflowClient(tracking_uri)
    deadline = time.monotonic() + seconds
    while True:
        run = sweep_of_job(store, job_id)
        if run is not None or time.monotonic() >= deadline:
            return run
        time.sleep(1.0)


def wait(jobs: Any, job_id: str, timeout: float) -> str:
    """The job's status once it ends (or when ``timeout`` seconds have passed)."""
    deadline = time.monotonic() + timeout
    status = str(jobs.get_job_status(job_id).value)
    while status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(1.0)
        status = str(jobs.get_job_status(job_id).value)
    return status


class SubmittedSweep:
    """A sweep whose driver runs on a Ray cluster as job ``job_id`` (`hpo.submit`)."""

    def __init__(self, job_id: str, address: str, tracking_uri: str) -> None:
        self.job_id, self.address, self.tracking_uri = job_id, address, tracking_uri

    def __repr__(self) -> str:
        return f"SubmittedSweep({self.job_id!r}, {self.address!r})"

    @property
    def sweep_id(self) -> str | None:
        """The sweep's parent run id, once its driver has made it."""
        run = find_sweep(self.tracking_uri, self.job_id)
        return None if run is None else run.info.run_id

    def status(self) -> str:
        """The job's state: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
        return str(client(self.address).get_job_status(self.job_id).value)

    def logs(self) -> str:
        """What the sweep's driver printed so far."""
        return client(self.address).get_job_logs(self.job_id)

    def wait(self, timeout: float = float("inf")) -> str:
        """Wait for the job to end (at most ``timeout`` seconds); its state."""
        return wait(client(self.address), self.job_id, timeout)

    def stop(self) -> str:
        """End the sweep as Ctrl-C does (running trials cancelled and recorded, the sweep
        closed, resumable); its job's state once it has."""
        jobs = client(self.address)
        jobs.stop_job(self.job_id)
        return wait(jobs, self.job_id, STOP_WAIT_SECONDS + 10)

    def result(self) -> Any:
        """The sweep's `hpo.SweepResult`, read from MLflow (as far as it has run)."""
        from hpo.tracking.reader import load_sweep

        sweep_id = self.sweep_id
        if sweep_id is None:
            state = self.status()
            raise ValueError(f"job {self.job_id} has recorded no sweep yet (status: {state})")
        return load_sweep(sweep_id, tracking_uri=self.tracking_uri)


def submit_sweep(
    file: str | Path,
    *,
    address: str,
    tracking_uri: str | None = None,
    cluster_tracking_uri: str | None = None,
    working_dir: str | Path | None = None,
    args: Sequence[str] = (),
) -> SubmittedSweep:
    """Run ``hpo run FILE ARGS`` on the Ray cluster whose dashboard is at ``address``
    (``http://HEAD:8265``), as a Ray job that outlives this process; the sweep records into
    ``tracking_uri``, which must be a tracking server; ``cluster_tracking_uri`` is its
    address as the cluster reaches it, when that differs (an SSH tunnel).

    >>> sweep = hpo.submit("exp.py", address="http://head:8265",           # doctest: +SKIP
    ...                    tracking_uri="http://mlflow:5000", args=["--trials", "40"])
    >>> sweep.wait(); sweep.result().best_value                            # doctest: +SKIP
    """
    from hpo.tracking.store import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    job_id = submit(
        address,
        file,
        list(args),
        tracking_uri=uri,
        cluster_tracking_uri=cluster_tracking_uri,
        working_dir=working_dir,
    )
    return SubmittedSweep(job_id, address, uri)
