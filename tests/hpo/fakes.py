"""A fake worker pool and a fake tracker, to drive the sweep driver and the trial
lifecycle through every path without Ray or MLflow.

A trial's behaviour is a script: the list of what its attempt does, one item per wait of
the driver: a `Report` or an `Outcome` (sent to the driver), `DIE` (its worker dies),
`HANG` (nothing arrives), `INTERRUPT` (the user presses Ctrl-C during the wait).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpo.core.events import Outcome, Report
from hpo.execution.pool import Batch, Running, WorkerDied
from hpo.strategies import RandomSearch
from hpo.strategies.base import TrialState

DIE, HANG, INTERRUPT = "die", "hang", "interrupt"

Script = Callable[[Any, int], list[Any]]  # (record, attempt) -> what the attempt does


def reports(metric: str, values: list[float], start: int = 0) -> list[Report]:
    return [Report(start + i, {metric: v}, 0.01 * (start + i)) for i, v in enumerate(values)]


def complete(value: float) -> Outcome:
    return Outcome(TrialState.COMPLETE, value=value, seconds=0.5, curves=b"png")


class FakePool:
    """The `WorkerPool` interface the driver uses, playing each trial's script."""

    def __init__(self, workers: int, script: Script, no_room_waits: int = 0) -> None:
        self.idle = [f"worker-{i}" for i in range(workers)]
        self.running: dict[int, Running] = {}
        # A dead worker's node lost: the cluster has no room for a replacement for this
        # many waits of the driver (then the node is back).
        self.no_room_waits = no_room_waits
        self.missing = 0
        self.script = script
        self.attempts: dict[int, int] = {}  # trial number -> attempts started
        self.stores: list[tuple[int, Any]] = []  # (trial number, where its run is) per submit
        self.segments: dict[int, Any] = {}  # trial number -> its segment (population training)
        self.plays: dict[int, list[Any]] = {}  # by stream id: what is left to play
        self.stopped: set[int] = set()  # streams asked to stop (pruning)
        self.killed: list[int] = []  # trial numbers whose worker was killed
        self.located: list[tuple[int, str]] = []  # (trial, artifact URI) told to workers
        self.shut = False
        self._streams = 0

    def submit(self, record: Any, store: Any = None, segment: Any = None) -> Running:
        self.stores.append((record.number, store))
        self.segments[record.number] = segment
        worker = self.idle.pop()
        self._streams += 1
        running = Running(record, worker, self._streams, started=time.monotonic())
        attempt = self.attempts[record.number] = self.attempts.get(record.number, 0) + 1
        self.plays[self._streams] = list(self.script(record, attempt))
        self.running[self._streams] = running
        return running

    def wait(self, timeout: float) -> list[Batch | WorkerDied]:
        out: list[Batch | WorkerDied] = []
        if self.missing:
            self.no_room_waits -= 1
            if self.no_room_waits <= 0:
                self.idle += [f"replacement-{i}" for i in range(self.missing)]
                self.missing = 0
        for stream, running in list(self.running.items()):
            play = self.plays[stream]
            if not play or play[0] == HANG:
                continue
            item = play.pop(0)
            if item == INTERRUPT:
                raise KeyboardInterrupt
            if item == DIE:
                del self.running[stream]
                if self.no_room_waits > 0:
                    self.missing += 1
                else:
                    self.idle.append(f"replacement-{stream}")
                out.append(WorkerDied(running, "ActorDiedError: the worker died"))
                continue
            if isinstance(item, Report) and stream in self.stopped:
                item = Outcome(TrialState.PRUNED, seconds=0.1, curves=b"png")
            if isinstance(item, Outcome):
                del self.running[stream]
                self.idle.append(running.worker)
            out.append(Batch(running, [item]))
        if not out:
            time.sleep(min(timeout, 0.005))  # only hanging trials: let the clock move
        return out

    def running_since(self, running: Running) -> float:
        return running.started

    def workers_up(self) -> int:
        return len(self.idle) + len(self.running)

    def free_resources(self) -> str:
        return "cpu=0"

    def stop(self, running: Running) -> None:
        self.stopped.add(running.stream)

    def locate(self, running: Running, artifact_uri: str, tracking_uri: str) -> None:
        self.located.append((running.record.number, artifact_uri))
        running.located = True

    def kill(self, running: Running) -> None:
        self.running.pop(running.stream, None)
        self.killed.append(running.record.number)
        self.idle.append(f"replacement-{running.stream}")

    def cancel_all(self) -> list[Running]:
        cancelled = list(self.running.values())
        self.killed.extend(r.record.number for r in cancelled)
        self.running.clear()
        return cancelled

    def render(self, specs: list[Any]) -> Callable[[], dict[str, bytes]]:
        return lambda: {name: b"figure" for name, _, _ in specs}

    def shutdown(self) -> None:
        self.shut = True


