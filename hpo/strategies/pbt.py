"""Population-based training: a population of members trains in segments of ``interval``
steps; at the end of each, a member in the bottom ``quantile`` takes the checkpoint of one
in the top quantile and goes on with changed parameters (exploit and explore), the others
go on from their own checkpoint.

A segment is one trial, so one MLflow run with its own parameters (MLflow's cannot change):
its attributes, recorded as the run's ``hpo.pbt.*`` tags, say which member it belongs to,
which segment it goes on from (``parent``: the member's own last one, or the one it
exploited), the step it starts after and its last step. Following ``parent`` from any
segment back to a first one reads the whole schedule its state was trained with.

Asynchronous, as the sweep's workers are: a member is judged when its segment ends, against
every member's latest value (Jaderberg et al., 2017; Ray Tune's PBT does the same). A member
whose segment failed is out of the population. The sweep's ``n_trials`` is the number of
members; the segments after the first do not count against it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from hpo.core.directions import loss_sign
from hpo.core.space import Choice, Float, Int, Param
from hpo.core.trial import DONOR, END, FROM_STEP, MEMBER, PARENT, UNTIL
from hpo.strategies.base import Strategy, Trial, TrialState
from hpo.strategies.pruners import TrialPruned


class SegmentEnd(TrialPruned):
    """Raised by ``report`` (or ``report.checkpoint``) once a population-based training
    segment has trained its steps and stored its state: the segment ends there, COMPLETE.

    A `TrialPruned` so that an objective that re-raises those (as it must) lets it through.
    """

    def __init__(self, step: int) -> None:
        super().__init__(f"the segment ended at its checkpoint of step {step}")
        self.step = step


def _check_fraction(name: str, value: Any, high: float) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 < value <= high:
        raise ValueError(f"{name} must be a number in (0, {high:g}], got {value!r}")
    return float(value)


class PBT(Strategy):
    """Population-based training (``strategy="pbt"``), with these options (keyword
    arguments of ``hpo.make_strategy("pbt", space, ...)``, or ``strategy_options`` of an
    experiment file):

    - ``population`` (8): members trained side by side (the sweep's ``n_trials``).
    - ``interval`` (10): steps (the objective's ``report`` steps) per segment.
    - ``quantile`` (0.25): the fraction of members, in (0, 0.5], that are the bottom
      (they exploit) and the top (the donors).
    - ``mutate``: the parameters that change when a member exploits another (dotted names
      as in MLflow); when omitted, every numeric parameter and every choice between
      constants outside conditional branches (a branch cannot change while a member trains).
    - ``factors`` ((0.8, 1.2)): a numeric parameter is multiplied by one of them, at random,
      then kept in its range; an integer moves at least one step; a choice moves to a
      neighbouring option.
    - ``resample_probability`` (0.25): the chance, per parameter, of drawing it afresh from
      its range instead.
    """

    name = "pbt"
    max_infeasible = None  # a continuation keeps its donor's (feasible) values
    watches_curves = True

    def _configure(
        self,
        population: int = 8,
        interval: int = 10,
        quantile: float = 0.25,
        mutate: Sequence[str] | None = None,
        factors: Sequence[float] = (0.8, 1.2),
        resample_probability: float = 0.25,
    ) -> None:
        for label, n, low in (("population", population, 2), ("interval", interval, 1)):
            if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < low:
                raise ValueError(f"pbt's {label} must be an int >= {low}, got {n!r}")
        self.population, self.interval = int(population), int(interval)
        self.quantile = _check_fraction("pbt's quantile", quantile, 0.5)
        if resample_probability != 0:
            _check_fraction("pbt's resample_probability", resample_probability, 1.0)
        self.resample_probability = float(resample_probability)
        if (
            isinstance(factors, str)
            or not isinstance(factors, Sequence)
            or not factors
            or not all(isinstance(f, numbers.Real) and f > 0 for f in factors)
        ):
            raise ValueError(f"pbt's factors must be a list of positive numbers, got {factors!r}")
        self.factors = [float(f) for f in factors]
        self.mutable = self._mutable(mutate)
        self._pending_attrs: list[dict[str, Any]] = []

    def _mutable(self, names: Sequence[str] | None) -> list[Param]:
        """The parameters that exploitation may change. ValueError for a name the space does
        not have, or a choice between branches (it would change which parameters exist)."""
        changing = [
            p
            for p in self.space.params
            if not p.condition and not (isinstance(p.dim, Choice) and p.dim.is_conditional)
        ]
        if names is None:
            return changing
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise ValueError(f"pbt's mutate must be a list of parameter names, got {names!r}")
        by_name = {p.name: p for p in self.space.params}
        out = []
        for name in names:
            if name not in by_name:
                raise ValueError(
                    f"pbt's mutate names {name!r}, which the space does not have (its "
                    f"parameters: {', '.join(by_name)})"
                )
            if by_name[name] not in changing:
                raise ValueError(
                    f"pbt cannot change {name!r} while members train: it is a choice between "
                    "branches or inside one (the member's parameters would change shape)"
                )
            out.append(by_name[name])
        return out

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "pbt_population": self.population,
            "pbt_interval": self.interval,
            "pbt_quantile": self.quantile,
            "pbt_mutate": ",".join(p.name for p in self.mutable),
        }

    # -- the population --------------------------------------------------------------------
    def segments(self) -> list[Trial]:
        return [t for t in self.trials if MEMBER in t.attrs]

    def latest(self) -> dict[int, Trial]:
        """Each member's latest segment (the last issued)."""
        out: dict[int, Trial] = {}
        for t in sorted(self.segments(), key=lambda t: t.number):
            out[t.attrs[MEMBER]] = t
        return out

    def _scores(self) -> dict[int, Trial]:
        """Each living member's latest finished segment: the member's latest value. A member
        whose latest segment failed (or was pruned) is out."""
        out: dict[int, Trial] = {}
        for t in sorted(self.segments(), key=lambda t: t.number):
            if t.state.is_finished:
                out[t.attrs[MEMBER]] = t
        return {m: t for m, t in out.items() if t.state is TrialState.COMPLETE}

    def ready(self) -> list[Trial]:
        """Latest segments that reached their last step, the least trained first: their
        members go on (the least trained first, so that with fewer workers than members no
        member runs ahead while others wait, and members are compared at similar steps)."""
        ready = [
            t
            for t in self.latest().values()
            if t.state is TrialState.COMPLETE and t.attrs.get(END) is not None
        ]
        return sorted(ready, key=lambda t: (t.attrs[END], t.number))

    @property
    def exhausted(self) -> bool:
        members = sum(t.attrs.get(PARENT) is None for t in self.segments())
        return members >= self.population and not self.pending and not self.ready()

    # -- asking ----------------------------------------------------------------------------
    def _suggest(self, n: int) -> list[dict[str, Any]]:
        """New members, drawn at random, up to the population (their continuations come
        from `continuations`, outside the sweep's budget)."""
        members = sum(t.attrs.get(PARENT) is None for t in self.segments())
        out = []
        for _ in range(min(n, self.population - members)):
            out.append(self.space.sample(self.rng))
            self._pending_attrs.append({PARENT: None, FROM_STEP: None, UNTIL: self.interval - 1})
        return out

    def continuations(self, n: int) -> list[Trial]:
        """The next segments of up to ``n`` members whose segment ended: each exploits a
        member of the top quantile when it is in the bottom one, else goes on as it was."""
        out = []
        for segment in self.ready()[:n]:
            assignment, attrs = self._next(segment)
            self._pending_attrs.append(attrs)
            out.append(self._issue(assignment))
        return out

    def waiting_to_continue(self) -> bool:
        return bool(self.ready())

    def _next(self, segment: Trial) -> tuple[dict[str, Any], dict[str, Any]]:
        member = segment.attrs[MEMBER]
        scores = self._scores()
        sign = loss_sign(self.directions.single)
        ranked = sorted(scores, key=lambda m: (sign * scores[m].value, m))
        k = min(max(1, int(len(ranked) * self.quantile)), len(ranked) // 2)
        source, donor = segment, None
        if k >= 1 and member in ranked[-k:]:
            # A donor that trained as far at least: one behind would have the member train
            # its steps again (members are judged as their segments end, not in step).
            donors = [m for m in ranked[:k] if scores[m].attrs.get(END, -1) >= segment.attrs[END]]
            if donors:
                donor = int(self.rng.choice(donors))
                source = scores[donor]
        assignment = dict(source.assignment)
        if donor is not None:
            assignment = self._explore(assignment)
        start = source.attrs[END]
        attrs = {
            MEMBER: member,
            PARENT: source.number,
            FROM_STEP: start,
            UNTIL: start + self.interval,
            DONOR: donor,
        }
        return assignment, attrs

    def _explore(self, assignment: dict[str, Any]) -> dict[str, Any]:
        """The donor's values with the mutable parameters changed; the donor's own when the
        constraints refuse every try."""
        for _ in range(10):
            changed = dict(assignment)
            for p in self.mutable:
                if p.key in changed:
                    changed[p.key] = self._perturb(p, changed[p.key])
            if self.feasible(self.space.build(changed)):
                return changed
        return dict(assignment)

    def _perturb(self, param: Param, value: Any) -> Any:
        dim = param.dim
        if self.rng.random() < self.resample_probability:
            return dim.sample(self.rng)
        factor = float(self.rng.choice(self.factors))
        if isinstance(dim, Float):
            return min(max(value * factor, dim.low), dim.high)
        if isinstance(dim, Int):
            moved = dim._snap(value * factor)
            if moved == value and factor != 1.0:  # too small to move: one step that way
                moved = dim._snap(value + math.copysign(dim.step, factor - 1.0))
            return moved
        # A choice between constants: a neighbouring option, the way the factor points.
        step = 1 if factor >= 1.0 else -1
        return min(max(value + step, 0), len(dim.options) - 1)

    def _issue(self, assignment: dict[str, Any]) -> Trial:
        trial = super()._issue(assignment)
        attrs = self._pending_attrs.pop(0)
        if attrs[PARENT] is None:
            attrs[MEMBER] = trial.number  # a member is named after its first segment
        trial.attrs.update({k: v for k, v in attrs.items() if v is not None})
        return trial


class ScheduleReplay(PBT):
    """One member trained through a recorded schedule (`hpo.replay_schedule`): segment
    after segment, each going on from the one before with the schedule's parameters.

    ``schedule`` is a list of ``[until_step, assignment]``, in order: the parameters of the
    steps up to ``until_step`` (after the previous one's); the last one's ``until_step`` is
    None: it trains to the objective's end.
    """

    name = "pbt-replay"

    def _configure(self, schedule: Sequence[Sequence[Any]] = ()) -> None:
        if not schedule:
            raise ValueError("a schedule replay needs at least one segment")
        self.schedule = [
            (None if until is None else int(until), dict(assignment))
            for until, assignment in schedule
        ]
        for _, assignment in self.schedule:
            self.space.validate(assignment)
        first = self.schedule[0][0]
        # One member; its steps between checkpoints are the first segment's, at most.
        self.population, self.interval = 1, None if first is None else first + 1
        self.mutable: list[Param] = []
        self._pending_attrs: list[dict[str, Any]] = []

    def settings(self) -> dict[str, Any]:
        return {**Strategy.settings(self), "segments": len(self.schedule)}

    def _suggest(self, n: int) -> list[dict[str, Any]]:
        if self.segments():
            return []
        until, assignment = self.schedule[0]
        self._pending_attrs.append({PARENT: None, FROM_STEP: None, UNTIL: until})
        return [dict(assignment)]

    def ready(self) -> list[Trial]:
        ready = super().ready()
        return [t for t in ready if self._index(t) + 1 < len(self.schedule)]

    def _index(self, segment: Trial) -> int:
        return sum(1 for t in self.segments() if t.number < segment.number)

    def _next(self, segment: Trial) -> tuple[dict[str, Any], dict[str, Any]]:
        until, assignment = self.schedule[self._index(segment) + 1]
        start = segment.attrs[END]
        attrs = {MEMBER: segment.attrs[MEMBER], PARENT: segment.number, FROM_STEP: start}
        return dict(assignment), {**attrs, UNTIL: until, DONOR: None}
