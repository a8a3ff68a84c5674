"""Multilayer perceptrons in NumPy with scikit-learn's estimator API."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import column_or_1d

from models._activations import log_softmax
from models._base import BaseMLP


def _integers(y: np.ndarray) -> bool:
    """Whether y holds integer (or boolean) labels: scikit-learn's checks of class labels,
    which refuse continuous values and mixed strings and numbers, cannot fail on them, and
    cost a large part of a small epoch in every `fit` and `partial_fit`."""
    return y.dtype.kind in "iub"


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multilayer perceptron classifier.

    Softmax with cross-entropy for more than two classes, one sigmoid unit with binary
    cross-entropy for two. Parameter names and defaults follow scikit-learn's
    ``MLPClassifier`` where the concept is the same, so one can replace the other.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Units per hidden layer; ``()`` for none (logistic or softmax regression).
    activation : {"relu", "leaky_relu", "elu", "tanh", "sigmoid", "logistic", "identity"}
        Hidden-layer activation; "logistic" is scikit-learn's name for "sigmoid".
    loss : {"auto", "log_loss", "squared_error"}, default="auto"
        "auto" and "log_loss" are cross-entropy; "squared_error" is squared error on the
        output probabilities (slower to learn; there for comparison).
    solver : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}, default="adam"
        "sgd" is scikit-learn's: it uses ``momentum`` and ``nesterovs_momentum``
        (``momentum=0`` gives plain SGD); "momentum" and "nesterov" name those variants.
    alpha : float, default=1e-4
        L2 penalty ``alpha / 2 * ||W||^2``, divided by the batch size like scikit-learn's.
    l1 : float, default=0
        L1 penalty ``l1 * |W|``, divided by the batch size.
    batch_size : int or "auto", default="auto"
        ``min(200, n_samples)`` when "auto".
    learning_rate : {"constant", "step", "exponential", "invscaling"}, default="constant"
        Per-epoch schedule: ``lr_decay ** (epoch // lr_step)`` times the initial rate,
        ``lr_decay ** epoch`` times it, or ``1 / (epoch + 1) ** power_t`` times it.
    learning_rate_init : float, default=1e-3
    lr_decay : float, default=0.5
    lr_step : int, default=10
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs.
    shuffle : bool, default=True
        Reshuffle samples (with their targets) every epoch.
    random_state : int, numpy Generator or None
    tol : float, default=1e-4
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    beta_1, beta_2 : float
        Adam's decay rates.
    rho : float, default=0.9
        RMSprop's decay rate.
    epsilon : float, default=1e-8
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data; stop when its score has not improved
        by ``tol`` for ``n_iter_no_change`` epochs and restore the best epoch's weights.
        Without it, training stops when the training loss stalls that long.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    dropout : float or list of float, default=0
        Inverted-dropout rate for every hidden layer, or one per hidden layer.
    max_norm : float, optional
        Rescale each unit's incoming weights to at most this norm after every update.
    init : {"auto", "glorot_uniform", "glorot_normal", "he", "normal"}, default="auto"
        "auto" is He for the ReLU family and Glorot uniform otherwise; "normal" draws with
        standard deviation ``init_std``.
    init_std : float, default=0.01
    leaky_relu_slope : float, default=0.01
    elu_alpha : float, default=1.0
    standardize : bool, default=False
        Standardise inputs with the training data's mean and standard deviation.
    dtype : {"float64", "float32"}, default="float64"
    divergence_factor : float or None, default=10
        Training stops with `models.DivergenceError` when an epoch's loss exceeds this
        many times the untrained model's loss (measured on the first batch, before any
        update; 1 when that is smaller), as well as when the loss or a weight stops being
        finite. None keeps only the finiteness check.
    epoch_callback : callable, optional
        ``epoch_callback(epoch, metrics)`` after every epoch; ``metrics`` has
        ``train_loss`` and ``learning_rate``, and with a validation set (``eval_set`` or
        ``early_stopping``) ``val_loss``, ``val_accuracy`` and ``val_score``. Returning
        True stops training.

    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_curve_, validation_scores_, n_iter_,
    n_features_in_, best_loss_

    Raises
    ------
    models.DivergenceError
        From ``fit`` when training diverges (see ``divergence_factor``); its message
        starts "diverged at epoch N" and gives the losses.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier((16,), max_iter=300, random_state=0, standardize=True).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    _multi_output = False
    _regression = False

    @property
    def _output(self) -> str:
        # Two classes need one sigmoid unit; more (or one, or none known yet) a softmax.
        classes = getattr(self, "classes_", None)
        return "sigmoid" if classes is not None and len(classes) == 2 else "softmax"

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One more epoch on ``(X, y)``; the first call needs ``classes`` unless y has them all."""
        if not hasattr(self, "coefs_") and classes is not None:
            self._classes_hint = np.asarray(classes)
        return self._partial_fit(X, y)

    def _prepare_y(self, y: Any, reset: bool = True) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        if not _integers(y):  # integers are always class labels
            check_classification_targets(y)
        hint = getattr(self, "_classes_hint", None) if reset else None
        if reset:  # sorted; mixed kinds of label (strings and numbers) are refused
            labels = y if hint is None else hint
            self.classes_ = np.unique(labels) if _integers(labels) else unique_labels(labels)
        if (hint is not None or not reset) and not np.isin(y, self.classes_).all():
            where = "in classes" if reset else "seen in the first partial_fit"
            raise ValueError(f"y has labels not {where}: {np.setdiff1d(y, self.classes_).tolist()}")
        return y

    def _n_outputs(self, y: np.ndarray) -> int:
        return 1 if len(self.classes_) <= 2 else len(self.classes_)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Targets as the output layer sees them: one column per class, or a single one (the
        second class) for two. y's labels are all in classes_ (sorted).

        Built directly: scikit-learn's LabelBinarizer checks the labels again on every call,
        which costs about as much as a digits epoch on each `fit` and `partial_fit`.
        """
        classes = self.classes_
        Y = np.zeros((len(y), self._n_outputs(y)), self.dtype)
        if len(classes) == 2:
            Y[:, 0] = y == classes[1]
        elif len(classes) > 2:
            Y[np.arange(len(y)), np.searchsorted(classes, y)] = 1
        return Y

    def _proba(self, X: np.ndarray) -> np.ndarray:
        z = self._raw_output(X)
        if self._output == "sigmoid":
            p = expit(z)
            return np.hstack([1 - p, p])
        if len(self.classes_) == 1:
            return np.ones((X.shape[0], 1), dtype=X.dtype)
        return np.exp(log_softmax(z))

    def _score_metrics(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        proba = self._proba(X)
        known = np.isin(y, self.classes_)
        Y = self._encode(y[known])
        if Y.shape[1] == 1 and len(self.classes_) == 2:
            Y = np.hstack([1 - Y, Y])
        p = np.clip(proba[known], np.finfo(proba.dtype).tiny, 1.0)
        accuracy = float(np.mean(self.classes_[proba.argmax(axis=1)] == y))
        return {
            "val_loss": -float(np.sum(Y * np.log(p))) / max(len(Y), 1),
            "val_accuracy": accuracy,
            "val_score": accuracy,
        }

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._proba(self._checked_X(X))

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)  # first: it raises NotFittedError before fit
        return self.classes_[proba.argmax(axis=1)]


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multilayer perceptron regressor: identity output, squared error, multi-output allowed.

    Takes the same parameters as `MLPClassifier`; the validation metrics are ``val_loss``
    (half the mean squared error) and ``val_r2`` (also ``val_score``).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MLPRegressor((32,), learning_rate_init=0.01, max_iter=300, random_state=0,
    ...                    standardize=True).fit(X, y / 100)
    >>> reg.score(X, y / 100) > 0.4
    True
    """

    _output = "identity"
    _rules = {
        **BaseMLP._rules,
        "loss": (lambda v: v in ("auto", "squared_error"), "'auto' or 'squared_error'"),
    }

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One more epoch on ``(X, y)``."""
        return self._partial_fit(X, y)

    def _prepare_y(self, y: Any, reset: bool = True) -> np.ndarray:
        y = np.asarray(y, dtype=self.dtype)
        if reset:
            self._y_1d = y.ndim == 1
        return y

    def _n_outputs(self, y: np.ndarray) -> int:
        return 1 if y.ndim == 1 else y.shape[1]

    def _encode(self, y: np.ndarray) -> np.ndarray:
        return y.reshape(len(y), -1).astype(self.dtype, copy=False)

    def _score_metrics(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        pred = self._raw_output(X)
        Y = self._encode(np.asarray(y, dtype=self.dtype))
        residual = float(np.sum((Y - pred) ** 2))
        total = float(np.sum((Y - Y.mean(axis=0)) ** 2)) or 1.0
        r2 = 1.0 - residual / total
        return {"val_loss": 0.5 * residual / len(Y), "val_r2": r2, "val_score": r2}

    def predict(self, X: Any) -> np.ndarray:
        pred = self._raw_output(self._checked_X(X))
        return pred.ravel() if self._y_1d else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
