"""A multilayer perceptron in NumPy with scikit-learn's estimator API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from models._activations import ACTIVATIONS, log_softmax
from models._optimizers import SGD, Adam
from models._validation import check_params, is_int, is_real, one_of
from models.exceptions import DivergenceError

EpochCallback = Callable[[int, dict[str, float]], "bool | None"]


def _hidden_sizes_ok(v: Any) -> bool:
    sizes = (v,) if isinstance(v, int) else v
    return isinstance(sizes, Sequence) and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes
    )


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multilayer perceptron classifier: softmax output, cross-entropy loss, mini-batch training.

    Parameter names and defaults follow scikit-learn's ``MLPClassifier`` so one can replace
    the other. The L2 penalty is scikit-learn's: ``alpha / 2 * ||W||^2`` divided by the batch
    size, and gradients are averaged over the batch.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Units in each hidden layer.
    activation : {"relu", "tanh", "logistic", "sigmoid", "identity"}, default="relu"
        Hidden-layer activation ("sigmoid" is an alias of scikit-learn's "logistic").
    solver : {"sgd", "adam"}, default="adam"
    alpha : float, default=1e-4
        L2 penalty strength.
    batch_size : int or "auto", default="auto"
        ``min(200, n_samples)`` when "auto".
    learning_rate_init : float, default=1e-3
    max_iter : int, default=200
        Epochs.
    shuffle : bool, default=True
        Reshuffle samples (with their labels) every epoch.
    random_state : int, numpy Generator or None, default=None
    momentum : float, default=0.9
        For ``solver="sgd"``; 0 gives plain SGD.
    nesterovs_momentum : bool, default=True
    beta_1, beta_2, epsilon : float
        Adam's parameters.
    tol : float, default=1e-4
        Training stops when the loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs in a row.
    n_iter_no_change : int, default=10
    epoch_callback : callable, optional
        ``epoch_callback(epoch, metrics)`` after every epoch, with ``metrics`` holding
        ``train_loss`` and, when ``fit`` got ``eval_set``, ``val_loss`` and
        ``val_accuracy``. Returning True stops training.

    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_curve_, validation_scores_, n_iter_,
    n_features_in_

    Raises
    ------
    DivergenceError
        From ``fit`` when the loss or a weight stops being finite.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    _rules = {
        "hidden_layer_sizes": (_hidden_sizes_ok, "a tuple of positive ints"),
        "activation": (one_of(*ACTIVATIONS), f"one of {sorted(ACTIVATIONS)}"),
        "solver": (one_of("sgd", "adam"), "'sgd' or 'adam'"),
        "alpha": (is_real(0.0), "a real number >= 0"),
        "batch_size": (lambda v: v == "auto" or is_int(1)(v), "'auto' or an int >= 1"),
        "learning_rate_init": (is_real(0.0, open_low=True), "a real number > 0"),
        "max_iter": (is_int(1), "an int >= 1"),
        "momentum": (is_real(0.0, 1.0), "a real number in [0, 1]"),
        "beta_1": (is_real(0.0, 1.0, open_high=True), "a real number in [0, 1)"),
        "beta_2": (is_real(0.0, 1.0, open_high=True), "a real number in [0, 1)"),
        "epsilon": (is_real(0.0, open_low=True), "a real number > 0"),
        "tol": (is_real(0.0), "a real number >= 0"),
        "n_iter_no_change": (is_int(1), "an int >= 1"),
    }

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        epoch_callback: EpochCallback | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.epoch_callback = epoch_callback

    # -- training ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, eval_set: tuple[Any, Any] | None = None) -> MLPClassifier:
        """Train on ``(X, y)``; ``eval_set=(X_val, y_val)`` adds validation metrics per epoch."""
        check_params(self, self._rules)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self._binarizer = LabelBinarizer().fit(y)
        self.classes_ = self._binarizer.classes_
        Y = self._onehot(y)
        if eval_set is not None:
            X_val = validate_data(self, eval_set[0], reset=False, dtype=np.float64)
            y_val = np.asarray(eval_set[1])
        rng = np.random.default_rng(self.random_state)
        sizes = (
            (self.hidden_layer_sizes,)
            if isinstance(self.hidden_layer_sizes, int)
            else (tuple(self.hidden_layer_sizes))
        )
        self._init_weights([X.shape[1], *sizes, Y.shape[1]], rng)
        params = [*self.coefs_, *self.intercepts_]
        optimizer = (
            Adam(
                params,
                learning_rate=self.learning_rate_init,
                beta_1=self.beta_1,
                beta_2=self.beta_2,
                epsilon=self.epsilon,
            )
            if self.solver == "adam"
            else SGD(
                params,
                learning_rate=self.learning_rate_init,
                momentum=self.momentum,
                nesterov=self.nesterovs_momentum,
            )
        )
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] = []
        best_loss, stale = np.inf, 0
        for epoch in range(1, self.max_iter + 1):
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            total = 0.0
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for start in range(0, n, batch):
                    rows = order[start : start + batch]
                    loss, grads = self._loss_and_grads(X[rows], Y[rows])
                    total += loss * len(rows)
                    optimizer.step(params, grads)
            train_loss = total / n
            self.n_iter_ = epoch
            self.loss_curve_.append(train_loss)
            self._check_finite(train_loss, epoch)
            metrics = {"train_loss": train_loss}
            if eval_set is not None:
                proba = self.predict_proba(X_val)
                metrics["val_loss"] = self._cross_entropy(proba, self._onehot(y_val))
                metrics["val_accuracy"] = float(np.mean(self.classes_[proba.argmax(1)] == y_val))
                self.validation_scores_.append(metrics["val_accuracy"])
            if self.epoch_callback is not None and self.epoch_callback(epoch, metrics):
                break
            if train_loss > best_loss - self.tol:
                stale += 1
                if stale >= self.n_iter_no_change:
                    break
            else:
                stale = 0
            best_loss = min(best_loss, train_loss)
        return self

    def _onehot(self, y: np.ndarray) -> np.ndarray:
        Y = self._binarizer.transform(y).astype(np.float64)
        # LabelBinarizer gives one column for two classes; softmax wants one per class.
        return np.hstack([1.0 - Y, Y]) if Y.shape[1] == 1 and len(self.classes_) == 2 else Y

    def _init_weights(self, layer_sizes: list[int], rng: np.random.Generator) -> None:
        # Glorot uniform, with the larger bound scikit-learn uses for sigmoid units.
        gain = 2.0 if self.activation in ("logistic", "sigmoid") else 6.0
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
            bound = np.sqrt(gain / (fan_in + fan_out))
            self.coefs_.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
            self.intercepts_.append(rng.uniform(-bound, bound, fan_out))

    def _forward(self, X: np.ndarray) -> list[np.ndarray]:
        """Activations of every layer; the last holds the output logits."""
        act = ACTIVATIONS[self.activation][0]
        outputs = [X]
        last = len(self.coefs_) - 1
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            z = outputs[-1] @ W + b
            outputs.append(z if i == last else act(z))
        return outputs

    def _loss_and_grads(self, X: np.ndarray, Y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        m = X.shape[0]
        outputs = self._forward(X)
        log_p = log_softmax(outputs[-1])
        penalty = 0.5 * self.alpha * sum(float(np.sum(W * W)) for W in self.coefs_) / m
        loss = -float(np.sum(Y * log_p)) / m + penalty
        derivative = ACTIVATIONS[self.activation][1]
        delta = (np.exp(log_p) - Y) / m  # d loss / d logits, averaged over the batch
        coef_grads: list[np.ndarray] = [None] * len(self.coefs_)  # type: ignore[list-item]
        intercept_grads: list[np.ndarray] = [None] * len(self.coefs_)  # type: ignore[list-item]
        for i in range(len(self.coefs_) - 1, -1, -1):
            coef_grads[i] = outputs[i].T @ delta + (self.alpha / m) * self.coefs_[i]
            intercept_grads[i] = delta.sum(axis=0)
            if i > 0:
                delta = (delta @ self.coefs_[i].T) * derivative(outputs[i])
        return loss, [*coef_grads, *intercept_grads]

    def _check_finite(self, loss: float, epoch: int) -> None:
        weights_ok = all(np.isfinite(W).all() for W in self.coefs_)
        if not np.isfinite(loss) or not weights_ok:
            what = f"loss became {loss}" if not np.isfinite(loss) else "a weight became non-finite"
            raise DivergenceError(
                f"{what} at epoch {epoch} with learning_rate_init={self.learning_rate_init} "
                f"(solver={self.solver!r}, alpha={self.alpha})"
            )

    @staticmethod
    def _cross_entropy(proba: np.ndarray, Y: np.ndarray) -> float:
        eps = np.finfo(proba.dtype).tiny
        return -float(np.sum(Y * np.log(np.clip(proba, eps, 1.0)))) / proba.shape[0]

    # -- prediction ----------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return np.exp(log_softmax(self._forward(X)[-1]))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
