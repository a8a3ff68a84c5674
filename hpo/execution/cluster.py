"""Connecting to Ray: a local cluster started on demand, or an existing one at an address.

What can go wrong at that edge gets one line that says what to do, before any run is
created: an address that does not answer or is not a Ray cluster's (a dashboard's port, an
HTTP address), no Ray node on this machine to join through, a
token that is missing or wrong, a Ray version that differs from the cluster's, a local
cluster that fails to start. Ray's own messages of the attempt (its C++ core retries on
the terminal) go to a log file the error names, not to the user's screen.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ANSWER_SECONDS = 5.0  # how long an address is given to accept a connection (and answer)
GCS_PORT = "the port of the head's GCS (`ray start --head --port`, 6379 by default)"


class ClusterConnectionError(RuntimeError):
    """The Ray cluster could not be reached or started; the message says what to do."""


def connect(address: str | None) -> dict[str, float]:
    """Connect to the Ray cluster at ``address`` (default: $RAY_ADDRESS), or start a local
    one; return its resources."""
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target is None and "ray" not in sys.modules:
        # A local cluster: Ray turns token authentication on by default and warns on the
        # user's screen that it did; asked for explicitly, it does the same silently. Ray
        # reads the mode when imported, so this holds only before its first import.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    elif target is not None:
        use_token_if_available()
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    log = Path(tempfile.gettempdir()) / f"hpo-ray-connect-{os.getpid()}.log"
    if target is not None and not target.startswith("ray://") and target != "auto":
        _check_answers(target)
        _check_gcs(target, log)
        _check_local_node(target)
    # ray.init replaces the SIGTERM handler with one that exits at once: the sweep's own
    # (`hpo run`'s, which ends a sweep as Ctrl-C does; `hpo stop` sends SIGTERM) is put back.
    on_sigterm = _sigterm_handler()
    try:
        with _stderr_to(log):
            # Quiet the cluster's own start-up chatter; errors still surface as exceptions.
            ray.init(
                # Without an address hpo starts a cluster of its own: Ray's default would
                # join the one its current-cluster file names, and wait for it for ever
                # when that cluster is gone (killed, the machine restarted).
                address=target or "local",
                include_dashboard=False,
                logging_level=logging.WARNING,
                configure_logging=True,
            )
    except Exception as exc:
        said = log.read_text(errors="replace") if log.exists() else ""
        raise ClusterConnectionError(_explain(exc, said, target, log)) from exc
    log.unlink(missing_ok=True)
    if on_sigterm is not None:
        signal.signal(signal.SIGTERM, on_sigterm)
    return ray.cluster_resources()


def _sigterm_handler() -> Any:
    """This process's own SIGTERM handler (a Python function), if it has one; None when it
    is not in the main thread, where handlers cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        return None
    handler = signal.getsignal(signal.SIGTERM)
    return handler if callable(handler) else None


TOKEN_FILE = Path.home() / ".ray" / "auth_token"  # where `ray start --head` keeps its token


