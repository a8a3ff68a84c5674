from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris
from sklearn.model_selection import train_test_split

from models import DivergenceError, MLPClassifier


def _numeric_grad(model, X, Y, eps=1e-6):
    params = [*model.coefs_, *model.intercepts_]
    grads = []
    for p in params:
        g = np.zeros_like(p)
        it = np.nditer(p, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            old = p[i]
            p[i] = old + eps
            up = model._loss_and_grads(X, Y)[0]
            p[i] = old - eps
            down = model._loss_and_grads(X, Y)[0]
            p[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_gradients_match_finite_differences(activation, alpha):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 4))
    y = rng.integers(0, 3, size=7)
    y[:3] = [0, 1, 2]
    model = MLPClassifier((5, 4), activation=activation, alpha=alpha, max_iter=1, random_state=0)
    model.fit(X, y)
    Y = model._onehot(y)
    _, analytic = model._loss_and_grads(X, Y)
    for a, n in zip(analytic, _numeric_grad(model, X, Y), strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-7)


def test_reaches_095_validation_accuracy_on_digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X / 16.0, y, test_size=0.2, random_state=0)
    model = MLPClassifier((64,), max_iter=100, random_state=0).fit(X_train, y_train)
    assert model.score(X_val, y_val) >= 0.95


def test_sklearn_api_clone_params_and_proba():
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier(
        (8,), activation="tanh", solver="sgd", learning_rate_init=0.05, max_iter=50, random_state=1
    )
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    copy.set_params(alpha=0.01)
    assert copy.alpha == 0.01 and model.alpha == 1e-4
    model.fit(X, y)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(X)) <= set(model.classes_)
    assert model.n_features_in_ == 4 and len(model.loss_curve_) == model.n_iter_


def test_string_labels_and_two_classes():
    X, y = load_iris(return_X_y=True)
    keep = y < 2
    labels = np.where(y[keep] == 0, "setosa", "versicolor")
    model = MLPClassifier((4,), max_iter=200, random_state=0).fit(X[keep], labels)
    assert model.score(X[keep], labels) >= 0.98
    assert model.predict_proba(X[keep]).shape == (keep.sum(), 2)


def test_same_seed_same_model_and_shuffling_changes_it():
    X, y = load_iris(return_X_y=True)
    fit = lambda **kw: MLPClassifier((6,), max_iter=20, random_state=3, **kw).fit(X, y)  # noqa: E731
    np.testing.assert_array_equal(fit().coefs_[0], fit().coefs_[0])
    assert not np.array_equal(fit().coefs_[0], fit(shuffle=False).coefs_[0])


def test_softmax_is_stable_for_huge_logits():
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((3,), max_iter=1, random_state=0).fit(X, y)
    model.coefs_[-1] *= 1e6
    proba = model.predict_proba(X)
    assert np.isfinite(proba).all()


def test_epoch_callback_gets_metrics_and_can_stop():
    X, y = load_iris(return_X_y=True)
    seen = []

    def callback(epoch, metrics):
        seen.append((epoch, metrics))
        return epoch == 3

    MLPClassifier((5,), max_iter=50, epoch_callback=callback, random_state=0).fit(
        X, y, eval_set=(X[:30], y[:30])
    )
    assert [e for e, _ in seen] == [1, 2, 3]
    assert set(seen[0][1]) == {"train_loss", "val_loss", "val_accuracy"}


def test_divergence_raises_a_clear_error():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)) * 1e3
    y = rng.integers(0, 2, size=50)
    model = MLPClassifier(
        (4,),
        activation="identity",
        solver="sgd",
        momentum=0.9,
        learning_rate_init=1e6,
        max_iter=50,
        n_iter_no_change=50,
        random_state=0,
    )
    with pytest.raises(DivergenceError, match=r"at epoch \d+ with learning_rate_init=1000000.0"):
        model.fit(X, y)


@pytest.mark.parametrize(
    ("param", "value", "rule"),
    [
        ("activation", "swish", "activation must be one of"),
        ("solver", "lbfgs", "solver must be 'sgd' or 'adam', got 'lbfgs'"),
        ("learning_rate_init", 0.0, "learning_rate_init must be a real number > 0, got 0.0"),
        ("hidden_layer_sizes", (10, 0), r"hidden_layer_sizes must be a tuple of positive ints"),
        ("batch_size", 0, "batch_size must be 'auto' or an int >= 1, got 0"),
    ],
)
def test_bad_parameters_are_refused_in_fit(param, value, rule):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=rule):
        MLPClassifier(**{param: value}).fit(X, y)
