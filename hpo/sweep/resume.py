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

import json
from collections.abc import Callable, Mapping
from typing import Any

from hpo.core.checks import check_seconds, positive_int
from hpo.core.result import SweepResult
from hpo.core.space import Space, as_space
from hpo.execution.pool import objective_arity
from hpo.strategies import make_strategy
from hpo.strategies.base import Trial, TrialState
from hpo.strategies.pruners import make_pruner
from hpo.sweep.lifecycle import Restored
from hpo.sweep.loop import SweepOptions, open_sweep, space_digest
from hpo.sweep.warm_start import load_history
from hpo.tracking.reader import (
    child_runs,
    objective_names,
    objective_values,
    sweep_run,
    trial_value,
)
from hpo.tracking.writer import OUTAGE_LIMIT_SECONDS, RUN_STATUS, resolve_tracking_uri


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
    workers = positive_int("workers", workers)
    n_trials = positive_int("n_trials", n_trials)
    check_seconds("timeout", timeout)
    check_seconds("tracking_patience", tracking_patience)
    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(uri)
    parent = sweep_run(client, sweep_id, uri)
    tags = parent.data.tags
    if "hpo.recipe" not in tags:
        raise ValueError(f"run {sweep_id!r} is not an hpo sweep that can be resumed")
    if tags.get("hpo.space_digest") != space_digest(space):
        raise ValueError(
            f"the space given differs from sweep {sweep_id!r}'s (fingerprint "
            f"{space_digest(space)} != {tags.get('hpo.space_digest')}); resume needs the same space"
        )
    recipe = json.loads(tags["hpo.recipe"])
    strategy = make_strategy(
        recipe["strategy"],
        space,
        direction=tags["hpo.direction"],
        seed=int(tags["hpo.seed"]),
        **recipe["options"],
    )
    strategy.constraints = constraints
    pruner_recipe = recipe.get("pruner")
    pruner = None
    if pruner_recipe is not None:
        pruner = make_pruner(**pruner_recipe)
        pruner.bind(strategy.direction)
    prune_metric = recipe.get("prune_metric") or tags.get("hpo.prune_metric")
    if recipe.get("warm_start"):  # the same history as when the sweep started
        strategy.warm_start(
            load_history(recipe["warm_start"], space, strategy.direction, uri).trials
        )

    names = objective_names(tags)
    restored = _read_trials(client, parent.info.experiment_id, sweep_id, names)
    for r in restored:
        t = r.trial
        value = t.values if strategy.n_objectives > 1 else t.value
        r.trial = strategy.restore(t.number, t.assignment, t.state, value, t.error)
        r.trial.attrs.update(t.attrs)
    # Enqueued configurations start first and in order: those past the ones that have a
    # run had not started when the driver stopped.
    started = sum(1 for r in restored if r.trial.attrs.get("enqueued"))
    for configuration in recipe.get("enqueue", [])[started:]:
        strategy.enqueue(configuration)
    unfinished = [r for r in restored if r.trial.state is TrialState.RUNNING]
    budget = int(recipe["n_trials"])
    ran = sum(not r.trial.attrs.get("infeasible") for r in restored)  # what counts in it
    stopped_by = tags.get("hpo.stopped_by")
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
    budget = n_trials or budget
    if ran >= budget and not unfinished and parent.info.status == "FINISHED":
        raise ValueError(
            f"sweep {sweep_id!r} already ran its {budget} trials; there is nothing to resume"
        )
    if pruner is not None and prune_metric is not None:
        _replay_pruner(client, pruner, prune_metric, restored)

    options = SweepOptions(
        budget=budget,
        max_retries=int(recipe["max_retries"]),
        timeout=timeout,
        trial_timeout=recipe["trial_timeout"],
        pruner=pruner,
        prune_metric=prune_metric,
        repeats=int(recipe["repeats"]),
        progress=progress,
        register_model=recipe.get("register_model"),
        stop_at=None if stopped_by else recipe.get("stop_at"),
        patience=None if stopped_by else recipe.get("patience"),
        objective_names=names if "hpo.objectives" in tags else None,
    )
    sweep = open_sweep(
        strategy,
        objective,
        arity,
        data,
        options,
        workers=workers,
        address=address,
        tracking_uri=uri,
        experiment_name=client.get_experiment(parent.info.experiment_id).name,
        tracking_patience=tracking_patience,
    )
    if n_trials is not None or stopped_by:  # what a later resume of it must go by
        recipe.update(n_trials=budget)
        if stopped_by:
            recipe.update(stop_at=None, patience=None)
        client.set_tag(sweep_id, "hpo.recipe", json.dumps(recipe, default=str))
    return sweep.resume(sweep_id, restored)