def cluster_token() -> str | None:
    """The cluster's token where Ray's own clients find it: RAY_AUTH_TOKEN, the file
    RAY_AUTH_TOKEN_PATH names, or Ray's default file."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    for path in (os.environ.get("RAY_AUTH_TOKEN_PATH"), TOKEN_FILE):
        if path and Path(path).is_file():
            return Path(path).read_text().strip() or None
    return None


def use_token_if_available() -> None:
    """Authenticate with a token when there is one, as Ray's own CLI does: with
    RAY_AUTH_MODE unset, a token in RAY_AUTH_TOKEN, in the file RAY_AUTH_TOKEN_PATH names
    or in Ray's default file (~/.ray/auth_token, written by `ray start --head`) turns token
    authentication on. (Ray reads the mode when imported: call this before.)"""
    if "RAY_AUTH_MODE" not in os.environ and cluster_token() is not None:
        os.environ["RAY_AUTH_MODE"] = "token"


def available_resources() -> dict[str, float]:
    """What the connected cluster has free now, summed over its nodes."""
    import ray

    return dict(ray.available_resources())


def node_resources() -> list[dict[str, float]]:
    """The total resources of each live node of the connected cluster."""
    import ray

    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def _check_answers(target: str) -> None:
    if target.startswith(("http://", "https://")):
        raise ClusterConnectionError(
            f"{target} is an HTTP address (the Ray dashboard's, for `ray job submit`); a sweep "
            f"joins the cluster as HOST:PORT: give {GCS_PORT}"
        )
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterConnectionError(
            f"a Ray cluster address is HOST:PORT (e.g. ray-head:6379), got {target!r}"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=ANSWER_SECONDS) as conn:
            web = _speaks_http(conn)
    except OSError as exc:
        raise ClusterConnectionError(
            f"the Ray cluster at {target} does not answer ({exc.strerror or exc}): check the "
            f"address and that its head node runs (`ray start --head --port={port}`)"
        ) from exc
    if web:  # Ray would wait for a GCS there for minutes
        raise ClusterConnectionError(
            f"{target} is a web server (the Ray dashboard's port?), not a Ray cluster: give "
            f"{GCS_PORT}"
        )


def _speaks_http(conn: socket.socket) -> bool:
    """Whether the server answers a request in HTTP/1 (a dashboard, a web server). Ray's
    GCS speaks gRPC, which closes the connection on it. (``conn`` waits ANSWER_SECONDS.)"""
    try:
        conn.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
        return conn.recv(5) == b"HTTP/"
    except OSError:
        return False


def _check_gcs(target: str, log: Path) -> None:
    """One request to the cluster's GCS with this machine's token. Ray's own connection
    retries a refused token for 20 s before saying so, and a port that is not a GCS's for
    minutes; this says the first at once and the second after one attempt."""
    try:  # the client Ray itself opens a node's connection with: not public, so optional
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:
        return  # another Ray: ray.init meets what this would have

    try:
        with _stderr_to(log):
            GcsClient(address=target)
    except AuthenticationError as exc:
        raise ClusterConnectionError(_refused_token(target)) from exc
    except Exception as exc:
        if "Timed out" in str(exc):  # it took a connection but never answered as a GCS
            raise ClusterConnectionError(
                f"no Ray cluster answered at {target} ({exc}): check that it is {GCS_PORT}"
            ) from exc
        # anything else is ray.init's to meet and explain
    finally:
        log.unlink(missing_ok=True)  # what Ray printed of this attempt says no more


def _refused_token(target: str | None) -> str:
    where = (
        "RAY_AUTH_TOKEN"
        if os.environ.get("RAY_AUTH_TOKEN")
        else os.environ.get("RAY_AUTH_TOKEN_PATH")
        or (str(TOKEN_FILE) if TOKEN_FILE.is_file() else None)
    )
    token = f"the one in {where}" if where else "none: no RAY_AUTH_TOKEN, no " + str(TOKEN_FILE)
    return (
        f"the Ray cluster at {target} refused this machine's token ({token}): set "
        f"RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH, or put the cluster's token in {TOKEN_FILE} "
        "(`ray get-auth-token` on the head prints it)"
    )


def _check_local_node(target: str) -> None:
    """A Ray driver joins a cluster through a Ray node on its own machine (Ray waits a
    minute for one, then says only that it failed to connect)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return  # no way to look here; Ray will say what it says
    for comm in proc.glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() == "raylet":
                return
    raise ClusterConnectionError(
        f"no Ray node runs on this machine to reach the cluster at {target} through: start "
        f"one first with `ray start --address={target} --num-cpus=0` (the compose file's "
        "sweep service does)"
    )


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Ray's C++ core writes to file descriptor 2 directly: send it to ``path`` a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


_VERSIONS = re.compile(r"started with:\s*Ray: (\S+)\s*Python: (\S+)")


def _explain(exc: Exception, said: str, target: str | None, log: Path) -> str:
    """One line for a failed ``ray.init``: what went wrong and what to do."""
    text = f"{exc}\n{said}"
    if "InvalidAuthToken" in text or "Unauthenticated" in text:
        return _refused_token(target)
    versions = _VERSIONS.findall(str(exc))
    if "Version mismatch" in str(exc) and len(versions) == 2:
        (ray_there, python_there), (ray_here, python_here) = versions
        return (
            f"the Ray cluster at {target} runs Ray {ray_there} on Python {python_there}, this "
            f"machine Ray {ray_here} on Python {python_here}: a driver must match its cluster; "
            f"install the cluster's versions here or run the sweep from the cluster's image"
        )
    cause = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    if target is None:
        return f"the local Ray cluster did not start ({cause}); Ray's log: {_ray_log(log)}"
    return f"cannot connect to the Ray cluster at {target} ({cause}); Ray's log: {log}"


def _ray_log(fallback: Path) -> Path:
    """The error file of the local cluster's component that failed (the newest non-empty
    .err file of Ray's latest session), else ``fallback``."""
    root = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray"
    logs = root / "session_latest" / "logs"
    errors = [p for p in logs.glob("*.err") if p.stat().st_size > 0] if logs.is_dir() else []
    return max(errors, key=lambda p: p.stat().st_mtime) if errors else fallback
