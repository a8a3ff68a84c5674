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
        """What the parent run records: the name and each option as ``pruner.OPTION``."""
        return {"pruner": self.name, **{f"pruner.{k}": v for k, v in self._options().items()}}

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


class ASHAPruner(Pruner):
    """Asynchronous successive halving.

    Rungs sit at ``min_resource * reduction_factor**k`` along the trial's resource: its
    reported steps (``resource="step"``, the default) or the seconds since it began
    (``resource="seconds"``). When a trial first reaches a rung its value there is recorded,
    and it continues only if that value is within the best ``1 / reduction_factor`` of the
    values recorded at that rung before it: at most their ``1 / reduction_factor`` quantile,
    interpolated between neighbours (as Ray Tune's ASHA judges); the first trial at a rung
    continues. Decisions never wait for other trials, so no worker idles.

    A trial is judged once, as it arrives, and never promoted later. Counted as the best
    ``n // reduction_factor`` of the ``n`` values there, its own included, the fifth trial
    at a rung would go on only as the best of five, and the rungs near the end, which few
    trials reach, would let few through to a full training: on the multi-fidelity
    benchmark's digits task that rule reached random search's final best in 0.43 of the
    budget, this one in 0.09 (`benchmarks/multifidelity.py`, docs/benchmarks.md).

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
    >>> p.report(0, 1, 0.3), p.report(1, 1, 0.2)
    (None, None)
    >>> print(p.report(2, 1, 0.4))  # doctest: +NORMALIZE_WHITESPACE
    ASHA: value 0.4 at rung step 1 is worse than 0.25, the best 1/2 of the 2 values there
    before it
    >>> q = ASHAPruner(min_resource=2.0, reduction_factor=2, resource="seconds")
    >>> q.bind("minimize")
    >>> q.report(0, 7, 0.3, seconds=2.5)
    >>> print(q.report(1, 1, 0.5, seconds=2.1))  # doctest: +NORMALIZE_WHITESPACE
    ASHA: value 0.5 at rung 2 s is worse than 0.3, the best 1/2 of the 1 value there before
    it
    """

    name = "asha"
    RESOURCES = ("step", "seconds")

    def __init__(
        self,
        *,
        min_resource: float | str = "auto",
        reduction_factor: int = 3,
        resource: str = "step",
        max_resource: float | None = None,
        direction: str | None = None,
    ) -> None:
        super().__init__(direction=direction)
        self.resource = _check_resource(resource)
        self.auto = min_resource == "auto"
        self.min_resource: float | None = None
        if not self.auto:
            self.min_resource = _amount("min_resource", min_resource, resource)
        self.max_resource = None if max_resource is None else float(max_resource)
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
        if at < self.rung_step(k) or not self._below_max(k):
            return None
        # A trial that skips rungs (reports every few steps) is judged at the highest one.
        while at >= self.rung_step(k + 1) and self._below_max(k + 1):
            k += 1
        self._next_rung[number] = k + 1
        cutoff, before = self._record(k, value)
        if cutoff is None:
            return None
        values = "value" if before == 1 else "values"
        return (
            f"ASHA: value {value:.4g} at rung {self._where(k)} is worse than {cutoff:.4g}, "
            f"the best 1/{self.reduction_factor} of the {before} {values} there before it"
        )

    def _below_max(self, k: int) -> bool:
        """Rungs sit below ``max_resource``: a trial that got there has finished training."""
        return self.max_resource is None or self.rung_step(k) < self.max_resource

    def _where(self, k: int) -> str:
        rung = self.rung_step(k)
        return f"step {rung:g}" if self.resource == "step" else f"{rung:.3g} s"

    def _record(self, k: int, value: float) -> tuple[float | None, int]:
        """Put ``value`` in rung ``k``. (None, n) when it goes on, else (the cutoff it
        missed, in the metric's own sign, n), ``n`` the values recorded there before it."""
        while len(self._rungs) <= k:
            self._rungs.append([])
        rung = self._rungs[k]
        sign = loss_sign(self.direction)
        score = sign * value  # lower is better
        if math.isnan(score):
            score = math.inf  # NaN ranks last: it never goes on
        before = len(rung)
        cutoff = _quantile(rung, 1 / self.reduction_factor) if rung else math.inf
        bisect.insort(rung, score)
        return (None if score <= cutoff else sign * cutoff), before

    def complete(self, number: int) -> None:
        curve = self._curves.pop(number, None)
        if self.min_resource is not None or not curve:
            return
        self.min_resource = _rounded(max(curve) / self.reduction_factor**2, self.resource)
        self.seed_rungs(curve)
        self._curves.clear()

    def seed_rungs(self, curve: dict[float, float]) -> None:
        """Enter a completed trial's values at the rungs it passed (the first trial of an
        automatic placement: trials still running are judged from their next report on)."""
        k = 0
        while self.rung_step(k) <= max(curve) and self._below_max(k):
            at = min(a for a in curve if a >= self.rung_step(k))
            self._record(k, curve[at])
            k += 1

    def _options(self) -> dict[str, Any]:
        options = {
            "min_resource": "auto" if self.auto else self.min_resource,
            "reduction_factor": self.reduction_factor,
            "resource": self.resource,
        }
        if self.max_resource is not None:
            options["max_resource"] = self.max_resource
        return options