def _read_trials(
    client: Any, experiment_id: str, sweep_id: str, names: tuple[str, ...]
) -> list[Restored]:
    """Every child run of the sweep as a `Restored` (trial not yet in a strategy); a
    completed one has a metric for each of the objectives ``names``."""
    restored: dict[int, Restored] = {}
    for run in child_runs(client, experiment_id, sweep_id):
        tags, metrics = run.data.tags, run.data.metrics
        number = int(tags["hpo.trial"])
        if number in restored:
            raise ValueError(f"sweep {sweep_id!r} has two child runs for trial {number}")
        state = TrialState(tags.get("hpo.state", "RUNNING"))
        values = objective_values(metrics, names)
        if state is TrialState.COMPLETE and values is None:
            state = TrialState.RUNNING  # its end was not fully written: run it again
        why_again = "driver lost"
        if tags.get("hpo.cancelled") == "true":
            # Stopped by an interrupt or the sweep's timeout, not by its own doing.
            why_again = tags.get("hpo.error", "cancelled")
            _reopen(client, run.info.run_id, tags)
            state = TrialState.RUNNING
        elif state is not TrialState.RUNNING and run.info.status == "RUNNING":
            # Its end was recorded but the run's closing was cut off (the server went away
            # between the two calls): the trial is over, so close its run, do not rerun it.
            client.set_terminated(run.info.run_id, status=RUN_STATUS[state])
        trial = Trial(
            number=number,
            assignment=json.loads(tags["hpo.assignment"]),
            params={},
            flat_params={},
            state=state,
            value=trial_value(values) if state is TrialState.COMPLETE else None,
            values=values if state is TrialState.COMPLETE else None,
            error=None
            if state is TrialState.RUNNING
            else tags.get("hpo.error") or tags.get("hpo.prune_reason"),
            attrs={
                name: True
                for name in ("enqueued", "infeasible")
                if tags.get(f"hpo.{name}") == "true"
            },
        )
        logged: set[tuple[str, int]] = set()
        if state is TrialState.RUNNING:  # its reports will come again: keep each one once
            for key in metrics:
                logged.update(
                    (key, m.step) for m in client.get_metric_history(run.info.run_id, key)
                )
        restored[number] = Restored(
            trial=trial,
            run_id=run.info.run_id,
            artifact_uri=run.info.artifact_uri,
            attempts=int(tags.get("hpo.attempt", "1")),
            logged=logged,
            why_again=why_again,
            start_ms=run.info.start_time or 0,
        )
    return [restored[n] for n in sorted(restored)]


def _reopen(client: Any, run_id: str, tags: Mapping[str, str]) -> None:
    """Make a cancelled trial's run RUNNING again (before the sweep's writer starts)."""
    for key in ("hpo.error", "hpo.cancelled"):
        if key in tags:
            client.delete_tag(run_id, key)
    client.set_tag(run_id, "hpo.state", TrialState.RUNNING.value)
    client.update_run(run_id, status="RUNNING")


def _replay_pruner(client: Any, pruner: Any, metric: str, restored: list[Restored]) -> None:
    """Give the pruner the curves of the trials that ended, as it saw them the first time.

    A report's seconds are read back as its timestamp less its run's start: the run starts
    when the trial is handed to a worker, so this runs a little ahead of the worker's clock.
    """
    for r in restored:
        if r.trial.state is TrialState.RUNNING:
            continue
        history = client.get_metric_history(r.run_id, metric)
        for m in sorted(history, key=lambda m: m.step):
            seconds = max(0.0, (m.timestamp - r.start_ms) / 1000)
            pruner.report(r.trial.number, m.step, m.value, seconds=seconds)
        if r.trial.state is TrialState.COMPLETE:
            pruner.complete(r.trial.number)
