"""MLflow tracking: a parent run per sweep, a child run per trial, written by one thread.

The driver never calls MLflow for a trial directly: it records what happened into per-run
buffers, and a single writer thread turns each buffer into as few calls as MLflow allows
(`create_run`, `log_batch` of at most 1000 metrics, artifacts, `set_terminated`). With
the embedded sqlite store that thread is the only writer, so "database is locked" cannot
happen, and a trial that reports 100 epochs costs a handful of calls, not 100. A local
sqlite store is switched to write-ahead logging, so readers (the MLflow UI) do not hold
that writer up.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from hpo.core.checks import first_line
from hpo.strategies.base import TrialState

# A tracking server that proxies an S3 store tells MLflow (3.15 and later) clients to
# download artifacts straight from the store, at presigned URLs naming the store as the
# server reaches it: from anywhere the store is not reachable (a laptop, a host outside the
# compose network) downloads then fail. hpo's files are small; they go through the server,
# which every client reaches. A user who wants the direct path sets this to true.
os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
FLUSH_SECONDS = 0.25
# A trial's reports come in bursts: woken from idle, the writer waits this long so that
# each run's burst goes out as one batched call.
BURST_SECONDS = 0.02
# A tracking server that stops answering: everything stays buffered and is retried, with
# back-off, for this long; then the sweep stops (and can be resumed).
OUTAGE_LIMIT_SECONDS = 120.0
RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)
# Our own retries replace the MLflow client's (7 retries with exponential back-off, 120 s
# timeouts), under which one call to a server that is down could block for minutes.
# The client also prints a "View run" line per finished run for a server: not per trial.
HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
# MLflow's per-call limits for log_batch.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
# Runs written at once to a tracking server, each by its own thread: a server takes
# concurrent writers, and one writer waiting on each request in turn falls behind a few
# dozen workers of short trials (see docs/benchmarks.md, the cluster benchmark). A local
# store (sqlite: one writer at a time; files) is written by one thread.
SERVER_WRITERS = 8
# Ended trials not yet terminated in the store beyond which the driver starts no new trial
# until the record catches up: the lag from a trial's end to its record stays bounded (a
# few seconds even at a server's pace), and so does what a crashed driver could lose. A
# local store records a run in milliseconds: a small bound there would only make the
# driver wait on every flush (the overhead benchmark's no-op trials: 34 ms a trial at 16,
# 16-22 ms unbounded), so its bound is on memory only.
BACKLOG_RUNS = 2 * SERVER_WRITERS
LOCAL_BACKLOG_RUNS = 1000
# MLflow's limits on keys and values: checked here, before a sweep, never met mid-sweep.
PARAM_VALUE_LIMIT, TAG_VALUE_LIMIT, KEY_LIMIT = 6000, 8000, 250
_KEY_CHARACTERS = re.compile(r"[/\w.\- :]*")

SWEEP = -1  # buffer key of the parent run
# The MLflow UI opens an experiment of this kind in its model-training view (runs, charts,
# models), not the GenAI one (traces, evaluation runs) it guesses for an untagged one.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}

RUN_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.FAILED: "FAILED",
    TrialState.PRUNED: "KILLED",
}


class TrackingUnavailable(RuntimeError):
    """The tracking server was unreachable for longer than the sweep waits."""


class TrackingRefused(RuntimeError):
    """The tracking server refused hpo's requests for the name it was reached by."""


def _refused_host(exc: BaseException) -> bool:
    """Whether ``exc`` is MLflow 3's answer to an unknown Host header (DNS-rebinding guard)."""
    from mlflow.exceptions import MlflowException

    return (
        isinstance(exc, MlflowException)
        and exc.get_http_status_code() == 403
        and "Host header" in str(exc)
    )


def is_transient(exc: BaseException) -> bool:
    """True for errors of a tracking server that is down or restarting: worth retrying.

    A request the server answered with a 4xx (a bad value, a missing run) and an error of
    this process (a misconfiguration) are final.
    """
    import requests
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, RestException):  # the server answered with an error
        return exc.get_http_status_code() >= 500
    if isinstance(exc, MlflowException):
        message = str(exc.message)
        if not message.startswith("API request to"):
            return False
        # The client gives up on a connection it cannot make as "failed with exception".
        no_answer = "failed with exception" in message or "failed with timeout" in message
        return no_answer or exc.get_http_status_code() >= 500
    if isinstance(exc, requests.HTTPError):  # an artifact upload the server refused
        return exc.response is not None and exc.response.status_code >= 500
    return isinstance(
        exc, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError
    )


