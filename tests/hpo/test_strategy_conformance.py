"""What every strategy must do, whatever its algorithm (one parametrised suite).

A strategy joins by being added to STRATEGIES below; grid search, which enumerates instead of
sampling, runs the cases that apply to it on spaces with grids. Population-based training
("pbt"), whose trials are segments of a fixed population, is held to the same rules of valid
and reproducible configurations in tests/hpo/test_pbt.py, on these spaces.
"""

from __future__ import annotations

import math

import pytest

import hpo
from hpo.core.pareto import pareto_front
from hpo.space import Choice, Float, Int
from hpo.strategies.base import NoFeasibleConfiguration, TrialState

STRATEGIES = [
    "random",
    "gp",
    "tpe",
    "hyperopt-tpe",
    "optuna:random",
    "optuna:qmc",
    "optuna:cmaes",
    "grid",
]

SPACES = {
    "float": {"x": Float(-2.0, 3.0, grid=5), "y": Float(0.0, 1.0, grid=3)},
    "log": {"lr": Float(1e-5, 1.0, log=True, grid=6)},
    "int": {"n": Int(-3, 40)},
    "stepped int": {"n": Int(10, 100, step=10), "m": Int(1, 1000, log=True, grid=4)},
    "categorical": {"act": Choice(["relu", "tanh", "sigmoid"]), "flag": Choice([True, False])},
    "conditional": {
        "lr": Float(1e-4, 1e-1, log=True, grid=2),
        "layers": Choice(
            [
                {"units": [Int(50, 1000, grid=2)]},
                {
                    "units": [Int(50, 1000, grid=2), Int(50, 1000, grid=2)],
                    "dropout": Choice([None, {"rate": Float(0.0, 0.5, grid=2)}]),
                },
            ]
        ),
    },
}


def objective(params) -> float:
    """A deterministic score that depends on every kind of parameter."""
    total = 0.0
    for key, value in _leaves(params):
        if isinstance(value, bool) or value is None:
            total += 0.3 * bool(value)
        elif isinstance(value, int | float):
            total += math.log1p(abs(value)) * (1.0 if "lr" not in key else -1.0)
        else:
            total += len(str(value)) * 0.1
    return total


