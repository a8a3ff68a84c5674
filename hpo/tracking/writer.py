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
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from hpo.core.checks import first_line
from hpo.core.trial import TrialState
from hpo.execution.artifacts import local_artifact_dir, write_artifacts
from hpo.tracking.access import TrackingDenied, refusal, without_credentials
from hpo.tracking.outage import (
    OUTAGE_LIMIT_SECONDS,
    OutageWait,
    ServerDown,
    TrackingRefused,
    TrackingUnavailable,
    is_transient,
    refused_host,
)
from hpo.tracking.reader import trial_run
from hpo.tracking.schema import (
    ENDING_TAGS,
    EXPERIMENT_TAGS,
    PARENT_RUN,
    RUN_STATUS,
    TRUE,
    SweepTag,
    TrialTag,
    error_text,
    param_text,
)
from hpo.tracking.store import artifact_root, is_server, sqlite_path, use_write_ahead_log

FLUSH_SECONDS = 0.25
# The sweep's own run (its best value after each trial, a waiting message) is written at most
# this often until it ends: each write costs as much as a trial's, and trials that end a
# few times a second would otherwise bring one at every flush.
SWEEP_FLUSH_SECONDS = 1.0
# A trial's reports come in bursts: woken from idle, the writer waits this long so that
# each run's burst goes out as one batched call.
BURST_SECONDS = 0.02
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
# driver wait on every flush (docs/benchmarks.md, "Figures behind the code's choices"), so
# its bound is on memory only.
BACKLOG_RUNS = 2 * SERVER_WRITERS
LOCAL_BACKLOG_RUNS = 1000
SWEEP = -1  # buffer key of the parent run


