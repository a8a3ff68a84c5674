"""The sweep driver: asks the strategy, feeds the worker pool, records everything in MLflow.

One loop in one thread: whenever a worker is idle the strategy is asked for the next
trial; whenever events arrive they go to the tracker (reports while the trial runs, the
outcome at its end) and the outcome goes back to the strategy. A worker that dies takes
its trial with it only as far as a retry: the trial runs again as the same run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hpo.executor import (
    DONE,
    ERROR,
    PRUNED,
    REPORT,
    Running,
    WorkerDied,
    WorkerPool,
    connect,
    objective_arity,
)
from hpo.pruners import Pruner, make_pruner
from hpo.result import SweepResult
from hpo.space import Choice, Float, Int, Space
from hpo.strategies import Strategy, make_strategy
from hpo.strategies.base import Trial, TrialState, check_seconds
from hpo.tracking import (
    OUTAGE_LIMIT_SECONDS,
    SWEEP,
    Tracker,
    TrackingUnavailable,
    check_name,
    resolve_tracking_uri,
    truncated_params,
)

DEFAULT_TRIALS = 20
WAIT_SECONDS = 0.5
BEST_CONFIGURATIONS = 20  # rows of the repeats table and figure
HEATMAP_MAX_VALUES = 25  # more distinct values per axis than this is not a grid worth drawing


def positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def run(
    space: Space | Mapping[str, Any],
    objective: Callable[..., Any],
    *,
    direction: str = "minimize",
    strategy: str | Strategy = "random",
    n_trials: int | None = None,
    workers: int | None = None,
    seed: int | None = None,
    tracking_uri: str | None = None,
    experiment_name: str = "hpo",
    address: str | None = None,
    data: Any = None,
    max_retries: int = 1,
    timeout: float | None = None,
    trial_timeout: float | None = None,
    progress: bool = True,
    run_name: str | None = None,
    pruner: str | Pruner | None = None,
    prune_metric: str | None = None,
    repeats: int = 1,
    sweep_tags: Mapping[str, str] | None = None,
    tracking_patience: float = OUTAGE_LIMIT_SECONDS,
) -> SweepResult:
    """Run a sweep on Ray and record it in MLflow.

    Parameters
    ----------
    space : dict or Space
        The search space (see `hpo.space`).
    objective : callable
        ``objective(params, report)`` or ``objective(params, report, data)``; returns a
        float. ``report(step, **metrics)`` streams per-step metrics to MLflow.
    direction : {"minimize", "maximize"}
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
        Stop unpromising trials on their reported curves (see `hpo.pruners`); a pruned
        trial ends PRUNED at its next ``report``. Options may follow the name:
        ``"asha:resource=seconds"`` judges trials at equal training time.
    prune_metric : str, optional
        The reported metric the pruner watches, in the sweep's direction unless the
        pruner was given one; the first metric the first report names when omitted.
    repeats : int
        Evaluate each configuration this many times, with ``params["seed"]`` = 0, 1, ...;
        the trial's value is the mean. Cannot be combined with a pruner.
    sweep_tags : dict, optional
        Extra tags of the parent run.
    tracking_patience : float
        Seconds a tracking server may be unreachable mid-sweep: results are buffered and
        retried meanwhile, and nothing is lost. Past that the sweep stops with
        `hpo.tracking.TrackingUnavailable`, whose message says how to resume it.

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> import hpo                                                    # doctest: +SKIP
    >>> from hpo.space import Float
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
    else:
        strat = make_strategy(strategy, space, direction=direction, seed=seed)
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
    if not isinstance(max_retries, numbers.Integral) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    if not isinstance(experiment_name, str) or not experiment_name.strip():
        raise ValueError(f"experiment_name must be a non-empty string, got {experiment_name!r}")
    n_repeats = positive_int("repeats", repeats)
    prune = make_pruner(pruner)
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
    grid_size = getattr(strat, "size", None)
    if budget is None:
        budget = grid_size if grid_size is not None else DEFAULT_TRIALS
    elif grid_size is not None:
        budget = min(budget, grid_size)
    # What `hpo resume` needs to make this sweep again; MLflow is the only state.
    recipe = {
        **strat.recipe,
        "n_trials": budget,
        "max_retries": int(max_retries),
        "timeout": timeout,
        "trial_timeout": trial_timeout,
        "pruner": None if prune is None else prune.recipe(),
        "prune_metric": prune_metric,
        "repeats": n_repeats,
    }
    tags = {
        **(sweep_tags or {}),
        "hpo.recipe": json.dumps(recipe, default=str),
        "hpo.space_digest": space_digest(strat.space),
    }
    return execute(
        strat,
        objective,
        arity,
        data,
        budget=budget,
        workers=n_workers,
        address=address,
        tracking_uri=resolve_tracking_uri(tracking_uri),
        experiment_name=experiment_name,
        progress=progress,
        tracking_patience=tracking_patience,
        options=dict(
            max_retries=int(max_retries),
            timeout=timeout,
            trial_timeout=trial_timeout,
            pruner=prune,
            prune_metric=prune_metric,
            repeats=n_repeats,
        ),
        start=lambda sweep: sweep.run(run_name or f"{experiment_name}-{strat.name}", tags),
    )


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers, for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot record {value!r} ({type(value).__name__}) as JSON")


