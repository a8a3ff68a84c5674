"""Replay the schedule population-based training found: one member trained from scratch
through the parameters of a segment's lineage, each from the step where the lineage
changed them (as Ray Tune's PBT replay does), and to the objective's end with the last.

A sweep of its own (strategy "pbt-replay") in the sweep's experiment, tagged with the
sweep it replays: its segments go on from each other's checkpoints, so the objective is the
one population-based training ran, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hpo.core.result import SweepResult
from hpo.core.space import Space, as_space
from hpo.strategies import make_strategy
from hpo.sweep.start import run
from hpo.tracking.reader import read_sweep
from hpo.tracking.schema import SweepTag
from hpo.tracking.store import resolve_tracking_uri


def replay_schedule(
    sweep_id: str,
    space: Space | Mapping[str, Any],
    objective: Callable[..., Any],
    *,
    trial: int | None = None,
    tracking_uri: str | None = None,
    data: Any = None,
    address: str | None = None,
    progress: bool = True,
    seed: int | None = None,
) -> SweepResult:
    """Train once with the schedule of parameters that led to trial ``trial`` of the
    population-based training sweep ``sweep_id`` (its best trial when None).

    ``space`` and ``objective`` are the sweep's (the objective restores and checkpoints as
    population-based training needs). Returns the replay's own `SweepResult`: one member,
    a segment per change of parameters, in the sweep's experiment and tagged
    ``hpo.replay_of``.

    Examples
    --------
    >>> replay = hpo.replay_schedule(sweep_id, space, objective)  # doctest: +SKIP
    >>> replay.best_value  # doctest: +SKIP
    """
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(uri)
    stored = read_sweep(client, sweep_id, uri)
    sweep = stored.result()
    chain = sweep.lineage(trial)
    space = as_space(space)
    schedule: list[list[Any]] = [
        [segment.segment.get("end_step"), space.assignment_of(segment.params)] for segment in chain
    ]
    schedule[-1][0] = None  # the last parameters train to the objective's end
    strategy = make_strategy(
        "pbt-replay", space, direction=sweep.directions.single, seed=seed, schedule=schedule
    )
    experiment = client.get_experiment(sweep.experiment_id).name
    return run(
        space,
        objective,
        strategy=strategy,
        tracking_uri=uri,
        experiment_name=experiment,
        data=data,
        address=address,
        progress=progress,
        workers=1,
        prune_metric=stored.tags.get(SweepTag.PRUNE_METRIC),  # the curve the sweep ranked by
        run_name=f"replay-of-{chain[-1].number}",
        sweep_tags={SweepTag.REPLAY_OF: sweep_id},
    )