def _leaves(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, f"{prefix}.{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _leaves(v, f"{prefix}.{i}")
    else:
        yield prefix, tree


def run(strategy, n_trials, batch=1, fail_every=0):
    seen = []
    while len(seen) < n_trials and not strategy.exhausted:
        trials = strategy.ask(min(batch, n_trials - len(seen)))
        if not trials:
            break
        for t in trials:
            seen.append(t)
            if fail_every and t.number % fail_every == fail_every - 1:
                strategy.tell(t, failed=True, error="injected failure")
            else:
                strategy.tell(t, objective(t.params))
    return seen


@pytest.mark.parametrize("space_name", list(SPACES))
@pytest.mark.parametrize("name", STRATEGIES)
def test_only_valid_configurations(name, space_name):
    strategy = hpo.make_strategy(name, SPACES[space_name], seed=0)
    trials = run(strategy, 25)
    assert trials
    for t in trials:
        strategy.space.validate(t.assignment)
        assert t.params == strategy.space.build(t.assignment)


@pytest.mark.parametrize("space_name", ["float", "conditional", "categorical"])
@pytest.mark.parametrize("name", STRATEGIES)
def test_reproducible_with_a_seed(name, space_name):
    def history(seed):
        return [
            t.assignment
            for t in run(hpo.make_strategy(name, SPACES[space_name], seed=seed), 15, batch=2)
        ]

    assert history(3) == history(3)


@pytest.mark.parametrize("name", STRATEGIES)
def test_failures_are_told_and_survived(name):
    strategy = hpo.make_strategy(name, SPACES["conditional"], seed=1)
    trials = run(strategy, 20, fail_every=3)
    failed = [t for t in trials if t.state.value == "FAILED"]
    assert failed and all(t.error == "injected failure" for t in failed)
    assert strategy.best_trial() is not None and strategy.pending == []
    more = strategy.ask(1)  # still asks after failures
    assert more or strategy.exhausted


@pytest.mark.parametrize("name", [s for s in STRATEGIES if s != "optuna:cmaes"])
def test_a_batch_ask_with_pending_trials_is_distinct(name):
    # CMA-ES draws each generation independently of pending trials; it is not held to this.
    strategy = hpo.make_strategy(name, SPACES["float"], seed=2)
    run(strategy, 10)
    pending = strategy.ask(4)
    assert len({tuple(sorted(t.assignment.items())) for t in pending}) == 4
    assert len(strategy.pending) == 4


def test_grid_exhaustion_ends_the_sweep():
    strategy = hpo.make_strategy("grid", SPACES["conditional"], seed=0)
    trials = run(strategy, 10_000, batch=3)
    assert len(trials) == strategy.size == 2 * (2 + 2 * 2 * (1 + 2))
    assert strategy.exhausted and strategy.ask(5) == []


def _restore_into(fresh, trials):
    """What resume does: put back an earlier run's trials, by number, through JSON."""
    import json

    for t in sorted(trials, key=lambda t: t.number):
        assignment = json.loads(json.dumps(t.assignment, default=lambda v: v.item()))
        fresh.restore(t.number, assignment, t.state, t.value, t.error)


@pytest.mark.parametrize("name", STRATEGIES)
def test_a_restored_strategy_keeps_its_history_and_goes_on(name):
    first = hpo.make_strategy(name, SPACES["conditional"], seed=4)
    done = run(first, 8, fail_every=4)
    lost = first.ask(2)  # issued, then the driver died: one never reached the store
    fresh = hpo.make_strategy(name, SPACES["conditional"], seed=4)
    # Trials 5 and 9 never reached the store: 5 is a gap the next ask fills first.
    kept = [t for t in done if t.number != 5] + lost[:1]
    _restore_into(fresh, kept)
    assert [t.number for t in fresh.completed] == [
        t.number for t in first.completed if t.number != 5
    ]
    [rerun] = fresh.pending
    assert rerun.number == 8 and rerun.assignment == lost[0].assignment
    new = fresh.ask(3)
    assert [t.number for t in new] == [5, 9, 10]
    fresh.tell(rerun, objective(rerun.params))
    for t in new:
        fresh.space.validate(t.assignment)
        fresh.tell(t, objective(t.params))
    assert fresh.pending == [] and len(fresh.trials) == 11
    with pytest.raises(ValueError, match="cannot restore trial number 3"):
        fresh.restore(3, done[3].assignment, done[3].state, done[3].value)


def test_a_restored_grid_continues_where_it_stopped():
    first = hpo.make_strategy("grid", SPACES["conditional"], seed=0)
    done = run(first, 7)
    fresh = hpo.make_strategy("grid", SPACES["conditional"], seed=0)
    _restore_into(fresh, done)
    rest = run(fresh, 10_000, batch=4)
    whole = [t.assignment for t in run(hpo.make_strategy("grid", SPACES["conditional"]), 10_000)]
    assert [t.assignment for t in done + rest] == whole
    assert fresh.exhausted


GRID_POINT = {"lr": 1e-4, "layers": {"units": [50, 1000], "dropout": {"rate": 0.5}}}
PARTIAL = {"layers": {"units": [1000]}}  # lr left out: drawn at random


@pytest.mark.parametrize("name", STRATEGIES)
def test_enqueued_configurations_run_first_in_order_and_are_the_strategys_own(name):
    strategy = hpo.make_strategy(name, SPACES["conditional"], seed=5)
    strategy.enqueue(GRID_POINT)
    strategy.enqueue(PARTIAL)
    first, second, third = strategy.ask(3)
    assert first.params == GRID_POINT and first.attrs == {"enqueued": True}
    assert second.params["layers"] == {"units": [1000]} and second.attrs == {"enqueued": True}
    assert 1e-4 <= second.params["lr"] <= 1e-1 and "enqueued" not in third.attrs
    assert [t.number for t in (first, second, third)] == [0, 1, 2]
    for t in (first, second, third):
        strategy.space.validate(t.assignment)
        strategy.tell(t, objective(t.params))
    # Told as its own: in the history the strategy learns from (and, where it keeps its own
    # record, there too).
    assert [t.number for t in strategy.completed] == [0, 1, 2]
    if hasattr(strategy, "study"):  # Optuna's samplers
        values = [t.value for t in strategy.study.trials]
        assert values == [objective(t.params) for t in (first, second, third)]
    rest = run(strategy, 30 if name != "grid" else 10_000, batch=2)
    trials = [first, second, third, *rest]
    for t in rest:
        strategy.space.validate(t.assignment)
    if name == "grid":  # every grid point once, the queued one not again; the off-grid one too
        keys = [tuple(sorted(t.assignment.items())) for t in trials]
        assert len(keys) == len(set(keys)) == strategy.size + 1
        assert strategy.exhausted


def test_enqueue_refuses_what_the_space_does_not_hold_naming_the_parameter():
    strategy = hpo.make_strategy("random", SPACES["conditional"], seed=0)
    cases = [
        ({"lr": 1.0}, r"'lr' must be in Float\(0.0001, 0.1, log=True"),
        ({"learning_rate": 0.01}, "the space has no parameter 'learning_rate'"),
        ({"layers": {"units": [50, 50, 50]}}, "no option of 'layers' fits"),
        ({"layers": {"units": [50, 2000]}}, "'layers.units.1' must be in Int"),
        ({"layers": {"units": [50, 60], "dropout": {"rate": 0.9}}}, "'layers.dropout.rate'"),
        ([1, 2], "a configuration must be a dict like params"),
    ]
    for configuration, message in cases:
        with pytest.raises(ValueError, match=message):
            strategy.enqueue(configuration)
    assert strategy.ask(1)[0].attrs == {}  # nothing was queued


@pytest.mark.parametrize("name", STRATEGIES)
def test_a_warm_start_is_history_the_strategy_learns_from_not_trials_of_the_sweep(name):
    earlier = hpo.make_strategy(name, SPACES["conditional"], seed=6)
    done = run(earlier, 12, fail_every=5)
    strategy = hpo.make_strategy(name, SPACES["conditional"], seed=7)
    strategy.warm_start([(t.assignment, t.state, t.value) for t in done])
    assert [t.number for t in strategy.history] == list(range(-1, -13, -1))
    assert strategy.trials == [] and strategy.best_trial() is None  # none of this sweep's
    if hasattr(strategy, "study"):  # Optuna's samplers hold it in their study
        assert len(strategy.study.trials) == 12
    new = run(strategy, 6 if name != "grid" else 10_000, batch=2)
    assert [t.number for t in new][:3] == [0, 1, 2]
    if name == "grid":  # the points done earlier are not run again
        before = {tuple(sorted(t.assignment.items())) for t in done}
        after = {tuple(sorted(t.assignment.items())) for t in new}
        assert not before & after and len(before | after) == strategy.size
    with pytest.raises(ValueError, match="a warm start takes finished trials, got one RUNNING"):
        strategy.warm_start([(done[0].assignment, TrialState.RUNNING, None)])


def test_gp_warm_started_skips_its_initial_design():
    space = {"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}
    earlier = hpo.make_strategy("gp", space, seed=0)
    done = run(earlier, 12)
    cold = hpo.make_strategy("gp", space, seed=1)
    warm = hpo.make_strategy("gp", space, seed=1)
    warm.warm_start([(t.assignment, t.state, t.value) for t in done])
    [first_cold], [first_warm] = cold.ask(), warm.ask()
    # The cold one starts its Sobol design; the warm one asks its model, fitted on the history.
    assert warm._theta is not None and cold._theta is None
    assert first_cold.assignment != first_warm.assignment


def _left_half(params):
    return params["x"] < 0.5  # x in [-2, 3]: half of the box is infeasible


@pytest.mark.parametrize("name", STRATEGIES)
def test_infeasible_suggestions_are_never_issued_and_are_told_as_failures(name):
    strategy = hpo.make_strategy(name, SPACES["float"], seed=8)
    strategy.constraints = _left_half
    issued = run(strategy, 30 if name != "grid" else 10_000, batch=3)
    refused = strategy.take_rejected()
    assert issued and all(_left_half(t.params) for t in issued)
    assert refused and not any(_left_half(t.params) for t in refused)
    assert all(t.state.value == "FAILED" and t.attrs == {"infeasible": True} for t in refused)
    assert strategy.take_rejected() == []  # taken once
    if name == "grid":  # every feasible grid point once: x in {-2, -0.75} times 3 values of y
        assert len(issued) == 6 and strategy.exhausted


@pytest.mark.parametrize("name", ["gp", "tpe", "hyperopt-tpe"])
def test_model_based_strategies_learn_to_avoid_the_infeasible_region(name):
    def refused(strategy_name):
        strategy = hpo.make_strategy(strategy_name, {"x": Float(-2.0, 3.0)}, seed=9)
        strategy.constraints = _left_half
        run(strategy, 40)
        return len(strategy.take_rejected())

    # Random search has half its suggestions refused (about 40 for 40 issued).
    assert refused(name) < 0.6 * refused("random")


def test_a_strategy_that_finds_nothing_feasible_says_so():
    strategy = hpo.make_strategy("random", SPACES["float"], seed=0)
    strategy.constraints = lambda params: False
    with pytest.raises(NoFeasibleConfiguration, match="100 configurations in a row"):
        strategy.ask(1)
    grid = hpo.make_strategy("grid", SPACES["float"])
    grid.constraints = lambda params: False
    assert grid.ask(4) == [] and grid.exhausted and len(grid.take_rejected()) == grid.size
    strategy.constraints = lambda params: "yes"
    with pytest.raises(TypeError, match="constraints must return True or False, got 'yes'"):
        strategy.ask(1)


# -- several objectives ---------------------------------------------------------------------
MULTI_OBJECTIVE = {  # strategy -> whether it searches for a Pareto front
    **{name: name not in ("hyperopt-tpe", "optuna:cmaes") for name in STRATEGIES},
    "optuna:nsgaii": True,
    "optuna:tpe": True,
}
DIRECTIONS = ["minimize", "maximize"]


def two_objectives(params) -> tuple[float, float]:
    """A trade-off: the first objective (minimised) grows with the second (maximised)."""
    score = objective(params)
    return score, score + 0.5 * math.sin(3 * score)


@pytest.mark.parametrize("name", list(MULTI_OBJECTIVE))
def test_every_strategy_supports_several_objectives_or_refuses_them_up_front(name):
    if not MULTI_OBJECTIVE[name]:
        with pytest.raises(ValueError, match="optimises one objective, got 2 directions"):
            hpo.make_strategy(name, SPACES["float"], direction=DIRECTIONS, seed=0)
        return
    strategy = hpo.make_strategy(name, SPACES["float"], direction=DIRECTIONS, seed=0)
    assert strategy.direction == "minimize,maximize" and strategy.n_objectives == 2
    seen = []
    while len(seen) < 16 and not strategy.exhausted:
        for t in strategy.ask(2):
            seen.append(t)
            if t.number % 5 == 4:
                strategy.tell(t, failed=True, error="injected failure")
            else:
                strategy.tell(t, two_objectives(t.params))
    done = [t for t in seen if t.state is TrialState.COMPLETE]
    assert done and all(t.value is None and len(t.values) == 2 for t in done)
    assert pareto_front(strategy.trials, DIRECTIONS)  # whatever the algorithm, there is one
    # A single number, or the wrong count, is refused with the rule.
    [t] = strategy.ask(1) or [None]
    if t is not None:
        with pytest.raises(TypeError, match="must return 2 values"):
            strategy.tell(t, 1.0)
        with pytest.raises(ValueError, match="returned 3 values, the sweep has 2 directions"):
            strategy.tell(t, (1.0, 2.0, 3.0))
        strategy.tell(t, (1.0, 2.0))
    # Put back into a new strategy (a resume), the values stay and the search goes on.
    again = hpo.make_strategy(name, SPACES["float"], direction=DIRECTIONS, seed=0)
    for old in strategy.trials:
        value = old.values if old.state is TrialState.COMPLETE else None
        again.restore(old.number, old.assignment, old.state, value, old.error)
    assert [t.values for t in again.trials] == [t.values for t in strategy.trials]
    assert again.ask(1) or again.exhausted


@pytest.mark.parametrize("name", ["gp", "tpe", "optuna:nsgaii"])
def test_several_objectives_learn_from_warm_starts_and_refused_suggestions(name):
    strategy = hpo.make_strategy(name, SPACES["float"], direction=DIRECTIONS, seed=4)
    strategy.warm_start(
        [
            ({"x": 2.0, "y": 0.5}, TrialState.COMPLETE, (1.0, 5.0)),
            ({"x": 0.0, "y": 0.0}, TrialState.FAILED, None),
        ]
    )
    strategy.constraints = lambda params: params["x"] > -1.0
    seen = run_multi(strategy, 12)
    refused = strategy.take_rejected()
    assert refused and all(t.params["x"] <= -1.0 for t in refused)
    assert all(t.params["x"] > -1.0 for t in seen)
    if hasattr(strategy, "study"):  # Optuna was told each refusal as values (the worst seen)
        told = [t.values for t in strategy.study.trials if t.state.name == "COMPLETE"]
        assert len(told) == 1 + len(seen) + len(refused)  # and the warm start's
        assert all(len(v) == 2 for v in told)


def run_multi(strategy, n):
    seen = []
    while len(seen) < n:
        for t in strategy.ask(1):
            seen.append(t)
            strategy.tell(t, two_objectives(t.params))
    return seen
