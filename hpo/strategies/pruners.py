"""Pruners: stop unpromising trials early, judged on the curves they stream.

A pruner watches one reported metric. The driver feeds it every value a trial reports
(`report`) and tells it when a trial completed (`complete`); `report` returns the reason to
stop the trial, or None. The driver then asks the trial's worker to stop, and the trial's
next ``report(...)`` call raises `TrialPruned` inside the objective, so the worker is free
without waiting for the objective to finish.

Steps are whatever the objective passes to ``report`` (epochs, for the models). Each report
also carries the seconds since the trial began, timed in the worker; `ASHAPruner` can place
its rungs on that axis instead (``resource="seconds"``).
"""

from __future__ import annotations

import bisect
import math
from typing import Any, ClassVar

from hpo.core.checks import check_seconds, int_at_least
from hpo.core.directions import better, check_direction, loss_sign


class TrialPruned(Exception):
    """Raised by ``report`` inside an objective whose trial was pruned.

    An objective that catches every exception should re-raise this one; if it does not, its
    next ``report`` raises it again.
    """


class Pruner:
    """Base class. ``direction`` says whether lower or higher values of the metric are better;
    the sweep's direction when None."""

    name: ClassVar[str] = "base"

    def __init__(self, *, direction: str | None = None) -> None:
        self.direction = None if direction is None else check_direction(direction)

    def bind(self, direction: str) -> None:
        """Take the sweep's direction unless one was given."""
        if self.direction is None:
            self.direction = check_direction(direction)

    def report(
        self, number: int, step: int, value: float, seconds: float | None = None
    ) -> str | None:
        """Record ``value`` of trial ``number`` at ``step``, reported ``seconds`` after the
        trial began; the reason to prune it, or None."""
        raise NotImplementedError

    def complete(self, number: int) -> None:
        """Trial ``number`` ran to its end."""

    def settings(self) -> dict[str, Any]:
        return {"pruner": self.name}

    def recipe(self) -> dict[str, Any]:
        """How to make this pruner again (resume): its name and constructor arguments."""
        return {"pruner": self.name, "direction": self.direction, **self._options()}

    def _options(self) -> dict[str, Any]:
        raise NotImplementedError

    def _better(self, a: float, b: float) -> bool:
        return better(a, b, self.direction)


class MedianPruner(Pruner):
    """The median stopping rule.

    A trial is stopped at step ``s`` when its best value up to ``s`` is worse than the median
    of the values that completed trials reported at ``s``. Nothing is pruned before
    ``min_trials`` trials have completed or before step ``warmup_steps``.

    Examples
    --------
    >>> p = MedianPruner(min_trials=1, warmup_steps=0)
    >>> p.bind("minimize")
    >>> p.report(0, 1, 0.5), p.complete(0)
    (None, None)
    >>> p.report(1, 1, 0.9).split(":")[0], p.report(2, 1, 0.4)
    ('median rule', None)
    """

    name = "median"

    def __init__(
        self, *, warmup_steps: int = 5, min_trials: int = 5, direction: str | None = None
    ) -> None:
        super().__init__(direction=direction)
        self.warmup_steps = int_at_least("warmup_steps", warmup_steps, 0)
        self.min_trials = int_at_least("min_trials", min_trials, 1)
        self._curves: dict[int, dict[int, float]] = {}
        self._best: dict[int, float] = {}
        self._completed_at: dict[int, list[float]] = {}  # step -> sorted values of completed
        self._n_completed = 0

    def report(
        self, number: int, step: int, value: float, seconds: float | None = None
    ) -> str | None:
        if math.isnan(value):
            return None
        self._curves.setdefault(number, {})[step] = value
        best = self._best.get(number)
        if best is None or self._better(value, best):
            self._best[number] = best = value
        if step < self.warmup_steps or self._n_completed < self.min_trials:
            return None
        values = self._completed_at.get(step)
        if not values or len(values) < self.min_trials:
            return None
        median = _median(values)
        if self._better(median, best):
            return (
                f"median rule: best value {best:.4g} by step {step} is worse than the median "
                f"{median:.4g} of {len(values)} completed trials at step {step}"
            )
        return None

    def complete(self, number: int) -> None:
        self._n_completed += 1
        for step, value in self._curves.pop(number, {}).items():
            bisect.insort(self._completed_at.setdefault(step, []), value)
        self._best.pop(number, None)

    def _options(self) -> dict[str, Any]:
        return {"warmup_steps": self.warmup_steps, "min_trials": self.min_trials}

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), **{f"pruner.{k}": v for k, v in self._options().items()}}


