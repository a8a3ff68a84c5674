"""The Pareto front and the hypervolume against brute-force computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hpo.core.directions import Directions
from hpo.core.pareto import dominates, hypervolume_2d, losses, non_dominated, pareto_front
from hpo.strategies.base import Trial, TrialState
from hpo.sweep.lifecycle import Tally


def brute_front(points: np.ndarray) -> set[int]:
    """Indices of the points (losses) no other point dominates, by checking every pair."""
    front = set()
    for i, p in enumerate(points):
        if not any(
            all(q[k] <= p[k] for k in range(len(p))) and any(q[k] < p[k] for k in range(len(p)))
            for j, q in enumerate(points)
            if j != i
        ):
            front.add(i)
    return front


def brute_hypervolume(points: np.ndarray, reference: tuple[float, float]) -> float:
    """The dominated area, summed over the cells of the grid the points' coordinates make."""
    xs = sorted({*points[:, 0], reference[0]})
    ys = sorted({*points[:, 1], reference[1]})
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(itertools.pairwise(xs), itertools.pairwise(ys)):
        if x1 > reference[0] or y1 > reference[1]:
            continue
        if any(p[0] <= x0 and p[1] <= y0 for p in points):  # the cell's lower corner is covered
            area += (x1 - x0) * (y1 - y0)
    return area


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [2, 3])
def test_the_front_is_what_checking_every_pair_finds(seed, k):
    rng = np.random.default_rng(seed)
    # Few distinct values, so that ties and duplicate points occur.
    points = rng.integers(0, 6, size=(40, k)).astype(float)
    assert set(np.flatnonzero(non_dominated(points))) == brute_front(points)


@pytest.mark.parametrize("seed", range(4))
def test_pareto_front_of_trials_follows_each_objectives_direction(seed):
    rng = np.random.default_rng(seed)
    directions = ("minimize", "maximize")
    trials = []
    for n in range(30):
        state = [TrialState.COMPLETE, TrialState.FAILED, TrialState.PRUNED][n % 5 % 3]
        values = tuple(rng.integers(0, 8, size=2).astype(float))
        trials.append(
            Trial(
                n, {}, {}, {}, state=state, values=values if state is TrialState.COMPLETE else None
            )
        )
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    expected = brute_front(np.array([(a, -b) for a, b in (t.values for t in done)]))
    front = pareto_front(trials, directions)
    assert {t.number for t in front} == {done[i].number for i in expected}
    assert [t.values for t in front] == sorted(t.values for t in front)  # by the first objective
    for t in front:
        assert not any(dominates(o.values, t.values, directions) for o in done)


@pytest.mark.parametrize("seed", range(6))
def test_hypervolume_2d_is_the_area_dominated_up_to_the_reference(seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 10, size=(25, 2)).round(1)
    reference = (8.0, 9.0)  # some points lie beyond it: they count nothing
    expected = brute_hypervolume(points[np.all(points < reference, axis=1)], reference)
    assert hypervolume_2d(points, reference) == pytest.approx(expected)


def test_hypervolume_of_one_point_and_of_none():
    assert hypervolume_2d(np.array([[1.0, 2.0]]), (3.0, 3.0)) == pytest.approx(2.0)
    assert hypervolume_2d(np.array([[4.0, 2.0]]), (3.0, 3.0)) == 0.0
    assert hypervolume_2d(np.empty((0, 2)), (3.0, 3.0)) == 0.0


def test_losses_turn_maximised_objectives_around():
    assert losses([(1.0, 2.0)], ("minimize", "maximize")).tolist() == [[1.0, -2.0]]


@pytest.mark.parametrize("seed", range(3))
def test_the_tally_keeps_the_front_and_counts_trials_since_it_last_moved(seed):
    rng = np.random.default_rng(seed)
    tally = Tally(Directions.parse("minimize,maximize"))
    trials, since = [], 0
    for n in range(40):
        values = tuple(rng.integers(0, 6, size=2).astype(float))
        trial = Trial(n, {}, {}, {}, state=TrialState.COMPLETE, values=values)
        before = {t.values for t in pareto_front(trials, ("minimize", "maximize"))}
        trials.append(trial)
        after = {t.values for t in pareto_front(trials, ("minimize", "maximize"))}
        since = 0 if after != before else since + 1
        tally.add(trial)
        assert sorted(tally.front) == sorted((a, -b) for a, b in after)
        assert tally.since_best == since and tally.best is None


def test_directions_are_read_from_a_list_or_a_comma_separated_string():
    from hpo.core.directions import Directions

    check_directions = Directions.parse
    assert check_directions("minimize") == ("minimize",)
    assert check_directions(["minimize", "maximize"]) == ("minimize", "maximize")
    assert check_directions("minimize, maximize") == ("minimize", "maximize")  # as typed
    for bad, says in [
        ([], "non-empty list"),
        ("", "got '' in ''"),
        ("min,max", "got 'min' in 'min,max'"),
        (3, "got 3"),
    ]:
        with pytest.raises(ValueError, match=says):
            check_directions(bad)


def test_a_result_of_several_values_names_the_one_that_is_not_a_finite_real():
    from hpo.core.checks import check_result

    assert check_result({"error": 1, "size": 2.5}) == {"error": 1.0, "size": 2.5}
    assert check_result(np.array([1.0, 2.0])) == (1.0, 2.0)
    for bad, says in [
        ({"error": 0.1, "size": float("nan")}, "returned nan as 'size', which is not a finite"),
        ((0.1, float("inf")), "returned inf as value 2 of 2, which is not a finite"),
        ([True, 0.1], "must return a real number as value 1 of 2, got bool"),
        (float("nan"), "returned nan, which is not a finite number"),  # one objective
    ]:
        with pytest.raises((TypeError, ValueError), match=says):
            check_result(bad)
