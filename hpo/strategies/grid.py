"""Grid search: every combination of the grid values, in order, once."""

from __future__ import annotations

import itertools
from typing import Any

from hpo.strategies.base import Strategy, Trial


class GridSearch(Strategy):
    """Enumerates the space's grid; `exhausted` once every point was issued.

    `Choice` and `Int` parameters enumerate their values; a `Float` needs ``grid=`` (a
    count or explicit points). The seed is unused: the order is fixed.

    Examples
    --------
    >>> from hpo.core.space import Choice, Float
    >>> s = GridSearch({"lr": Float(0.01, 1.0, log=True, grid=3), "act": Choice(["relu", "tanh"])})
    >>> s.size, len(s.ask(10)), s.exhausted
    (6, 6, True)
    """

    name = "grid"
    multi_objective = True
    max_infeasible = None  # a grid ends: it skips every point the constraints refuse

    def _configure(self) -> None:
        self.size = self.space.grid_size()  # raises now if a Float has no grid
        self._points = self.space.grid()
        self._issued: set[tuple[tuple[str, Any], ...]] = set()  # points issued, as `_point_key`
        self._left = self.size  # grid points not issued yet
        self._on_grid: set[tuple[tuple[str, Any], ...]] | None = None  # made when needed

    @property
    def exhausted(self) -> bool:
        return self._left == 0 and not self._queue

    def _suggest(self, n: int) -> list[dict[str, Any]]:
        # Points a restored sweep already ran are skipped: the grid goes on where it stopped.
        fresh = (a for a in self._points if _point_key(a) not in self._issued)
        batch = list(itertools.islice(fresh, n))
        self._issued.update(_point_key(a) for a in batch)
        self._left -= len(batch)
        return batch

    def _on_restore(self, trial: Trial) -> None:
        # A restored or enqueued point: done, and counted off the grid if it is on it.
        key = _point_key(trial.assignment)
        if key not in self._issued and self.on_grid(trial.assignment):
            self._left -= 1
        self._issued.add(key)

    def on_grid(self, assignment: dict[str, Any]) -> bool:
        """Whether ``assignment`` is one of the grid's points."""
        if self._on_grid is None:
            self._on_grid = {_point_key(a) for a in self.space.grid()}
        return _point_key(assignment) in self._on_grid

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "grid_size": self.size}


def _point_key(assignment: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    # NumPy scalars as Python numbers: a restored point (from MLflow) must equal the grid's.
    return tuple(sorted((k, v.item() if hasattr(v, "item") else v) for k, v in assignment.items()))