class ASHAPruner(Pruner):
    """Asynchronous successive halving.

    Rungs sit at ``min_resource * reduction_factor**k`` along the trial's resource: its
    reported steps (``resource="step"``, the default) or the seconds since it began
    (``resource="seconds"``). When a trial first reaches a rung its value there is recorded,
    and it continues only if that value is among the best ``max(1, n // reduction_factor)``
    of the ``n`` values recorded at that rung so far, its own included. Decisions never wait
    for other trials, so no worker idles.

    ``min_resource="auto"`` (the default) places the rungs from the first trial that
    completes: with R its last step (or its seconds), ``min_resource = R /
    reduction_factor**2``, so there are three rungs, the last at about R (with R = 50 epochs
    and a factor of 3: steps 6 and 18, then 54, which a 50-epoch trial never reaches). Until
    then nothing is pruned. Judging at the first step instead is too noisy for training
    curves: early losses favour fast starters over configurations that end better.

    Seconds compare trials at equal compute: an epoch of a small batch size or a wide
    network costs many times one of a lean configuration, and judged per step such a trial
    is kept for being good early, then spends most of the sweep's time. Judged per second,
    it must be as good as the others were after the same time. Decisions then depend on the
    machine's speed and load, so a sweep no longer prunes the same trials twice.

    Examples
    --------
    >>> p = ASHAPruner(min_resource=1, reduction_factor=2)
    >>> p.bind("minimize")
    >>> p.report(0, 1, 0.3), p.report(1, 1, 0.2), p.report(2, 1, 0.4)
    (None, None, 'ASHA: value 0.4 at rung step 1 is not in the best 1 of 3 trials there')
    >>> q = ASHAPruner(min_resource=2.0, reduction_factor=2, resource="seconds")
    >>> q.bind("minimize")
    >>> q.report(0, 7, 0.3, seconds=2.5), q.report(1, 1, 0.5, seconds=2.1)
    (None, 'ASHA: value 0.5 at rung 2 s is not in the best 1 of 2 trials there')
    """

    name = "asha"
    RESOURCES = ("step", "seconds")

    def __init__(
        self,
        *,
        min_resource: float | str = "auto",
        reduction_factor: int = 3,
        resource: str = "step",
        direction: str | None = None,
    ) -> None:
        super().__init__(direction=direction)
        if resource not in self.RESOURCES:
            raise ValueError(f"resource must be 'step' or 'seconds', got {resource!r}")
        self.resource = resource
        self.auto = min_resource == "auto"
        self.min_resource: float | None = None
        if not self.auto and resource == "step":
            self.min_resource = int_at_least("min_resource", min_resource, 1)
        elif not self.auto:
            check_seconds("min_resource", min_resource, optional=False)
            self.min_resource = float(min_resource)
        self.reduction_factor = int_at_least("reduction_factor", reduction_factor, 2)
        self._rungs: list[list[float]] = []  # scores recorded at rung k, sorted
        self._next_rung: dict[int, int] = {}  # trial -> index of the next rung it will reach
        self._curves: dict[int, dict[float, float]] = {}  # kept until the rungs are placed

    def rung_step(self, k: int) -> float:
        """Where rung ``k`` sits on the resource axis (a step, or seconds)."""
        if self.min_resource is None:
            raise ValueError("the rungs are placed when the first trial completes")
        return self.min_resource * self.reduction_factor**k

    def report(
        self, number: int, step: int, value: float, seconds: float | None = None
    ) -> str | None:
        if self.resource == "seconds":
            if seconds is None:
                raise ValueError("ASHA on resource='seconds' needs each report's seconds")
            at: float = seconds
        else:
            at = step
        if self.min_resource is None:
            self._curves.setdefault(number, {})[at] = value
            return None
        k = self._next_rung.get(number, 0)
        if at < self.rung_step(k):
            return None
        # A trial that skips rungs (reports every few steps) is judged at the highest one.
        while at >= self.rung_step(k + 1):
            k += 1
        self._next_rung[number] = k + 1
        keep, n = self._record(k, value)
        if keep:
            return None
        return (
            f"ASHA: value {value:.4g} at rung {self._where(k)} is not in the best "
            f"{max(1, n // self.reduction_factor)} of {n} trials there"
        )

    def _where(self, k: int) -> str:
        rung = self.rung_step(k)
        return f"step {rung:g}" if self.resource == "step" else f"{rung:.3g} s"

    def _record(self, k: int, value: float) -> tuple[bool, int]:
        """Put ``value`` in rung ``k``; whether it is among the best there, and the count."""
        while len(self._rungs) <= k:
            self._rungs.append([])
        rung = self._rungs[k]
        score = loss_sign(self.direction) * value  # lower is better
        if math.isnan(score):
            score = math.inf  # NaN ranks last: it is never among the best
        bisect.insort(rung, score)
        keep = max(1, len(rung) // self.reduction_factor)
        return score <= rung[keep - 1], len(rung)

    def complete(self, number: int) -> None:
        curve = self._curves.pop(number, None)
        if self.min_resource is not None or not curve:
            return
        full = max(curve)
        placed = full / self.reduction_factor**2
        self.min_resource = max(1, round(placed)) if self.resource == "step" else placed
        # The first completed trial's values at the rungs it passed are the rungs' first
        # entries; trials still running are judged from their next report on.
        k = 0
        while self.rung_step(k) <= full:
            at = min(a for a in curve if a >= self.rung_step(k))
            self._record(k, curve[at])
            k += 1
        self._curves.clear()

    def _options(self) -> dict[str, Any]:
        return {
            "min_resource": "auto" if self.auto else self.min_resource,
            "reduction_factor": self.reduction_factor,
            "resource": self.resource,
        }

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), **{f"pruner.{k}": v for k, v in self._options().items()}}


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