@dataclass
class FakeRun:
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, int, float]] = field(default_factory=list)  # (key, step, value)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    status: str = "RUNNING"
    ends: int = 0  # how often the run was ended: must be once


class FakeTracker:
    """The `Tracker` interface the driver and the lifecycle use, kept in dicts."""

    tracking_uri = "fake://"
    experiment_id = "0"

    def __init__(self, behind_checks: int = 0) -> None:
        self.sweep_id: str | None = None
        self.sweep = FakeRun()
        self.runs: dict[int, FakeRun] = {}
        self.closed = False
        self.behind_checks = behind_checks  # the record is behind for this many checks
        self.writing: set[int] = set()  # ended trials whose files are not in the store yet

    def behind(self) -> bool:
        self.behind_checks -= 1
        return self.behind_checks >= 0

    def start_sweep(self, *, run_name: str, tags: dict[str, str], params: dict[str, Any]) -> str:
        self.sweep_id = "sweep"
        self.sweep.tags.update(tags)
        self.sweep.params.update(params)
        return self.sweep_id

    def resume_sweep(
        self,
        sweep_id: str,
        *,
        tags: dict[str, str] | None = None,
        reopen: Sequence[tuple[str, Collection[str]]] = (),
        close: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.sweep_id = sweep_id
        self.sweep.tags.update(tags or {})
        self.reopened = [run_id for run_id, _ in reopen]
        self.closed_runs = list(close)

    @property
    def sweep_name(self) -> str:
        return "fake-sweep"

    def start_trial(self, number: int, flat_params: dict[str, Any], tags: dict[str, str]) -> None:
        assert number not in self.runs, f"trial {number} got a second run"
        self.runs[number] = FakeRun(params=dict(flat_params), tags=dict(tags))

    def adopt_trial(self, number: int, run_id: str, artifact_uri: str) -> None:
        self.runs.setdefault(number, FakeRun())

    def log_metrics(self, number: int, step: int, metrics: dict[str, float]) -> None:
        self.runs[number].metrics.extend((k, step, v) for k, v in metrics.items())

    def log_artifacts(self, number: int, files: dict[str, bytes]) -> None:
        self.runs[number].artifacts.update(files)

    def log_sweep_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.sweep.metrics.extend((k, step, v) for k, v in metrics.items())

    def set_tags(self, number: int, tags: dict[str, str]) -> None:
        self.runs[number].tags.update(tags)

    def set_sweep_tags(self, tags: dict[str, str]) -> None:
        self.sweep.tags.update(tags)

    def publish(self, write: Callable[[Any, dict[str, str]], dict[str, str]]) -> dict[str, str]:
        return write(None, dict(self.sweep.tags))

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
        from hpo.tracking.schema import RUN_STATUS

        run = self.runs[number]
        run.tags.update({"hpo.state": state.value, **(tags or {})})
        if error is not None:
            run.tags["hpo.error"] = error
        for name, value in (objectives or {}).items():
            run.metrics.append((name, 0, value))
        run.artifacts.update(artifacts or {})
        run.status = status or RUN_STATUS[state]
        run.ends += 1

    def run_id(self, number: int) -> str | None:
        return f"run-{number}" if number in self.runs else None

    def recorded(self, number: int) -> bool:
        return number in self.runs and self.runs[number].ends > 0 and number not in self.writing

    def artifact_location(self, number: int) -> str | None:
        return f"file:///store/run-{number}/artifacts" if number in self.runs else None

    def check(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def end_sweep(self, *, status: str, tags: dict[str, str], artifacts: dict[str, bytes]) -> None:
        self.sweep.tags.update(tags)
        self.sweep.artifacts.update(artifacts)
        self.sweep.status = status
        self.sweep.ends += 1


class TellingStrategy(RandomSearch):
    """Random search that keeps every tell it received, in order."""

    def _configure(self) -> None:
        self.told: list[tuple[int, TrialState, float | None, str | None]] = []

    def _on_tell(self, trial: Any) -> None:
        self.told.append((trial.number, trial.state, trial.value, trial.error))
