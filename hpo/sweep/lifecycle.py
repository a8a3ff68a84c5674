"""A trial's life, from the strategy's ask to its one end, in four steps.

- `Lifecycle.start`: a trial the strategy issued gets its record and its MLflow run.
- `Lifecycle.report`: each report of the running trial is logged once per (metric, step)
  and shown to the pruner, which may decide to stop the trial; `Lifecycle.artifact` stores
  the files and models the objective gives.
- `Lifecycle.finish`: the only way a trial ends. The strategy is told, the pruner is told,
  the run is ended with the trial's state, and the sweep's tally of counts and best moves.
- `Lifecycle.lost`: the trial's attempt ended without an outcome (its worker died, or the
  driver of an earlier run of the sweep did). The only place a retry is decided and tagged:
  the trial runs again as the same run, or it finishes FAILED once it is out of retries.

The sweep driver (`hpo.sweep.loop`) decides when each step happens; this module decides what
it does. It talks to the strategy, the pruner and the tracker only, never to Ray, so its
tests drive it with fakes.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.core.checks import check_values
from hpo.core.directions import Directions, better
from hpo.core.events import Artifact, Outcome, Report
from hpo.core.pareto import losses
from hpo.core.result import TrialResult
from hpo.core.trial import END, SEGMENT_KEYS, paused
from hpo.execution.artifacts import CHECKPOINT
from hpo.strategies.base import Strategy, Trial, TrialState
from hpo.strategies.pruners import Pruner
from hpo.tracking.schema import (
    ONE_OBJECTIVE,
    TAG_VALUE_LIMIT,
    TRUE,
    SweepTag,
    TrialTag,
    attempt_error_tag,
    check_name,
    encode_objectives,
    segment_tags,
    truncated_params,
)

if TYPE_CHECKING:
    from hpo.sweep.seams import RunTracker

CURVES = "learning_curves.png"
TRACEBACK = "traceback.txt"


@dataclass
class Pruning:
    """Why and where a trial was pruned; ``by`` is the pruner's name, or "objective"
    for an objective that raised `hpo.TrialPruned` itself."""

    step: int
    reason: str
    by: str


@dataclass
class TrialRecord:
    """Everything the sweep knows about one trial: the strategy's `Trial` and its life.

    The trial's own fields (``number``, ``params``, ``state``, ``value``, ...) are read
    through; ``run_id`` is its MLflow child run, ``seconds`` the objective's time of its
    last attempt, ``attempts`` how many times it was started.
    """

    trial: Trial
    run_id: str | None = None
    attempts: int = 1
    logged: set[tuple[str, int]] = field(default_factory=set)  # (metric, step) in MLflow
    last_metrics: dict[str, tuple[int, float]] = field(default_factory=dict)  # at latest step
    seconds: float | None = None
    repeat_values: list[float] | None = None
    pruning: Pruning | None = None  # set when the pruner decided to stop the trial
    models: list[str] = field(default_factory=list)  # folders of report.model, in order
    misreported: str | None = None  # why it fails: it reported a metric named as an objective
    checkpoints: dict[str, bytes] = field(default_factory=dict)  # latest sent via the driver

    number = property(lambda self: self.trial.number)
    params = property(lambda self: self.trial.params)
    flat_params = property(lambda self: self.trial.flat_params)
    state = property(lambda self: self.trial.state)
    value = property(lambda self: self.trial.value)
    values = property(lambda self: self.trial.values)
    error = property(lambda self: self.trial.error)
    intermediate = property(lambda self: self.trial.intermediate)

    def last(self, metric: str) -> float | None:
        """The value of ``metric`` at the latest step it was reported, or None."""
        found = self.last_metrics.get(metric)
        return None if found is None else found[1]

    def result(self) -> TrialResult:
        """The trial as the sweep's result shows it (frozen, without the lifecycle's state)."""
        t = self.trial
        return TrialResult(
            number=t.number,
            state=t.state,
            params=t.params,
            flat_params=t.flat_params,
            values=t.values if t.state is TrialState.COMPLETE else None,
            metrics={k: v for k, (_, v) in self.last_metrics.items()},
            run_id=self.run_id,
            seconds=self.seconds,
            attempts=self.attempts,
            error=t.error,
            intermediate=t.intermediate,
            enqueued=bool(t.attrs.get("enqueued")),
            infeasible=bool(t.attrs.get("infeasible")),
            segment={k: t.attrs[k] for k in SEGMENT_KEYS if k in t.attrs},
        )


@dataclass
class Restored:
    """A trial of an earlier run of the sweep, as read back from its MLflow child run."""

    trial: Trial
    run_id: str
    artifact_uri: str
    attempts: int
    logged: set[tuple[str, int]] = field(default_factory=set)  # (metric, step) already there
    why_again: str = "driver lost"  # for a trial to run again: why its last attempt ended
    start_ms: int = 0  # its run's start time: a pruner on seconds reads reports against it


def count_states(trials: Iterable[Any]) -> Counter[TrialState]:
    """How many of ``trials`` (anything with a ``state``) are in each state."""
    return Counter(t.state for t in trials)


@dataclass
class Tally:
    """The sweep's running account of finished trials: counts by state and the best value
    (with several objectives: the Pareto front's points).

    Kept as trials finish, so the progress bar and the parent's ``best_objective`` metric
    cost nothing per trial; `count_states` derives the same counts from the records.
    """

    directions: Directions
    counts: Counter[TrialState] = field(default_factory=Counter)
    best: float | None = None
    front: list[tuple[float, ...]] = field(default_factory=list)  # several objectives: losses
    since_best: int = 0  # trials finished since the best (or the front) last improved

    @property
    def finished(self) -> int:
        return sum(self.counts.values())

    def add(self, trial: Trial) -> None:
        self.counts[trial.state] += 1
        if trial.state is TrialState.COMPLETE and self.directions.several:
            improved = self._join_front(trial.values)
        else:
            value = trial.value
            improved = value is not None and (
                self.best is None or better(value, self.best, self.directions.single)
            )
            if improved:
                self.best = value
        self.since_best = 0 if improved else self.since_best + 1

    def _join_front(self, values: tuple[float, ...]) -> bool:
        """Put ``values`` on the front unless a point there is as good in every objective
        (the same point again does not move the front); True when it joined."""
        point = tuple(losses([values], self.directions)[0])
        if any(all(f <= p for f, p in zip(old, point, strict=True)) for old in self.front):
            return False
        self.front = [
            old for old in self.front if not all(p <= f for p, f in zip(point, old, strict=True))
        ] + [point]
        return True


class ObjectiveDoesNotReport(ValueError):
    """A sweep with a pruner whose objective completed a trial without reporting a curve."""


class Lifecycle:
    """The steps of every trial of one sweep (see the module's docstring).

    Parameters
    ----------
    strategy : Strategy
        Told of every trial that ends.
    tracker : hpo.sweep.seams.RunTracker
        The `hpo.tracking.writer.Tracker`, or a fake of it.
    pruner : Pruner, optional
    prune_metric : str, optional
        The metric the pruner watches; the first one reported when None.
    max_retries : int
        How often a lost trial runs again before it finishes FAILED.
    objective_names : list of str, optional
        With several objectives, their metric names; when None, the keys of the first dict
        an objective returns, or ``objective_0``, ``objective_1``, ... for a tuple.
    resources : str, optional
        What each trial asks of the cluster, as recorded on its run.
    """

    def __init__(
        self,
        strategy: Strategy,
        tracker: RunTracker,
        *,
        pruner: Pruner | None = None,
        prune_metric: str | None = None,
        max_retries: int = 1,
        objective_names: tuple[str, ...] | None = None,
        resources: str | None = None,
    ) -> None:
        self.strategy, self.tracker = strategy, tracker
        self.resources = resources
        self.objective_names = objective_names
        self.pruner, self.prune_metric, self.max_retries = pruner, prune_metric, max_retries
        self.records: dict[int, TrialRecord] = {}
        self.retries: list[TrialRecord] = []  # lost trials waiting to run again, in order
        # Ended segments of population-based training whose last checkpoint is held here
        # (sent through the driver) for the segments that go on from it, until it is stored.
        self.holding: set[int] = set()
        self.tally = Tally(strategy.directions)

    # -- start -----------------------------------------------------------------------------
    def start(self, trial: Trial) -> TrialRecord:
        """A new trial from the strategy: its record, and its run in MLflow."""
        record = self.records[trial.number] = TrialRecord(trial)
        tags = {
            TrialTag.ATTEMPT: "1",
            # The strategy's own view of the trial, for a resume to put it back exactly.
            TrialTag.ASSIGNMENT: json.dumps(trial.assignment, default=_plain),
            **truncated_params(trial.flat_params),
        }
        params = json.dumps(trial.params, default=_plain)
        if len(params) <= TAG_VALUE_LIMIT:  # the nested values, for `hpo.load_sweep`
            tags[TrialTag.PARAMS] = params
        if trial.attrs.get("enqueued"):  # given by the user, not suggested by the strategy
            tags[TrialTag.ENQUEUED] = TRUE
        if self.resources is not None:
            tags[TrialTag.RESOURCES] = self.resources
        tags.update(segment_tags(trial.attrs, SEGMENT_KEYS))  # population-based training
        self.tracker.start_trial(trial.number, trial.flat_params, tags)
        return record

    def refused(self, trial: Trial) -> TrialRecord:
        """A suggestion the constraints refused (the strategy knows already): its run is
        made and ended FAILED at once, so the record shows what was not run and why. Not
        in the tally: it is not a trial that ran."""
        record = self.start(trial)
        self.tracker.end_trial(
            trial.number,
            trial.state,
            error=trial.error,
            artifacts={},
            status=None,
            tags={TrialTag.INFEASIBLE: TRUE},
        )
        return record

    def restore(self, restored: Restored) -> TrialRecord:
        """A trial of an earlier run of the sweep (resume), already back in the strategy:
        a finished one counts in the tally; one left running was lost with its driver."""
        trial = restored.trial
        record = self.records[trial.number] = TrialRecord(
            trial, run_id=restored.run_id, attempts=restored.attempts, logged=restored.logged
        )
        self.tracker.adopt_trial(trial.number, restored.run_id, restored.artifact_uri)
        if trial.state is TrialState.RUNNING:
            # Not the configuration's fault: it runs again whatever its retries.
            self.lost(record, restored.why_again, counts_as_retry=False)
        elif not trial.attrs.get("infeasible") and not paused(trial):  # it ran, and ended
            self.tally.add(trial)
        return record

    # -- report ----------------------------------------------------------------------------
    def report(self, record: TrialRecord, report: Report) -> bool:
        """Log a report of a running trial; True when the pruner says to stop the trial."""
        step, metrics = report.step, report.metrics
        clash = self._named_objectives().intersection(metrics)
        if clash:  # not logged: in MLflow that curve and the objective would be one metric
            record.misreported = self._misreport(min(clash))
            return True  # stopped at its next report, and ends FAILED with the reason
        # A retried trial reports its early steps again; each (metric, step) is logged once.
        fresh = {k: v for k, v in metrics.items() if (k, step) not in record.logged}
        if fresh:
            record.logged.update((k, step) for k in fresh)
            self.tracker.log_metrics(record.number, step, fresh)
        for k, v in metrics.items():
            if step >= record.last_metrics.get(k, (-1, 0.0))[0]:
                record.last_metrics[k] = (step, v)
        if self.pruner is None and not self.strategy.watches_curves:
            return False
        if self.prune_metric is None:
            self.prune_metric = next(iter(report.metrics))
            # Recorded now, so that a resume after a crash watches the same metric.
            self.tracker.set_sweep_tags({SweepTag.PRUNE_METRIC: self.prune_metric})
        value = report.metrics.get(self.prune_metric)
        if value is None:
            return False
        # To objective values (population-based training compares the two, as it must).
        comparable = self.pruner is None or self.pruner.direction == self.strategy.direction
        if comparable and math.isfinite(value):  # the strategy learns from the whole curve
            record.trial.curve[report.step] = value
        # Without a pruner, or decided already (reports in flight still count): no verdict.
        if self.pruner is None or record.pruning is not None:
            return False
        reason = self.pruner.report(record.number, report.step, value, seconds=report.seconds)
        if reason is None:
            return False
        # The objective stops at its next report; its metrics until then still count.
        record.pruning = Pruning(report.step, f"{reason} ({self.prune_metric})", self.pruner.name)
        if comparable:
            record.trial.intermediate = (report.step, value)
        return True

    def artifact(self, record: TrialRecord, artifact: Artifact) -> None:
        """Store files the objective gave (``report.artifact`` or ``report.model``), unless
        its worker stored them in the run itself."""
        if artifact.files:
            self.tracker.log_artifacts(record.number, artifact.files)
        # The trial's latest checkpoints: if it runs again before the writer has stored
        # these, the run's artifacts would still hold an older one, so they go with it.
        for path in artifact.stored:
            record.checkpoints.pop(path, None)  # the worker stored it: the run has the latest
        for path, content in artifact.files.items():
            if path.rsplit("/", 1)[-1] == CHECKPOINT:
                record.checkpoints[path] = content
        if artifact.model is not None and artifact.model not in record.models:
            record.models.append(artifact.model)

    # -- finish ----------------------------------------------------------------------------
    def finish(self, record: TrialRecord, outcome: Outcome, *, cancelled: bool = False) -> None:
        """End the trial with ``outcome``: tell the strategy and the pruner, end its run,
        count it. A ``cancelled`` trial (an interrupt, the sweep's timeout) ends FAILED for
        the strategy, and its run KILLED and tagged so that `hpo resume` runs it again."""
        trial = record.trial
        if outcome.segment_end is None:
            record.checkpoints.clear()  # held for a rerun only: an ended trial has none
        else:  # a segment's is held for those that go on from it, until it is stored
            outcome = self._segment_value(record, outcome)
            if record.checkpoints:
                self.holding.add(record.number)
        if outcome.seconds is not None:
            record.seconds = outcome.seconds
        record.repeat_values = outcome.repeat_values
        tags: dict[str, str] = {}
        if outcome.state is TrialState.COMPLETE:
            try:
                value = self._result(outcome.value)
                clash = self._named_objectives().intersection(record.last_metrics)
                if clash:  # names given by this very result
                    raise ValueError(self._misreport(min(clash)))
            except (TypeError, ValueError) as exc:  # the trial's fault: it ends FAILED
                outcome = outcome._replace(state=TrialState.FAILED, value=None, error=str(exc))
        if record.misreported is not None and outcome.state is not TrialState.FAILED:
            outcome = outcome._replace(
                state=TrialState.FAILED, value=None, error=record.misreported
            )
        unjudged = self._never_reported(record, outcome)
        if unjudged is not None:  # every trial would be the same: the sweep stops after it
            outcome = outcome._replace(state=TrialState.FAILED, value=None, error=unjudged)
        if outcome.state is TrialState.COMPLETE:
            if outcome.segment_end is not None:  # the member goes on from there
                trial.attrs[END] = outcome.segment_end
                tags[TrialTag.SEGMENT + END] = str(outcome.segment_end)
            self.strategy.tell(trial, value)
            if self.pruner is not None:
                self.pruner.complete(trial.number)
        elif outcome.state is TrialState.PRUNED:
            pruning = record.pruning or Pruning(
                max((step for step, _ in record.last_metrics.values()), default=0),
                "the objective raised TrialPruned",
                "objective",
            )
            self.strategy.tell(
                trial, pruned=True, error=pruning.reason, intermediate=trial.intermediate
            )
            tags = {
                TrialTag.PRUNER: pruning.by,
                TrialTag.PRUNED_STEP: str(pruning.step),
                TrialTag.PRUNE_REASON: pruning.reason,
            }
        else:
            self.strategy.tell(trial, failed=True, error=outcome.error)
        if cancelled:
            tags[TrialTag.CANCELLED] = TRUE
        if outcome.placement is not None:
            tags[TrialTag.NODE] = outcome.placement["node"]
            if outcome.placement["gpus"]:
                tags[TrialTag.GPUS] = outcome.placement["gpus"]
        if record.seconds is not None:
            tags[TrialTag.SECONDS] = f"{record.seconds:.3f}"
        artifacts = {CURVES: outcome.curves}
        if outcome.traceback is not None:
            artifacts[TRACEBACK] = outcome.traceback.encode()
        self.tracker.end_trial(
            trial.number,
            trial.state,
            # A trial run again after its run got the value (the first driver's closing
            # reached the store, its answer did not): each (metric, step) is logged once.
            objectives={
                k: v for k, v in self.objectives(trial).items() if (k, 0) not in record.logged
            },
            error=None if trial.state is TrialState.PRUNED else trial.error,
            artifacts={k: v for k, v in artifacts.items() if v is not None},
            status="KILLED" if cancelled else None,
            tags=tags,
        )
        if not paused(trial):  # a member that goes on is not a finished trial
            self.tally.add(trial)
        tally = self.tally
        if tally.best is not None:
            self.tracker.log_sweep_metrics(tally.finished, {"best_objective": tally.best})
        elif tally.front:  # several objectives: how many points the front has
            self.tracker.log_sweep_metrics(tally.finished, {"pareto_size": len(tally.front)})
        if unjudged is not None:
            raise ObjectiveDoesNotReport(unjudged)

    def _segment_value(self, record: TrialRecord, outcome: Outcome) -> Outcome:
        """A population-based training segment that reached its last step: COMPLETE with
        its watched metric's value at the checkpoint it ended on (its latest before)."""
        end, curve = outcome.segment_end, record.trial.curve
        steps = [step for step in curve if step <= end]
        if not steps:
            return outcome._replace(
                state=TrialState.FAILED,
                error=(
                    f"population-based training ranks members by the metric "
                    f"{self.prune_metric!r}, and this segment ended at step {end} without a "
                    "finite value of it; report it at every step"
                ),
            )
        return outcome._replace(value=curve[max(steps)])

    def _never_reported(self, record: TrialRecord, outcome: Outcome) -> str | None:
        """The rule, when a trial completed and no trial of the sweep has yet reported the
        metric the pruner (or the strategy) watches: there is nothing to judge, ever."""
        watches = self.pruner is not None or self.strategy.watches_curves
        if not watches or outcome.state is not TrialState.COMPLETE:
            return None
        metric = self.prune_metric
        if metric in record.last_metrics:  # the usual case, without a look at every trial
            return None
        if metric is not None and any(metric in r.last_metrics for r in self.records.values()):
            return None
        what = "a metric" if metric is None else f"the metric {metric!r}"
        judge, other = (
            (f"the {self.pruner.name} pruner", "run without a pruner")
            if self.pruner is not None
            else (f"the {self.strategy.name} strategy", "use another strategy")
        )
        return (
            f"{judge} judges the curves trials report, and trial "
            f"{record.number} completed without reporting {what}; call report(step, "
            f"{metric or 'loss'}=...) during training, or {other}"
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The objectives' metric names: "objective" for one; with several, as named (or,
        before any result named them, ``objective_0``, ``objective_1``, ...)."""
        n = self.strategy.n_objectives
        if n == 1:
            return ONE_OBJECTIVE
        return self.objective_names or tuple(f"objective_{i}" for i in range(n))

    def _named_objectives(self) -> set[str]:
        """The objectives' metric names once known (several are named by the first result
        when not given)."""
        if self.strategy.n_objectives > 1 and self.objective_names is None:
            return set()
        return set(self.names)

    def _misreport(self, name: str) -> str:
        rule = "a metric given to report() must not be named like an objective"
        if self.strategy.n_objectives == 1:
            return (
                f"{rule}: report() got {name!r}, the metric of the value the objective "
                "returns; report that curve under another name"
            )
        return (
            f"{rule}: report() got {name!r}, and the sweep's objectives are "
            f"{list(self.names)}; report that curve under another name (e.g. "
            f"{name + '_curve'!r}) or name the objectives apart with objective_names"
        )

    def objectives(self, trial: Trial) -> dict[str, float]:
        """The metrics of a completed trial's values: "objective", or one per objective."""
        if trial.values is None:
            return {}
        return dict(zip(self.names, trial.values, strict=True))

    def _result(self, value: Any) -> Any:
        """A completed trial's value as its strategy takes it: a real, or one real per
        direction in the order of the objectives' names (fixed by the first such result
        when not given). TypeError or ValueError naming what is wrong."""
        n = self.strategy.n_objectives
        several = isinstance(value, tuple | list | dict)
        if n == 1:
            if several:
                raise TypeError(
                    f"the objective returned {value!r:.200}; this sweep has one direction, "
                    "so it must return one real (give direction=[...] with one direction per "
                    "objective for several)"
                )
            return value
        if not several:
            raise TypeError(
                f"the objective returned one value ({value!r}); this sweep has {n} "
                f"directions {list(self.strategy.directions)}, so it must return {n}"
            )
        if isinstance(value, dict) and len(value) != n:
            raise ValueError(
                f"the objective returned {len(value)} values {sorted(value)}, the sweep has "
                f"{n} directions {list(self.strategy.directions)}"
            )
        if self.objective_names is None:
            names = list(value) if isinstance(value, dict) else list(self.names)
            for name in names:
                check_name("objective", name)
            self._name_objectives(tuple(names))
        if isinstance(value, dict):
            if set(value) != set(self.objective_names):
                raise ValueError(
                    f"the objective returned {sorted(value)}, the sweep's objectives are "
                    f"{list(self.objective_names)}"
                )
            value = tuple(value[name] for name in self.objective_names)
        return check_values(value, n)

    def _name_objectives(self, names: tuple[str, ...]) -> None:
        self.objective_names = names
        # Recorded at once: a resume names the metrics the same way.
        self.tracker.set_sweep_tags({SweepTag.OBJECTIVES: encode_objectives(names)})

    def release(self, recorded: Any) -> None:
        """Let go of held segment checkpoints once ``recorded(number)`` says their run has
        them: a population's checkpoints would otherwise pile up in the driver."""
        for number in [n for n in self.holding if recorded(n)]:
            self.records[number].checkpoints.clear()
            self.holding.discard(number)

    # -- lost ------------------------------------------------------------------------------
    def lost(self, record: TrialRecord, reason: str, *, counts_as_retry: bool = True) -> None:
        """The trial's attempt ended without an outcome. It runs again as the same run
        (queued in `retries`) while it has retries left, else it finishes FAILED."""
        attempts = record.attempts
        if counts_as_retry and attempts > self.max_retries:
            why = f"the worker process died ({attempts} attempts): {reason}"
            self.finish(record, Outcome.failed(why))
            return
        record.attempts = attempts + 1
        self.tracker.set_tags(
            record.number,
            {TrialTag.ATTEMPT: str(attempts + 1), attempt_error_tag(attempts): reason},
        )
        self.retries.append(record)


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers, for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot record {value!r} ({type(value).__name__}) as JSON")
