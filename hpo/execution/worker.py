"""The worker's side of a trial: the actor that runs the objective (`TrialWorker`), the
``report`` callable the objective gets, and the events it sends to the driver.

Each worker is a long-lived actor holding the objective and the sweep's data (shipped
through the object store once per worker, not once per trial) with BLAS and OpenMP
limited to the trial's CPUs, so the workers of a node do not oversubscribe it.
`TrialWorker.run` is a streaming generator: the objective runs in a thread of the actor
while the method yields batches of events (reports as they happen, then the outcome).
"""

from __future__ import annotations

import inspect
import numbers
import os
import pickle
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from hpo.core.checks import check_result, check_value
from hpo.core.events import Artifact, Event, Outcome, Report
from hpo.core.trial import TrialState
from hpo.execution.artifacts import (
    CHECKPOINT,
    pack,
    pack_model,
    reachable_store,
    read_artifact,
    write_artifacts,
)
from hpo.report.summary import repeats_std
from hpo.strategies.pbt import SegmentEnd
from hpo.strategies.pruners import TrialPruned
from hpo.tracking.schema import check_name


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
        # A population-based training segment: the steps it trains (`hpo.strategies.pbt`).
        self._segment = self._place.get("segment")
        self._checkpointed: int | None = None  # the step of this attempt's last checkpoint
        self._restored = False

    def __call__(self, step: int, **metrics: float) -> None:
        if self._stop.is_set():
            raise TrialPruned("the trial was pruned")
        if not isinstance(step, numbers.Integral) or isinstance(step, bool) or step < 0:
            raise TypeError(f"report() needs an int step >= 0, got {step!r}")
        if self._segment is not None:
            self._check_segment(int(step))
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
        self._checkpointed = self._last_step
        segment = self._segment
        if segment is not None and None not in (self._last_step, segment["until"]):
            if self._last_step >= segment["until"]:  # the segment's work is done and saved
                raise SegmentEnd(self._last_step)

    def _check_segment(self, step: int) -> None:
        """The rules of a population-based training segment, at a report of ``step``: it
        goes on from its parent's checkpoint, and ends at a checkpoint past its last step."""
        segment = self._segment
        start = segment["from_step"]
        if start is not None and not self._restored and step <= start:
            raise RuntimeError(
                f"this population-based training segment goes on from step {start} of trial "
                f"{segment['parent']}, but the objective reported step {step} without "
                "restoring: call state, step = report.restore() at its start and train on "
                "from step + 1"
            )
        if segment["until"] is not None and step > segment["until"]:
            if self._checkpointed is None or (start is not None and self._checkpointed <= start):
                raise RuntimeError(
                    f"population-based training goes on from checkpoints, and this segment "
                    f"reached step {step} without one (it trains steps up to "
                    f"{segment['until']}): call report.checkpoint(state) after report() at "
                    f"least every {segment['interval']} steps, and report.restore() at the "
                    "start"
                )
            raise SegmentEnd(self._checkpointed)  # its last checkpoint is where it ends

    def restore(self) -> tuple[Any, int | None] | None:
        """``(state, step)`` of the trial's last checkpoint when this is a run again of a
        trial that stored one; else None. Go on from the step after ``step``: the steps
        up to it were logged already (a step reported again is logged once). A segment of
        population-based training gets the checkpoint it goes on from (its member's last,
        or the one it exploits) when it has stored none of its own."""
        self._restored = True
        data = self._own_checkpoint() if self._place.get("rerun") else None
        if data is None:
            # A population-based training segment starts from its parent's checkpoint (its
            # member's own, or the one it exploits); those reports are the parent's.
            return None if self._segment is None else self._parent_checkpoint()
        saved = pickle.loads(data)
        self._last_step = self._checkpointed = saved["step"]
        for report in saved["reports"]:  # what the lost attempt reported up to its checkpoint
            self._reports.append(report)
            for key, value in report.metrics.items():
                self.history.setdefault(key, []).append((report.step, value))
            self._events.put(report)
        return saved["state"], saved["step"]

    def _own_checkpoint(self) -> bytes | None:
        name, where = self._folder + CHECKPOINT, self._place.get("store")
        # One the driver still held (not yet in the run's artifacts) is the latest.
        data = self._place.get("checkpoints", {}).get(name)
        if data is None and where is not None:
            data = read_artifact(*where, name)
        return data

    def _parent_checkpoint(self) -> tuple[Any, int] | None:
        segment = self._segment
        if segment["from_step"] is None:  # the member's first segment: it starts afresh
            return None
        data = segment["held"] or (
            None if segment["source"] is None else read_artifact(*segment["source"], CHECKPOINT)
        )
        if data is None:
            raise RuntimeError(
                f"the checkpoint of trial {segment['parent']} (step {segment['from_step']}), "
                "which this population-based training segment goes on from, could not be read"
            )
        saved = pickle.loads(data)
        self._last_step = saved["step"]
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
        checkpoint = self._folder + CHECKPOINT in files
        # Once a checkpoint went through the driver, the later ones follow it: its writer
        # stores them in order, where one written from here could land before an older one
        # still in its queue, which would then replace it.
        ordered = checkpoint and self._place.get("checkpoints_via_driver")
        if where is not None and not ordered and reachable_store(*where):
            try:
                write_artifacts(*where, list(files.items()))
            except Exception:  # noqa: BLE001 - not writable from here: the driver stores them
                pass
            else:
                self._events.put(Artifact({}, model=model, stored=tuple(files)))
                return
        if checkpoint:
            self._place["checkpoints_via_driver"] = True
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
    except SegmentEnd as end:  # before TrialPruned, which it extends
        events.put(
            Outcome(
                TrialState.COMPLETE,
                seconds=time.perf_counter() - start,
                curves=_render_curves(history),
                segment_end=end.step,
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


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _placement() -> dict[str, str]:
    """Where this worker runs: its node, and the GPUs Ray gave it (the devices in its
    ``CUDA_VISIBLE_DEVICES``; empty without GPUs)."""
    import ray

    context = ray.get_runtime_context()
    gpus = context.get_accelerator_ids().get("GPU", [])
    return {"node": ray.util.get_node_ip_address(), "gpus": ",".join(map(str, gpus))}


class TrialWorker:
    """Body of the worker actor (wrapped with `ray.remote` by `WorkerPool`)."""

    def __init__(
        self,
        objective: Callable[..., Any],
        arity: int,
        data: Any,
        threads: int = 1,
        credentials: dict[str, str] | None = None,
    ) -> None:
        from threadpoolctl import threadpool_limits

        # The driver's MLflow credentials, for the trial's own artifact writes: an argument,
        # not the actor's runtime environment, which Ray's dashboard and state API show.
        os.environ.update(credentials or {})
        # The trial's CPUs are its threads: the variables for libraries that read them when
        # they start (OpenMP in XGBoost, LightGBM, PyTorch), threadpoolctl for the BLAS and
        # OpenMP already loaded. Kept on self: the limit holds while the object lives.
        for name in THREAD_VARIABLES:
            os.environ[name] = str(threads)
        self._blas_limit = threadpool_limits(limits=threads)
        self.objective, self.arity, self.data = objective, arity, data
        self._placement = _placement()
        # The running trial: its number, its stop flag, where its artifacts go once known.
        self._current: tuple[int, threading.Event, dict[str, Any]] | None = None

    def ready(self) -> bool:
        """Answers once the worker has started (the driver's trial clock waits for it)."""
        return True

    def load(self, objective: Callable[..., Any], arity: int, data: Any) -> bool:
        """Take the next sweep's objective and data: this worker was kept up after the
        sweep before (`hpo.execution.kept_workers`)."""
        self.objective, self.arity, self.data = objective, arity, data
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
        segment: dict[str, Any] | None = None,
    ) -> Iterator[list[Event]]:
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        # Where the run's artifacts go (known already for a trial that runs again, whose
        # checkpoint `report.restore` reads from there); a population-based training
        # segment's steps and the checkpoint it starts from.
        place: dict[str, Any] = {
            "rerun": rerun,
            "checkpoints": checkpoints or {},
            "segment": segment,
            # The lost attempt's last checkpoint may still be in the driver's queue.
            "checkpoints_via_driver": bool(checkpoints),
        }
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
            if isinstance(batch[-1], Outcome):
                batch[-1] = batch[-1]._replace(placement=self._placement)
                yield batch
                return
            yield batch
