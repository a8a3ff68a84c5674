from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import norm

from hpo.space import Choice, Float, Int, Space
from hpo.strategies.gp import (
    GPEI,
    _Encoding,
    _OutputWarp,
    default_initial_size,
    log_expected_improvement,
)


def test_log_ei_matches_the_closed_form_and_stays_finite_in_the_tail():
    mean = np.array([0.0, 0.5, 1.0, -1.0])
    std = np.array([1.0, 0.3, 2.0, 0.5])
    best = 0.2
    z = (best - mean) / std
    direct = std * (z * norm.cdf(z) + norm.pdf(z))
    np.testing.assert_allclose(
        log_expected_improvement(mean, std, best), np.log(direct), rtol=1e-10
    )
    # Far in the tail EI underflows to 0; its log must stay finite and keep decreasing.
    tail = log_expected_improvement(np.array([10.0, 20.0, 40.0]), np.ones(3), 0.0)
    assert np.all(np.isfinite(tail)) and tail[0] > tail[1] > tail[2]
    assert tail[2] == pytest.approx(
        -0.5 * 40**2 - 0.5 * math.log(2 * math.pi) - 2 * math.log(40), abs=1e-2
    )


def test_encoding_round_trips_valid_assignments():
    space = Space(
        {
            "lr": Float(1e-4, 1.0, log=True),
            "n": Int(10, 100, step=10),
            "b": Int(1, 512, log=True),
            "act": Choice(["relu", "tanh", "elu"]),
            "layers": Choice([{"u": [Int(1, 9)]}, {"u": [Int(1, 9), Int(1, 9)]}]),
        }
    )
    enc = _Encoding(space)
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = space.sample(rng)
        u = enc.encode(a)
        assert u.shape == (enc.width,) and np.all((0 <= u) & (u <= 1))
        back = enc.decode(u)
        assert back.keys() == a.keys()
        for k, v in a.items():
            assert back[k] == pytest.approx(v, rel=1e-9)


def test_same_seed_and_history_give_the_same_suggestion():
    space = {"x": Float(-3.0, 3.0), "c": Choice(["a", "b"])}

    def replay():
        s = GPEI(space, seed=5, n_initial=4)
        for _ in range(8):
            [t] = s.ask()
            s.tell(t, (t.params["x"] - 1) ** 2 + (t.params["c"] == "b"))
        return [t.assignment for t in s.ask(2)]

    assert replay() == replay()


def test_failures_enter_the_model_as_the_worst_value():
    s = GPEI({"x": Float(0.0, 1.0)}, seed=0, n_initial=3)
    values = iter([0.5, 0.2, None, 0.9, None])
    for _ in range(5):
        [t] = s.ask()
        v = next(values)
        s.tell(t, v) if v is not None else s.tell(t, failed=True, error="diverged")
    told = [t for t in s.trials if t.state.value != "RUNNING"]
    X, y = s._data(told)
    assert np.all(np.isfinite(y)) and y.tolist() == [0.5, 0.2, 0.9, 0.9, 0.9]
    [t] = s.ask()  # and the model still suggests
    s.space.validate(t.assignment)


def test_parallel_asks_spread_out():
    s = GPEI({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}, seed=1, n_initial=5)
    for _ in range(8):
        [t] = s.ask()
        s.tell(t, (t.params["x"] - 0.3) ** 2 + (t.params["y"] - 0.7) ** 2)
    batch = s.ask(4)
    points = np.array([[t.params["x"], t.params["y"]] for t in batch])
    distances = [np.linalg.norm(points[i] - points[j]) for i in range(4) for j in range(i)]
    assert min(distances) > 1e-3


@pytest.mark.slow
def test_reaches_branins_optimum_in_32_evaluations():
    def branin(x, y):
        return (
            (y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x)
            + 10
        )

    s = GPEI({"x": Float(-5.0, 10.0), "y": Float(0.0, 15.0)}, seed=0)
    for _ in range(32):
        [t] = s.ask()
        s.tell(t, branin(t.params["x"], t.params["y"]))
    assert s.best_trial().value < 0.40  # the optimum is 0.397887


def test_one_parameter_sweeps_get_a_posterior_plot():
    s = GPEI({"units": Int(50, 1000)}, seed=0, n_initial=2)
    for _ in range(5):
        [t] = s.ask()
        s.tell(t, (t.params["units"] - 400) ** 2 / 1e5)
    assert s.artifacts()["gp_posterior.png"][:8] == b"\x89PNG\r\n\x1a\n"
    two = GPEI({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0)}, seed=0)
    assert two.artifacts() == {}


