"""Linear classifiers: Rosenblatt's perceptron and logistic regression by gradient descent."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from models._validation import check_params, is_int, is_real
from models.mlp import MLPClassifier


class Perceptron(ClassifierMixin, BaseEstimator):
    """Rosenblatt's perceptron: on each misclassified sample, ``w += eta0 * t * x``.

    Two classes use one weight vector (targets -1/+1); more use one per class, one
    against the rest. Training stops after an epoch without mistakes or ``max_iter``.

    Parameters
    ----------
    eta0 : float in (0, 1], default=1.0
        Learning rate.
    max_iter : int, default=1000
        Epochs.
    shuffle : bool, default=True
    random_state : int, numpy Generator or None

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    >>> Perceptron(random_state=0).fit(X, [0, 0, 0, 1]).predict(X).tolist()
    [0, 0, 0, 1]
    """

    _rules = {
        "eta0": (is_real(0.0, 1.0, open_low=True), "a real number in (0, 1]"),
        "max_iter": (is_int(1), "an int >= 1"),
    }

    def __init__(
        self,
        *,
        eta0: float = 1.0,
        max_iter: int = 1000,
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.eta0 = eta0
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> Perceptron:
        check_params(self, self._rules)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        binarizer = LabelBinarizer(neg_label=-1, pos_label=1).fit(y)
        self.classes_ = binarizer.classes_
        T = binarizer.transform(y).astype(np.float64)  # one column for two classes
        if len(self.classes_) == 1:
            T = np.ones((len(y), 1))
        rng = np.random.default_rng(self.random_state)
        W = np.zeros((X.shape[1], T.shape[1]))
        b = np.zeros(T.shape[1])
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            self.n_iter_ += 1
            mistakes = 0
            for i in rng.permutation(len(X)) if self.shuffle else range(len(X)):
                wrong = T[i] * (X[i] @ W + b) <= 0
                if wrong.any():
                    mistakes += 1
                    W[:, wrong] += self.eta0 * np.outer(X[i], T[i, wrong])
                    b[wrong] += self.eta0 * T[i, wrong]
            if mistakes == 0:
                break
        self.coef_, self.intercept_ = W.T, b
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        if len(self.classes_) == 1:
            return np.full(len(scores), self.classes_[0])
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic (two classes) or softmax regression trained by mini-batch gradient descent.

    The objective is scikit-learn's, scaled by the number of samples: mean cross-entropy
    plus ``||w||^2 / (2 C n)``.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 strength.
    learning_rate : float, default=0.1
    batch_size : int or None, default=None
        None for full-batch gradient descent.
    max_iter : int, default=500
        Epochs.
    tol : float, default=1e-6
        Stop when the loss improves by less than this for 5 epochs.
    random_state : int, numpy Generator or None

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> LogisticRegression(random_state=0).fit(X, y).score(X, y) > 0.9
    True
    """

    _rules = {
        "C": (is_real(0.0, open_low=True), "a real number > 0"),
        "learning_rate": (is_real(0.0, open_low=True), "a real number > 0"),
        "batch_size": (lambda v: v is None or is_int(1)(v), "None or an int >= 1"),
        "max_iter": (is_int(1), "an int >= 1"),
        "tol": (is_real(0.0), "a real number >= 0"),
    }

    def __init__(
        self,
        *,
        C: float = 1.0,
        learning_rate: float = 0.1,
        batch_size: int | None = None,
        max_iter: int = 500,
        tol: float = 1e-6,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.C = C
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> LogisticRegression:
        check_params(self, self._rules)
        X, y = validate_data(self, X, y, dtype=np.float64)
        n = X.shape[0]
        batch = n if self.batch_size is None else min(self.batch_size, n)
        # The network's L2 term is alpha ||W||^2 / (2 * batch); this alpha makes it ||w||^2/(2Cn).
        self._net = MLPClassifier(
            (),
            solver="sgd",
            momentum=0.0,
            learning_rate_init=self.learning_rate,
            alpha=batch / (self.C * n),
            batch_size=batch,
            max_iter=self.max_iter,
            tol=self.tol,
            init="normal",
            init_std=1e-3,
            divergence_factor=None,  # a convex loss may oscillate high and still converge
            random_state=self.random_state,
        ).fit(X, y)
        self.classes_ = self._net.classes_
        self.coef_ = self._net.coefs_[0].T
        self.intercept_ = self._net.intercepts_[0]
        self.n_iter_ = self._net.n_iter_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._net.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
