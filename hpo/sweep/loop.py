"""The sweep driver: asks the strategy, feeds the worker pool, records everything in MLflow.

One loop in one thread: whenever a worker is idle the strategy is asked for the next
trial; whenever events arrive they go to the tracker (reports while the trial runs, the
outcome at its end) and the outcome goes back to the strategy. A worker that dies takes
its trial with it only as far as a retry: the trial runs again as the same run.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpo.core.checks import (
    better,
    check_directions,
    check_seconds,
    finite_real,
    first_line,
    int_at_least,
    positive_int,
    several_objectives,
)
from hpo.core.events import Artifact, Outcome, Report
from hpo.core.result import SweepResult
from hpo.core.space import Space
from hpo.execution.cluster import connect
from hpo.execution.pool import Batch, WorkerDied, WorkerPool, objective_arity
from hpo.report.summary import (
    closing_artifacts,
    closing_tags,
    description,
    figure_specs,
    sweep_settings,
)
from hpo.strategies import Strategy, TrialState, make_strategy
from hpo.strategies.base import NoFeasibleConfiguration, best_of
from hpo.strategies.pruners import Pruner, make_pruner
from hpo.sweep.lifecycle import Lifecycle, Restored
from hpo.sweep.warm_start import load_history
from hpo.tracking.best_model import publish_best_model
from hpo.tracking.writer import (
    OUTAGE_LIMIT_SECONDS,
    TAG_VALUE_LIMIT,
    Tracker,
    TrackingUnavailable,
    check_name,
    resolve_tracking_uri,
)

DEFAULT_TRIALS = 20
DEFAULT_MAX_RETRIES = 1
WAIT_SECONDS = 0.5


def run(
    space: Space | Mapping[str, Any],
    objective: Callable[..., Any],
    *,
    direction: str | Sequence[str] | None = None,
    objective_names: Sequence[str] | None = None,
    strategy: str | Strategy = "random",
    n_trials: int | None = None,
    workers: int | None = None,
    seed: int | None = None,
    tracking_uri: str | None = None,
    experiment_name: str = "hpo",
    address: str | None = None,
    data: Any = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float | None = None,
    trial_timeout: float | None = None,
    progress: bool = True,
    run_name: str | None = None,
    pruner: str | Pruner | None = None,
    prune_metric: str | None = None,
    repeats: int = 1,
    sweep_tags: Mapping[str, str] | None = None,
    tracking_patience: float = OUTAGE_LIMIT_SECONDS,
    register_model: str | None = None,
    enqueue: Sequence[Mapping[str, Any]] | None = None,
    stop_at: float | None = None,
    patience: int | None = None,
    warm_start: Sequence[str] | None = None,
    constraints: Callable[[dict[str, Any]], bool] | None = None,
) -> SweepResult:
    """Run a sweep on Ray and record it in MLflow.

    Parameters
    ----------
    space : dict or Space
        The search space (see `hpo.core.space`).
    objective : callable
        ``objective(params, report)`` or ``objective(params, report, data)``; returns a
        float (with several directions: a tuple of one per direction, or a dict of them
        by name). ``report(step, **metrics)`` streams per-step metrics to MLflow.
    direction : {"minimize", "maximize"} or list of them, optional
        "minimize" when omitted, or the strategy object's own direction. A list, one per
        objective, makes a multi-objective sweep: it searches for the Pareto front (the
        trials no other trial beats in every objective), ``result.best_trials``. Not with a
        pruner, ``stop_at``, ``repeats`` or ``register_model``, which rank by one value.
    objective_names : list of str, optional
        With several directions, the objectives' names (their metrics in MLflow, in the
        order of the directions); the keys of the first dict the objective returns when
        omitted, or ``objective_0``, ``objective_1``, ... for a tuple.
    strategy : str or Strategy
        A name known to `hpo.make_strategy` ("random", "grid", ...) or a strategy object.
    n_trials : int, optional
        Budget; the whole grid for "grid", otherwise 20 when omitted.
    workers : int, optional
        Parallel trials; the cluster's CPU count when omitted.
    seed : int, optional
        Strategy seed; drawn and recorded in the ``hpo.seed`` tag when omitted.
    tracking_uri : str, optional
        MLflow tracking URI; ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db`` by default.
    experiment_name : str
        MLflow experiment (created when missing).
    address : str, optional
        Address of an existing Ray cluster; a local one is started when omitted.
    data : any, optional
        Passed to a three-argument objective; shipped to each worker once.
    max_retries : int
        How often a trial whose worker process died is run again (as the same run).
    timeout : float, optional
        Seconds for the whole sweep: then no trial is started, and running ones end FAILED
        with the reason.
    trial_timeout : float, optional
        Seconds for one trial, counted from when its worker is up (a worker's start-up is
        not the trial's time): then its worker is stopped and the trial ends FAILED with
        "timeout after N s" (it is not retried).
    progress : bool
        Show a progress bar.
    run_name : str, optional
        Name of the parent run.
    pruner : {"median", "asha", "none"} or Pruner, optional
        Stop unpromising trials on their reported curves (see `hpo.strategies.pruners`); a pruned
        trial ends PRUNED at its next ``report``. Options may follow the name:
        ``"asha:resource=seconds"`` judges trials at equal training time.
    prune_metric : str, optional
        The reported metric the pruner watches, in the sweep's direction unless the
        pruner was given one; the first metric the first report names when omitted.
    repeats : int
        Evaluate each configuration this many times, with ``params["seed"]`` = 0, 1, ...;
        the trial's value is the mean. Cannot be combined with a pruner.
    register_model : str, optional
        Register the sweep's best model (the best trial's ``report.model``) under this
        name in MLflow's Model Registry when the sweep ends: a new version per sweep.
    enqueue : list of dict, optional
        Configurations to run first, in order, shaped like ``params`` (nested); counted in
        ``n_trials``. A parameter left out is drawn at random from its range. The strategy
        takes their results as its own (grid does not run a point twice; GP and TPE learn
        from them); their runs are tagged ``hpo.enqueued``.
    stop_at : float, optional
        Start no new trial once the best value reaches this (is at least as good).
    patience : int, optional
        Start no new trial once this many trials in a row finished without improving on
        the best. Under either rule the trials already running finish; the parent run's
        ``hpo.stopped_by`` tag says which rule stopped the sweep.
    warm_start : list of str, optional
        Sweep ids (parent run ids) in the same store whose finished trials the strategy
        learns from before its first ask: not run again, not counted in ``n_trials``.
        Trials whose parameters fall outside this space are left out (and counted in a
        message); a sweep in the other direction is refused.
    constraints : callable, optional
        ``constraints(params) -> bool``: False for a configuration that must not run. The
        strategy is told it failed (so GP, TPE and the samplers learn to avoid the region;
        grid skips it) and asks again; its run is FAILED with ``hpo.infeasible``, and it
        does not count in ``n_trials``. After 100 refused suggestions in a row the sweep
        stops (``hpo.stopped_by``).
    sweep_tags : dict, optional
        Extra tags of the parent run.
    tracking_patience : float
        Seconds a tracking server may be unreachable mid-sweep: results are buffered and
        retried meanwhile, and nothing is lost. Past that the sweep stops with
        `hpo.tracking.writer.TrackingUnavailable`, whose message says how to resume it.

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> import hpo                                                    # doctest: +SKIP
    >>> from hpo.core.space import Float
    >>> def objective(params, report):
    ...     report(0, loss=params["x"] ** 2)
    ...     return params["x"] ** 2
    >>> result = hpo.run({"x": Float(-1.0, 1.0)}, objective, n_trials=8)
    >>> result.best_value < 0.5
    True
    """
    # Everything is validated before a cluster is started or a run is created.
    if isinstance(strategy, Strategy):
        strat = strategy
        if direction is not None and check_directions(direction) != strat.directions:
            raise ValueError(
                f"direction={direction!r} differs from the strategy's own "
                f"direction={strat.direction!r}; make the strategy with direction={direction!r}"
            )
    else:
        direction = "minimize" if direction is None else direction  # [] and "" are refused
        strat = make_strategy(strategy, space, direction=direction, seed=seed)
    names = check_objective_names(objective_names, strat.directions)
    arity = objective_arity(objective)
    if arity == 2 and data is not None:
        raise TypeError(
            "data was given but the objective takes (params, report); "
            "add a third parameter: objective(params, report, data)"
        )
    budget = positive_int("n_trials", n_trials)
    n_workers = positive_int("workers", workers)
    check_seconds("timeout", timeout)
    check_seconds("trial_timeout", trial_timeout)
    check_seconds("tracking_patience", tracking_patience)
    max_retries = int_at_least("max_retries", max_retries, 0)
    if not isinstance(experiment_name, str) or not experiment_name.strip():
        raise ValueError(f"experiment_name must be a non-empty string, got {experiment_name!r}")
    if register_model is not None and (not isinstance(register_model, str) or not register_model):
        raise ValueError(f"register_model must be a non-empty string, got {register_model!r}")
    n_repeats = positive_int("repeats", repeats)
    stop_at = finite_real("stop_at", stop_at)
    patience = positive_int("patience", patience)
    prune = make_pruner(pruner)
    if strat.n_objectives > 1:
        refuse_single_objective_options(
            pruner=prune, stop_at=stop_at, repeats=n_repeats, register_model=register_model
        )
    if prune is not None:
        prune.bind(strat.direction)
        if n_repeats > 1:
            raise ValueError(
                "a pruner judges one curve per trial, so it cannot be combined with repeats > 1 "
                f"(got pruner={prune.name!r}, repeats={n_repeats})"
            )
    if prune_metric is not None:
        check_name("prune_metric", prune_metric)
    for param in strat.space.params:
        check_name("parameter", param.name)
    if n_repeats > 1 and any(p.name == "seed" for p in strat.space.params):
        raise ValueError(
            "with repeats > 1 the objective gets params['seed'], but the space already has a "
            "parameter named 'seed'; rename it"
        )
    if constraints is not None and not callable(constraints):
        raise TypeError(f"constraints must be a function of params, got {constraints!r}")
    strat.constraints = constraints
    queued = enqueue_all(strat, enqueue)
    uri = resolve_tracking_uri(tracking_uri)
    history = None
    if warm_start:
        history = load_history(list(warm_start), strat.space, strat.direction, uri, names)
        strat.warm_start(history.trials)
        names = names or history.objective_names  # its values come by those names
        if progress:
            print(f"hpo: {history.describe()}", file=sys.stderr)
    grid_size = getattr(strat, "size", None)
    if grid_size is not None:  # a grid ends once exhausted: off-grid queued points add to it
        grid_size += sum(not strat.on_grid(strat.space.assignment_of(c)) for c in queued)
    if budget is None:
        budget = grid_size if grid_size is not None else DEFAULT_TRIALS
    elif grid_size is not None:
        budget = min(budget, grid_size)
    # What `hpo resume` needs to make this sweep again; MLflow is the only state.
    recipe = {
        **strat.recipe,
        "n_trials": budget,
        "max_retries": max_retries,
        "timeout": timeout,
        "trial_timeout": trial_timeout,
        "pruner": None if prune is None else prune.recipe(),
        "prune_metric": prune_metric,
        "repeats": n_repeats,
        "register_model": register_model,
        "enqueue": queued,  # a resume queues again those that had not started
        "stop_at": stop_at,
        "patience": patience,
        "warm_start": None if history is None else history.sweep_ids,
    }
    tags = {
        **(sweep_tags or {}),
        "hpo.recipe": json.dumps(recipe, default=str),
        "hpo.space_digest": space_digest(strat.space),
    }
    if names is not None:
        tags["hpo.objectives"] = json.dumps(list(names))
    if history is not None:  # where the sweep started from
        tags["hpo.warm_start"] = f"{history.describe()}; from {', '.join(history.sweep_ids)}"
    options = SweepOptions(
        budget=budget,
        max_retries=max_retries,
        timeout=timeout,
        trial_timeout=trial_timeout,
        pruner=prune,
        prune_metric=prune_metric,
        repeats=n_repeats,
        progress=progress,
        register_model=register_model,
        stop_at=stop_at,
        patience=patience,
        objective_names=names,
    )
    sweep = open_sweep(
        strat,
        objective,
        arity,
        data,
        options,
        workers=n_workers,
        address=address,
        tracking_uri=uri,
        experiment_name=experiment_name,
        tracking_patience=tracking_patience,
    )
    return sweep.run(run_name or f"{experiment_name}-{strat.name}", tags)


def check_objective_names(names: Any, directions: tuple[str, ...]) -> tuple[str, ...] | None:
    """The objectives' names as given (None: named by the first result), checked against
    the directions."""
    if names is None:
        return None
    if len(directions) == 1:
        raise ValueError(
            f"objective_names names several objectives, but the sweep has one direction "
            f"({directions[0]!r}, whose metric is 'objective'); give direction=[...] with one "
            f"direction per name, got objective_names={names!r}"
        )
    if isinstance(names, str) or not isinstance(names, Sequence) or len(names) != len(directions):
        raise ValueError(
            f"objective_names must be a list of {len(directions)} names, one per direction "
            f"{list(directions)}, got {names!r}"
        )
    for name in names:
        check_name("objective", name)
    if len(set(names)) != len(names):
        raise ValueError(f"objective_names must differ from each other, got {list(names)}")
    return tuple(names)


def refuse_single_objective_options(**options: Any) -> None:
    """ValueError for an option that ranks trials by one value, in a sweep with several."""
    for name, value in options.items():
        if value is None or value == 1:  # not given (repeats: its default)
            continue
        shown = value.name if isinstance(value, Pruner) else value
        raise ValueError(
            f"{name}={shown!r} ranks trials by one value, but the sweep has several "
            "objectives; leave it out (the sweep's result is its Pareto front)"
        )


def enqueue_all(strategy: Strategy, configurations: Any) -> list[dict[str, Any]]:
    """Queue ``configurations`` (a list of nested dicts) in ``strategy``, checked first;
    returns them as given, for the recipe."""
    if configurations is None:
        return []
    if isinstance(configurations, Mapping) or not isinstance(configurations, Sequence):
        raise ValueError(
            f"enqueue must be a list of configurations (dicts like params), got {configurations!r}"
        )
    queued = [dict(c) if isinstance(c, Mapping) else c for c in configurations]
    for i, configuration in enumerate(queued):
        try:
            partial = strategy.space.assignment_of(configuration)
        except ValueError as exc:
            raise ValueError(f"enqueue[{i}] {configuration!r}: {exc}") from None
        try:
            strategy.space.validate(partial)
        except ValueError:
            continue  # partial: its completion is drawn (until feasible) when it is asked
        if not strategy.feasible(strategy.space.build(partial)):
            raise ValueError(f"enqueue[{i}] {configuration!r}: the constraints refuse it")
    if len(json.dumps(queued, default=str)) > TAG_VALUE_LIMIT // 2:
        raise ValueError(
            f"enqueue holds more than the sweep can record for a resume ({len(queued)} "
            f"configurations, over {TAG_VALUE_LIMIT // 2} characters as JSON); queue fewer"
        )
    for configuration in queued:
        strategy.enqueue(configuration)
    return queued


def space_digest(space: Space) -> str:
    """A short fingerprint of a space, so a resume can check it got the same one."""
    return hashlib.sha256(repr(space).encode()).hexdigest()[:16]


@dataclass
class SweepOptions:
    """How a sweep runs, beyond its strategy (checked by `run`, or read back by `resume`)."""

    budget: int
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: float | None = None
    trial_timeout: float | None = None
    pruner: Pruner | None = None
    prune_metric: str | None = None
    repeats: int = 1
    progress: bool = True
    register_model: str | None = None
    stop_at: float | None = None
    patience: int | None = None
    objective_names: tuple[str, ...] | None = None  # several objectives, when given


def open_sweep(
    strategy: Strategy,
    objective: Callable[..., Any],
    arity: int,
    data: Any,
    options: SweepOptions,
    *,
    workers: int | None,
    address: str | None,
    tracking_uri: str,
    experiment_name: str,
    tracking_patience: float = OUTAGE_LIMIT_SECONDS,
) -> Sweep:
    """Connect to Ray, start the workers and the tracker: a sweep ready to run or resume."""
    resources = connect(address)
    cpus = int(resources.get("CPU", 0))
    if workers is None:
        workers = max(cpus, 1)
    elif workers > cpus:
        raise ValueError(
            f"workers must not exceed the cluster's CPUs ({cpus}), got workers={workers}"
        )
    pool = WorkerPool(objective, arity, data, workers, repeats=options.repeats)
    try:
        tracker = Tracker(tracking_uri, experiment_name, outage_limit=tracking_patience)
    except BaseException:
        pool.shutdown()
        raise
    return Sweep(strategy, pool, tracker, options)


class Sweep:
    """The driver's loop: it decides when trials start, when events are handled, when
    trials time out and when the sweep ends; `hpo.sweep.lifecycle.Lifecycle` does each step.

    ``pool`` is a `WorkerPool` (or a fake with its methods), ``tracker`` a `Tracker`.
    """

    def __init__(
        self, strategy: Strategy, pool: WorkerPool, tracker: Tracker, options: SweepOptions
    ) -> None:
        self.strategy, self.pool, self.tracker, self.options = strategy, pool, tracker, options
        self.workers = len(pool.idle)
        self.trials = Lifecycle(
            strategy,
            tracker,
            pruner=options.pruner,
            prune_metric=options.prune_metric,
            max_retries=options.max_retries,
            objective_names=options.objective_names,
        )
        self.interrupted = self.timed_out = False
        self.stopped_by: str | None = None  # the stopping rule that was met, in words
        self.started = time.monotonic()
        self.progress = _Progress(options) if options.progress else None

    def settings(self) -> dict[str, Any]:
        o = self.options
        return sweep_settings(
            self.strategy.settings(),
            budget=o.budget,
            workers=self.workers,
            pruner=o.pruner,
            prune_metric=self.trials.prune_metric,
            repeats=o.repeats,
        )

    # -- start or go on --------------------------------------------------------------------
    def run(self, run_name: str, tags: dict[str, str]) -> SweepResult:
        s = self.strategy
        self.tracker.start_sweep(
            run_name=run_name,
            tags={"hpo.strategy": s.name, "hpo.direction": s.direction, "hpo.seed": str(s.seed)}
            | tags,
            params=self.settings(),
        )
        return self._loop()

    def resume(self, sweep_id: str, restored: list[Restored]) -> SweepResult:
        """Go on with a sweep whose earlier driver stopped: ``restored`` are its child runs,
        already put back into the strategy. Those left RUNNING run again as the same trial
        in the same run, as after a dead worker ("driver lost")."""
        self.tracker.resume_sweep(sweep_id)
        for r in sorted(restored, key=lambda r: r.trial.number):
            self.trials.restore(r)
        return self._loop()

    # -- the loop --------------------------------------------------------------------------
    def _loop(self) -> SweepResult:
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
                self._check_stopping_rules()
                self._locate_runs()
                if self.progress is not None:
                    self.progress.show(self.trials.tally)
        except KeyboardInterrupt:
            self.interrupted, status = True, "KILLED"
            self._cancel_running("interrupted by the user (Ctrl-C)")
        except TrackingUnavailable:
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
        return SweepResult(
            sweep_id=self.tracker.sweep_id or "",
            experiment_id=self.tracker.experiment_id,
            tracking_uri=self.tracker.tracking_uri,
            direction=self.strategy.direction,
            objective_names=self.trials.names,
            trials=[self.trials.records[t.number] for t in self.strategy.trials],
            interrupted=self.interrupted,
            timed_out=self.timed_out,
            stopped_by=self.stopped_by,
            settings=self.settings(),
        )

    def _held_back(self) -> bool:
        """Trials are left to run but none could start: the cluster has no room for a
        worker yet, or the record is behind (`Tracker.behind`)."""
        if self.timed_out or not (self.pool.missing or self.tracker.behind()):
            return False
        budget_left = self._started() < self.options.budget and not self.stopped_by
        return bool(self.trials.retries) or (budget_left and not self.strategy.exhausted)

    def _fill(self) -> None:
        """Give every idle worker a trial: lost trials first, then new ones; none while
        the record is behind."""
        if self.timed_out or self.tracker.behind():
            return
        retries = self.trials.retries
        while self.pool.idle and retries:
            record = retries.pop(0)
            where = self.tracker.artifact_location(record.number)
            store = None if where is None else (where, self.tracker.tracking_uri)
            self.pool.submit(record, store)  # where its checkpoint is, if it took one
        room = min(len(self.pool.idle), self.options.budget - self._started())
        if room <= 0 or self.strategy.exhausted or self.stopped_by:
            return
        try:
            trials = self.strategy.ask(room)
        except NoFeasibleConfiguration as exc:
            trials, self.stopped_by = [], f"constraints: {exc}"
        for refused in self.strategy.take_rejected():
            self.trials.refused(refused)
        for trial in trials:
            self.pool.submit(self.trials.start(trial))

    def _started(self) -> int:
        """Trials issued for this sweep's budget: not those the constraints refused."""
        return sum(not t.attrs.get("infeasible") for t in self.strategy.trials)

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

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        limit = self.options.trial_timeout
        if limit is not None:
            for running in list(self.pool.running.values()):
                since = self.pool.running_since(running)
                if since is not None and now - since > limit:
                    self.pool.kill(running)
                    self.trials.finish(running.record, Outcome.failed(f"timeout after {limit:g} s"))
        timeout = self.options.timeout
        if timeout is not None and not self.timed_out and now - self.started > timeout:
            self.timed_out = True
            self._cancel_running(f"cancelled: the sweep's timeout of {timeout:g} s was reached")

    def _check_stopping_rules(self) -> None:
        """Start no new trial once ``stop_at`` is reached or ``patience`` runs out; the
        trials already running finish (their results are paid for and may be better)."""
        o, tally = self.options, self.trials.tally
        if self.stopped_by is not None:
            return
        if o.stop_at is not None and tally.best is not None:
            if not better(o.stop_at, tally.best, self.strategy.direction):
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
        s, o = self.strategy, self.options
        records = [self.trials.records[t.number] for t in s.trials]
        names = self.trials.names
        # Drawn on an idle worker while the writer drains its backlog: in this process the
        # drawing would compete with the writer for the interpreter.
        figures = self.pool.render(
            figure_specs(records, s.space, s.direction, repeats=o.repeats, names=names)
        )
        try:
            self.tracker.close()  # every trial written: all run ids are known from here on
            figures = figures()
        finally:  # no worker outlives its sweep, whatever the tracker did
            self.pool.shutdown()
        for record in records:
            record.run_id = self.tracker.run_id(record.number)
        model_tags = self._publish_best_model(records)
        tags = model_tags | closing_tags(
            records,
            s.direction,
            elapsed=time.monotonic() - self.started,
            prune_metric=self.trials.prune_metric,
            interrupted=self.interrupted,
            timed_out=self.timed_out,
            stopped_by=self.stopped_by,
            error=error,
        )
        ended = {"FINISHED": "finished", "KILLED": "interrupted", "FAILED": "stopped on an error"}
        tags["mlflow.note.content"] = description(
            records,
            experiment_id=self.tracker.experiment_id,
            direction=s.direction,
            strategy=s.name,
            budget=o.budget,
            names=names,
            status="timed out"
            if self.timed_out
            else f"stopped early ({self.stopped_by})"
            if self.stopped_by and status == "FINISHED"
            else ended[status],
        )
        artifacts = {
            **closing_artifacts(records, s.space, s.direction, repeats=o.repeats, names=names),
            **figures,
            **s.artifacts(),
        }
        self.tracker.end_sweep(status=status, tags=tags, artifacts=artifacts)

    def _publish_best_model(self, records: list[Any]) -> dict[str, str]:
        """The best trial's model as the sweep's (see `hpo.tracking.best_model`); its tags."""
        s, tracker = self.strategy, self.tracker
        if s.n_objectives > 1:  # no one best trial: each trial of the front has its model
            return {}
        best = best_of(records, s.direction)
        if best is None or not best.models or best.run_id is None:
            return {}
        try:
            return publish_best_model(
                tracker.client,
                experiment_id=tracker.experiment_id,
                sweep_id=tracker.sweep_id,
                name=f"{tracker.sweep_name}-best",
                best=best,
                objective=repr(best.value),
                register_as=self.options.register_model,
                previous_tags=tracker.client.get_run(tracker.sweep_id).data.tags,
            )
        except Exception as exc:  # noqa: BLE001 - the sweep's results stand; say what failed
            message = f"the best model could not be published: {first_line(exc)}"
            print(f"hpo: warning: {message}", file=sys.stderr)
            return {"hpo.best_model_error": message}


class _Progress:
    """The progress bar: trials finished, failed (and pruned), the best value so far."""

    def __init__(self, options: SweepOptions) -> None:
        from tqdm.auto import tqdm

        self.show_pruned = options.pruner is not None
        self.bar = tqdm(total=options.budget, unit="trial", dynamic_ncols=True, smoothing=0.1)

    def show(self, tally: Any) -> None:
        if tally.finished == self.bar.n:
            return
        counts = {"failed": tally.counts[TrialState.FAILED]}
        if self.show_pruned:
            counts["pruned"] = tally.counts[TrialState.PRUNED]
        if several_objectives(tally.direction):  # the front's size
            self.bar.set_postfix(**counts, front=len(tally.front), refresh=False)
        else:
            best = "-" if tally.best is None else f"{tally.best:.4g}"
            self.bar.set_postfix(**counts, best=best, refresh=False)
        self.bar.update(tally.finished - self.bar.n)

    def close(self, tally: Any = None) -> None:
        if tally is not None:
            self.show(tally)
        self.bar.close()