def space_digest(space: Space) -> str:
    """A short fingerprint of a space, so a resume can check it got the same one."""
    return hashlib.sha256(repr(space).encode()).hexdigest()[:16]


def execute(
    strategy: Strategy,
    objective: Callable[..., Any],
    arity: int,
    data: Any,
    *,
    budget: int,
    workers: int | None,
    address: str | None,
    tracking_uri: str,
    experiment_name: str,
    progress: bool,
    options: dict[str, Any],
    start: Callable[[_Sweep], SweepResult],
    tracking_patience: float = OUTAGE_LIMIT_SECONDS,
) -> SweepResult:
    """Connect to Ray, start the workers and the tracker, and run (or resume) the sweep."""
    resources = connect(address)
    cpus = int(resources.get("CPU", 0))
    if workers is None:
        workers = max(cpus, 1)
    elif workers > cpus:
        raise ValueError(
            f"workers must not exceed the cluster's CPUs ({cpus}), got workers={workers}"
        )
    pool = WorkerPool(objective, arity, data, workers, repeats=options["repeats"])
    try:
        tracker = Tracker(tracking_uri, experiment_name, outage_limit=tracking_patience)
    except BaseException:
        pool.shutdown()
        raise
    return start(_Sweep(strategy, pool, tracker, budget=budget, progress=progress, **options))


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


