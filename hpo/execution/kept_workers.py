"""Worker actors kept up between the sweeps of one process (``keep_workers``).

A worker's start is a process start and the imports of the objective's libraries
(scikit-learn alone takes over a second here): for a search that is called again and again
(`hpo.SearchCV` in a nested cross-validation, a notebook re-running a small sweep) that is
most of its fixed cost. A sweep with ``keep_workers=S`` leaves its idle workers up for S
seconds, as joblib's loky workers stay up between scikit-learn's searches, and the next
sweep of this process with the same kind of worker takes them and gives them its
objective and data. Kept workers hold their share of the cluster while they wait: a sweep
that asks for another kind ends them first, and `release_workers` ends them at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

ALIVE_SECONDS = 5.0  # a kept worker that does not take a sweep within this is ended


@dataclass
class KeptWorker:
    worker: Any  # the actor handle
    trials_run: int  # counted against ``max_trials_per_worker`` across sweeps


class _KeptWorkers:
    """The workers a finished sweep left up, the kind they are (``key``: the Ray
    connection, their resources, threads and credentials), and the timer that ends them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Hashable | None = None
        self._workers: list[KeptWorker] = []
        self._timer: threading.Timer | None = None

    def take(self, key: Hashable, most: int) -> list[KeptWorker]:
        """Up to ``most`` kept workers of kind ``key``; every other kept worker is ended
        (it holds resources the new sweep may need). The caller checks they still answer."""
        with self._lock:
            self._stop_timer()
            kept, self._workers, same = self._workers, [], self._key == key
        taken = kept[:most] if same else []
        _end([k.worker for k in kept[len(taken) :]])
        return taken

    def keep(self, key: Hashable, workers: list[KeptWorker], seconds: float) -> None:
        """Keep ``workers`` up for ``seconds`` for the next sweep of kind ``key``."""
        with self._lock:
            self._stop_timer()
            before, self._workers, self._key = self._workers, list(workers), key
            self._timer = threading.Timer(seconds, self.release)
            self._timer.daemon = True
            self._timer.start()
        _end([k.worker for k in before])  # two sweeps ended at once: the later one's stay

    def release(self) -> int:
        """End every kept worker now; how many there were."""
        with self._lock:
            self._stop_timer()
            kept, self._workers = self._workers, []
        _end([k.worker for k in kept])
        return len(kept)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _end(workers: list[Any]) -> None:
    import ray

    for worker in workers:
        try:
            ray.kill(worker, no_restart=True)
        except Exception as exc:  # noqa: BLE001 - gone with its cluster (ray.shutdown) already
            log.debug("could not end a kept worker: %s", exc)


KEPT = _KeptWorkers()


def release_workers() -> int:
    """End the worker processes that sweeps with ``keep_workers`` left up (they hold
    their CPUs and GPUs until then); returns how many were ended.

    >>> import hpo
    >>> hpo.release_workers()
    0
    """
    return KEPT.release()