def test_the_default_initial_design_counts_floats_once_and_ints_and_options_twice():
    six_floats = {f"x{i}": Float(0.0, 1.0) for i in range(6)}
    assert default_initial_size(Space(six_floats)) == 8
    mixed = {"n": Int(1, 20), "kind": Choice(["a", "b", "c"]), "x": Float(0.0, 1.0)}
    assert default_initial_size(Space(mixed)) == 2 + 1 + 2 + 2 * 3
    assert default_initial_size(Space({"x": Float(0.0, 1.0)})) == 5  # at least 5
    many = {f"x{i}": Float(0.0, 1.0) for i in range(30)}
    assert default_initial_size(Space(many)) == 20  # at most 20
    assert GPEI(six_floats, seed=0).n_initial == 8


def test_strategy_options_reach_the_strategy_and_bad_ones_are_refused():
    import hpo

    assert hpo.make_strategy("gp", {"x": Float(0.0, 1.0)}, n_initial=2).n_initial == 2
    with pytest.raises(ValueError, match="strategy 'gp': GPEI has no option 'bogus'"):
        hpo.make_strategy("gp", {"x": Float(0.0, 1.0)}, bogus=1)


def test_output_warp_is_monotone_and_inverts_for_skewed_and_constant_values():
    y = np.array([0.2, 1.0, 3.0, 40.0, 1e4, 7.0])  # a loss spanning decades
    warp = _OutputWarp(y)
    u = warp(y)
    assert np.all(np.diff(u[np.argsort(y)]) > 0)  # the order of values is kept
    np.testing.assert_allclose(warp.inverse(u), y, rtol=1e-6)
    # A power transform pulls the outlier in: plain standardising would leave it 2.2
    # standard deviations out and crowd the rest together.
    assert abs(u[4]) < abs((y[4] - y.mean()) / y.std())
    same = _OutputWarp(np.full(4, 3.0))
    np.testing.assert_allclose(same(np.full(4, 3.0)), 0.0)
    np.testing.assert_allclose(same.inverse(np.zeros(2)), 3.0)


def test_length_scale_prior_keeps_irrelevant_dimensions_off_the_bound():
    # Eight points in six dimensions where only x0 matters: plain maximum likelihood sends the
    # five irrelevant length scales to the upper bound (100); the prior keeps them moderate.
    from sklearn.gaussian_process import GaussianProcessRegressor

    rng = np.random.default_rng(0)
    X = rng.random((8, 6))
    y = np.sin(6 * X[:, 0])
    strategy = GPEI({f"x{i}": Float(0.0, 1.0) for i in range(6)}, seed=0)
    fitted = strategy._fit(X, y, np.random.default_rng(1)).kernel
    with_prior = fitted.k1.k2.length_scale
    plain = GaussianProcessRegressor(strategy._kernel(6), n_restarts_optimizer=2, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.fit(X, (y - y.mean()) / y.std())
    assert np.max(plain.kernel_.k1.k2.length_scale[1:]) > 50  # the degenerate fit
    assert np.all(with_prior[1:] < 10)
    assert with_prior[0] < np.min(with_prior[1:])  # the dimension that matters is the shortest


def _long_history(n: int, seed: int = 0) -> GPEI:
    """A GP told ``n`` random points of a quadratic bowl centred at (0.3, 0.7)."""
    s = GPEI({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)}, seed=seed, n_initial=n + 1)
    for _ in range(n):  # through the cheap initial design
        [t] = s.ask()
        s.tell(t, (t.params["x"] - 0.3) ** 2 + (t.params["y"] - 0.7) ** 2)
    s.n_initial = 1
    return s


def test_a_long_history_refits_the_kernel_only_as_it_grows_by_a_tenth():
    from hpo.strategies.gp import REFIT_GROWTH

    s = _long_history(120)
    fits = []
    for _ in range(20):
        [t] = s.ask()
        fits.append(s._fitted_on)
        s.tell(t, (t.params["x"] - 0.3) ** 2 + (t.params["y"] - 0.7) ** 2)
    # Fitted at 120 observations, then again at the first ask with 10% more (132).
    assert fits == [120] * 12 + [132] * 8 and math.ceil(120 * REFIT_GROWTH) == 132


def test_a_long_history_fits_the_kernel_on_a_subset_and_conditions_on_everything():
    from hpo.strategies.gp import FIT_SUBSET

    s = _long_history(450)
    u = np.random.default_rng(1).normal(size=450)
    rows = s._fit_subset(u, np.random.default_rng(2))
    assert len(rows) == len(set(rows)) == FIT_SUBSET and list(rows) == sorted(rows)
    assert set(np.argsort(u)[: FIT_SUBSET // 3]) <= set(rows)  # the best third, all of it
    X, y = s._data(s.trials)
    posterior = s._fit(X, y, np.random.default_rng(0))
    assert s._fitted_on == 450 and posterior.model.X_train_.shape == (450, 2)
    [t] = s.ask()  # the hyperparameters of that fit, the model of every point
    assert s._fitted_on == 450
    assert math.dist((t.params["x"], t.params["y"]), (0.3, 0.7)) < 0.05