def resolve_tracking_uri(uri: str | None) -> str:
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
    journal's several: MLflow's three transactions per trial cost 1 to 8 ms less on this
    machine's disk, depending on its fsync latency (`benchmarks/overhead.py` measures the
    floor both ways). And readers no longer block the writer, so the MLflow
    UI browsing the store during a sweep cannot hold the sweep's writes up. The mode is a
    property of the file, kept by sqlite for every later client (``mlflow ui``, ``mlflow
    server``). A store on a network file system is left as it is. ``mounts``: the lines
    of /proc/self/mounts, read when not given.
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


def now_ms() -> int:
    return int(time.time() * 1000)


def check_name(kind: str, name: Any) -> None:
    """Raise ValueError unless MLflow accepts ``name`` as a param or metric key."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a {kind} name must be a non-empty string, got {name!r}")
    if len(name) > KEY_LIMIT:
        raise ValueError(
            f"a {kind} name must have at most {KEY_LIMIT} characters (MLflow's limit), got "
            f"{len(name)}: {name[:60]!r}..."
        )
    if not _KEY_CHARACTERS.fullmatch(name):
        raise ValueError(
            f"a {kind} name may only contain letters, digits, _ - . / : and spaces (MLflow's "
            f"rule), got {name!r}"
        )
    if posixpath.normpath(name) != name or name.startswith(("/", "..")):
        raise ValueError(
            f"a {kind} name must be a plain relative path (MLflow stores it as one), got {name!r}"
        )


def param_text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= PARAM_VALUE_LIMIT else text[: PARAM_VALUE_LIMIT - 3] + "..."


def truncated_params(params: dict[str, Any]) -> dict[str, str]:
    """The ``hpo.truncated`` tag for params whose values exceed MLflow's limit (else empty)."""
    long = [
        f"{k} ({len(str(v))} chars)" for k, v in params.items() if len(str(v)) > PARAM_VALUE_LIMIT
    ]
    if not long:
        return {}
    note = f"param values cut to {PARAM_VALUE_LIMIT} characters: " + ", ".join(long)
    return {"hpo.truncated": note[:TAG_VALUE_LIMIT]}


@dataclass
class _RunBuffer:
    """What is waiting to be written for one trial's run."""

    number: int
    start_ms: int
    run_name: str
    create_tags: dict[str, str]
    run_id: str | None = None  # set once the run exists
    create_sent: bool = False  # a create_run went out; it may have succeeded unanswered
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, ts, step
    artifacts: list[tuple[str, bytes]] = field(default_factory=list)
    end: tuple[str, int] | None = None  # (MLflow status, end time ms)

    def dirty(self) -> bool:
        return bool(
            self.run_id is None
            or self.params
            or self.tags
            or self.metrics
            or self.artifacts
            or self.end
        )

    def take(self) -> _RunBuffer:
        """A copy holding everything pending, which this buffer then no longer holds."""
        item = dataclasses.replace(self)
        self.params, self.tags, self.metrics, self.artifacts, self.end = {}, {}, [], [], None
        return item

    def put_back(self, item: _RunBuffer) -> None:
        """Put the unwritten parts of ``item`` in front of whatever was added since."""
        self.params = {**item.params, **self.params}
        self.tags = {**item.tags, **self.tags}
        self.metrics = item.metrics + self.metrics
        self.artifacts = item.artifacts + self.artifacts
        self.end = self.end or item.end


