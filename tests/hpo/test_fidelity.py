"""Model-based strategies learning from curves (multi-fidelity), on hand-made curves."""

from __future__ import annotations

import numpy as np
import pytest

import hpo
from hpo.core.space import Float
from hpo.core.trial import Trial, TrialState
from hpo.strategies.fidelity import fidelity_view, value_at

SPACE = {"x": Float(0.0, 1.0)}


def _trial(number, curve, state=TrialState.PRUNED):
    t = Trial(number, {"x": 0.5}, {"x": 0.5}, {"x": 0.5}, state=state)
    t.curve = dict(curve)
    return t


def test_the_view_is_at_the_highest_step_enough_trials_reached():
    short = [_trial(i, {0: 1.0, 1: 0.9}) for i in range(3)]
    longer = [_trial(3 + i, {0: 1.0, 3: 0.5, 9: 0.1 * i}) for i in range(2)]
    running = _trial(5, {0: 2.0}, TrialState.RUNNING)
    failed = _trial(6, {}, TrialState.FAILED)
    view = fidelity_view([*short, *longer, running, failed], n_min=2)
    # Two trials reached step 9: the model sees them there.
    assert view.budget == 9 and [v for _, v in view.observed] == [0.0, 0.1]
    assert view.pending == [running] and view.failed == [failed]
    assert view.stopped == short  # pruned below the budget
    view = fidelity_view([*short, *longer, running], n_min=4)
    # Five reached step 1 (the longer ones by their step-0 value: the last up to 1).
    assert view.budget == 1 and len(view.observed) == 5
    assert [v for t, v in view.observed if t.number >= 3] == [1.0, 1.0]
    assert view.pending == [running] and view.stopped == []  # below the budget: pending
    assert fidelity_view(short, n_min=4) is None
    assert value_at({0: 3.0, 4: 2.0, 8: 1.0}, 5) == 2.0


def _curve(x, steps):
    """A loss curve whose every step ranks configurations as its end does: best at 0.2."""
    return {s: (x - 0.2) ** 2 + 1.0 / (s + 1) for s in range(steps)}


@pytest.mark.parametrize("name", ["gp", "tpe", "bohb"])
def test_a_strategy_learns_from_the_curves_of_trials_still_running(name):
    # Sixteen trials are still running, each 4 steps in: none has ended. Learning only from
    # trials that ended, a strategy knows nothing yet (each suggests as at random, measured:
    # median distance to the best x 0.32 for gp, 0.59 for tpe); from the curves it finds
    # where the loss is low.
    strategy = hpo.make_strategy(name, SPACE, seed=0)
    for _ in range(16):
        [trial] = strategy.ask()
        trial.curve = _curve(trial.params["x"], 4)
    xs = []
    for _ in range(8):
        [trial] = strategy.ask()
        xs.append(trial.params["x"])
        trial.curve = _curve(trial.params["x"], 4)
    assert np.median(np.abs(np.array(xs) - 0.2)) < 0.12, xs


def test_pruned_trials_count_at_the_budget_they_reached():
    # Every trial is pruned at step 4: none completes. GP learning only from completed
    # trials would see failures alone (measured: median distance 0.32 to the best x).
    strategy = hpo.make_strategy("gp", SPACE, seed=0)
    xs = []
    for i in range(24):
        [trial] = strategy.ask()
        if i >= 16:
            xs.append(trial.params["x"])
        trial.curve = _curve(trial.params["x"], 4)
        strategy.tell(trial, pruned=True, intermediate=(3, trial.curve[3]))
    assert np.median(np.abs(np.array(xs) - 0.2)) < 0.12, xs


@pytest.mark.parametrize("name", ["gp", "tpe"])
def test_trials_running_below_the_budget_are_kept_away_from(name):
    strategy = hpo.make_strategy(name, SPACE, seed=1)
    for _ in range(14):
        [trial] = strategy.ask()
        trial.curve = _curve(trial.params["x"], 3)
        strategy.tell(trial, pruned=True, intermediate=(2, trial.curve[2]))
    # Four asked at once: each new one sees the ones before it as pending, not observed.
    batch = strategy.ask(4)
    xs = sorted(t.params["x"] for t in batch)
    assert len(set(np.round(xs, 6))) == 4


@pytest.mark.parametrize("seed", range(3))
def test_tpe_keeps_away_from_where_trials_were_pruned_early(seed):
    # Ten trials trained to step 8, in [0.3, 0.7], the best at 0.3; thirty were pruned
    # at step 1 with a bad loss, all below 0.3. Learning from the ten alone, TPE put 4 or 5
    # of 8 suggestions below 0.3 (measured, seeds 0-5); ranking the pruned below them, as
    # Optuna ranks pruned trials, it puts none there.
    strategy = hpo.make_strategy("tpe", SPACE, seed=seed)
    rng = np.random.default_rng(seed)
    for x in [*rng.uniform(0.3, 0.7, 10), *rng.uniform(0.0, 0.3, 30)]:
        strategy.enqueue({"x": float(x)})
    for trial in strategy.ask(40):
        x = trial.params["x"]
        if x >= 0.3:
            trial.curve = {step: x + 1.0 / (step + 1) for step in range(9)}
            strategy.tell(trial, trial.curve[8])
        else:
            trial.curve = {0: 5.0, 1: 5.0}
            strategy.tell(trial, pruned=True, intermediate=(1, 5.0))
    xs = [strategy.ask()[0].params["x"] for _ in range(8)]
    assert min(xs) >= 0.3, xs


def test_the_kept_study_holds_what_the_view_says():
    # TPE keeps one Optuna study across asks (`hpo.strategies.curve_study`): trials enter it
    # running, are settled as the view settles them, and it is made afresh as the budget
    # rises. Whatever the path, it must hold what a study made afresh from the view holds.
    from optuna.trial import TrialState as OptunaState

    strategy = hpo.make_strategy("tpe", SPACE, seed=0)
    rng = np.random.default_rng(0)
    held = None  # a trial left running over the next ask, its curve growing
    for i in range(40):
        first, second = strategy.ask(2)
        for trial in (first, held):
            if trial is None:
                continue
            steps = int(rng.choice([1, 3, 9]))
            trial.curve = {s: trial.params["x"] + 1.0 / (s + 1) for s in range(steps)}
            if steps == 9:
                strategy.tell(trial, trial.curve[8])
            else:
                strategy.tell(trial, pruned=True, intermediate=(steps - 1, trial.curve[steps - 1]))
        held = second
        held.curve = {0: held.params["x"] + 1.0}  # one step in, still running
        if i == 30:
            strategy.tell(held, failed=True)
            held = None
    strategy.ask()  # brings the study to the view, then asks
    view = fidelity_view(strategy.known, 10)
    assert view is not None and view.budget == 8 and view.stopped and view.failed
    expected = sorted(
        [("COMPLETE", t.params["x"], v) for t, v in view.observed]
        + [("PRUNED", t.params["x"], t.curve[max(t.curve)]) for t in view.stopped]
        + [("RUNNING", t.params["x"], None) for t in strategy.pending]
    )
    kept = []
    for t in strategy._curves.study.get_trials(deepcopy=False):
        if t.state is OptunaState.FAIL:
            continue  # the failed trial, and running copies of trials settled since
        value = t.value if t.state is OptunaState.COMPLETE else None
        if t.state is OptunaState.PRUNED:
            value = t.intermediate_values[max(t.intermediate_values)]
        kept.append((t.state.name, t.params["x"], value))
    assert sorted(kept) == expected
