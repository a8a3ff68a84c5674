"""docker-compose.yml's topology started on namespace hosts (`hosts.Hosts`), one host per
service, with each service's command and environment read from the compose file itself.

No Docker engine runs here, so the images' own programs have stand-ins: PostgreSQL is
Debian's (initdb/pg_ctl as the postgres user), the S3-compatible store is moto's server
mode. hpo's own services (mlflow, ray-head, ray-worker, sweep) run the compose file's
commands with this machine's hpo; a Ray worker host counts one CPU (the machine has two
cores for two worker hosts) unless told more (the cluster benchmark's cheap trials).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from hosts import Hosts, Published
from servers import free_port, pg

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
HOST_NAMES = [
    *["postgres", "artifacts", "mlflow", "ray-head", "worker-1", "worker-2"],
    *["driver", "driver-2"],  # two hosts a sweep is launched from (resumed from the second)
    "laptop",  # outside the deployment: it reaches the published ports only (hpo submit)
]
DASHBOARD = "http://ray-head:8265"  # where a submitted sweep goes, and MLflow as reached
TRACKING = "http://mlflow:5000"  # through the published ports (the names are the services')
VALUES = {  # what .env would hold
    "POSTGRES_USER": "mlflow",
    "POSTGRES_PASSWORD": "test-password",
    "S3_ACCESS_KEY": "test-access",
    "S3_SECRET_KEY": "test-secret-key-0123",
    "S3_BUCKET": "mlflow",
    "RAY_AUTH_TOKEN": "0123456789abcdef" * 4,
    "MLFLOW_ADMIN_USERNAME": "admin",
    "MLFLOW_ADMIN_PASSWORD": "test-admin-password-0451",
    "MLFLOW_SECRET_KEY": "test-flask-secret-key-7731",
    # Published on this machine (the Docker host) at free ports, not the usual ones.
    "PUBLISH_HOST": "127.0.0.1",
    "MLFLOW_PORT": str(free_port()),
    "RAY_DASHBOARD_PORT": str(free_port()),
}
# The team's users on the MLflow server (made by the admin once it is up): the deployment's
# sweeps run as alice; bob has no permission until one is granted.
USERS = {"alice": "alice-password-2230", "bob": "bob-password-8812"}
_REFERENCE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def substitute(text: str, values: dict[str, str]) -> str:
    """Compose's variable substitution: ${NAME}, ${NAME:-default}, ${NAME:?error}, $$."""

    def one(match: re.Match) -> str:
        name, kind, rest = match.groups()
        if name in values:
            return values[name]
        if kind == "-":
            return rest
        raise KeyError(f"{name} is not set: {rest}")

    return _REFERENCE.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def service(name: str, values: dict[str, str] = VALUES) -> dict[str, Any]:
    """Service ``name`` of docker-compose.yml with its variables substituted."""
    spec = yaml.safe_load(COMPOSE_FILE.read_text())["services"][name]
    return json.loads(substitute(json.dumps(spec), values))