def now_ms() -> int:
    return int(time.time() * 1000)


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

        if is_server(tracking_uri):
            for key, value in HTTP_SETTINGS.items():
                os.environ.setdefault(key, value)
        self.tracking_uri = tracking_uri
        self.outage = OutageWait(outage_limit, tracking_uri)
        self.client = MlflowClient(tracking_uri)
        try:
            self.experiment_id = self._experiment(experiment_name)
        except Exception as exc:
            denied = refusal(exc, tracking_uri, f"experiment {experiment_name!r}")
            if denied is not None:
                raise denied from None
            if refused_host(exc):
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
        self._sweep_written = float("-inf")  # time.monotonic() of the sweep run's last write
        self._error: BaseException | None = None
        self._writer: threading.Thread | None = None
        self._artifact_uris: dict[str, str] = {}
        self._unrecorded: set[int] = set()  # trials ended here, not yet terminated there
        self._recorded: set[int] = set()  # trials ended here and terminated there
        self._writers = None  # against a server: a thread pool writing runs side by side
        if is_server(tracking_uri):
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
            tags={SweepTag.SWEEP: TRUE, **tags},
            run_name=run_name,
        )
        self.sweep_id = self.outage.sweep_id = run.info.run_id
        self._buffers[SWEEP] = _RunBuffer(
            number=SWEEP, start_ms=0, run_name=run_name, create_tags={}, run_id=self.sweep_id
        )
        items = [Param(k, param_text(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS):
            self.client.log_batch(self.sweep_id, params=items[i : i + MAX_PARAMS])
        self._start_writer()
        return self.sweep_id

    def resume_sweep(
        self,
        sweep_id: str,
        *,
        tags: dict[str, str] | None = None,
        reopen: Sequence[tuple[str, Collection[str]]] = (),
        close: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Reopen an earlier sweep's parent run (its params stay as they were), with
        ``tags`` changed (a recipe the resume changed). ``reopen``: (run id, its tags) of
        cancelled trials, made RUNNING again to run once more; ``close``: (run id, MLflow
        status) of runs whose trial's end was recorded but whose closing was cut off."""
        for run_id, run_tags in reopen:
            for key in (TrialTag.ERROR, TrialTag.CANCELLED):
                if key in run_tags:
                    self.client.delete_tag(run_id, key)
            self.client.set_tag(run_id, TrialTag.STATE, TrialState.RUNNING.value)
            self.client.update_run(run_id, status="RUNNING")
        for run_id, status in close:
            self.client.set_terminated(run_id, status=status)
        run = self.client.get_run(sweep_id)
        self.sweep_id = self.outage.sweep_id = sweep_id
        self._buffers[SWEEP] = _RunBuffer(
            number=SWEEP, start_ms=0, run_name=run.info.run_name, create_tags={}, run_id=sweep_id
        )
        # The closing tags of the earlier run no longer hold; the new close writes its own.
        for key in ENDING_TAGS:
            if key in run.data.tags:
                self.client.delete_tag(sweep_id, key)
        resumed = int(run.data.tags.get(SweepTag.RESUMED, "0")) + 1
        for key, value in {**(tags or {}), SweepTag.RESUMED: str(resumed)}.items():
            self.client.set_tag(sweep_id, key, value)
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
            except ServerDown as exc:
                self.outage.failed(exc.cause)

    # -- trials (child runs), called from the driver thread --------------------------------
    def start_trial(self, number: int, flat_params: dict[str, Any], tags: dict[str, str]) -> None:
        buf = _RunBuffer(
            number=number,
            start_ms=now_ms(),
            run_name=f"trial-{number}",
            create_tags={
                PARENT_RUN: self.sweep_id or "",
                TrialTag.TRIAL: str(number),
                TrialTag.STATE: TrialState.RUNNING.value,
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

    def set_sweep_tags(self, tags: dict[str, str]) -> None:
        """Tags of the parent run, written with the next flush."""
        self.set_tags(SWEEP, tags)

    def publish(self, write: Callable[[Any, dict[str, str]], dict[str, str]]) -> dict[str, str]:
        """``write(client, sweep_tags)`` against the store once every trial is written (the
        sweep's best model): this tracker's client, and the parent run's tags as they are."""
        return write(self.client, self.client.get_run(self.sweep_id).data.tags)

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
            buf.tags.update({TrialTag.STATE: state.value, **(tags or {})})
            if error is not None:
                buf.tags[TrialTag.ERROR] = error_text(error)
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
        if isinstance(self._error, TrackingUnavailable | TrackingDenied):
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
                except ServerDown as exc:
                    self.outage.failed(exc.cause)
                    continue  # everything is buffered again: retry, closing or not
                if closing:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the driver by check()
            self._error = exc

    def _flush(self) -> None:
        """Write every dirty buffer; on a transient failure put the unwritten rest back in the
        buffers and raise `ServerDown`."""
        with self._lock:
            work = [buf.take() for buf in self._buffers.values() if buf.dirty() and self._due(buf)]
        if self._writers is not None and len(work) > 1:
            self._write_concurrently(work)
        for i, item in enumerate(work):
            try:
                self._write(item)  # what is left of it (all of it without a pool)
            except Exception as exc:
                what = f"experiment {self.experiment_id} (the sweep's)"
                denied = refusal(exc, self.tracking_uri, what)
                if denied is not None:  # an answer, not an outage: stop now, resumable
                    self._requeue(work[i:])
                    raise TrackingDenied(
                        f"{denied}; the sweep stopped. Once it is granted again, continue it "
                        f"with: hpo resume {self.sweep_id} --tracking-uri "
                        f"{without_credentials(self.tracking_uri)}"
                    ) from None
                if not is_transient(exc):
                    raise
                self._requeue(work[i:])
                raise ServerDown(exc) from exc
            self.outage.answered()

    def _due(self, buf: _RunBuffer) -> bool:
        """Whether ``buf`` is written by this flush: a trial's run always, the sweep's at most
        every `SWEEP_FLUSH_SECONDS` until it ends or the writer closes."""
        if buf.number != SWEEP or buf.end is not None or self._closing:
            return True
        now = time.monotonic()
        if now - self._sweep_written < SWEEP_FLUSH_SECONDS:
            return False
        self._sweep_written = now
        return True

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
                self._recorded.add(item.number)

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
        return trial_run(self.client, self.experiment_id, self.sweep_id or "", number)

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

    def recorded(self, number: int) -> bool:
        """Whether trial ``number`` ended and all of it (its files too) is in the store."""
        with self._lock:
            return number in self._recorded

    def artifact_location(self, number: int) -> str | None:
        """Trial ``number``'s artifact URI once its run exists (a worker that can reach it
        stores its files there itself), else None."""
        with self._lock:
            buf = self._buffers.get(number)
            run_id = buf.run_id if buf else None
        return None if run_id is None else self._artifact_uris.get(run_id)