class HyperbandPruner(Pruner):
    """Asynchronous Hyperband: several ASHA brackets, each trial in one of them.

    Successive halving must guess how early a curve tells the good from the bad: judged at
    the first epoch it drops late bloomers, judged late it saves little. Hyperband hedges
    the guess. Between ``min_resource`` and ``max_resource`` (the length of a full training,
    on the trial's resource: its reported steps, or seconds) it places rungs at
    ``min_resource * reduction_factor**k``; bracket 0 judges at every rung, bracket 1 from
    the second on, ..., and the last bracket never prunes. Each trial is assigned to a
    bracket by its number as it starts, in Hyperband's proportions (the aggressive
    brackets, whose trials cost little, take more of them), and is judged only against
    the trials of its own bracket, by ASHA's rule: it goes on from a rung if it is within
    the best ``1 / reduction_factor`` of the values recorded there before it. No bracket
    waits for its stragglers.

    ``max_resource="auto"`` (the default) takes the first completed trial's last step (or
    its seconds); ``min_resource="auto"`` (the default) is then ``max_resource /
    reduction_factor**3``, so four brackets. Nothing is pruned until both are known.

    Examples
    --------
    >>> p = HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3)
    >>> p.bind("minimize")
    >>> p.rungs(), [p.bracket_of(n) for n in range(8)]
    ([1.0, 3.0], [0, 1, 2, 0, 1, 0, 0, 2])
    """

    name = "hyperband"

    def __init__(
        self,
        *,
        min_resource: float | str = "auto",
        max_resource: float | str = "auto",
        reduction_factor: int = 3,
        resource: str = "step",
        direction: str | None = None,
    ) -> None:
        super().__init__(direction=direction)
        self.resource = _check_resource(resource)
        self.reduction_factor = int_at_least("reduction_factor", reduction_factor, 2)
        self.auto_min, self.auto_max = min_resource == "auto", max_resource == "auto"
        self.min_resource, self.max_resource = (
            None if auto else _amount(name, value, resource)
            for name, value, auto in (
                ("min_resource", min_resource, self.auto_min),
                ("max_resource", max_resource, self.auto_max),
            )
        )
        if self.min_resource is not None and self.max_resource is not None:
            if self.min_resource >= self.max_resource:
                raise ValueError(
                    f"min_resource must be less than max_resource, got min_resource="
                    f"{min_resource!r} and max_resource={max_resource!r}"
                )
        self._brackets: list[ASHAPruner] = []
        self._order: list[int] = []  # brackets in the order trials are assigned to them
        self._curves: dict[int, dict[float, float]] = {}  # kept until the rungs are placed
        if self.max_resource is not None and self.min_resource is not None:
            self._place()

    def rungs(self) -> list[float]:
        """Where the rungs sit on the resource axis (those of bracket 0)."""
        if not self._brackets:
            raise ValueError("the rungs are placed when the first trial completes")
        return [float(bracket.min_resource) for bracket in self._brackets[:-1]]

    def bracket_of(self, number: int) -> int:
        """The bracket trial ``number`` is judged in (0: the most aggressive)."""
        return self._order[number % len(self._order)]

    def _place(self) -> None:
        eta = self.reduction_factor
        low, high = self.min_resource, self.max_resource
        assert low is not None and high is not None
        n_rungs = 0
        while low * eta**n_rungs < high:
            n_rungs += 1
        # Bracket s judges from rung s on; the last has no rung below max_resource.
        self._brackets = []
        for s in range(n_rungs + 1):
            bracket = ASHAPruner(
                min_resource=low * eta**s if s < n_rungs else high,
                reduction_factor=eta,
                resource=self.resource,
                max_resource=high,
                direction=self.direction,
            )
            self._brackets.append(bracket)
        # Hyperband's proportions: bracket s starts ceil((S + 1) / (S - s + 1) * eta**(S - s))
        # configurations in a round, S + 1 the number of brackets; interleaved in a fixed
        # order, so that a trial's bracket depends on its number alone (a resume agrees).
        top = n_rungs
        share = [math.ceil((top + 1) / (top - s + 1) * eta ** (top - s)) for s in range(top + 1)]
        slots = sorted((j / n, s) for s, n in enumerate(share) for j in range(n))
        self._order = [s for _, s in slots]

    def bind(self, direction: str) -> None:
        super().bind(direction)
        for bracket in self._brackets:
            bracket.bind(direction)

    def report(
        self, number: int, step: int, value: float, seconds: float | None = None
    ) -> str | None:
        if not self._brackets:
            if self.resource == "seconds" and seconds is None:
                raise ValueError("Hyperband on resource='seconds' needs each report's seconds")
            at = seconds if self.resource == "seconds" else step
            self._curves.setdefault(number, {})[at] = value
            return None
        s = self.bracket_of(number)
        reason = self._brackets[s].report(number, step, value, seconds=seconds)
        return None if reason is None else f"Hyperband bracket {s}: {reason}"

    def complete(self, number: int) -> None:
        curve = self._curves.pop(number, None)
        if self._brackets:
            self._brackets[self.bracket_of(number)].complete(number)
            return
        if not curve:
            return
        eta, full = self.reduction_factor, max(curve)
        if self.auto_max:
            self.max_resource = _rounded(full, self.resource)
        if self.auto_min:
            self.min_resource = _rounded(self.max_resource / eta**3, self.resource)
        if self.min_resource >= self.max_resource:
            return  # too short a curve to judge anything: nothing is pruned
        self._place()
        for bracket in self._brackets:  # the first complete curve counts in every bracket
            bracket.seed_rungs(curve)
        self._curves.clear()

    def _options(self) -> dict[str, Any]:
        return {
            "min_resource": "auto" if self.auto_min else self.min_resource,
            "max_resource": "auto" if self.auto_max else self.max_resource,
            "reduction_factor": self.reduction_factor,
            "resource": self.resource,
        }


