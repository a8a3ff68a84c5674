"""The sweep driver: asks the strategy, feeds the worker pool, records everything in MLflow.

One loop in one thread: whenever a worker is idle the strategy is asked for the next
trial; whenever events arrive they go to the tracker (reports while the trial runs, the
outcome at its end) and the outcome goes back to the strategy. A worker that dies takes
its trial with it only as far as a retry: the trial runs again as the same run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hpo.core.checks import first_line
from hpo.core.directions import better
from hpo.core.events import Artifact, Outcome, Report
from hpo.core.result import SweepResult
from hpo.core.trial import FROM_STEP, MEMBER, PARENT, UNTIL, TrialState, best_of, counts_in_budget
from hpo.execution.artifacts import CHECKPOINT
from hpo.execution.cluster import available_resources, connect, node_resources
from hpo.execution.jobs import job_id_here
from hpo.execution.pool import Batch, WorkerDied, WorkerPool
from hpo.execution.resources import capacity
from hpo.report.summary import (
    closing_artifacts,
    closing_tags,
    description,
    figure_specs,
    sweep_settings,
)
from hpo.strategies import Strategy
from hpo.strategies.base import NoFeasibleConfiguration
from hpo.strategies.pruners import Pruner
from hpo.sweep.config import SweepConfig
from hpo.sweep.lifecycle import Lifecycle, Restored
from hpo.tracking.access import TrackingDenied, check_access
from hpo.tracking.best_model import publish_best_model
from hpo.tracking.outage import TrackingUnavailable
from hpo.tracking.schema import NOTE, SweepTag
from hpo.tracking.writer import Tracker

if TYPE_CHECKING:
    from hpo.sweep.seams import Pool, RunTracker

WAIT_SECONDS = 0.5
# A sweep none of whose workers has started by then says why (the cluster has no room for
# them: other sweeps hold it), in its output and on its run (`hpo status` shows it).
WAITING_NOTICE_SECONDS = 30.0


def open_sweep(
    config: SweepConfig,
    strategy: Strategy,
    objective: Callable[..., Any],
    arity: int,
    data: Any,
    pruner: Pruner | None = None,
) -> Sweep:
    """Connect to Ray, start the workers and the tracker: a sweep ready to run or resume."""
    check_access(config.tracking_uri, config.experiment_name)
    connect(config.address)
    # Ray would keep a worker that fits no node pending forever: refused here instead.
    fit = capacity(config.resources, node_resources())
    workers = config.workers
    if workers is None:
        workers = fit
        if job_id_here() is not None:  # a submitted sweep leaves room for the others
            workers = max(1, min(fit, config.resources.fits(available_resources())))
    elif workers > fit:
        raise ValueError(
            f"workers must not exceed the trials the cluster runs at once ({fit} with "
            f"{config.resources} each), got workers={workers}"
        )
    pool = WorkerPool(
        objective,
        arity,
        data,
        workers,
        repeats=config.repeats,
        resources=config.resources,
        max_trials_per_worker=config.max_trials_per_worker,
        keep_seconds=config.keep_workers,
    )
    try:
        tracker = Tracker(
            config.tracking_uri, config.experiment_name, outage_limit=config.tracking_patience
        )
    except BaseException:
        pool.shutdown()
        raise
    return Sweep(strategy, pool, tracker, config, pruner=pruner)


class Sweep:
    """The driver's loop: it decides when trials start, when events are handled, when
    trials time out and when the sweep ends; `hpo.sweep.lifecycle.Lifecycle` does each step.

    ``pool`` is a `hpo.sweep.seams.Pool`, ``tracker`` a `hpo.sweep.seams.RunTracker`
    (the real ones, or the fakes of the tests); ``config`` has the resolved budget in
    ``n_trials``; ``pruner`` is the configuration's, made (and, on a resume, replayed).
    """

    def __init__(
        self,
        strategy: Strategy,
        pool: Pool,
        tracker: RunTracker,
        config: SweepConfig,
        *,
        pruner: Pruner | None = None,
    ) -> None:
        self.strategy, self.pool, self.tracker, self.config = strategy, pool, tracker, config
        self.pruner = pruner
        self.budget = config.n_trials or 0
        self.workers = len(pool.idle)
        self.trials = Lifecycle(
            strategy,
            tracker,
            pruner=pruner,
            prune_metric=config.prune_metric,
            max_retries=config.max_retries,
            objective_names=config.objective_names,
            resources=str(config.resources),
        )
        self.interrupted = self.timed_out = False
        self.waiting: bool | None = None  # None: not said; True: said; False: said and over
        self.model_tags: dict[str, str] = {}  # where the sweep's best model went, once it ends
        self.figures: tuple[str, ...] = ()  # the figures its run holds, once it ends
        self.stopped_by: str | None = None  # the stopping rule that was met, in words
        self.started = time.monotonic()
        self.progress = _Progress(self.budget, pruner is not None) if config.progress else None

    def settings(self) -> dict[str, Any]:
        return sweep_settings(
            self.strategy.settings(),
            budget=self.budget,
            workers=self.workers,
            pruner=self.pruner,
            prune_metric=self.trials.prune_metric,
            repeats=self.config.repeats,
            resources=str(self.config.resources),
            max_trials_per_worker=self.config.max_trials_per_worker,
        )

    # -- start or go on --------------------------------------------------------------------
    def run(self, run_name: str, tags: dict[str, str]) -> SweepResult:
        self.tracker.start_sweep(
            run_name=run_name,
            tags={SweepTag.STRATEGY: self.strategy.name, **self.config.tags(), **tags},
            params=self.settings(),
        )
        return self._loop()

    def resume(
        self,
        sweep_id: str,
        restored: list[Restored],
        *,
        tags: dict[str, str] | None = None,
        reopen: list[tuple[str, Any]] | None = None,
        close: list[tuple[str, str]] | None = None,
    ) -> SweepResult:
        """Go on with a sweep whose earlier driver stopped: ``restored`` are its child runs,
        already put back into the strategy. Those left RUNNING run again as the same trial
        in the same run, as after a dead worker ("driver lost"). ``tags``, ``reopen`` and
        ``close`` are the repairs `Tracker.resume_sweep` makes first."""
        self.tracker.resume_sweep(sweep_id, tags=tags, reopen=reopen or [], close=close or [])
        for r in sorted(restored, key=lambda r: r.trial.number):
            self.trials.restore(r)
        return self._loop()

    # -- the loop --------------------------------------------------------------------------
    def _loop(self) -> SweepResult:
        from threadpoolctl import threadpool_limits

        # The driver's linear algebra is small (a GP's fit at each ask, the closing figures'
        # fANOVA): more BLAS threads gain it nothing, and between calls they spin on the
        # cores the workers train on (docs/benchmarks.md, the SearchCV section: GP-EI's
        # driver CPU per search).
        with threadpool_limits(limits=1):
            return self._drive()

    def _drive(self) -> SweepResult:
        status = "FINISHED"
        try:
            while True:
                self.tracker.check()
                self._fill()
                if not self.pool.running and not self._held_back():
                    break
                for item in self.pool.wait(WAIT_SECONDS):
                    if isinstance(item, WorkerDied):
                        self.trials.lost(item.running.record, item.reason)
                    else:
                        self._handle(item)
                self._enforce_timeouts()
                self._check_waiting()
                self._check_stopping_rules()
                self._locate_runs()
                if self.progress is not None:
                    self.progress.show(self.trials.tally)
        except KeyboardInterrupt:
            self.interrupted, status = True, "KILLED"
            self._cancel_running("interrupted by the user (Ctrl-C)")
        except (TrackingUnavailable, TrackingDenied):
            # Nothing more can be recorded: stop the workers; the runs left RUNNING are what
            # `hpo resume` runs again.
            if self.progress is not None:
                self.progress.close()
            self.pool.shutdown()
            raise
        except BaseException as exc:
            self._cancel_running("the sweep driver stopped on an error")
            self._close(status="FAILED", error=f"{type(exc).__name__}: {exc}")
            raise
        self._close(status=status)
        result = SweepResult(
            sweep_id=self.tracker.sweep_id or "",
            experiment_id=self.tracker.experiment_id,
            tracking_uri=self.tracker.tracking_uri,
            directions=self.strategy.directions,
            objective_names=self.trials.names,
            trials=[self.trials.records[t.number].result() for t in self.strategy.trials],
            interrupted=self.interrupted,
            timed_out=self.timed_out,
            stopped_by=self.stopped_by,
            settings=self.settings(),
            best_model=self.model_tags.get(SweepTag.BEST_MODEL_URI),
            registered_model=self.model_tags.get(SweepTag.REGISTERED_MODEL),
            model_note=self.model_tags.get(SweepTag.BEST_MODEL_ERROR),
            figures=self.figures,
        )
        if self.progress is not None:
            self._show_links(result)
        return result

    def _show_links(self, result: SweepResult) -> None:
        from hpo.report.notebook import in_notebook, show_links

        if in_notebook():
            uri = self.tracker.tracking_uri
            remote = uri.startswith(("http://", "https://"))
            show_links(result, uri.rstrip("/") if remote else "http://127.0.0.1:5000")

    def _held_back(self) -> bool:
        """Trials are left to run but none could start: the cluster has no room for a
        worker yet, or the record is behind (`Tracker.behind`)."""
        if self.timed_out or not (self.pool.missing or self.tracker.behind()):
            return False
        budget_left = self._started() < self.budget and not self.stopped_by
        return (
            bool(self.trials.retries)
            or (budget_left and not self.strategy.exhausted)
            or (not self.stopped_by and self.strategy.waiting_to_continue())
        )

    def _fill(self) -> None:
        """Give every idle worker a trial: lost trials first, then new ones; none while
        the record is behind."""
        self.trials.release(self.tracker.recorded)
        if self.timed_out or self.tracker.behind():
            return
        retries = self.trials.retries
        while self.pool.idle and retries:
            record = retries.pop(0)
            where = self.tracker.artifact_location(record.number)
            store = None if where is None else (where, self.tracker.tracking_uri)
            # where its checkpoint is, if it took one
            self.pool.submit(record, store, self._segment(record))
        room = min(len(self.pool.idle), self.budget - self._started())
        if self.stopped_by:
            return
        if room > 0 and not self.strategy.exhausted:
            try:
                trials = self.strategy.ask(room)
            except NoFeasibleConfiguration as exc:
                trials, self.stopped_by = [], f"constraints: {exc}"
            for refused in self.strategy.take_rejected():
                self.trials.refused(refused)
            for trial in trials:
                record = self.trials.start(trial)
                self.pool.submit(record, None, self._segment(record))
        if self.pool.idle and not self.stopped_by:  # members of a population going on
            for trial in self.strategy.continuations(len(self.pool.idle)):
                record = self.trials.start(trial)
                self.pool.submit(record, None, self._segment(record))

    def _started(self) -> int:
        """Trials issued for this sweep's budget: not those the constraints refused, nor
        continuations of trials (`Strategy.continuations`)."""
        return sum(counts_in_budget(t) for t in self.strategy.trials)

    def _segment(self, record: Any) -> dict[str, Any] | None:
        """What the worker of a population-based training segment needs: the steps it
        trains, and where the checkpoint it goes on from is (held here while the writer
        has not stored it; else in its parent's run). None for any other trial."""
        attrs = record.trial.attrs
        if MEMBER not in attrs:
            return None
        parent = attrs.get(PARENT)
        source = held = None
        if parent is not None:
            where = self.tracker.artifact_location(parent)
            source = None if where is None else (where, self.tracker.tracking_uri)
            held = self.trials.records[parent].checkpoints.get(CHECKPOINT)
        return {
            "from_step": attrs.get(FROM_STEP),
            "until": attrs.get(UNTIL),
            "parent": parent,
            "source": source,
            "held": held,
            "interval": getattr(self.strategy, "interval", None),
        }

    def _handle(self, batch: Batch) -> None:
        record = batch.running.record
        for event in batch.events:
            if isinstance(event, Report):
                if self.trials.report(record, event):
                    self.pool.stop(batch.running)  # it raises TrialPruned at its next report
            elif isinstance(event, Artifact):
                self.trials.artifact(record, event)
            else:
                self.trials.finish(record, event)

    def _locate_runs(self) -> None:
        """Tell each running trial's worker where its run's artifacts go, once the run
        exists, so that a worker that can reach the store writes its files there itself."""
        for running in self.pool.running.values():
            if not running.located:
                where = self.tracker.artifact_location(running.record.number)
                if where is not None:
                    self.pool.locate(running, where, self.tracker.tracking_uri)

    def _check_waiting(self) -> None:
        """Say once that no worker could start yet, and that the wait is over once one has."""
        if self.waiting is False or not self.pool.running:
            return
        if self.waiting is None:
            if time.monotonic() - self.started < WAITING_NOTICE_SECONDS:
                return
            if self.pool.workers_up() > 0:
                self.waiting = False  # nothing to say, ever
                return
            message = (
                f"waiting for resources: none of the {self.workers} workers "
                f"({self.config.resources} each) has started after "
                f"{WAITING_NOTICE_SECONDS:g} s; free on the cluster: "
                f"{self.pool.free_resources()} (other sweeps may hold the rest)"
            )
            print(f"hpo: {message}", file=sys.stderr, flush=True)
            self.tracker.set_sweep_tags({SweepTag.WAITING: message})
            self.waiting = True
        elif self.pool.workers_up() > 0:
            print("hpo: the workers are starting", file=sys.stderr, flush=True)
            self.tracker.set_sweep_tags({SweepTag.WAITING: ""})
            self.waiting = False

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        limit = self.config.trial_timeout
        if limit is not None:
            for running in list(self.pool.running.values()):
                since = self.pool.running_since(running)
                if since is not None and now - since > limit:
                    self.pool.kill(running)
                    self.trials.finish(running.record, Outcome.failed(f"timeout after {limit:g} s"))
        timeout = self.config.timeout
        if timeout is not None and not self.timed_out and now - self.started > timeout:
            self.timed_out = True
            self._cancel_running(f"cancelled: the sweep's timeout of {timeout:g} s was reached")

    def _check_stopping_rules(self) -> None:
        """Start no new trial once ``stop_at`` is reached or ``patience`` runs out; the
        trials already running finish (their results are paid for and may be better)."""
        o, tally = self.config, self.trials.tally
        if self.stopped_by is not None:
            return
        if o.stop_at is not None and tally.best is not None:
            if not better(o.stop_at, tally.best, self.strategy.directions.single):
                self.stopped_by = f"stop_at: the best value {tally.best:.6g} reached {o.stop_at:g}"
        if o.patience is not None and tally.since_best >= o.patience:
            self.stopped_by = f"patience: no improvement in the last {tally.since_best} trials"

    def _cancel_running(self, reason: str) -> None:
        """Stop the workers of running trials and end those trials (and the lost ones
        waiting for a retry) as cancelled, with ``reason``."""
        stopped = [r.record for r in self.pool.cancel_all()] + self.trials.retries
        self.trials.retries = []
        for record in stopped:
            if not record.state.is_finished:
                self.trials.finish(record, Outcome.failed(reason), cancelled=True)

    # -- the end ---------------------------------------------------------------------------
    def _close(self, *, status: str, error: str | None = None) -> None:
        if self.progress is not None:
            self.progress.close(self.trials.tally)
        s, o = self.strategy, self.config
        records = [self.trials.records[t.number] for t in s.trials]
        names = self.trials.names
        # Drawn on an idle worker while the writer drains its backlog: in this process the
        # drawing would compete with the writer for the interpreter.
        figures = self.pool.render(
            figure_specs(
                records,
                s.space,
                s.directions,
                repeats=o.repeats,
                names=names,
                watched=self.trials.prune_metric,
            )
        )
        try:
            self.tracker.close()  # every trial written: all run ids are known from here on
            figures = figures()
        finally:  # no worker outlives its sweep, whatever the tracker did
            self.pool.shutdown()
        for record in records:
            record.run_id = self.tracker.run_id(record.number)
        model_tags = self.model_tags = self._publish_best_model(records)
        tags = model_tags | closing_tags(
            records,
            s.directions,
            elapsed=time.monotonic() - self.started,
            prune_metric=self.trials.prune_metric,
            interrupted=self.interrupted,
            timed_out=self.timed_out,
            stopped_by=self.stopped_by,
            error=error,
        )
        ended = {"FINISHED": "finished", "KILLED": "interrupted", "FAILED": "stopped on an error"}
        tags[NOTE] = description(
            records,
            experiment_id=self.tracker.experiment_id,
            directions=s.directions,
            strategy=s.name,
            budget=self.budget,
            names=names,
            status="timed out"
            if self.timed_out
            else f"stopped early ({self.stopped_by})"
            if self.stopped_by and status == "FINISHED"
            else ended[status],
        )
        artifacts = {
            **closing_artifacts(records, s.space, s.directions, repeats=o.repeats, names=names),
            **figures,
            **s.artifacts(),
        }
        self.tracker.end_sweep(status=status, tags=tags, artifacts=artifacts)
        self.figures = tuple(
            sorted(name for name, data in artifacts.items() if data and name.endswith(".png"))
        )

    def _publish_best_model(self, records: list[Any]) -> dict[str, str]:
        """The best trial's model as the sweep's (see `hpo.tracking.best_model`); its tags."""
        s, tracker = self.strategy, self.tracker
        if s.n_objectives > 1:  # no one best trial: each trial of the front has its model
            return {}
        best = best_of(records, s.directions)
        if best is not None and not best.models and self.config.register_model is not None:
            message = (
                f"nothing registered as {self.config.register_model!r}: the best trial "
                f"({best.number}) stored no model; the objective stores one with "
                "report.model(estimator)"
            )
            print(f"hpo: warning: {message}", file=sys.stderr)
            return {SweepTag.BEST_MODEL_ERROR: message}
        if best is None or not best.models or best.run_id is None:
            return {}
        try:
            return tracker.publish(
                lambda client, sweep_tags: publish_best_model(
                    client,
                    experiment_id=tracker.experiment_id,
                    sweep_id=tracker.sweep_id,
                    name=f"{tracker.sweep_name}-best",
                    best=best,
                    objective=repr(best.value),
                    register_as=self.config.register_model,
                    previous_tags=sweep_tags,
                )
            )
        except Exception as exc:  # noqa: BLE001 - the sweep's results stand; say what failed
            message = f"the best model could not be published: {first_line(exc)}"
            print(f"hpo: warning: {message}", file=sys.stderr)
            return {SweepTag.BEST_MODEL_ERROR: message}


class _Progress:
    """The progress bar: trials finished, failed (and pruned), the best value so far. In a
    Jupyter notebook it is one output that updates in place (`hpo.report.notebook`)."""

    def __init__(self, budget: int, show_pruned: bool) -> None:
        from tqdm import tqdm

        from hpo.report.notebook import NotebookBar, in_notebook

        self.show_pruned = show_pruned
        bar = NotebookBar if in_notebook() else tqdm
        self.bar = bar(total=budget, unit="trial", dynamic_ncols=True, smoothing=0.1)

    def show(self, tally: Any) -> None:
        if tally.finished == self.bar.n:
            return
        counts = {"failed": tally.counts[TrialState.FAILED]}
        if self.show_pruned:
            counts["pruned"] = tally.counts[TrialState.PRUNED]
        if tally.directions.several:  # the front's size
            self.bar.set_postfix(**counts, front=len(tally.front), refresh=False)
        else:
            best = "-" if tally.best is None else f"{tally.best:.4g}"
            self.bar.set_postfix(**counts, best=best, refresh=False)
        self.bar.update(tally.finished - self.bar.n)

    def close(self, tally: Any = None) -> None:
        if tally is not None:
            self.show(tally)
        self.bar.close()