def _env(spec: dict[str, Any], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # The hosts' names are in their hosts files, where Docker has a DNS server: gRPC's own
    # resolver (c-ares) asks DNS only, the system's reads the hosts file.
    env["GRPC_DNS_RESOLVER"] = "native"
    # A variable without a value (`NAME:`) comes from the shell that runs compose: here, extra.
    env.update({k: str(v) for k, v in spec.get("environment", {}).items() if v is not None})
    env.update(extra)
    return env


def as_user(name: str) -> dict[str, str]:
    """MLflow's credential variables of user ``name`` (the admin's, or one of USERS)."""
    password = VALUES["MLFLOW_ADMIN_PASSWORD"] if name == "admin" else USERS[name]
    return {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": password}


def argv(spec: dict[str, Any]) -> list[str]:
    """A service's process: its entrypoint, if it has one, then its command."""
    return [*spec.get("entrypoint", []), *spec["command"]]


class Cluster:
    """The whole topology, started; `close` stops it and removes the hosts."""

    def __init__(self, worker_cpus: int = 1) -> None:
        self.worker_cpus = worker_cpus  # each worker host's CPUs as Ray counts them
        self.dir = Path(tempfile.mkdtemp(prefix="hpo-cluster-"))
        self.dir.chmod(0o755)  # the postgres user keeps its data below it
        self.hosts = Hosts(HOST_NAMES, self.dir)
        self.published: list[Published] = []
        try:
            self._start()
        except BaseException as exc:
            tails = self.tails()
            self.close()
            raise RuntimeError(f"the cluster did not start: {exc}\n{tails}") from exc

    def log(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def tails(self, lines: int = 15) -> str:
        """The last lines of every host's log, for a failure's message."""
        out = []
        for log in sorted(self.dir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    def _start(self) -> None:
        h = self.hosts
        self._postgres()
        # The S3 stand-in, the MLflow server and the Ray head start together (the compose
        # file orders only the server after PostgreSQL): their start-ups wait as much as
        # they compute, so together they take little more than the slowest alone.
        h.start(
            "artifacts", ["moto_server", "-H", "0.0.0.0", "-p", "8333"], _env({}), self.log("s3")
        )
        self._start_mlflow()
        head = service("ray-head")
        h.start("ray-head", head["command"], _env(head), self.log("ray-head"))
        self._wait_http(f"http://{h.address['artifacts']}:8333/", "the S3 stand-in")
        self._bucket()
        self.wait_mlflow()
        self.wait_ray(nodes=1)
        self.start_worker("worker-1")  # together: 19 s for both, 31-33 s one by one
        self.start_worker("worker-2")
        self.wait_ray(nodes=3)
        self._publish()
        self._users()  # through the published port, as the admin would
        # The laptop sees the head's dashboard and the MLflow server, as published.
        h.confine("laptop", [("ray-head", 8265), ("mlflow", 5000)])

    def _publish(self) -> None:
        """The compose file's `ports:` ("HOST_ADDRESS:HOST_PORT:CONTAINER_PORT")."""
        services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
        for name in services:
            for port in service(name).get("ports", []):
                address, outside, inside = port.split(":")
                target = (self.hosts.address[name], int(inside))
                self.published.append(Published((address, int(outside)), target))

    def url(self, user: str = "admin") -> str:
        """The MLflow server through the published port, by the name the compose file allows
        (127.0.0.1:MLFLOW_PORT), with ``user``'s credentials in it."""
        login = as_user(user)
        credentials = f"{user}:{login['MLFLOW_TRACKING_PASSWORD']}@"
        return f"http://{credentials}127.0.0.1:{VALUES['MLFLOW_PORT']}"

    def client(self, user: str = "admin"):
        """An MlflowClient as a user on the Docker host has one (the admin's by default)."""
        from mlflow.tracking import MlflowClient

        import hpo.tracking.writer  # noqa: F401 - downloads through the server, as hpo's own do

        return MlflowClient(self.url(user))

    def auth(self):
        """MLflow's client of users and permissions, as the admin."""
        from mlflow.server.auth.client import AuthServiceClient

        return AuthServiceClient(self.url("admin"))

    def _users(self) -> None:
        for name, password in USERS.items():
            self.auth().create_user(name, password)

    def _start_mlflow(self) -> None:
        spec = service("mlflow")
        # The settings file goes where the container's own /tmp would be: the host's folder.
        config = str(self.hosts.home("mlflow") / "basic_auth.ini")
        env = _env(spec, MLFLOW_AUTH_CONFIG_PATH=config)
        self.hosts.start("mlflow", argv(spec), env, self.log("mlflow"))

    def start_mlflow(self) -> None:
        self._start_mlflow()
        self.wait_mlflow()

    def start_head(self) -> None:
        head = service("ray-head")
        self.hosts.start("ray-head", head["command"], _env(head), self.log("ray-head"))
        self.wait_ray(nodes=1)

    def start_worker(self, host: str) -> None:
        spec = service("ray-worker")
        argv = [*spec["command"], f"--num-cpus={self.worker_cpus}"]
        self.hosts.start(host, argv, _env(spec), self.log(host))

    def _postgres(self) -> None:
        """The postgres service: Debian's PostgreSQL with the user, password and database
        the compose file gives the image, run in the foreground as the image runs it."""
        h, data = self.hosts, self.dir / "pg"
        data.mkdir()
        shutil.chown(data, "postgres")
        spec = service("postgres")["environment"]
        password = data / "password"
        password.write_text(spec["POSTGRES_PASSWORD"])
        shutil.chown(password, "postgres")
        as_pg, env = ["runuser", "-u", "postgres", "--"], _env({})
        init = [pg("initdb"), "-D", str(data / "d"), "-U", spec["POSTGRES_USER"]]
        init += ["--auth=scram-sha-256", f"--pwfile={password}"]
        done = h.run("postgres", [*as_pg, *init], env)
        assert done.returncode == 0, done.stderr
        with open(data / "d" / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {h.gateway.rsplit('.', 1)[0]}.0/24 scram-sha-256\n")
        server = [pg("postgres"), "-D", str(data / "d"), "-p", "5432", "-k", str(data)]
        server += ["-c", f"listen_addresses={h.address['postgres']}"]
        h.start("postgres", [*as_pg, *server], env, self.log("postgres"))
        ready = ["pg_isready", "-h", "postgres", "-p", "5432"]
        deadline = time.monotonic() + 60
        while h.run("postgres", ready, env).returncode != 0:  # the compose healthcheck
            assert time.monotonic() < deadline, "PostgreSQL did not become ready in 60 s"
            time.sleep(0.3)
        create = ["createdb", "-h", "postgres", "-U", spec["POSTGRES_USER"], spec["POSTGRES_DB"]]
        done = h.run("postgres", create, {**env, "PGPASSWORD": spec["POSTGRES_PASSWORD"]})
        assert done.returncode == 0, done.stderr

    def artifact_store(self):
        """A boto3 client of the S3 store, as the server holds its keys."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.hosts.address['artifacts']}:8333",
            aws_access_key_id=VALUES["S3_ACCESS_KEY"],
            aws_secret_access_key=VALUES["S3_SECRET_KEY"],
            region_name="us-east-1",
        )

    def _bucket(self) -> None:
        """The create-bucket job's work, with boto3 in place of the aws CLI image."""
        self.artifact_store().create_bucket(Bucket=VALUES["S3_BUCKET"])

    def _wait_http(self, url: str, what: str, seconds: float = 120, headers=None) -> None:
        import urllib.request

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(
                    urllib.request.Request(url, headers=headers or {}), timeout=2
                )
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"{what} did not answer at {url} within {seconds} s")

    def wait_mlflow(self) -> None:
        url = f"http://{self.hosts.address['mlflow']}:5000/health"
        self._wait_http(url, "the MLflow server", headers={"Host": "mlflow:5000"})

    def wait_ray(self, nodes: int, seconds: float = 120) -> None:
        """Until the compose file's healthcheck of the head lists ``nodes`` active nodes.
        Polled through the head's dashboard (a request), the healthcheck run once the
        dashboard counts them: each `ray status` is a whole process importing Ray."""
        head = service("ray-head")
        check = head["healthcheck"]["test"][1:]  # ["ray", "status", "--address", ...]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._alive_nodes() >= nodes:
                done = self.hosts.run("ray-head", check, _env(head), timeout=60)
                active = done.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
                if done.returncode == 0 and active.count("node_") >= nodes:
                    return
            time.sleep(1.0)
        raise RuntimeError(f"the Ray cluster did not reach {nodes} nodes within {seconds} s")

    def _alive_nodes(self) -> int:
        """The nodes the head's dashboard knows ALIVE (0 while it does not answer)."""
        listed = self._dashboard("api/v0/nodes?limit=100")
        rows = listed["data"]["result"]["result"] if listed else []
        return sum(node.get("state") == "ALIVE" for node in rows)

    def job_state(self, job: str) -> str | None:
        """A submitted job's status as the head's dashboard has it (None when it does not
        answer)."""
        found = self._dashboard(f"api/jobs/{job}")
        return found.get("status") if found else None

    def _dashboard(self, path: str) -> Any:
        """GET ``path`` of the head's dashboard with the cluster's token: its JSON, or None."""
        import urllib.request

        url = f"http://{self.hosts.address['ray-head']}:8265/{path}"
        token = {"Authorization": f"Bearer {VALUES['RAY_AUTH_TOKEN']}"}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=token), timeout=5) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None

    def sweep_env(self, user: str = "alice") -> dict[str, str]:
        """The environment the compose file gives the sweep service, run by ``user``."""
        return _env(service("sweep"), **as_user(user))

    def launch(self, args: list[str], host: str = "driver", user="alice") -> subprocess.Popen:
        """`docker compose run --rm sweep ARGS` on ``host`` by ``user``, from the
        repository, in the background; its output goes to the host's log."""
        spec = service("sweep")
        log = open(self.log(host), "w")
        with log:
            return subprocess.Popen(
                self.hosts.on(host, [*spec["entrypoint"], *args]),
                env=self.sweep_env(user),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def sweep(
        self, args: list[str], host: str = "driver", timeout: float = 300, user: str = "alice"
    ) -> str:
        """`docker compose run --rm sweep ARGS` to its end: its output. Like --rm,
        whatever it left running on the host (its Ray node) goes with it."""
        proc = self.launch(args, host, user)
        try:
            code = proc.wait(timeout=timeout)
        finally:
            self.hosts.kill(host)
        output = self.log(host).read_text()
        assert code == 0, f"the sweep exited with {code}:\n{output[-4000:]}"
        return output

    def hpo(
        self,
        host: str,
        args: list[str],
        token: str = VALUES["RAY_AUTH_TOKEN"],
        timeout: float = 240,
        user: str = "alice",
    ) -> subprocess.CompletedProcess:
        """`hpo ARGS` on ``host`` as ``user``'s machine outside the cluster runs it: no Ray
        node, the cluster's token in RAY_AUTH_TOKEN, from the repository."""
        env = _env({}, RAY_AUTH_TOKEN=token, **as_user(user))
        return self.hosts.run(host, ["hpo", *args], env, timeout=timeout, cwd=ROOT)

    def query(self, code: str, host: str = "driver") -> Any:
        """Run ``code`` (Python that prints JSON) on ``host`` against the MLflow server."""
        env = _env({}, MLFLOW_TRACKING_URI="http://mlflow:5000", **as_user("admin"))
        done = self.hosts.run(host, [sys.executable, "-c", code], env, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        for port in self.published:
            port.close()
        self.hosts.close()
        shutil.rmtree(self.dir, ignore_errors=True)
