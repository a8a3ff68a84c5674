"""Several objectives at once: which trials are on the Pareto front, and the hypervolume.

Values are turned into losses (each objective's sign made so that lower is better) and
compared as vectors: a point dominates another when it is no worse in every objective and
better in one. The front is the set of points no other point dominates; equal points are
both on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from hpo.core.directions import loss_sign


def losses(values: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """``values`` (one row per point) with every objective turned to "lower is better"."""
    signs = np.array([loss_sign(d) for d in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(directions)) * signs


def non_dominated(points: np.ndarray) -> np.ndarray:
    """A mask of the rows of ``points`` (losses) that no other row dominates."""
    points = np.asarray(points, dtype=float)
    keep = np.ones(len(points), dtype=bool)
    for i, p in enumerate(points):
        if not keep[i]:
            continue  # dominated: whatever it dominates, its dominator does too
        dominated = np.all(p <= points, axis=1) & np.any(p < points, axis=1)
        keep &= ~dominated
    return keep


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether values ``a`` dominate values ``b``."""
    la, lb = losses([a, b], directions)
    return bool(np.all(la <= lb) and np.any(la < lb))


def pareto_front(trials: Iterable[Any], directions: Sequence[str]) -> list[Any]:
    """The completed trials (anything with ``state`` and ``values``) on the Pareto front,
    in the order of their first objective (ties: the first issued)."""
    from hpo.strategies.base import TrialState

    done = [t for t in trials if t.state is TrialState.COMPLETE and t.values is not None]
    if not done:
        return []
    mask = non_dominated(losses([t.values for t in done], directions))
    front = [t for t, keep in zip(done, mask, strict=True) if keep]
    return sorted(front, key=lambda t: (*t.values, t.number))


def hypervolume_2d(points: np.ndarray, reference: Sequence[float]) -> float:
    """The area two-objective losses ``points`` dominate up to ``reference`` (a point
    worse than all of interest in both objectives); points beyond it count nothing."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    ref = np.asarray(reference, dtype=float)
    inside = points[np.all(points < ref, axis=1)]
    if not len(inside):
        return 0.0
    front = inside[non_dominated(inside)]
    front = front[np.argsort(front[:, 0])]  # first objective up, so the second goes down
    widths = np.diff(np.append(front[:, 0], ref[0]))
    return float(np.sum(widths * (ref[1] - front[:, 1])))
