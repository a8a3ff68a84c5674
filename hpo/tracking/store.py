"""Where a sweep's records live: the tracking URI, and what a local sqlite store needs
(artifacts beside the database file, write-ahead logging)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

# A tracking server that proxies an S3 store tells MLflow (3.15 and later) clients to
# download artifacts straight from the store, at presigned URLs naming the store as the
# server reaches it: from anywhere the store is not reachable (a laptop, a host outside the
# compose network) downloads then fail. hpo's files are small; they go through the server,
# which every client reaches. A user who wants the direct path sets this to true.
os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def is_server(tracking_uri: str) -> bool:
    """Whether the store is a tracking server (reached over HTTP)."""
    return tracking_uri.startswith(("http://", "https://"))


def resolve_tracking_uri(uri: str | None) -> str:
    """The tracking URI given, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a sqlite tracking URI, else None."""
    if urlparse(tracking_uri).scheme != "sqlite":
        return None
    return Path(tracking_uri[len("sqlite:///") :]).resolve()


def artifact_root(tracking_uri: str) -> str | None:
    """For a sqlite store, keep artifacts beside the database file (``mlartifacts/``)."""
    db_path = sqlite_path(tracking_uri)
    return None if db_path is None else (db_path.parent / "mlartifacts").as_uri()


# Write-ahead logging needs memory shared by every process using the file: one host only.
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs")


def use_write_ahead_log(db_path: Path, mounts: list[str] | None = None) -> bool:
    """Switch a sqlite store from sqlite's default rollback journal to write-ahead logging;
    whether the store now uses it.

    In WAL mode a commit appends to the log with one fsync instead of the rollback
    journal's several, so MLflow's three transactions per trial cost less, the more so the
    slower the disk's fsync (`benchmarks/overhead.py` measures the floor both ways). And
    readers no longer block the writer, so the MLflow UI browsing the store during a sweep
    cannot hold the sweep's writes up. The mode is a property of the file, kept by sqlite
    for every later client (``mlflow ui``, ``mlflow server``). A store on a network file
    system is left as it is. ``mounts``: the lines of /proc/self/mounts, read when not
    given.
    """
    import sqlite3

    if _filesystem_type(db_path, mounts) in NETWORK_FILESYSTEMS:
        return False
    connection = None
    try:
        connection = sqlite3.connect(db_path, timeout=1.0)
        return connection.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    except sqlite3.Error as exc:  # e.g. another process mid-write: the store keeps its mode
        log.info("kept the journal mode of %s (%s)", db_path, exc)
        return False
    finally:
        if connection is not None:
            connection.close()


def _filesystem_type(path: Path, mounts: list[str] | None) -> str | None:
    """The type of the file system holding ``path`` (Linux), or None when unknown."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            return None
    best, kind = "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")  # a space in a mount point is escaped
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind
