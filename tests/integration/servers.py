"""Real servers for the tracking-server tests: a private PostgreSQL cluster (initdb/pg_ctl in
a temporary directory) and an `mlflow server` on it that can be stopped and started again."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A free port of this machine below the ephemeral range, so that no connection takes
    it before the test binds it: a port the system hands out (bind to 0) is one the next
    outgoing connection of any process (a Ray of another test) may get meanwhile. Above
    Ray's worker ports (10002-19999 by default)."""
    try:
        ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0])
    except OSError:  # not Linux
        ephemeral = 0
    below = range(20000, ephemeral)  # empty: port 0, the system's pick, as before
    for port in random.sample(below, min(200, len(below))) or [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # another test's server has it
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in 20000-{ephemeral - 1} after 200 tries")


def pg(program: str) -> str:
    """A PostgreSQL server program: Debian keeps initdb, pg_ctl and postgres off the PATH,
    in /usr/lib/postgresql/VERSION/bin."""
    found = shutil.which(program) or max(
        Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), default=None, key=str
    )
    if found is None:
        raise FileNotFoundError(f"PostgreSQL's {program} is not installed (Debian: postgresql)")
    return str(found)


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the Debian package's `postgres` user owns it then.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class Postgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hpo-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        data = str(self.dir / "data")
        subprocess.run(
            _as_postgres([pg("initdb"), "-D", data, "-U", "hpo", "--auth=trust", "-E", "UTF8"]),
            check=True,
            capture_output=True,
        )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        subprocess.run(
            _as_postgres(
                [pg("pg_ctl"), "-D", data, "-o", options, "-l", f"{self.dir}/log", "-w", "start"]
            ),
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "hpo", "mlflow"],
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql+psycopg2://hpo@127.0.0.1:{self.port}/mlflow"

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([pg("pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


class MlflowServer:
    """``mlflow server`` on PostgreSQL with proxied artifacts, on a fixed port across restarts."""

    def __init__(self, backend: str, artifacts: Path) -> None:
        self.backend, self.artifacts = backend, artifacts
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: float = 120.0) -> None:
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.backend,
            "--artifacts-destination",
            str(self.artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        # Its own session, so that stop() takes its uvicorn children with it. Without MLflow's
        # server jobs, as hpo ui and the compose file run it (seven processes fewer).
        self.proc = subprocess.Popen(
            command,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"mlflow server did not answer on {self.url} within {wait} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # a crash, not a polite shutdown
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.proc = None
