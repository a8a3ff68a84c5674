"""Starting a sweep: `hpo.run` builds its `SweepConfig`, and `start` makes the strategy,
checks the configuration against the space, and hands both to the driver's loop.

Everything is checked before a cluster is started or a run is created.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hpo.core.result import SweepResult
from hpo.core.space import Space
from hpo.execution.worker import objective_arity
from hpo.strategies import Strategy, make_strategy
from hpo.strategies.pruners import Pruner
from hpo.sweep.config import DEFAULT_MAX_RETRIES, DEFAULT_TRIALS, SweepConfig
from hpo.sweep.loop import open_sweep
from hpo.sweep.warm_start import load_history
from hpo.tracking.outage import OUTAGE_LIMIT_SECONDS
from hpo.tracking.schema import SweepTag, check_name, encode_objectives

CODE = ("space", "objective", "data", "constraints")  # run's arguments that are not settings


def run(
    space: Space | Mapping[str, Any],
    objective: Callable[..., Any],
    *,
    direction: str | Sequence[str] | None = None,
    objective_names: Sequence[str] | None = None,
    strategy: str | Strategy = "random",
    n_trials: int | None = None,
    workers: int | None = None,
    resources: Mapping[str, Any] | None = None,
    max_trials_per_worker: int | None = None,
    keep_workers: float | None = None,
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
        The search space (see `hpo.space`).
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
        Parallel trials; as many as the cluster's resources fit when omitted.
    resources : dict, optional
        What each trial asks of the cluster: ``{"cpu": 4, "gpu": 0.5, "memory": "8GB",
        "custom": {"tpu": 1}}``; one CPU when omitted. BLAS and OpenMP threads inside a
        trial follow ``cpu``; a GPU trial sees only its devices (``CUDA_VISIBLE_DEVICES``),
        and fractions share one device. A request no node can meet is refused.
    max_trials_per_worker : int, optional
        Replace a worker process after this many trials (a framework that leaks memory,
        or GPU memory, across trials in one process cannot grow without bound).
    keep_workers : float, optional
        Seconds the sweep's worker processes stay up after it, for the next sweep of this
        process that asks for the same resources: it starts without a process start and
        the objective's imports. They hold their resources meanwhile;
        `hpo.release_workers()` ends them at once. When omitted they end with the sweep.
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
    pruner : {"median", "asha", "hyperband", "none"} or Pruner, optional
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
        `hpo.tracking.outage.TrackingUnavailable`, whose message says how to resume it.

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
    arguments = dict(locals())
    code = {name: arguments.pop(name) for name in CODE}
    given = arguments.pop("strategy")
    if isinstance(given, Strategy):  # its own settings, unless the call says otherwise
        if arguments["direction"] is None:
            arguments["direction"] = given.directions
        recipe = given.recipe
        arguments.update(strategy=recipe["strategy"], strategy_options=recipe["options"])
        arguments["seed"] = given.seed
    else:
        arguments["strategy"] = given
    return start(SweepConfig(**arguments), **code, strategy=given)


def start(
    config: SweepConfig,
    *,
    space: Space | Mapping[str, Any],
    objective: Callable[..., Any],
    data: Any = None,
    constraints: Callable[[dict[str, Any]], bool] | None = None,
    strategy: Strategy | str | None = None,
) -> SweepResult:
    """Run the sweep ``config`` describes (see `hpo.run`); ``strategy``, when a `Strategy`,
    is used as it is (else one is made from the configuration)."""
    if isinstance(strategy, Strategy):
        if strategy.directions != config.direction:
            raise ValueError(
                f"direction={str(config.direction)!r} differs from the strategy's own "
                f"direction={strategy.direction!r}; make the strategy with "
                f"direction={str(config.direction)!r}"
            )
        strat = strategy
    else:
        strat = make_strategy(
            config.strategy,
            space,
            direction=config.direction,
            seed=config.seed,
            **config.strategy_options,
        )
    arity = objective_arity(objective)
    if arity == 2 and data is not None:
        raise TypeError(
            "data was given but the objective takes (params, report); "
            "add a third parameter: objective(params, report, data)"
        )
    for param in strat.space.params:
        check_name("parameter", param.name)
    if config.repeats > 1 and any(p.name == "seed" for p in strat.space.params):
        raise ValueError(
            "with repeats > 1 the objective gets params['seed'], but the space already has a "
            "parameter named 'seed'; rename it"
        )
    if constraints is not None and not callable(constraints):
        raise TypeError(f"constraints must be a function of params, got {constraints!r}")
    strat.constraints = constraints
    enqueue_all(strat, config.enqueue)
    config = config.replace(seed=strat.seed)  # drawn by the strategy when not given
    tags = {**config.sweep_tags, SweepTag.SPACE_DIGEST: space_digest(strat.space)}
    if config.warm_start:
        history = load_history(
            list(config.warm_start),
            strat.space,
            strat.directions,
            config.tracking_uri,
            config.objective_names,
        )
        strat.warm_start(history.trials)
        if config.objective_names is None and history.objective_names:
            config = config.replace(objective_names=history.objective_names)  # values by name
        tags[SweepTag.WARM_START] = f"{history.describe()}; from {', '.join(history.sweep_ids)}"
        if config.progress:
            print(f"hpo: {history.describe()}", file=sys.stderr)
    config = dataclasses.replace(config, n_trials=budget(strat, config))
    if config.objective_names is not None:
        tags[SweepTag.OBJECTIVES] = encode_objectives(config.objective_names)
    sweep = open_sweep(config, strat, objective, arity, data, config.make_pruner())
    return sweep.run(config.run_name or f"{config.experiment_name}-{strat.name}", tags)


def budget(strategy: Strategy, config: SweepConfig) -> int:
    """The sweep's number of trials: as given, at most a grid's size (its off-grid queued
    points add to it), else the whole grid or `DEFAULT_TRIALS`."""
    population = getattr(strategy, "population", None)
    if population is not None:  # population-based training: n_trials counts its members
        if config.n_trials not in (None, population):
            raise ValueError(
                f"strategy {strategy.name!r} trains population={population} members, and "
                f"n_trials counts them; got n_trials={config.n_trials}: leave it out or give "
                "the same number"
            )
        return population
    grid_size = getattr(strategy, "size", None)
    if grid_size is not None:  # a grid ends once exhausted
        space = strategy.space
        grid_size += sum(not strategy.on_grid(space.assignment_of(c)) for c in config.enqueue)
    if config.n_trials is None:
        return grid_size if grid_size is not None else DEFAULT_TRIALS
    return config.n_trials if grid_size is None else min(config.n_trials, grid_size)


def enqueue_all(strategy: Strategy, configurations: Sequence[dict[str, Any]]) -> None:
    """Queue ``configurations`` (nested dicts) in ``strategy``, each checked first."""
    for i, configuration in enumerate(configurations):
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
    for configuration in configurations:
        strategy.enqueue(configuration)


def space_digest(space: Space) -> str:
    """A short fingerprint of a space, so a resume can check it got the same one."""
    return hashlib.sha256(repr(space).encode()).hexdigest()[:16]