class _Sweep:
    def __init__(
        self,
        strategy: Strategy,
        pool: WorkerPool,
        tracker: Tracker,
        *,
        budget: int,
        max_retries: int,
        progress: bool,
        timeout: float | None = None,
        trial_timeout: float | None = None,
        pruner: Pruner | None = None,
        prune_metric: str | None = None,
        repeats: int = 1,
    ) -> None:
        self.strategy, self.pool, self.tracker = strategy, pool, tracker
        self.pruner, self.prune_metric, self.repeats = pruner, prune_metric, repeats
        self.timeout, self.trial_timeout, self.timed_out = timeout, trial_timeout, False
        self.budget, self.workers, self.max_retries = budget, len(pool.idle), max_retries
        self.retries: list[Trial] = []
        self.logged: dict[int, set[tuple[str, int]]] = {}
        self.finished = self.n_failed = self.n_pruned = 0
        self.best: float | None = None
        self.interrupted = False
        self.started = time.monotonic()
        self.bar = _progress_bar(budget) if progress else None

    # -- main loop -----------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        s = self.strategy
        settings = {**s.settings(), "n_trials": self.budget, "workers": self.workers}
        if self.pruner is not None:
            settings.update(
                self.pruner.settings(), prune_metric=self.prune_metric or "first reported"
            )
        if self.repeats > 1:
            settings["repeats"] = self.repeats
        return settings

    def run(self, run_name: str, tags: dict[str, str]) -> SweepResult:
        s = self.strategy
        self.tracker.start_sweep(
            run_name=run_name,
            tags={
                "hpo.strategy": s.name,
                "hpo.direction": s.direction,
                "hpo.seed": str(s.seed),
                **tags,
            },
            params=self.settings(),
        )
        return self._loop()

    def resume(self, sweep_id: str, restored: list[Restored]) -> SweepResult:
        """Go on with a sweep whose earlier driver stopped: ``restored`` are its child runs,
        already put back into the strategy. Runs left RUNNING are run again as the same
        trial in the same run, as a retry after a dead worker is ("driver lost")."""
        self.tracker.resume_sweep(sweep_id)
        for r in sorted(restored, key=lambda r: r.trial.number):
            trial = r.trial
            self.tracker.adopt_trial(trial.number, r.run_id, r.artifact_uri)
            self.logged[trial.number] = r.logged
            trial.attrs.update(attempts=r.attempts, last_metrics={})
            if trial.state is TrialState.RUNNING:
                trial.attrs["attempts"] = r.attempts + 1
                self.tracker.set_tags(
                    trial.number,
                    {
                        "hpo.attempt": str(r.attempts + 1),
                        f"hpo.attempt_{r.attempts}_error": r.why_again,
                    },
                )
                self.retries.append(trial)
            else:
                self._count(trial)
        if self.bar is not None:
            self.bar.update(self.finished)
        return self._loop()

    def _loop(self) -> SweepResult:
        s = self.strategy
        status = "FINISHED"
        try:
            while True:
                self.tracker.check()
                self._fill()
                if not self.pool.running:
                    break
                for event in self.pool.wait(WAIT_SECONDS):
                    if isinstance(event, WorkerDied):
                        self._worker_died(event)
                    else:
                        self._handle(*event)
                self._enforce_timeouts()
        except KeyboardInterrupt:
            self.interrupted, status = True, "KILLED"
            self._cancel_running("interrupted by the user (Ctrl-C)")
        except TrackingUnavailable:
            # Nothing more can be recorded: stop the workers; the runs left RUNNING are what
            # `hpo resume` runs again.
            if self.bar is not None:
                self.bar.close()
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
            direction=s.direction,
            trials=list(s.trials),
            interrupted=self.interrupted,
            timed_out=self.timed_out,
            settings=self.settings(),
        )

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        if self.trial_timeout is not None:
            for running in list(self.pool.running.values()):
                since = self.pool.running_since(running)
                if since is not None and now - since > self.trial_timeout:
                    self.pool.kill(running)
                    reason = f"timeout after {self.trial_timeout:g} s"
                    self.strategy.tell(running.trial, failed=True, error=reason)
                    self._end(running.trial)
        if self.timeout is not None and not self.timed_out and now - self.started > self.timeout:
            self.timed_out = True
            self._cancel_running(
                f"cancelled: the sweep's timeout of {self.timeout:g} s was reached"
            )

    def _fill(self) -> None:
        """Give every idle worker a trial: retries first, then new ones from the strategy."""
        if self.timed_out:
            return
        while self.pool.idle and self.retries:
            self.pool.submit(self.retries.pop(0))
        room = min(len(self.pool.idle), self.budget - len(self.strategy.trials))
        if room <= 0 or self.strategy.exhausted:
            return
        for trial in self.strategy.ask(room):
            trial.attrs.update(attempts=1, last_metrics={})
            tags = {
                "hpo.attempt": "1",
                # The strategy's own view of the trial, for a resume to put it back exactly.
                "hpo.assignment": json.dumps(trial.assignment, default=_plain),
                **truncated_params(trial.flat_params),
            }
            self.tracker.start_trial(trial.number, trial.flat_params, tags)
            self.pool.submit(trial)

    # -- events --------------------------------------------------------------------------
    def _handle(self, running: Running, batch: list[Any]) -> None:
        trial = running.trial
        for event in batch:
            kind = event[0]
            if kind == REPORT:
                self._report(running, *event[1:])
            elif kind == DONE:
                _, value, seconds, curves, values = event
                trial.attrs["seconds"] = seconds
                if self.repeats > 1:
                    trial.attrs["repeat_values"] = values
                self.strategy.tell(trial, value)
                if self.pruner is not None:
                    self.pruner.complete(trial.number)
                self._end(trial, artifacts={"learning_curves.png": curves})
            elif kind == PRUNED:
                _, seconds, curves = event
                trial.attrs["seconds"] = seconds
                # An objective may also prune itself by raising TrialPruned.
                last_step = max((s for s, _ in trial.attrs["last_metrics"].values()), default=0)
                step, reason = trial.attrs.get(
                    "pruned", (last_step, "the objective raised TrialPruned")
                )
                self.strategy.tell(trial, pruned=True, error=reason)
                tags = {
                    "hpo.pruner": self.pruner.name if "pruned" in trial.attrs else "objective",
                    "hpo.pruned_step": str(step),
                    "hpo.prune_reason": reason,
                }
                self._end(trial, artifacts={"learning_curves.png": curves}, tags=tags)
            elif kind == ERROR:
                _, reason, trace, seconds, curves = event
                trial.attrs["seconds"] = seconds
                self.strategy.tell(trial, failed=True, error=reason)
                self._end(
                    trial,
                    artifacts={"learning_curves.png": curves, "traceback.txt": trace.encode()},
                )

    def _report(
        self, running: Running, step: int, metrics: dict[str, float], seconds: float
    ) -> None:
        trial = running.trial
        # A retried trial reports its early steps again; each (metric, step) is logged once.
        seen = self.logged.setdefault(trial.number, set())
        fresh = {k: v for k, v in metrics.items() if (k, step) not in seen}
        seen.update((k, step) for k in fresh)
        if fresh:
            self.tracker.log_metrics(trial.number, step, fresh)
        last = trial.attrs["last_metrics"]
        for k, v in metrics.items():
            if step >= last.get(k, (-1, 0.0))[0]:
                last[k] = (step, v)
        if self.pruner is not None and "pruned" not in trial.attrs:
            self._judge(running, step, metrics, seconds)

    def _judge(
        self, running: Running, step: int, metrics: dict[str, float], seconds: float
    ) -> None:
        """Feed the pruner the watched metric; stop the trial at its next report if told."""
        if self.prune_metric is None:
            self.prune_metric = next(iter(metrics))
            # Recorded now, so that a resume after a crash watches the same metric.
            self.tracker.set_tags(SWEEP, {"hpo.prune_metric": self.prune_metric})
        value = metrics.get(self.prune_metric)
        if value is None:
            return
        reason = self.pruner.report(running.trial.number, step, value, seconds=seconds)
        if reason is not None:
            trial = running.trial
            trial.attrs["pruned"] = (step, f"{reason} ({self.prune_metric})")
            if self.pruner.direction == self.strategy.direction:  # comparable to objectives
                trial.attrs["intermediate"] = (step, value)
            # The objective stops at its next report; trial metrics until then still count.
            self.pool.stop(running)

    def _worker_died(self, event: WorkerDied) -> None:
        trial = event.running.trial
        attempts = trial.attrs["attempts"]
        if attempts <= self.max_retries:
            trial.attrs["attempts"] = attempts + 1
            self.tracker.set_tags(
                trial.number,
                {"hpo.attempt": str(attempts + 1), f"hpo.attempt_{attempts}_error": event.reason},
            )
            self.retries.append(trial)
            return
        reason = f"the worker process died ({attempts} attempts): {event.reason}"
        self.strategy.tell(trial, failed=True, error=reason)
        self._end(trial)

    def _end(
        self,
        trial: Trial,
        *,
        artifacts: dict[str, bytes | None] | None = None,
        status: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        kept = {k: v for k, v in (artifacts or {}).items() if v is not None}
        self.tracker.end_trial(
            trial.number,
            trial.state,
            value=trial.value,
            error=None if trial.state is TrialState.PRUNED else trial.error,
            artifacts=kept,
            status=status,
            tags=tags,
        )
        self._count(trial)
        if self.best is not None:
            self.tracker.log_sweep_metrics(self.finished, {"best_objective": self.best})
        if self.bar is not None:
            best = "-" if self.best is None else f"{self.best:.4g}"
            counts = {"failed": self.n_failed}
            if self.pruner is not None:
                counts["pruned"] = self.n_pruned
            self.bar.set_postfix(**counts, best=best, refresh=False)
            self.bar.update(1)

    def _count(self, trial: Trial) -> None:
        # Running counts: rescanning every trial here would make a sweep quadratic.
        self.finished += 1
        self.n_failed += trial.state is TrialState.FAILED
        self.n_pruned += trial.state is TrialState.PRUNED
        if trial.value is not None and (self.best is None or self._better(trial.value, self.best)):
            self.best = trial.value

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.strategy.direction == "minimize" else a > b

    def _cancel_running(self, reason: str) -> None:
        """Stop the workers of running trials and end those trials FAILED with ``reason``."""
        stopped = [r.trial for r in self.pool.cancel_all()] + self.retries
        self.retries = []
        for trial in stopped:
            if trial.state is TrialState.RUNNING:
                self.strategy.tell(trial, failed=True, error=reason)
                # Not the configuration's fault: `hpo resume` runs a cancelled trial again.
                self._end(trial, status="KILLED", tags={"hpo.cancelled": "true"})

    # -- the end -------------------------------------------------------------------------
    def _close(self, *, status: str, error: str | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
        # Drawn on an idle worker while the writer drains its backlog: in this process the
        # drawing would compete with the writer for the interpreter.
        figures = self.pool.render(self._figure_specs())
        try:
            self.tracker.close()  # every trial written: all run ids are known from here on
            figures = figures()
        finally:  # no worker outlives its sweep, whatever the tracker did
            self.pool.shutdown()
        trials = self.strategy.trials
        for trial in trials:
            trial.attrs["run_id"] = self.tracker.run_id(trial.number)
        tags = {
            f"hpo.n_{state.value.lower()}": str(sum(t.state is state for t in trials))
            for state in (TrialState.COMPLETE, TrialState.FAILED, TrialState.PRUNED)
        }
        tags["hpo.elapsed_seconds"] = f"{time.monotonic() - self.started:.1f}"
        best = self.strategy.best_trial()
        if best is not None:
            tags.update(
                {
                    "hpo.best_value": repr(best.value),
                    "hpo.best_trial": str(best.number),
                    "hpo.best_run_id": best.attrs["run_id"] or "",
                }
            )
        if self.prune_metric is not None:
            tags["hpo.prune_metric"] = self.prune_metric
        if self.interrupted:
            tags["hpo.interrupted"] = "true"
        if self.timed_out:
            tags["hpo.timed_out"] = "true"
        if error is not None:
            tags["hpo.error"] = error[:5000]
        artifacts = {
            "trials.csv": trials_csv(trials).encode(),
            "space.txt": repr(self.strategy.space).encode(),
            **(
                {"best_configurations.csv": repeats_csv(trials, self.strategy.direction).encode()}
                if self.repeats > 1
                else {}
            ),
            **figures,
            **self.strategy.artifacts(),
        }
        self.tracker.end_sweep(status=status, tags=tags, artifacts=artifacts)

    def _figure_specs(self) -> list[tuple[str, str, dict[str, Any]]]:
        """What the closing figures show, as plain data for `hpo.plots.render`."""
        trials = self.strategy.trials
        specs: list[tuple[str, str, dict[str, Any]]] = []
        if trials:
            specs.append(
                (
                    "optimization_history.png",
                    "history",
                    {
                        "numbers": [t.number for t in trials],
                        "values": [t.value for t in trials],
                        "direction": self.strategy.direction,
                    },
                )
            )
        repeated = ranked_by_mean(trials, self.strategy.direction)[:BEST_CONFIGURATIONS]
        if self.repeats > 1 and repeated:
            specs.append(
                (
                    "repeats.png",
                    "repeats",
                    {
                        "labels": [_short_label(t) for t in repeated],
                        "values": [t.attrs["repeat_values"] for t in repeated],
                        "direction": self.strategy.direction,
                    },
                )
            )
        axes = heatmap_axes(self.strategy.space, trials)
        if axes is not None:
            x, y = axes
            cell = {t.number: (t.flat_params[x], t.flat_params[y]) for t in trials}
            panels = {"objective": {cell[t.number]: t.value for t in trials}}
            for name in heatmap_metrics(trials):
                panels[f"final {name}"] = {
                    cell[t.number]: t.attrs["last_metrics"].get(name, (0, None))[1] for t in trials
                }
            specs.append(("heatmap.png", "heatmap", {"x_name": x, "y_name": y, "panels": panels}))
        return specs


def heatmap_axes(space: Space, trials: list[Trial]) -> tuple[str, str] | None:
    """The two parameter names to draw a heatmap over, when the space has exactly two."""
    params = space.params
    if len(params) != 2 or any(p.condition for p in params):
        return None
    if any(isinstance(p.dim, Choice) and p.dim.is_conditional for p in params):
        return None
    if not all(isinstance(p.dim, Float | Int | Choice) for p in params):
        return None
    names = (params[0].name, params[1].name)
    for name in names:
        if len({t.flat_params[name] for t in trials}) > HEATMAP_MAX_VALUES:
            return None
    return names


def heatmap_metrics(trials: list[Trial], most: int = 2) -> list[str]:
    """Reported metrics worth a heatmap panel: not a copy of the objective, accuracies first."""
    names = sorted(
        {k for t in trials for k in t.attrs.get("last_metrics", {})}, key=lambda n: ("loss" in n, n)
    )
    done = [t for t in trials if t.value is not None]

    def copies_objective(name: str) -> bool:
        return all(t.attrs["last_metrics"].get(name, (0, None))[1] == t.value for t in done)

    return [n for n in names if not copies_objective(n)][:most]


def _short_label(trial: Trial, most: int = 40) -> str:
    """``#4 hidden_units=3, activation=tanh``, cut to ``most`` characters."""
    text = f"#{trial.number} " + ", ".join(f"{k}={v}" for k, v in trial.flat_params.items())
    return text if len(text) <= most else text[: most - 1] + "…"


def ranked_by_mean(trials: list[Trial], direction: str) -> list[Trial]:
    """Completed trials that ran repeats, best mean first."""
    done = [t for t in trials if t.value is not None and "repeat_values" in t.attrs]
    return sorted(done, key=lambda t: t.value, reverse=direction == "maximize")


def repeats_csv(trials: list[Trial], direction: str) -> str:
    """The best configurations with the mean ± standard deviation of their repeats."""
    ranked = ranked_by_mean(trials, direction)[:BEST_CONFIGURATIONS]
    names = list(dict.fromkeys(k for t in ranked for k in t.flat_params))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "trial", "mean", "std", "values", *names])
    for rank, t in enumerate(ranked, start=1):
        values, mean = t.attrs["repeat_values"], t.value  # the trial's value is their mean
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        writer.writerow(
            [
                rank,
                t.number,
                f"{mean:.6g}",
                f"{std:.6g}",
                " ".join(f"{v:.6g}" for v in values),
                *[t.flat_params.get(n, "") for n in names],
            ]
        )
    return out.getvalue()


def trials_csv(trials: list[Trial]) -> str:
    names: list[str] = []
    for t in trials:
        names.extend(k for k in t.flat_params if k not in names)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["trial", "state", "objective", "seconds", "attempts", "run_id", "error", *names]
    )
    for t in trials:
        seconds = t.attrs.get("seconds")
        writer.writerow(
            [
                t.number,
                t.state.value,
                "" if t.value is None else repr(t.value),
                "" if seconds is None or not math.isfinite(seconds) else f"{seconds:.3f}",
                t.attrs.get("attempts", ""),
                t.attrs.get("run_id") or "",
                t.error or "",
                *[t.flat_params.get(n, "") for n in names],
            ]
        )
    return out.getvalue()


def _progress_bar(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="trial", dynamic_ncols=True, smoothing=0.1)
