"""The driver's side of the Ray worker pool: `WorkerPool` starts the `TrialWorker` actors,
hands them trials and collects their event streams with `ray.wait`; a worker that dies
comes back as `WorkerDied`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpo.core.checks import first_line
from hpo.core.events import Event, Outcome
from hpo.execution.kept_workers import ALIVE_SECONDS, KEPT, KeptWorker
from hpo.execution.resources import TrialResources, describe
from hpo.execution.worker import TrialWorker
from hpo.tracking.access import credentials

log = logging.getLogger(__name__)


class WorkerStartError(RuntimeError):
    """A worker could not start, e.g. the objective cannot be unpickled there."""


@dataclass
class Running:
    """A trial in flight on a worker (``record``: anything with a ``number`` and ``params``,
    the driver's record of the trial)."""

    record: Any
    worker: Any
    stream: Any  # ray.ObjectRefGenerator
    started: float = field(default_factory=time.monotonic)  # moved on once its worker is up
    located: bool = False  # its worker was told where the run's artifacts go


@dataclass
class Batch:
    """Events of one running trial that arrived together, in order."""

    running: Running
    events: list[Event]


@dataclass
class WorkerDied:
    """The worker running ``running.record`` died (killed, out of memory, node lost)."""

    running: Running
    reason: str


class WorkerPool:
    """A fixed number of `TrialWorker` actors and the trials running on them."""

    def __init__(
        self,
        objective: Callable[..., Any],
        arity: int,
        data: Any,
        n_workers: int,
        repeats: int = 1,
        resources: TrialResources | None = None,
        max_trials_per_worker: int | None = None,
        keep_seconds: float | None = None,
    ) -> None:
        import ray

        self._ray = ray
        _ship_by_value(objective)
        self.resources = resources or TrialResources()
        # Two threads: `stop` must get through while `run` is streaming.
        options = self.resources.ray_options()
        self._actor_cls = ray.remote(max_concurrency=2, **options)(TrialWorker)
        self._objective, self._arity, self._repeats = objective, arity, repeats
        self._data_ref = ray.put(data)
        # A worker process is replaced after this many trials (a framework that leaks
        # memory across trials in one process cannot grow without bound).
        self._max_trials = max_trials_per_worker
        self._trials_run: dict[Any, int] = {}  # by worker
        # Actors start in the background: trials submitted meanwhile queue on them, and an
        # actor that cannot start surfaces in `wait` as a WorkerStartError.
        self._starting: dict[Any, Any] = {}  # worker -> its `ready` call, until answered
        # Workers an earlier sweep of this process kept up are of this kind when they run
        # on the same cluster with the same resources and credentials; this sweep keeps
        # its own for ``keep_seconds`` after it (see `hpo.execution.kept_workers`).
        self._keep_seconds = keep_seconds
        self._kind = (
            ray.get_runtime_context().get_job_id(),
            repr(sorted(options.items())),
            self.resources.threads,
            tuple(sorted(credentials().items())),
        )
        self.idle = self._take_kept(n_workers)
        self.idle += [self._new_worker() for _ in range(n_workers - len(self.idle))]
        self.running: dict[Any, Running] = {}  # by stream
        self.missing = 0  # dead workers not replaced yet: the cluster had no CPU for them

    def _new_worker(self) -> Any:
        worker = self._actor_cls.remote(
            self._objective, self._arity, self._data_ref, self.resources.threads, credentials()
        )
        self._starting[worker] = worker.ready.remote()
        return worker

    def _take_kept(self, most: int) -> list[Any]:
        """Up to ``most`` workers an earlier sweep kept up, given this sweep's objective
        and data (before any trial is sent: a threaded actor may run calls out of order)."""
        kept = KEPT.take(self._kind, most)
        if not kept:
            return []
        loads = {
            k.worker.load.remote(self._objective, self._arity, self._data_ref): k for k in kept
        }
        answered, _ = self._ray.wait(list(loads), num_returns=len(loads), timeout=ALIVE_SECONDS)
        workers = []
        for ref, k in loads.items():
            try:
                if ref not in answered:
                    raise TimeoutError(f"no answer within {ALIVE_SECONDS} s")
                self._ray.get(ref)
            except (TimeoutError, self._ray.exceptions.RayError) as exc:  # gone while kept
                log.debug("a kept worker could not take the sweep: %s", exc)
                self._ray.kill(k.worker, no_restart=True)
                continue
            self._trials_run[k.worker] = k.trials_run
            workers.append(k.worker)
        return workers

    def running_since(self, running: Running) -> float | None:
        """When ``running``'s trial began to run, or None while its worker is still
        starting: a process start (seconds on a loaded machine) is not the trial's time."""
        ref = self._starting.get(running.worker)
        if ref is not None:
            ready, _ = self._ray.wait([ref], timeout=0)
            if not ready:
                return None
            del self._starting[running.worker]
            running.started = max(running.started, time.monotonic())
        return running.started

    def workers_up(self) -> int:
        """How many of the pool's workers have started (a worker Ray has no room for
        waits, not started, until there is)."""
        pending = list(self._starting.values())
        ready = self._ray.wait(pending, num_returns=len(pending), timeout=0)[0] if pending else []
        return len(self.idle) + len(self.running) - (len(pending) - len(ready))

    def free_resources(self) -> str:
        """What the cluster has free now, as people read it."""
        return describe(self._ray.available_resources()) or "nothing"

    def submit(
        self,
        record: Any,
        store: tuple[str, str] | None = None,
        segment: dict[str, Any] | None = None,
    ) -> Running:
        """Run ``record``'s trial on an idle worker; ``store`` (artifact URI, tracking URI)
        for a trial that runs again: where its checkpoint is; ``segment`` for a segment of
        population-based training (see `hpo.sweep.loop.Sweep._segment`)."""
        # A worker known to be up first: one still starting may wait for a CPU a while.
        up = [w for w in self.idle if w not in self._starting]
        worker = up[-1] if up else self.idle[-1]
        self.idle.remove(worker)
        rerun = getattr(record, "attempts", 1) > 1
        held = getattr(record, "checkpoints", None) if rerun else None
        stream = worker.run.remote(
            record.number, record.params, self._repeats, store, rerun, held, segment
        )
        running = Running(record, worker, stream, located=store is not None)
        self.running[stream] = running
        return running

    def wait(self, timeout: float) -> list[Batch | WorkerDied]:
        """Event batches that arrived within ``timeout`` seconds, per running trial."""
        ray = self._ray
        if self.missing:
            self.restore()
        if not self.running:  # the driver waits for room (a CPU, or the record)
            time.sleep(timeout)
            return []
        streams = list(self.running)
        ready, _ = ray.wait(streams, num_returns=1, timeout=timeout)
        if ready:  # then take every other stream that is ready too
            ready, _ = ray.wait(streams, num_returns=len(streams), timeout=0)
        out: list[Batch | WorkerDied] = []
        for stream in ready:
            running = self.running[stream]
            try:
                batch = ray.get(next(stream))
            except StopIteration:  # a stream ends after its outcome; guard so none is left running
                del self.running[stream]
                self._replace(running.worker)
                out.append(WorkerDied(running, "the trial's stream ended without a result"))
                continue
            except ray.exceptions.RayActorError as exc:
                if exc.actor_init_failed:  # the same would happen to every replacement
                    raise WorkerStartError(
                        f"the trial workers could not start: {_cause(exc)}"
                    ) from None
                del self.running[stream]
                self._replace(running.worker)
                out.append(WorkerDied(running, first_line(exc)))
                continue
            if batch and isinstance(batch[-1], Outcome):
                del self.running[stream]
                self._done(running.worker)
            out.append(Batch(running, batch))
        return out

    def _done(self, worker: Any) -> None:
        """``worker`` finished a trial: idle again, or replaced once it ran its share."""
        runs = self._trials_run[worker] = self._trials_run.get(worker, 0) + 1
        if self._max_trials is None or runs < self._max_trials:
            self.idle.append(worker)
            return
        del self._trials_run[worker]
        self._ray.kill(worker, no_restart=True)
        # Its resources come free as Ray ends the process; the new one waits for them.
        self.idle.append(self._new_worker())

    def _replace(self, dead: Any) -> None:
        self._trials_run.pop(dead, None)
        self._starting.pop(dead, None)
        self._ray.kill(dead, no_restart=True)
        self.missing += 1
        self.restore()

    def restore(self) -> None:
        """Start replacements of dead workers while the cluster has room for one.
        After a node is lost the cluster has fewer CPUs: a replacement started then would
        wait for a CPU, holding the trial given to it, while the live workers run out of
        work. Until the cluster has room again (the node is back), the pool runs smaller."""
        room = self.resources.fits(self._ray.available_resources())
        while self.missing and room >= 1:
            self.idle.append(self._new_worker())
            self.missing -= 1
            room -= 1

    def render(
        self, specs: list[tuple[str, str, dict[str, Any]]]
    ) -> Callable[[], dict[str, bytes]]:
        """Start drawing ``specs``, shared among the idle workers; call the result to get
        the PNGs.

        Falls back to drawing here when no worker is idle, or for the figures of a worker
        that fails.
        """
        from hpo.report.plots import render, share

        if not specs:
            return dict
        if not self.idle:
            figures = render(specs)
            return lambda: figures
        calls = [
            (worker.render.remote(group), group)
            for worker, group in zip(self.idle, share(specs, len(self.idle)), strict=False)
        ]

        def result() -> dict[str, bytes]:
            figures: dict[str, bytes] = {}
            for ref, group in calls:
                try:
                    figures |= self._ray.get(ref)
                except self._ray.exceptions.RayError:
                    figures |= render(group)
            return figures

        return result

    def locate(self, running: Running, artifact_uri: str, tracking_uri: str) -> None:
        """Tell a trial's worker where its run's artifacts go (see `TrialWorker.set_store`)."""
        running.worker.set_store.remote(running.record.number, artifact_uri, tracking_uri)
        running.located = True

    def stop(self, running: Running) -> None:
        """Ask a trial to stop at its next report (pruning); its events keep arriving."""
        running.worker.stop.remote(running.record.number)

    def kill(self, running: Running) -> None:
        """Stop one trial now by killing its worker (a hanging objective cannot be
        interrupted any other way) and start a replacement worker."""
        self.running.pop(running.stream, None)
        self._replace(running.worker)

    def cancel_all(self) -> list[Running]:
        """Kill the workers of every running trial (a thread cannot be interrupted otherwise)."""
        cancelled = list(self.running.values())
        for running in cancelled:
            self._ray.kill(running.worker, no_restart=True)
        self.running.clear()
        return cancelled

    def shutdown(self) -> None:
        """End the workers, or keep the idle ones that started for ``keep_seconds``."""
        for running in self.cancel_all():
            log.debug("killed the worker of trial %s", running.record.number)
        kept = [w for w in self.idle if self._keep_seconds and self._started(w)]
        if kept:
            runs = self._trials_run
            KEPT.keep(self._kind, [KeptWorker(w, runs.get(w, 0)) for w in kept], self._keep_seconds)
        for worker in self.idle:
            if worker not in kept:
                self._ray.kill(worker, no_restart=True)
        self.idle.clear()
        self._starting.clear()

    def _started(self, worker: Any) -> bool:
        ref = self._starting.get(worker)
        if ref is None:
            return True
        if not self._ray.wait([ref], timeout=0)[0]:
            return False
        try:
            return bool(self._ray.get(ref))
        except self._ray.exceptions.RayError:
            return False


def _ship_by_value(objective: Callable[..., Any]) -> None:
    """Have Ray pickle an experiment file's module by value: workers cannot import it."""
    from ray import cloudpickle

    from hpo.sweep.experiment_file import MODULE_PREFIX

    module = sys.modules.get(getattr(objective, "__module__", "") or "")
    if module is not None and module.__name__.startswith(MODULE_PREFIX):
        cloudpickle.register_pickle_by_value(module)


def _cause(exc: BaseException) -> str:
    """The user-facing part of an actor's creation error (e.g. the ModuleNotFoundError)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error:" in ln and not ln.startswith("ray.exceptions")]
    return errors[-1] if errors else (lines[0] if lines else type(exc).__name__)
