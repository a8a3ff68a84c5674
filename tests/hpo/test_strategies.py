from __future__ import annotations

import math

import pytest

import hpo
from hpo.space import Choice, Float, Int
from hpo.strategies import GridSearch, RandomSearch, TrialState

SPACE = {"x": Float(-2.0, 2.0), "n": Int(1, 4), "c": Choice(["a", "b"])}


def test_unknown_strategy_names_the_choices():
    with pytest.raises(
        ValueError,
        match=r"unknown strategy 'bayes'; choose one of: bohb, gp, grid, hyperopt-tpe, pbt, "
        r"pbt-replay, random, tpe, optuna:NAME",
    ):
        hpo.make_strategy("bayes", SPACE)


def test_bad_direction_and_seed():
    with pytest.raises(ValueError, match=r"'minimize' or 'maximize', got 'min'"):
        hpo.make_strategy("random", SPACE, direction="min")
    with pytest.raises(ValueError, match=r"seed must be a non-negative int, got -1"):
        hpo.make_strategy("random", SPACE, seed=-1)


def test_random_ask_tell_records_history_and_best():
    s = hpo.make_strategy("random", SPACE, direction="maximize", seed=3)
    trials = s.ask(4)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert len(s.pending) == 4
    s.tell(trials[0], 1.0)
    s.tell(trials[1], 3.0)
    s.tell(trials[2], failed=True, error="boom")
    s.tell(trials[3], pruned=True)
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAILED,
        TrialState.PRUNED,
    ]
    assert s.best_trial() is trials[1] and trials[2].error == "boom"
    assert s.pending == []


def test_random_is_reproducible_and_fills_seed_when_missing():
    a = [t.assignment for t in RandomSearch(SPACE, seed=5).ask(5)]
    b = [t.assignment for t in RandomSearch(SPACE, seed=5).ask(5)]
    assert a == b
    s = RandomSearch(SPACE)
    assert isinstance(s.seed, int)
    assert [t.assignment for t in RandomSearch(SPACE, seed=s.seed).ask(3)] == [
        t.assignment for t in s.ask(3)
    ]


@pytest.mark.parametrize("bad", [math.nan, math.inf, "0.5", None, True])
def test_tell_refuses_non_finite_or_non_numeric_values(bad):
    s = RandomSearch(SPACE, seed=0)
    [t] = s.ask()
    with pytest.raises((ValueError, TypeError)):
        s.tell(t, bad)
    assert t.state is TrialState.RUNNING  # still pending: the driver reports it as a failure
    s.tell(t, failed=True, error="objective returned nan")
    assert t.state is TrialState.FAILED


def test_tell_rules():
    s = RandomSearch(SPACE, seed=0)
    [t] = s.ask()
    with pytest.raises(ValueError, match="exactly one of a value, failed=True or pruned=True"):
        s.tell(t, 1.0, failed=True)
    s.tell(t, 1.0)
    with pytest.raises(ValueError, match="already told"):
        s.tell(t, 2.0)
    other = RandomSearch(SPACE, seed=0).ask()[0]
    other.number = 5
    with pytest.raises(ValueError, match="not issued by this strategy"):
        s.tell(other, 1.0)
    with pytest.raises(ValueError, match=r"ask\(n\) needs an int n >= 1, got 0"):
        s.ask(0)


def test_grid_walks_the_grid_then_is_exhausted():
    space = {"lr": Float(0.01, 1.0, log=True, grid=3), "c": Choice(["a", "b"])}
    s = GridSearch(space)
    assert s.size == 6 and not s.exhausted
    first = s.ask(4)
    rest = s.ask(4)
    assert len(first) == 4 and len(rest) == 2 and s.exhausted
    assert s.ask(1) == []
    seen = {(t.params["lr"], t.params["c"]) for t in first + rest}
    assert seen == {(lr, c) for lr in (0.01, 0.1, 1.0) for c in ("a", "b")}
    assert s.settings()["grid_size"] == 6


def test_grid_refuses_a_float_without_points_at_construction():
    with pytest.raises(ValueError, match="has no grid"):
        hpo.make_strategy("grid", {"x": Float(0.0, 1.0)})


def test_trials_carry_nested_and_flat_params():
    s = RandomSearch(
        {"opt": Choice([{"name": "sgd", "momentum": Float(0.0, 0.9)}, {"name": "adam"}])}, seed=1
    )
    for t in s.ask(10):
        assert t.flat_params["opt.name"] == t.params["opt"]["name"]
        assert ("opt.momentum" in t.flat_params) == (t.params["opt"]["name"] == "sgd")


def test_optuna_samplers_by_name_and_clear_errors():
    s = hpo.make_strategy("optuna:qmc", {"x": Float(0.0, 1.0)}, seed=0)
    assert s.settings()["sampler"] == "QMCSampler"
    with pytest.raises(ValueError, match=r"unknown Optuna sampler 'foo'; choose one of: cmaes"):
        hpo.make_strategy("optuna:foo", {"x": Float(0.0, 1.0)})


def test_tpe_is_multivariate_grouped_with_constant_liar():
    s = hpo.make_strategy("tpe", SPACE, seed=0)
    settings = s.settings()
    assert settings["strategy"] == "tpe" and settings["sampler"] == "TPESampler"
    assert settings["sampler.multivariate"] and settings["sampler.group"]
    assert settings["sampler.constant_liar"]


def test_tpe_beats_random_search_on_a_simple_bowl():
    space = {"x": Float(-5.0, 5.0), "y": Float(-5.0, 5.0)}

    def best(name, seed):
        s = hpo.make_strategy(name, space, seed=seed)
        for _ in range(60):
            [t] = s.ask()
            s.tell(t, (t.params["x"] - 1.0) ** 2 + (t.params["y"] + 2.0) ** 2)
        return s.best_trial().value

    tpe = sorted(best("tpe", seed) for seed in range(5))
    rnd = sorted(best("random", seed) for seed in range(5))
    assert tpe[2] < rnd[2]  # median over seeds
