"""A fit interrupted and resumed from its `training_state` equals the uninterrupted fit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits

from models import MLPClassifier, MLPRegressor


class _Interrupted(Exception):
    pass


def _interrupted_then_resumed(cls, params, X, y, eval_set, *, at, stop):
    """Fit with a checkpoint at epoch ``at``, killed at epoch ``stop``; then a new
    estimator resumes from the checkpoint (through pickle, as a run's artifact does)."""
    states = {}

    def on_epoch(epoch, metrics):
        if epoch == at:
            states["checkpoint"] = pickle.dumps(model.training_state())
        if epoch == stop:
            raise _Interrupted

    model = cls(**params, epoch_callback=on_epoch)
    with pytest.raises(_Interrupted):
        model.fit(X, y, eval_set=eval_set)
    state = pickle.loads(states["checkpoint"])
    assert state["n_iter_"] == at
    return cls(**params).fit(X, y, eval_set=eval_set, resume_from=state)


@pytest.mark.parametrize(
    "settings",
    [
        {"solver": "adam", "dropout": 0.2},
        {"solver": "sgd", "momentum": 0.99, "nesterovs_momentum": True},
        {"solver": "rmsprop", "early_stopping": True, "n_iter_no_change": 4},
        {"solver": "adam", "learning_rate": "step", "lr_step": 3, "dtype": "float32"},
    ],
    ids=["adam-dropout", "nesterov", "rmsprop-early-stopping", "adam-schedule-float32"],
)
def test_a_resumed_classifier_fit_equals_the_uninterrupted_one_bit_for_bit(settings):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    params = {"hidden_layer_sizes": (24, 12), "max_iter": 14, "random_state": 3, **settings}
    params.setdefault("n_iter_no_change", 100)
    eval_set = (X[:200], y[:200])
    whole = MLPClassifier(**params).fit(X, y, eval_set=eval_set)
    resumed = _interrupted_then_resumed(MLPClassifier, params, X, y, eval_set, at=5, stop=9)
    assert resumed.n_iter_ == whole.n_iter_ and resumed.t_ == whole.t_
    assert resumed.loss_curve_ == whole.loss_curve_
    assert resumed.validation_scores_ == whole.validation_scores_
    for a, b in zip(
        resumed.coefs_ + resumed.intercepts_, whole.coefs_ + whole.intercepts_, strict=True
    ):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_a_resumed_regressor_fit_equals_the_uninterrupted_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=300)
    params = {
        "hidden_layer_sizes": (8,),
        "max_iter": 10,
        "n_iter_no_change": 100,
        "random_state": 1,
    }
    whole = MLPRegressor(**params).fit(X, y)
    resumed = _interrupted_then_resumed(MLPRegressor, params, X, y, None, at=4, stop=7)
    assert resumed.loss_curve_ == whole.loss_curve_
    assert all(np.array_equal(a, b) for a, b in zip(resumed.coefs_, whole.coefs_, strict=True))


def test_training_state_is_for_use_during_fit():
    with pytest.raises(RuntimeError, match="from epoch_callback"):
        MLPClassifier().training_state()
