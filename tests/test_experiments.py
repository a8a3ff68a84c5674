"""Every experiment file loads, names a strategy that exists and fits its objective's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

import hpo
from hpo.executor import objective_arity
from hpo.experiment import load_experiment

EXPERIMENTS = sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.py"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_file_is_consistent(path):
    exp = load_experiment(path)
    strategy = hpo.make_strategy(
        exp.strategy or "random",
        exp.space,
        direction=exp.direction,
        seed=0,
        **(exp.strategy_options or {}),
    )
    assert strategy.ask(1)
    assert (objective_arity(exp.objective) == 3) == (exp.load_data is not None)


def test_seed_variance_shows_a_spread_over_seeds():
    exp = load_experiment(Path(__file__).resolve().parent.parent / "experiments/seed_variance.py")
    assert exp.repeats == 8 and exp.strategy == "grid"
    scores = [
        exp.objective({"hidden_units": 2, "activation": "tanh", "seed": s}, lambda *a, **k: None)
        for s in range(8)
    ]
    assert all(0.0 <= v <= 1.0 for v in scores)
    assert len(set(scores)) > 1, "two hidden units learn XOR from some starts, not from all"
