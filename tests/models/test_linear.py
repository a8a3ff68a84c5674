from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.preprocessing import StandardScaler

from models import LogisticRegression, Perceptron

GATES = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


def test_perceptron_learns_and_but_not_xor():
    model = Perceptron(eta0=0.5, random_state=0).fit(GATES, [0, 0, 0, 1])
    assert model.score(GATES, [0, 0, 0, 1]) == 1.0 and model.n_iter_ < 1000
    xor = Perceptron(eta0=0.5, max_iter=200, random_state=0).fit(GATES, [0, 1, 1, 0])
    assert xor.n_iter_ == 200 and xor.score(GATES, [0, 1, 1, 0]) < 1.0  # not separable


def test_perceptron_one_vs_rest_on_iris():
    X, y = load_iris(return_X_y=True)
    model = Perceptron(eta0=0.1, max_iter=50, random_state=0).fit(X, y)
    assert model.coef_.shape == (3, 4) and model.score(X, y) > 0.6


def test_perceptron_refuses_a_learning_rate_outside_0_1():
    with pytest.raises(ValueError, match=r"eta0 must be a real number in \(0, 1\], got 1.5"):
        Perceptron(eta0=1.5).fit(GATES, [0, 0, 0, 1])


@pytest.mark.parametrize("loader", [load_breast_cancer, load_iris])
def test_logistic_regression_agrees_with_scikit_learn(loader):
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    ours = LogisticRegression(C=1.0, learning_rate=0.5, max_iter=3000, tol=0.0, random_state=0).fit(
        X, y
    )
    theirs = SkLogisticRegression(C=1.0, max_iter=5000).fit(X, y)
    # Same objective: the same probabilities up to optimisation error.
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=0.02)
    assert abs(ours.score(X, y) - theirs.score(X, y)) <= 0.01