class Tracker:
    """Writes one sweep to MLflow.

    Parameters
    ----------
    tracking_uri : str
        Any MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``).
    experiment_name : str
        Created when missing.
    outage_limit : float
        Seconds a tracking server may stay unreachable mid-sweep (writes are buffered and
        retried meanwhile) before `check` raises `TrackingUnavailable`.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_name: str,
        *,
        outage_limit: float = OUTAGE_LIMIT_SECONDS,
    ) -> None:
        from mlflow.tracking import MlflowClient

        if tracking_uri.startswith(("http://", "https://")):
            for key, value in HTTP_SETTINGS.items():
                os.environ.setdefault(key, value)
        self.tracking_uri = tracking_uri
        self.outage_limit = outage_limit
        self._outage_since: float | None = None
        self._retries = 0
        self.client = MlflowClient(tracking_uri)
        try:
            self.experiment_id = self._experiment(experiment_name)
        except Exception as exc:
            if _refused_host(exc):
                host = urlparse(tracking_uri).netloc
                raise TrackingRefused(
                    f"the tracking server at {tracking_uri} refuses the Host header {host!r} "
                    "(MLflow 3 answers 403 to names it was not configured for): add it to the "
                    "server's --allowed-hosts, or reach the server by a name it allows"
                ) from exc
            if not is_transient(exc):
                raise
            raise TrackingUnavailable(
                f"cannot reach the tracking server at {tracking_uri}: {first_line(exc)}"
            ) from exc
        db_path = sqlite_path(tracking_uri)
        if db_path is not None:  # the schema exists now: _experiment opened the store
            use_write_ahead_log(db_path)
        self.sweep_id: str | None = None
        self._buffers: dict[int, _RunBuffer] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._error: BaseException | None = None
        self._writer: threading.Thread | None = None
        self._artifact_uris: dict[str, str] = {}
        self._unrecorded: set[int] = set()  # trials ended here, not yet terminated there
        self._writers = None  # against a server: a thread pool writing runs side by side
        if tracking_uri.startswith(("http://", "https://")):
            from concurrent.futures import ThreadPoolExecutor

            self._writers = ThreadPoolExecutor(SERVER_WRITERS, thread_name_prefix="mlflow-write")
        self._backlog_limit = BACKLOG_RUNS if self._writers else LOCAL_BACKLOG_RUNS

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            return self.client.create_experiment(
                name, artifact_location=artifact_root(self.tracking_uri), tags=EXPERIMENT_TAGS
            )
        for key, value in EXPERIMENT_TAGS.items():
            if found.tags.get(key) != value:  # an experiment made before hpo set it
                self.client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id

    # -- the sweep (parent run) ----------------------------------------------------------
    def start_sweep(self, *, run_name: str, tags: dict[str, str], params: dict[str, Any]) -> str:
        """Create the parent run, then start the writer thread (before it, nothing else writes)."""
        from mlflow.entities import Param

        run = self.client.create_run(
            self.experiment_id,
            start_time=now_ms(),
            tags={"hpo.sweep": "true", **tags},
            run_name=run_name,
        )
        self.sweep_id = run.info.run_id
        self._buffers[SWEEP] = _RunBuffer(
            number=SWEEP, start_ms=0, run_name=run_name, create_tags={}, run_id=self.sweep_id
        )
        items = [Param(k, param_text(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS):
            self.client.log_batch(self.sweep_id, params=items[i : i + MAX_PARAMS])
        self._start_writer()
        return self.sweep_id

    def resume_sweep(self, sweep_id: str) -> None:
        """Reopen an earlier sweep's parent run (its params stay as they were)."""
        run = self.client.get_run(sweep_id)
        self.sweep_id = sweep_id
        self._buffers[SWEEP] = _RunBuffer(
            number=SWEEP, start_ms=0, run_name=run.info.run_name, create_tags={}, run_id=sweep_id
        )
        # The closing tags of the earlier run no longer hold; the new close writes its own.
        for key in ("hpo.interrupted", "hpo.timed_out", "hpo.stopped_by", "hpo.error"):
            if key in run.data.tags:
                self.client.delete_tag(sweep_id, key)
        resumed = int(run.data.tags.get("hpo.resumed", "0")) + 1
        self.client.set_tag(sweep_id, "hpo.resumed", str(resumed))
        self.client.update_run(sweep_id, status="RUNNING")
        self._start_writer()

    @property
    def sweep_name(self) -> str:
        """The parent run's name."""
        return self._buffers[SWEEP].run_name

    def _start_writer(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="mlflow-writer", daemon=True)
        self._writer.start()

    def end_sweep(self, *, status: str, tags: dict[str, str], artifacts: dict[str, bytes]) -> None:
        """Flush every trial, stop the writer, then close the parent run."""
        self.close()
        with self._lock:
            buf = self._buffers[SWEEP]
            buf.tags.update(tags)
            buf.artifacts.extend(artifacts.items())
            buf.end = (status, now_ms())
        # The parent's last writes get the same patience with the server as the trials'.
        while True:
            try:
                self._flush()
                return
            except _Outage as exc:
                self._wait_out(exc.cause)

    # -- trials (child runs), called from the driver thread --------------------------------
    def start_trial(self, number: int, flat_params: dict[str, Any], tags: dict[str, str]) -> None:
        buf = _RunBuffer(
            number=number,
            start_ms=now_ms(),
            run_name=f"trial-{number}",
            create_tags={
                "mlflow.parentRunId": self.sweep_id or "",
                "hpo.trial": str(number),
                "hpo.state": TrialState.RUNNING.value,
                **tags,
            },
        )
        buf.params = {k: param_text(v) for k, v in flat_params.items()}
        with self._lock:
            self._buffers[number] = buf
        self._wake.set()

    def adopt_trial(self, number: int, run_id: str, artifact_uri: str) -> None:
        """Write trial ``number`` of a resumed sweep into its existing run."""
        buf = _RunBuffer(
            number=number, start_ms=0, run_name=f"trial-{number}", create_tags={}, run_id=run_id
        )
        self._artifact_uris[run_id] = artifact_uri
        with self._lock:
            self._buffers[number] = buf

    def log_metrics(self, number: int, step: int, metrics: dict[str, float]) -> None:
        ts = now_ms()
        with self._lock:
            self._buffers[number].metrics.extend((k, v, ts, step) for k, v in metrics.items())

    def log_sweep_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Stepped metrics of the parent run (best objective after each finished trial)."""
        self.log_metrics(SWEEP, step, metrics)

    def log_artifacts(self, number: int, files: dict[str, bytes]) -> None:
        """Files for trial ``number``'s run (path in its artifacts -> content)."""
        with self._lock:
            self._buffers[number].artifacts.extend(files.items())
        self._wake.set()

    def set_tags(self, number: int, tags: dict[str, str]) -> None:
        with self._lock:
            self._buffers[number].tags.update(tags)

    def end_trial(
        self,
        number: int,
        state: TrialState,
        *,
        objectives: dict[str, float] | None = None,
        error: str | None = None,
        tags: dict[str, str] | None = None,
        artifacts: dict[str, bytes] | None = None,
        status: str | None = None,
    ) -> None:
        """Record the trial's outcome (``objectives``: its value by metric name, "objective"
        for one); ``status`` overrides the MLflow run status of its state."""
        ts = now_ms()
        with self._lock:
            self._unrecorded.add(number)
            buf = self._buffers[number]
            buf.tags.update({"hpo.state": state.value, **(tags or {})})
            if error is not None:
                buf.tags["hpo.error"] = error[:5000]
            for name, value in (objectives or {}).items():  # at step 0: one value each
                buf.metrics.append((name, value, ts, 0))
            buf.artifacts.extend((artifacts or {}).items())
            buf.end = (status or RUN_STATUS[state], ts)
        self._wake.set()

    def run_id(self, number: int) -> str | None:
        with self._lock:
            buf = self._buffers.get(number)
            return buf.run_id if buf else None

    def check(self) -> None:
        """Re-raise in the driver an error the writer thread hit."""
        if isinstance(self._error, TrackingUnavailable):
            raise self._error
        if self._error is not None:
            raise RuntimeError(f"writing to MLflow failed: {self._error}") from self._error

    def close(self) -> None:
        """Write everything buffered and stop the writer thread."""
        if self._writer is None:
            return
        self._closing = True
        self._wake.set()
        self._writer.join()
        self._writer = None
        if self._writers is not None:
            self._writers.shutdown()
        self.check()

    # -- the writer thread ---------------------------------------------------------------
    def _write_loop(self) -> None:
        try:
            while True:
                # Set already: events came in while the last flush was writing, so the
                # writer is behind and their bursts are in; pausing would add to its backlog.
                behind = self._wake.is_set()
                self._wake.wait(FLUSH_SECONDS)
                if not behind:  # let the burst that woke the writer accumulate
                    time.sleep(BURST_SECONDS)
                self._wake.clear()
                # Read before flushing: close() sets it after its last write, so this flush
                # then carries everything.
                closing = self._closing
                try:
                    self._flush()
                except _Outage as exc:
                    self._wait_out(exc.cause)
                    continue  # everything is buffered again: retry, closing or not
                if closing:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the driver by check()
            self._error = exc

    def _wait_out(self, cause: BaseException) -> None:
        """Back off while the server is unreachable; raise once that lasted too long."""
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since, self._retries = now, 0
            log.warning(
                "the tracking server at %s does not answer (%s); results are buffered and "
                "retried for up to %g s",
                self.tracking_uri,
                first_line(cause),
                self.outage_limit,
            )
        down = now - self._outage_since
        if down > self.outage_limit:
            raise TrackingUnavailable(
                f"the tracking server at {self.tracking_uri} did not answer for {down:.0f} s "
                f"(last error: {first_line(cause)}); the sweep stopped. Once the server is "
                f"back, continue it with: hpo resume {self.sweep_id} --tracking-uri "
                f"{self.tracking_uri}"
            ) from cause
        time.sleep(RETRY_SECONDS[min(self._retries, len(RETRY_SECONDS) - 1)])
        self._retries += 1

    def _flush(self) -> None:
        """Write every dirty buffer; on a transient failure put the unwritten rest back in the
        buffers and raise `_Outage`."""
        with self._lock:
            work = [buf.take() for buf in self._buffers.values() if buf.dirty()]
        if self._writers is not None and len(work) > 1:
            self._write_concurrently(work)
        for i, item in enumerate(work):
            try:
                self._write(item)  # what is left of it (all of it without a pool)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._requeue(work[i:])
                raise _Outage(exc) from exc
            if self._outage_since is not None:
                log.warning(
                    "the tracking server at %s answers again after %.0f s; writing what "
                    "was buffered",
                    self.tracking_uri,
                    time.monotonic() - self._outage_since,
                )
                self._outage_since = None

    def _write_concurrently(self, work: list[_RunBuffer]) -> None:
        """Write the runs of ``work`` on the pool's threads, one run per thread at a time
        (a run's own writes stay in order). A run whose writing failed keeps what was not
        written: the sequential pass after this retries it and handles the failure."""
        for done in [self._writers.submit(self._write, item) for item in work]:
            done.exception()  # wait; the failure is met again in the sequential pass

    def _write(self, item: _RunBuffer) -> None:
        """Write one run's pending changes, clearing each part of ``item`` once it is written
        (so a retry after a failure writes only the rest)."""
        if item.run_id is None:
            # A create_run cut off by an outage may have made the run all the same: look for
            # it before making another, so a trial never gets two runs.
            run = self._created_run(item.number) if item.create_sent else None
            if run is None:
                with self._lock:
                    self._buffers[item.number].create_sent = True
                # Tags known by now (a short trial may have ended already) go in with the
                # run, saving an update of each later.
                run = self.client.create_run(
                    self.experiment_id,
                    start_time=item.start_ms,
                    tags={**item.create_tags, **item.tags},
                    run_name=item.run_name,
                )
                item.tags = {}
            item.run_id = run.info.run_id
            self._artifact_uris[item.run_id] = run.info.artifact_uri
            folder = local_artifact_dir(run.info.artifact_uri)
            if folder is not None:  # so that a worker on this machine can tell it is here
                folder.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._buffers[item.number].run_id = item.run_id
        self._log_batch(item.run_id, params=item.params, tags=item.tags, metrics=item.metrics)
        item.params, item.tags, item.metrics = {}, {}, []
        self._log_artifacts(item.run_id, item.artifacts)  # empties the list as it uploads
        if item.end is not None:
            self.client.set_terminated(item.run_id, status=item.end[0], end_time=item.end[1])
            item.end = None
            with self._lock:
                self._unrecorded.discard(item.number)

    def behind(self) -> bool:
        """Whether the record is behind by `BACKLOG_RUNS` ended trials (a local store:
        `LOCAL_BACKLOG_RUNS`); the driver then waits before starting more, and the writer is
        told to hurry."""
        with self._lock:
            late = len(self._unrecorded) >= self._backlog_limit
        if late:
            self._wake.set()
        return late

    def _created_run(self, number: int) -> Any:
        """The child run of trial ``number`` if the server made it, else None."""
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`mlflow.parentRunId` = '{self.sweep_id}' and tags.`hpo.trial` = '{number}'"
            ),
            max_results=1,
        )
        return found[0] if found else None

    def _requeue(self, items: list[_RunBuffer]) -> None:
        with self._lock:
            for item in items:
                self._buffers[item.number].put_back(item)

    def _log_batch(
        self,
        run_id: str,
        *,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        metrics: list[tuple[str, float, int, int]] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        ps = [Param(k, v) for k, v in (params or {}).items()]
        ts = [RunTag(k, v) for k, v in (tags or {}).items()]
        ms = [Metric(k, v, t, s) for k, v, t, s in (metrics or [])]
        while ps or ts or ms:
            self.client.log_batch(
                run_id, params=ps[:MAX_PARAMS], tags=ts[:MAX_TAGS], metrics=ms[:MAX_METRICS]
            )
            ps, ts, ms = ps[MAX_PARAMS:], ts[MAX_TAGS:], ms[MAX_METRICS:]

    def _log_artifacts(self, run_id: str | None, artifacts: list[tuple[str, bytes]]) -> None:
        """Store ``artifacts`` (name, content) in the run's artifact store, removing each
        from the list once stored (so a retry after a failure stores only the rest)."""
        if not artifacts or run_id is None:
            return
        # The client would look the run up in the store for every call; the run's artifact
        # URI is all it needs, and we have it from create_run.
        uri = self._artifact_uris.get(run_id) or self.client.get_run(run_id).info.artifact_uri
        write_artifacts(uri, self.tracking_uri, artifacts)

    def artifact_location(self, number: int) -> str | None:
        """Trial ``number``'s artifact URI once its run exists (a worker that can reach it
        stores its files there itself), else None."""
        with self._lock:
            buf = self._buffers.get(number)
            run_id = buf.run_id if buf else None
        return None if run_id is None else self._artifact_uris.get(run_id)


def write_artifacts(uri: str, tracking_uri: str, artifacts: list[tuple[str, bytes]]) -> None:
    """Store ``artifacts`` (name, content) under artifact URI ``uri``, removing each from the
    list once stored. Used by the tracker, and by a worker that can reach the store."""
    folder = local_artifact_dir(uri)
    if folder is not None:
        # A local store is a folder: write each file in place, without the repository's
        # temporary copy (that copy cost as much as a tenth of a trial's MLflow writes).
        while artifacts:
            name, content = artifacts[0]
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            partial.write_bytes(content)
            partial.replace(target)  # never a half-written file under its name
            artifacts.pop(0)
        return
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(uri, tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="hpo-artifacts-") as tmp:
        while artifacts:
            name, content = artifacts[0]
            path = Path(tmp, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            # A name with folders (model/MLmodel) keeps them in the store.
            repo.log_artifact(str(path), posixpath.dirname(name) or None)
            path.unlink()
            artifacts.pop(0)


def read_artifact(uri: str, tracking_uri: str, name: str) -> bytes | None:
    """The content of artifact ``name`` under artifact URI ``uri``, or None when there is
    no such file (or the store cannot be read from here)."""
    folder = local_artifact_dir(uri)
    if folder is not None:
        path = folder / name
        return path.read_bytes() if path.is_file() else None
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(uri, tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="hpo-artifacts-") as tmp:
        try:
            return Path(repo.download_artifacts(name, dst_path=tmp)).read_bytes()
        except Exception:  # noqa: BLE001 - absent, or not readable: no checkpoint to go on from
            return None


def reachable_store(uri: str, tracking_uri: str) -> bool:
    """Whether this process can write to artifact URI ``uri`` itself: a local folder whose
    experiment folder exists here (not a path on another machine), or artifacts proxied by
    a tracking server. Any other store (S3, ...) needs credentials that only the driver's
    side is known to have."""
    folder = local_artifact_dir(uri)
    if folder is not None:
        return folder.is_dir()  # made by the tracker with the run: on this machine's disk
    proxied = urlparse(uri).scheme == "mlflow-artifacts"
    return proxied and tracking_uri.startswith(("http://", "https://"))


def local_artifact_dir(uri: str) -> Path | None:
    """The folder of a ``file://`` (or plain path) artifact URI; None for any other store."""
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(url2pathname(parsed.path))
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None


class _Outage(Exception):
    """A write failed because the tracking server is unreachable (the cause is attached)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause
