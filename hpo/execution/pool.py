"""The Ray worker pool: long-lived actors that run trials and stream their reports back.

Each worker is an actor holding the objective and the sweep's data (shipped through the
object store once per worker, not once per trial) with BLAS limited to one thread, so N
workers on N cores do not oversubscribe. `TrialWorker.run` is a streaming generator: the
objective runs in a thread of the actor while the method yields batches of events
(reports as they happen, then the outcome), which the driver consumes with `ray.wait`.
"""

from __future__ import annotations

import inspect
import logging
import numbers
import pickle
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpo.core.checks import check_result, check_value, first_line
from hpo.core.events import Artifact, Event, Outcome, Report
from hpo.execution.artifacts import CHECKPOINT, pack, pack_model
from hpo.report.summary import repeats_std
from hpo.strategies.base import TrialState
from hpo.strategies.pruners import TrialPruned
from hpo.tracking.writer import check_name, reachable_store, read_artifact, write_artifacts

log = logging.getLogger(__name__)


class WorkerStartError(RuntimeError):
    """A worker could not start, e.g. the objective cannot be unpickled there."""


def objective_arity(objective: Callable[..., Any]) -> int:
    """2 for ``objective(params, report)``, 3 for ``objective(params, report, data)``."""
    if not callable(objective):
        raise TypeError(f"the objective must be callable, got {type(objective).__name__}")
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):
        return 2
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(positional) not in (2, 3):
        names = ", ".join(signature.parameters)
        raise TypeError(
            "the objective must take (params, report) or (params, report, data), "
            f"got {getattr(objective, '__name__', 'objective')}({names})"
        )
    return len(positional)


class _Reporter:
    """The ``report(step, **metrics)`` callable handed to the objective, with
    ``report.artifact(name, data)`` and ``report.model(estimator)`` for files.

    It checks what MLflow would refuse here, in the objective, where the error is clear.
    ``suffix`` tells the repeats of a configuration apart: ``val_loss/repeat_1``, and files
    in a folder of their repeat (``repeat_1/model``).
    """

    def __init__(
        self,
        events: queue.Queue,
        stop: threading.Event,
        history: dict[str, list[tuple[int, float]]],
        began: float,
        suffix: str = "",
        place: dict[str, Any] | None = None,
    ) -> None:
        self._events, self._stop, self._suffix = events, stop, suffix
        self._place = {} if place is None else place  # where the run's artifacts go, once known
        self._folder = f"{suffix.strip('/')}/" if suffix else ""  # of the repeat's files
        # Timed here, in the worker: a pruner on a time axis must not count queueing.
        self._began = began  # perf_counter() when the trial began
        self.history = history  # every curve of the trial, for its learning-curve figure
        self._valid_names: set[str] = set()  # checked once, not at every epoch
        self._last_step: int | None = None  # of the last report: where a checkpoint stands
        self._reports: list[Report] = []  # every report, kept for a checkpoint

    def __call__(self, step: int, **metrics: float) -> None:
        if self._stop.is_set():
            raise TrialPruned("the trial was pruned")
        if not isinstance(step, numbers.Integral) or isinstance(step, bool) or step < 0:
            raise TypeError(f"report() needs an int step >= 0, got {step!r}")
        if not metrics:
            raise TypeError("report() needs at least one metric, as report(step, name=value)")
        clean = {}
        for name, value in metrics.items():
            if name not in self._valid_names:
                try:
                    check_name("metric", name)
                except ValueError as exc:
                    raise TypeError(f"report(): {exc}") from None
                self._valid_names.add(name)
            if isinstance(value, bool | np.bool_):
                value = float(value)  # MLflow stores numbers; a flag becomes 0.0 or 1.0
            if not isinstance(value, numbers.Real):
                raise TypeError(
                    f"report() metric {name!r} must be a real number or a bool, got "
                    f"{type(value).__name__}: {value!r:.100}"
                )
            key = name + self._suffix
            clean[key] = float(value)
            self._last_step = int(step)
            self.history.setdefault(key, []).append((int(step), float(value)))
        report = Report(int(step), clean, time.perf_counter() - self._began)
        self._reports.append(report)
        self._events.put(report)

    def checkpoint(self, state: Any) -> None:
        """Store ``state`` (anything picklable; `models.MLPClassifier.training_state()` for
        our networks) as the trial's checkpoint, taken at the last step reported. It lives
        in the trial's run and replaces the one before; if the trial runs again (its worker
        died, or the sweep was resumed after its driver died) `restore` gives it back."""
        # The reports so far go with it: some may not have left this process when it dies,
        # and `restore` sends them again (the driver logs each step once).
        saved = {"step": self._last_step, "state": state, "reports": self._reports}
        self._store({self._folder + CHECKPOINT: pickle.dumps(saved)})

    def restore(self) -> tuple[Any, int | None] | None:
        """``(state, step)`` of the trial's last checkpoint when this is a run again of a
        trial that stored one; else None. Go on from the step after ``step``: the steps
        up to it were logged already (a step reported again is logged once)."""
        if not self._place.get("rerun"):
            return None
        name, where = self._folder + CHECKPOINT, self._place.get("store")
        # One the driver still held (not yet in the run's artifacts) is the latest.
        data = self._place.get("checkpoints", {}).get(name)
        if data is None and where is not None:
            data = read_artifact(*where, name)
        if data is None:
            return None
        saved = pickle.loads(data)
        self._last_step = saved["step"]
        for report in saved["reports"]:  # what the lost attempt reported up to its checkpoint
            self._reports.append(report)
            for key, value in report.metrics.items():
                self.history.setdefault(key, []).append((report.step, value))
            self._events.put(report)
        return saved["state"], saved["step"]

    def artifact(self, name: str, data: Any) -> None:
        """Store ``data`` as ``name`` in the trial's run: bytes or str (the content), or a
        `pathlib.Path` to a file or folder. A retried trial's files replace the lost ones."""
        self._store(pack(self._folder + name, data))

    def model(self, estimator: Any, name: str = "model") -> None:
        """Store a fitted scikit-learn-compatible estimator in MLflow's scikit-learn format
        as ``name`` in the trial's run (``mlflow.sklearn.load_model("runs:/RUN/model")``);
        the best trial's model is the sweep's best model."""
        name = self._folder + name
        self._store(pack_model(estimator, name), model=name)

    def _store(self, files: dict[str, bytes], model: str | None = None) -> None:
        """Write the files into the run's artifact store from here when the driver said
        where it is and it can be reached, so they never pass through the driver; else send
        them to the driver with the trial's events, for its writer to store."""
        where = self._place.get("store")  # (artifact URI, tracking URI), set by the driver
        if where is not None and reachable_store(*where):
            try:
                write_artifacts(*where, list(files.items()))
            except Exception:  # noqa: BLE001 - not writable from here: the driver stores them
                pass
            else:
                self._events.put(Artifact({}, model=model, stored=tuple(files)))
                return
        self._events.put(Artifact(files, model=model))


def _render_curves(history: dict[str, list[tuple[int, float]]]) -> bytes | None:
    if not history:
        return None
    from hpo.report.curves import learning_curves_png

    return learning_curves_png(history)


def run_objective(
    objective: Callable[..., Any],
    params: dict[str, Any],
    data: Any,
    arity: int,
    events: queue.Queue,
    stop: threading.Event | None = None,
    repeats: int = 1,
    place: dict[str, Any] | None = None,
) -> None:
    """Run one trial and put its events on ``events``: `Report`s, then one `Outcome`.

    With ``repeats`` > 1 the objective runs once per seed 0..repeats-1 (``params["seed"]``),
    its metrics suffixed ``/repeat_R``; each value is reported as ``objective_repeat`` at
    step R and the trial's value is their mean.
    """
    stop = stop or threading.Event()
    history: dict[str, list[tuple[int, float]]] = {}
    values: list[float] = []
    start = time.perf_counter()
    r = 0
    try:
        for r in range(repeats):
            if repeats == 1:
                report = _Reporter(events, stop, history, start, place=place)
                run_params = params
            else:
                report = _Reporter(events, stop, history, start, f"/repeat_{r}", place)
                run_params = {**params, "seed": r}
            raw = objective(run_params, report, *([data] if arity == 3 else []))
            # Repeats average one objective; alone, a trial may return several.
            values.append(check_value(raw) if repeats > 1 else check_result(raw))
            if repeats > 1:
                seconds = time.perf_counter() - start
                events.put(Report(r, {"objective_repeat": values[-1]}, seconds))
        value = values[0] if repeats == 1 else sum(values) / len(values)
        if repeats > 1:
            std = repeats_std(values)
            events.put(Report(0, {"objective_std": std}, time.perf_counter() - start))
        events.put(
            Outcome(
                TrialState.COMPLETE,
                value=value,
                seconds=time.perf_counter() - start,
                curves=_render_curves(history),
                repeat_values=values if repeats > 1 else None,
            )
        )
    except TrialPruned:
        seconds = time.perf_counter() - start
        events.put(Outcome(TrialState.PRUNED, seconds=seconds, curves=_render_curves(history)))
    except BaseException as exc:  # noqa: BLE001 - every failure becomes the trial's reason
        seconds = time.perf_counter() - start
        reason = f"{type(exc).__name__}: {exc}"
        if repeats > 1:
            reason = f"repeat {r} (seed {r}): {reason}"
        events.put(
            Outcome(
                TrialState.FAILED,
                error=reason,
                traceback=traceback.format_exc(),
                seconds=seconds,
                curves=_render_curves(history),
            )
        )


# How long a report may wait for others to go in the same message to the driver. A short
# trial's reports and its result (whose curve PNG takes a few ms to draw) then travel as one
# message instead of two; each message costs the driver, the worker and Ray's own processes
# CPU time that the MLflow writer would otherwise have.
BATCH_SECONDS = 0.01


def _collect(events: queue.Queue, first: Event) -> list[Event]:
    """``first`` and the events that follow it within `BATCH_SECONDS`, up to the outcome."""
    batch = [first]
    deadline = time.monotonic() + BATCH_SECONDS
    while not isinstance(batch[-1], Outcome):
        left = deadline - time.monotonic()
        try:
            batch.append(events.get(timeout=left) if left > 0 else events.get_nowait())
        except queue.Empty:
            break
    return batch


class TrialWorker:
    """Body of the worker actor (wrapped with `ray.remote` by `WorkerPool`)."""

    def __init__(self, objective: Callable[..., Any], arity: int, data: Any) -> None:
        from threadpoolctl import threadpool_limits

        # Kept on self: the limit holds for as long as the controller object lives.
        self._blas_limit = threadpool_limits(limits=1)
        self.objective, self.arity, self.data = objective, arity, data
        # The running trial: its number, its stop flag, where its artifacts go once known.
        self._current: tuple[int, threading.Event, dict[str, Any]] | None = None

    def ready(self) -> bool:
        """Answers once the worker has started (the driver's trial clock waits for it)."""
        return True

    def stop(self, trial_number: int) -> None:
        """Have trial ``trial_number``'s next ``report`` raise `TrialPruned`.

        Runs in the actor's second thread while `run` streams; a late call for a trial
        that already ended does nothing.
        """
        current = self._current
        if current is not None and current[0] == trial_number:
            current[1].set()

    def set_store(self, trial_number: int, artifact_uri: str, tracking_uri: str) -> None:
        """Where trial ``trial_number``'s run keeps its artifacts (its run exists now): its
        files go there from here when the store can be reached. Runs like `stop`."""
        current = self._current
        if current is not None and current[0] == trial_number:
            current[2]["store"] = (artifact_uri, tracking_uri)

    def render(self, specs: list[tuple[str, str, dict[str, Any]]]) -> dict[str, bytes]:
        """Draw the sweep's closing figures (see `hpo.report.plots.render`)."""
        from hpo.report.plots import render

        return render(specs)

    def run(
        self,
        trial_number: int,
        params: dict[str, Any],
        repeats: int = 1,
        store: tuple[str, str] | None = None,
        rerun: bool = False,
        checkpoints: dict[str, bytes] | None = None,
    ) -> Iterator[list[Event]]:
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        # Where the run's artifacts go (known already for a trial that runs again, whose
        # checkpoint `report.restore` reads from there).
        place: dict[str, Any] = {"rerun": rerun, "checkpoints": checkpoints or {}}
        if store is not None:
            place["store"] = store
        self._current = (trial_number, stop, place)
        thread = threading.Thread(
            target=run_objective,
            args=(self.objective, params, self.data, self.arity, events, stop, repeats, place),
            name=f"trial-{trial_number}",
            daemon=True,
        )
        thread.start()
        while True:
            batch = _collect(events, events.get())
            yield batch
            if isinstance(batch[-1], Outcome):
                return


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
    ) -> None:
        import ray

        self._ray = ray
        _ship_by_value(objective)
        # Two threads: `stop` must get through while `run` is streaming.
        self._actor_cls = ray.remote(num_cpus=1, max_concurrency=2)(TrialWorker)
        self._objective, self._arity, self._repeats = objective, arity, repeats
        self._data_ref = ray.put(data)
        # Actors start in the background: trials submitted meanwhile queue on them, and an
        # actor that cannot start surfaces in `wait` as a WorkerStartError.
        self._starting: dict[Any, Any] = {}  # worker -> its `ready` call, until answered
        self.idle = [self._new_worker() for _ in range(n_workers)]
        self.running: dict[Any, Running] = {}  # by stream
        self.missing = 0  # dead workers not replaced yet: the cluster had no CPU for them

    def _new_worker(self) -> Any:
        worker = self._actor_cls.remote(self._objective, self._arity, self._data_ref)
        self._starting[worker] = worker.ready.remote()
        return worker

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

    def submit(self, record: Any, store: tuple[str, str] | None = None) -> Running:
        """Run ``record``'s trial on an idle worker; ``store`` (artifact URI, tracking URI)
        for a trial that runs again: where its checkpoint is."""
        # A worker known to be up first: one still starting may wait for a CPU a while.
        up = [w for w in self.idle if w not in self._starting]
        worker = up[-1] if up else self.idle[-1]
        self.idle.remove(worker)
        rerun = getattr(record, "attempts", 1) > 1
        held = getattr(record, "checkpoints", None) if rerun else None
        stream = worker.run.remote(record.number, record.params, self._repeats, store, rerun, held)
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
                self.idle.append(running.worker)
            out.append(Batch(running, batch))
        return out

    def _replace(self, dead: Any) -> None:
        self._starting.pop(dead, None)
        self._ray.kill(dead, no_restart=True)
        self.missing += 1
        self.restore()

    def restore(self) -> None:
        """Start replacements of dead workers while the cluster has a free CPU for one.
        After a node is lost the cluster has fewer CPUs: a replacement started then would
        wait for a CPU, holding the trial given to it, while the live workers run out of
        work. Until the cluster has room again (the node is back), the pool runs smaller."""
        free = self._ray.available_resources().get("CPU", 0.0)
        while self.missing and free >= 1:
            self.idle.append(self._new_worker())
            self.missing -= 1
            free -= 1

    def render(
        self, specs: list[tuple[str, str, dict[str, Any]]]
    ) -> Callable[[], dict[str, bytes]]:
        """Start drawing ``specs`` on an idle worker; call the result to get the PNGs.

        Falls back to drawing here when no worker is idle or the worker fails.
        """
        from hpo.report.plots import render

        if not specs:
            return dict
        if not self.idle:
            figures = render(specs)
            return lambda: figures
        ref = self.idle[0].render.remote(specs)

        def result() -> dict[str, bytes]:
            try:
                return self._ray.get(ref)
            except self._ray.exceptions.RayError:
                return render(specs)

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
        for running in self.cancel_all():
            log.debug("killed the worker of trial %s", running.record.number)
        for worker in self.idle:
            self._ray.kill(worker, no_restart=True)
        self.idle.clear()
        self._starting.clear()


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
