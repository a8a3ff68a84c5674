"""Resume a sweep from MLflow alone: after its driver was killed, interrupted or timed out.

Everything comes from the tracking store: the parent run's ``hpo.recipe`` tag (strategy,
options, budget, pruner, repeats), its direction and seed, and one child run per trial with
its ``hpo.assignment``, state and objective. Finished trials go back into the strategy as
history and are never run again (a run whose closing call was cut off after the trial's end
was recorded is closed now). A trial whose run is still RUNNING lost its driver: it is
run again as the same trial number in the same run, with its attempt counter raised and
``hpo.attempt_N_error = "driver lost"``; the steps it had already logged are not logged twice.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from hpo.core.checks import positive_int
from hpo.core.result import SweepResult
from hpo.core.space import Space, as_space
from hpo.core.trial import TrialState, counts_in_budget
from hpo.execution.jobs import job_id_here
from hpo.execution.worker import objective_arity
from hpo.strategies import Strategy, make_strategy
from hpo.sweep.config import SweepConfig
from hpo.sweep.lifecycle import Restored
from hpo.sweep.loop import open_sweep
from hpo.sweep.start import space_digest
from hpo.sweep.warm_start import load_history
from hpo.tracking.outage import OUTAGE_LIMIT_SECONDS
from hpo.tracking.reader import StoredSweep, logged_steps, read_sweep
from hpo.tracking.schema import (
    ONE_OBJECTIVE,
    RUN_STATUS,
    SweepTag,
    encode_recipe,
    segment_attrs,
)
from hpo.tracking.store import resolve_tracking_uri


def resume(
    sweep_id: str,
    space: Space | Mapping[str, Any],
    objective: Callable[..., Any],
    *,
    tracking_uri: str | None = None,
    data: Any = None,
    address: str | None = None,
    workers: int | None = None,
    timeout: float | None = None,
    progress: bool = True,
    tracking_patience: float = OUTAGE_LIMIT_SECONDS,
    n_trials: int | None = None,
    constraints: Callable[[dict[str, Any]], bool] | None = None,
) -> SweepResult:
    """Continue sweep ``sweep_id`` (its parent run id) to its budget, or to ``n_trials``
    when given (more than it ran: the only way to go on with a sweep that a stopping rule
    ended early; its rules, met already, are not applied again).

    ``space``, ``objective`` (and ``constraints``, which the store cannot hold) must be
    the sweep's own (the space is checked against the
    fingerprint the sweep recorded); ``data`` as for `hpo.run`. The strategy, its options,
    the budget, retries, trial timeout, pruner and repeats are the sweep's recorded ones. The
    sweep's own ``timeout`` limited the run that stopped; this one has ``timeout`` seconds
    (none when omitted).

    Examples
    --------
    >>> result = hpo.resume(sweep_id, space, objective)  # doctest: +SKIP
    """
    from mlflow.tracking import MlflowClient

    space = as_space(space)
    arity = objective_arity(objective)
    n_trials = positive_int("n_trials", n_trials)
    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(uri)
    stored = read_sweep(client, sweep_id, uri)
    if stored.recipe is None:
        raise ValueError(f"run {sweep_id!r} is not an hpo sweep that can be resumed")
    recorded = stored.tags.get(SweepTag.SPACE_DIGEST)
    if recorded != space_digest(space):
        raise ValueError(
            f"the space given differs from sweep {sweep_id!r}'s (fingerprint "
            f"{space_digest(space)} != {recorded}); resume needs the same space"
        )
    stopped_by = stored.stopped_by
    config = SweepConfig.from_recipe(
        stored.tags,
        tracking_uri=uri,
        experiment_name=client.get_experiment(stored.experiment_id).name,
        address=address,
        workers=workers,
        timeout=timeout,  # this run's own (none when omitted)
        progress=progress,
        tracking_patience=tracking_patience,
    )
    strategy = make_strategy(
        config.strategy,
        space,
        direction=config.direction,
        seed=config.seed,
        **config.strategy_options,
    )
    strategy.constraints = constraints
    if config.warm_start:  # the same history as when the sweep started
        history = load_history(list(config.warm_start), space, strategy.directions, uri)
        strategy.warm_start(history.trials)

    restored, reopen, close = _restore(client, strategy, stored)
    # Enqueued configurations start first and in order: those past the ones that have a
    # run had not started when the driver stopped.
    started = sum(1 for r in restored if r.trial.attrs.get("enqueued"))
    for configuration in config.enqueue[started:]:
        strategy.enqueue(configuration)
    unfinished = [r for r in restored if r.trial.state is TrialState.RUNNING]
    ran = sum(counts_in_budget(r.trial) for r in restored)  # what counts in it
    if n_trials is not None and n_trials <= ran:
        raise ValueError(
            f"n_trials must be more than the {ran} trials sweep {sweep_id!r} ran, got {n_trials}"
        )
    if stopped_by and n_trials is None:
        raise ValueError(
            f"sweep {sweep_id!r} was stopped early by its rule ({stopped_by}) after "
            f"{ran} trials; there is nothing to resume unless given a larger budget "
            f"(hpo resume {sweep_id} --trials N, N > {ran})"
        )
    budget = n_trials or config.n_trials
    if ran >= budget and not unfinished and stored.run_status == "FINISHED":
        raise ValueError(
            f"sweep {sweep_id!r} already ran its {budget} trials; there is nothing to resume"
        )
    changes: dict[str, Any] = {"n_trials": budget}
    if stopped_by:  # its rules were met already: they are not applied again
        changes.update(stop_at=None, patience=None)
    config = dataclasses.replace(config, **changes)
    pruner = config.make_pruner()
    watched = pruner is not None or strategy.watches_curves
    if watched and config.prune_metric is not None:
        _replay_curves(client, pruner, config.prune_metric, restored, strategy.direction)

    sweep = open_sweep(config, strategy, objective, arity, data, pruner)
    tags = {}
    job = job_id_here()
    if job is not None:  # resumed by a submitted job: `hpo status JOB` finds it
        tags[SweepTag.JOB_ID] = job
    if n_trials is not None or stopped_by:  # what a later resume of it must go by
        recipe = {**stored.recipe, **changes}
        tags[SweepTag.RECIPE] = encode_recipe(recipe)
    return sweep.resume(sweep_id, restored, tags=tags, reopen=reopen, close=close)


def _restore(
    client: Any, strategy: Strategy, stored: StoredSweep
) -> tuple[list[Restored], list[tuple[str, Any]], list[tuple[str, str]]]:
    """The sweep's trials put back into ``strategy``, as `Restored`; and the repairs their
    runs need: cancelled ones to reopen (they run again), and those whose trial ended but
    whose closing was cut off, to close (with their status)."""
    restored: list[Restored] = []
    reopen: list[tuple[str, Any]] = []
    close: list[tuple[str, str]] = []
    for t in stored.trials:
        state = t.recorded_state  # a COMPLETE end whose values never came runs again
        why_again = "driver lost"
        if t.cancelled:
            # Stopped by an interrupt or the sweep's timeout, not by its own doing.
            why_again = t.error or "cancelled"
            reopen.append((t.run_id, t.tags))
            state = TrialState.RUNNING
        elif state is not TrialState.RUNNING and t.run_status == "RUNNING":
            # Its end was recorded but the run's closing was cut off (the server went away
            # between the two calls): the trial is over, so close its run, do not rerun it.
            close.append((t.run_id, RUN_STATUS[state]))
        done = state is TrialState.COMPLETE
        value = (t.values if strategy.n_objectives > 1 else t.values[0]) if done else None
        trial = strategy.restore(
            t.number,
            t.assignment,
            state,
            value,
            None if state is TrialState.RUNNING else t.error,
            attrs=segment_attrs(t.tags),  # a population-based training segment's
        )
        trial.attrs.update({k: True for k in ("enqueued", "infeasible") if getattr(t, k)})
        restored.append(
            Restored(
                trial=trial,
                run_id=t.run_id,
                artifact_uri=t.artifact_uri,
                attempts=t.attempts,
                # Its reports will come again: each (metric, step) is logged once. The
                # objectives' histories are read too: a run's latest values can lag its
                # history when the server went down mid-write.
                logged=logged_steps(
                    client, t.run_id, {*t.metrics, *(stored.objective_names or ONE_OBJECTIVE)}
                )
                if state is TrialState.RUNNING
                else set(),
                why_again=why_again,
                start_ms=t.start_ms,
            )
        )
    return restored, reopen, close


def _replay_curves(
    client: Any, pruner: Any, metric: str, restored: list[Restored], direction: str
) -> None:
    """Give the pruner (if any) the curves of the trials that ended, as it saw them the
    first time, and the trials their curves, for a strategy that learns from them (when the
    pruner's direction is the sweep's, as when they were reported).

    A report's seconds are read back as its timestamp less its run's start: the run starts
    when the trial is handed to a worker, so this runs a little ahead of the worker's clock.
    """
    for r in restored:
        if r.trial.state is TrialState.RUNNING:
            continue
        history = client.get_metric_history(r.run_id, metric)
        for m in sorted(history, key=lambda m: m.step):
            seconds = max(0.0, (m.timestamp - r.start_ms) / 1000)
            comparable = pruner is None or pruner.direction == direction
            if comparable and math.isfinite(m.value):
                r.trial.curve[m.step] = m.value
            if pruner is not None:
                pruner.report(r.trial.number, m.step, m.value, seconds=seconds)
        if pruner is not None and r.trial.state is TrialState.COMPLETE:
            pruner.complete(r.trial.number)