PRUNERS = {"median": MedianPruner, "asha": ASHAPruner}


def make_pruner(pruner: str | Pruner | None, **options: Any) -> Pruner | None:
    """A pruner from its name ("median", "asha", "none") and options, or as given.

    The name may carry options as ``NAME:key=value,...`` (``"asha:resource=seconds"``),
    the form the command line takes; numbers in it are read as numbers.

    >>> make_pruner("asha:resource=seconds,reduction_factor=4").settings()["pruner.resource"]
    'seconds'
    """
    if pruner is None or isinstance(pruner, Pruner):
        return pruner
    name, _, spec = pruner.partition(":")
    if name == "none":
        if spec:
            raise ValueError(f"pruner 'none' takes no options, got {pruner!r}")
        return None
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; choose one of: median, asha, none")
    for item in filter(None, spec.split(",")):
        key, equals, text = item.partition("=")
        if not equals or not key:
            raise ValueError(f"pruner options are key=value pairs, got {item!r} in {pruner!r}")
        options[key.strip()] = _number_or_text(text.strip())
    try:
        return PRUNERS[name](**options)
    except TypeError:  # an option the pruner does not have
        known = ", ".join(sorted(PRUNERS[name]().recipe().keys() - {"pruner", "direction"}))
        raise ValueError(
            f"pruner {name!r} takes the options {known}, got {sorted(options)}"
        ) from None


def _number_or_text(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
