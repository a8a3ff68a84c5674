"""Which parameters mattered: fANOVA importances of a sweep's completed trials, computed
with Optuna's `FanovaImportanceEvaluator` on the trials put into an in-memory study.

fANOVA rates the parameters every completed trial has; a conditional parameter (active in
some trials only) is returned among the unrated ones with how many trials it was active in,
so a figure can say so instead of leaving it out silently (a name that stands in
several branches counts the trials of all of them).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hpo.core.space import Space

MIN_TRIALS = 4  # fewer completed trials than this rate nothing worth reading
# fANOVA's forest costs time in proportion to the trials, at the end of every sweep: a
# seeded sample of this many trials is rated.
MAX_TRIALS = 300
# Trees of fANOVA's forest (Optuna's default is 64). The importance figure is drawn at the end
# of every sweep, on its path to return: half the trees take half the time, and the
# importances they give differ between forest seeds about as much as 64 trees' do
# (`benchmarks/closing_figures.py`).
TREES = 32


def param_importances(
    space: Space,
    assignments: list[dict[str, Any]],
    values: list[float],
    direction: str,
    *,
    seed: int = 0,
    trees: int = TREES,
) -> tuple[dict[str, float], dict[str, int]]:
    """(importance by parameter name, summing to 1) for the parameters active in every
    trial, and (trials active in, by name) for the others. ``assignments`` and ``values``
    are the completed trials' (the strategy's view, a `Choice` as its option index); at
    most `MAX_TRIALS` of them are rated, by a forest of ``trees`` trees."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    from hpo.strategies.optuna_sampler import optuna_distribution

    params = {p.key: p for p in space.params}
    active = {k: sum(k in a for a in assignments) for k in params}
    everywhere = [k for k, n in active.items() if n == len(assignments)]
    unrated: dict[str, int] = {}
    for k, n in active.items():
        if n < len(assignments):  # one name may stand in several branches: add them up
            unrated[params[k].name] = unrated.get(params[k].name, 0) + n
    varied = [k for k in everywhere if len({repr(a[k]) for a in assignments}) > 1]
    if len(assignments) < MIN_TRIALS or not varied or len(set(values)) < 2:
        return {}, unrated  # nothing to rate (fANOVA refuses an objective that never varies)
    if len(assignments) > MAX_TRIALS:
        keep = np.random.default_rng(seed).choice(len(assignments), MAX_TRIALS, replace=False)
        assignments = [assignments[i] for i in keep]
        values = [values[i] for i in keep]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction)
    for assignment, value in zip(assignments, values, strict=True):
        study.add_trial(
            optuna.trial.create_trial(
                params={k: _plain(assignment[k]) for k in varied},
                distributions={k: optuna_distribution(params[k]) for k in varied},
                value=value,
            )
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's experimental-feature notices
        rated = optuna.importance.get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(n_trees=trees, seed=seed), params=varied
        )
    return {params[k].name: float(v) for k, v in rated.items()}, unrated


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