def _check_resource(resource: str) -> str:
    if resource not in ASHAPruner.RESOURCES:
        raise ValueError(f"resource must be 'step' or 'seconds', got {resource!r}")
    return resource


def _amount(name: str, value: Any, resource: str) -> float:
    """A point on the resource axis: a step (int >= 1) or seconds (> 0)."""
    if resource == "step":
        return int_at_least(name, value, 1)
    check_seconds(name, value, optional=False)
    return float(value)


def _rounded(amount: float, resource: str) -> float:
    """An automatic placement: whole steps (at least 1), or seconds as they are."""
    return max(1, round(amount)) if resource == "step" else amount


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


def _quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of the non-empty ascending ``ordered``, interpolated linearly
    between neighbours (NumPy's default method); infinite values (diverged trials) stay
    at the end."""
    at = q * (len(ordered) - 1)
    i = math.floor(at)
    low = ordered[i]
    if i + 1 == len(ordered) or at == i or math.isinf(low):
        return low
    high = ordered[i + 1]
    return high if math.isinf(high) else low + (at - i) * (high - low)


PRUNERS = {"median": MedianPruner, "asha": ASHAPruner, "hyperband": HyperbandPruner}


def make_pruner(pruner: str | Pruner | None, **options: Any) -> Pruner | None:
    """A pruner from its name ("median", "asha", "hyperband", "none") and options, or as
    given.

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
        raise ValueError(f"unknown pruner {name!r}; choose one of: {', '.join(PRUNERS)}, none")
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
