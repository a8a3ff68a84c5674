"""The driver's seams: what the loop and the lifecycle need of the worker pool and of the
tracker, as Protocols.

`hpo.execution.pool.WorkerPool` and `hpo.tracking.writer.Tracker` are the real ones; the
tests' fakes are others. A test checks that both satisfy these (same methods, same
signatures), so a fake cannot drift from what it stands for.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, runtime_checkable

from hpo.core.trial import TrialState


@runtime_checkable
class Pool(Protocol):
    """Workers that run trials and stream their events back (`WorkerPool`)."""

    idle: list[Any]  # workers free for a trial
    running: dict[Any, Any]  # trials in flight (`Running`), by stream
    missing: int  # dead workers not replaced yet

    def submit(
        self,
        record: Any,
        store: tuple[str, str] | None = None,
        segment: dict[str, Any] | None = None,
    ) -> Any: ...

    def wait(self, timeout: float) -> list[Any]: ...

    def running_since(self, running: Any) -> float | None: ...

    def workers_up(self) -> int: ...

    def free_resources(self) -> str: ...

    def locate(self, running: Any, artifact_uri: str, tracking_uri: str) -> None: ...

    def stop(self, running: Any) -> None: ...

    def kill(self, running: Any) -> None: ...

    def cancel_all(self) -> list[Any]: ...

    def render(
        self, specs: list[tuple[str, str, dict[str, Any]]]
    ) -> Callable[[], dict[str, bytes]]: ...

    def shutdown(self) -> None: ...


@runtime_checkable
class RunTracker(Protocol):
    """The sweep's record: a parent run and a run per trial (`Tracker`)."""

    tracking_uri: str
    experiment_id: str
    sweep_id: str | None

    @property
    def sweep_name(self) -> str: ...

    def start_sweep(
        self, *, run_name: str, tags: dict[str, str], params: dict[str, Any]
    ) -> str: ...

    def resume_sweep(
        self,
        sweep_id: str,
        *,
        tags: dict[str, str] | None = None,
        reopen: Sequence[tuple[str, Collection[str]]] = (),
        close: Sequence[tuple[str, str]] = (),
    ) -> None: ...

    def end_sweep(
        self, *, status: str, tags: dict[str, str], artifacts: dict[str, bytes]
    ) -> None: ...

    def start_trial(
        self, number: int, flat_params: dict[str, Any], tags: dict[str, str]
    ) -> None: ...

    def adopt_trial(self, number: int, run_id: str, artifact_uri: str) -> None: ...

    def log_metrics(self, number: int, step: int, metrics: dict[str, float]) -> None: ...

    def log_sweep_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def log_artifacts(self, number: int, files: dict[str, bytes]) -> None: ...

    def set_tags(self, number: int, tags: dict[str, str]) -> None: ...

    def set_sweep_tags(self, tags: dict[str, str]) -> None: ...

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
    ) -> None: ...

    def run_id(self, number: int) -> str | None: ...

    def artifact_location(self, number: int) -> str | None: ...

    def recorded(self, number: int) -> bool: ...

    def behind(self) -> bool: ...

    def check(self) -> None: ...

    def close(self) -> None: ...

    def publish(self, write: Callable[[Any, dict[str, str]], dict[str, str]]) -> dict[str, str]: ...
