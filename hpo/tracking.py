"""MLflow tracking: a parent run per sweep, a child run per trial, written by one thread.

The driver never calls MLflow for a trial directly: it records what happened into per-run
buffers, and a single writer thread turns each buffer into as few calls as MLflow allows
(`create_run`, `log_batch` of at most 1000 metrics, artifacts, `set_terminated`). With
the embedded sqlite store that thread is the only writer, so "database is locked" cannot
happen, and a trial that reports 100 epochs costs a handful of calls, not 100.
"""

from __future__ import annotations

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

from hpo.strategies.base import TrialState

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
FLUSH_SECONDS = 0.25
# MLflow's per-call limits for log_batch.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
# MLflow's limits on keys and values: checked here, before a sweep, never met mid-sweep.
PARAM_VALUE_LIMIT, TAG_VALUE_LIMIT, KEY_LIMIT = 6000, 8000, 250
_KEY_CHARACTERS = re.compile(r"[/\w.\- :]*")

SWEEP = -1  # buffer key of the parent run

RUN_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.FAILED: "FAILED",
    TrialState.PRUNED: "KILLED",
}


def resolve_tracking_uri(uri: str | None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def artifact_root(tracking_uri: str) -> str | None:
    """For a sqlite store, keep artifacts beside the database file (``mlartifacts/``)."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    db_path = Path(tracking_uri[len("sqlite:///") :]).resolve()
    return (db_path.parent / "mlartifacts").as_uri()


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


class Tracker:
    """Writes one sweep to MLflow.

    Parameters
    ----------
    tracking_uri : str
        Any MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``).
    experiment_name : str
        Created when missing.
    """

    def __init__(self, tracking_uri: str, experiment_name: str) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = self._experiment(experiment_name)
        self.sweep_id: str | None = None
        self._buffers: dict[int, _RunBuffer] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._error: BaseException | None = None
        self._writer: threading.Thread | None = None
        self._artifact_uris: dict[str, str] = {}

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(
            name, artifact_location=artifact_root(self.tracking_uri)
        )

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
        for key in ("hpo.interrupted", "hpo.timed_out", "hpo.error"):
            if key in run.data.tags:
                self.client.delete_tag(sweep_id, key)
        resumed = int(run.data.tags.get("hpo.resumed", "0")) + 1
        self.client.set_tag(sweep_id, "hpo.resumed", str(resumed))
        self.client.update_run(sweep_id, status="RUNNING")
        self._start_writer()

    def _start_writer(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="mlflow-writer", daemon=True)
        self._writer.start()

    def end_sweep(self, *, status: str, tags: dict[str, str], artifacts: dict[str, bytes]) -> None:
        """Flush every trial, stop the writer, then close the parent run."""
        self.close()
        self._log_artifacts(self.sweep_id, list(artifacts.items()))
        self._log_batch(self.sweep_id, tags=tags)
        self.client.set_terminated(self.sweep_id, status=status, end_time=now_ms())

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

    def set_tags(self, number: int, tags: dict[str, str]) -> None:
        with self._lock:
            self._buffers[number].tags.update(tags)

    def end_trial(
        self,
        number: int,
        state: TrialState,
        *,
        value: float | None = None,
        error: str | None = None,
        tags: dict[str, str] | None = None,
        artifacts: dict[str, bytes] | None = None,
        status: str | None = None,
    ) -> None:
        """Record the trial's outcome; ``status`` overrides the MLflow run status of its state."""
        ts = now_ms()
        with self._lock:
            buf = self._buffers[number]
            buf.tags.update({"hpo.state": state.value, **(tags or {})})
            if error is not None:
                buf.tags["hpo.error"] = error[:5000]
            if value is not None:
                buf.metrics.append(("objective", value, ts, 0))
            buf.artifacts.extend((artifacts or {}).items())
            buf.end = (status or RUN_STATUS[state], ts)
        self._wake.set()

    def run_id(self, number: int) -> str | None:
        with self._lock:
            buf = self._buffers.get(number)
            return buf.run_id if buf else None

    def check(self) -> None:
        """Re-raise in the driver an error the writer thread hit."""
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
        self.check()

    # -- the writer thread ---------------------------------------------------------------
    def _write_loop(self) -> None:
        try:
            while True:
                self._wake.wait(FLUSH_SECONDS)
                # Let a burst of reports accumulate so each run gets one batched call.
                time.sleep(0.02)
                self._wake.clear()
                # Read before flushing: close() sets it after its last write, so this flush
                # then carries everything.
                closing = self._closing
                self._flush()
                if closing:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the driver by check()
            self._error = exc

    def _flush(self) -> None:
        with self._lock:
            work = []
            for buf in self._buffers.values():
                if not buf.dirty():
                    continue
                work.append(
                    (buf, buf.run_id, buf.params, buf.tags, buf.metrics, buf.artifacts, buf.end)
                )
                buf.params, buf.tags, buf.metrics, buf.artifacts, buf.end = {}, {}, [], [], None
        for buf, run_id, params, tags, metrics, artifacts, end in work:
            if run_id is None:
                # Tags known by now (a short trial may have ended already) go in with the run,
                # saving an update of each later.
                run = self.client.create_run(
                    self.experiment_id,
                    start_time=buf.start_ms,
                    tags={**buf.create_tags, **tags},
                    run_name=buf.run_name,
                )
                run_id, tags = run.info.run_id, {}
                self._artifact_uris[run_id] = run.info.artifact_uri
                with self._lock:
                    buf.run_id = run_id
            self._log_batch(run_id, params=params, tags=tags, metrics=metrics)
            self._log_artifacts(run_id, artifacts)
            if end is not None:
                self.client.set_terminated(run_id, status=end[0], end_time=end[1])

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
        if not artifacts or run_id is None:
            return
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        # The client would look the run up in the store for every call; the repository for
        # a run's artifact URI is all it needs, and we have the URI from create_run.
        uri = self._artifact_uris.get(run_id) or self.client.get_run(run_id).info.artifact_uri
        repo = get_artifact_repository(uri)
        with tempfile.TemporaryDirectory(prefix="hpo-artifacts-") as tmp:
            for name, content in artifacts:
                path = Path(tmp, name)
                path.write_bytes(content)
                repo.log_artifact(str(path))
