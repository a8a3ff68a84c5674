"""The training engine shared by `MLPClassifier` and `MLPRegressor`.

Subclasses choose the output layer and loss (`_output`: "softmax", "sigmoid" or
"identity", a class attribute or a property of what was learned) and how targets are
encoded and scored; everything else (layers, activations, optimisers, schedules,
penalties, dropout, max-norm, early stopping, callbacks, divergence) lives here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from models._activations import ACTIVATIONS, log_softmax
from models._blas import add_scaled, matmul_rows, matmul_summed, ones
from models._optimizers import SCHEDULES, SOLVERS, flush_to_zero, make_optimizer, scheduled_rate
from models._validation import check_params, is_int, is_real, one_of
from models.exceptions import DivergenceError

EpochCallback = Callable[[int, dict[str, float]], "bool | None"]
INITS = ("auto", "glorot_uniform", "glorot_normal", "he", "normal")


def packed(shapes: list[tuple[int, ...]], dtype: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """One flat buffer and a view of it per shape, in order.

    Weights and gradients live this way so that an optimiser step is one handful of array
    operations over all parameters rather than a handful per weight and bias array: on
    small networks those per-call overheads cost more than the arithmetic.
    """
    sizes = [int(np.prod(shape)) for shape in shapes]
    flat = np.empty(sum(sizes), dtype)
    views, start = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        views.append(flat[start : start + size].reshape(shape))
        start += size
    return flat, views


def with_ones(X: np.ndarray) -> np.ndarray:
    """X with a last column of ones: the input a layer's [W; b] multiplies in one product."""
    Xa = np.empty((X.shape[0], X.shape[1] + 1), X.dtype)
    Xa[:, :-1] = X
    Xa[:, -1] = 1
    return Xa


def layer_shape(W: np.ndarray) -> tuple[int, int]:
    """The shape of a layer's [W; b]: its weights with the bias as one more row."""
    return W.shape[0] + 1, W.shape[1]


def _hidden_sizes_ok(v: Any) -> bool:
    sizes = (v,) if isinstance(v, int) else v
    return isinstance(sizes, Sequence) and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes
    )


def _dropout_ok(v: Any) -> bool:
    rates = v if isinstance(v, Sequence) else (v,)
    return all(is_real(0.0, 1.0, open_high=True)(r) for r in rates)


def _softmax_cross_entropy(z: np.ndarray, Y: np.ndarray, m: int) -> float:
    """Mean cross-entropy of the m rows; overwrites z with the softmax probabilities.

    The logits are shifted by the batch's largest one rather than each row's: exp cannot
    overflow either way, and a row max is a slow reduction on outputs a few classes wide.
    A row whose logits all lie far below the batch's largest (by ~87 at float32) would
    underflow to a zero total; then the row-wise shift is used instead.
    """
    logits = z.copy()
    column = ones(z.shape[1], z.dtype)
    for rowwise in (False, True):
        if rowwise:
            np.subtract(logits, logits.max(axis=1, keepdims=True), out=z)
        else:
            z -= z.max()
        picked = float(np.vdot(Y, z))  # sum of the true classes' shifted logits
        np.exp(z, out=z)
        totals = np.matmul(z, column)  # row sums; BLAS is faster than sum(axis=1) here
        if totals.min() > 0:
            break
    z /= totals[:, None]
    return (float(np.log(totals).sum()) - picked) / m


class _Workspace:
    """Arrays reused by every batch of one size, so a training step allocates (almost)
    nothing: fresh arrays of a few hundred kilobytes cost more than the arithmetic on them.

    A hidden layer's outputs carry a last column of ones, and each layer's weights and bias
    are one matrix [W; b] (see `BaseMLP._packed_parameters`): the next layer's product then
    adds its bias, and its weight gradient yields the bias's, with no call of their own. The
    arrays of the backward pass are as wide, so that each element-wise step is one pass over
    a contiguous array; their last column is not used.
    """

    def __init__(
        self,
        coefs: list[np.ndarray],
        batch: int,
        activation: str,
        dropout: list[float],
        training: bool = True,
    ) -> None:
        dtype = coefs[0].dtype
        widths = [W.shape[1] for W in coefs]
        hidden = widths[:-1]
        self.batch = batch
        self.z = [np.empty((batch, w + 1), dtype) for w in hidden]
        for z in self.z:
            z[:, -1] = 1
        self.z.append(np.empty((batch, widths[-1]), dtype))
        if not training:  # a forward pass needs only the layer outputs
            self.z_in = self.before_dropout = []
            return
        self.z_in = (
            [np.empty((batch, w + 1), dtype) for w in hidden]
            if ACTIVATIONS[activation].needs_input
            else []
        )
        self.before_dropout = [
            np.empty((batch, w + 1), dtype) if p > 0 else None
            for w, p in zip(hidden, dropout, strict=True)
        ]
        self.delta = [np.empty((batch, w + 1), dtype) for w in hidden]
        self.derivative = [np.empty((batch, w + 1), dtype) for w in hidden]
        self.grads, self.layer_grads = packed([layer_shape(W) for W in coefs], dtype)
        self.coef_grads = [g[:-1] for g in self.layer_grads]
        self.intercept_grads = [g[-1] for g in self.layer_grads]
        self.scratch = [np.empty_like(g) for g in self.layer_grads]


# What a fit changes as it trains (besides the random generator and the early-stopping
# record): a `training_state` holds these, and resuming puts them back.
_TRAINING_STATE = (
    "coefs_",
    "intercepts_",
    "_optimizer",
    "loss_curve_",
    "validation_scores_",
    "best_loss_",
    "n_iter_",
    "t_",
    "_initial_loss",
)


class _Patience:
    """When training stops for lack of progress: after ``n_iter_no_change`` epochs in a row
    without an improvement of ``tol``, on the validation score (keeping the best epoch's
    weights) when ``on_validation``, else on the training loss."""

    def __init__(self, model: BaseMLP, *, on_validation: bool) -> None:
        self.model, self.on_validation = model, on_validation
        self.best_score = -np.inf
        self.best_weights: tuple[list[np.ndarray], list[np.ndarray]] | None = None
        self.stale = 0  # epochs since the last improvement

    def exhausted(self, train_loss: float, val_score: float | None) -> bool:
        """Account for one more epoch; True when patience has run out."""
        model = self.model
        if self.on_validation:
            if val_score > self.best_score + model.tol:
                self.best_score, self.stale = val_score, 0
                self.best_weights = (
                    [W.copy() for W in model.coefs_],
                    [b.copy() for b in model.intercepts_],
                )
            else:
                self.stale += 1
        else:
            self.stale = self.stale + 1 if train_loss > model.best_loss_ - model.tol else 0
        model.best_loss_ = min(model.best_loss_, train_loss)
        return self.stale >= model.n_iter_no_change


class BaseMLP(BaseEstimator):
    """Parameters shared by the MLP estimators; see `MLPClassifier` for their meaning."""

    _output = "identity"
    _multi_output = True
    _regression = True  # numeric targets
    _rules = {
        "hidden_layer_sizes": (_hidden_sizes_ok, "a tuple of positive ints"),
        "activation": (one_of(*ACTIVATIONS), f"one of {sorted(ACTIVATIONS)}"),
        "loss": (
            one_of("auto", "log_loss", "squared_error"),
            "one of ['auto', 'log_loss', 'squared_error']",
        ),
        "solver": (one_of(*SOLVERS), f"one of {list(SOLVERS)}"),
        "alpha": (is_real(0.0), "a real number >= 0"),
        "l1": (is_real(0.0), "a real number >= 0"),
        "batch_size": (lambda v: v == "auto" or is_int(1)(v), "'auto' or an int >= 1"),
        "learning_rate": (one_of(*SCHEDULES), f"one of {list(SCHEDULES)}"),
        "learning_rate_init": (is_real(0.0, open_low=True), "a real number > 0"),
        "lr_decay": (is_real(0.0, 1.0, open_low=True), "a real number in (0, 1]"),
        "lr_step": (is_int(1), "an int >= 1"),
        "power_t": (is_real(0.0), "a real number >= 0"),
        "max_iter": (is_int(1), "an int >= 1"),
        "momentum": (is_real(0.0, 1.0), "a real number in [0, 1]"),
        "beta_1": (is_real(0.0, 1.0, open_high=True), "a real number in [0, 1)"),
        "beta_2": (is_real(0.0, 1.0, open_high=True), "a real number in [0, 1)"),
        "rho": (is_real(0.0, 1.0, open_high=True), "a real number in [0, 1)"),
        "epsilon": (is_real(0.0, open_low=True), "a real number > 0"),
        "tol": (is_real(0.0), "a real number >= 0"),
        "n_iter_no_change": (is_int(1), "an int >= 1"),
        "validation_fraction": (
            is_real(0.0, 1.0, open_low=True, open_high=True),
            "a real number in (0, 1)",
        ),
        "dropout": (_dropout_ok, "a rate in [0, 1) or a list of them, one per hidden layer"),
        "max_norm": (
            lambda v: v is None or is_real(0.0, open_low=True)(v),
            "None or a real number > 0",
        ),
        "init": (one_of(*INITS), f"one of {list(INITS)}"),
        "init_std": (is_real(0.0, open_low=True), "a real number > 0"),
        "leaky_relu_slope": (is_real(0.0), "a real number >= 0"),
        "elu_alpha": (is_real(0.0, open_low=True), "a real number > 0"),
        "dtype": (one_of("float32", "float64"), "'float32' or 'float64'"),
        "divergence_factor": (
            lambda v: v is None or is_real(1.0, open_low=True)(v),
            "None or a real number > 1",
        ),
    }

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        loss: str = "auto",
        solver: str = "adam",
        alpha: float = 1e-4,
        l1: float = 0.0,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        lr_decay: float = 0.5,
        lr_step: int = 10,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        tol: float = 1e-4,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        rho: float = 0.9,
        epsilon: float = 1e-8,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        dropout: float | Sequence[float] = 0.0,
        max_norm: float | None = None,
        init: str = "auto",
        init_std: float = 0.01,
        leaky_relu_slope: float = 0.01,
        elu_alpha: float = 1.0,
        standardize: bool = False,
        dtype: str = "float64",
        divergence_factor: float | None = 10.0,
        epoch_callback: EpochCallback | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.l1 = l1
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.lr_decay = lr_decay
        self.lr_step = lr_step
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.rho = rho
        self.epsilon = epsilon
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.max_norm = max_norm
        self.init = init
        self.init_std = init_std
        self.leaky_relu_slope = leaky_relu_slope
        self.elu_alpha = elu_alpha
        self.standardize = standardize
        self.dtype = dtype
        self.divergence_factor = divergence_factor
        self.epoch_callback = epoch_callback

    # -- hooks for the subclasses --------------------------------------------------------
    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Targets as the float matrix the loss compares the output with."""
        raise NotImplementedError

    def _score_metrics(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Validation metrics (loss and accuracy or R²) for the epoch callback."""
        raise NotImplementedError

    # -- set-up --------------------------------------------------------------------------
    @property
    def _sizes(self) -> tuple[int, ...]:
        h = self.hidden_layer_sizes
        return (h,) if isinstance(h, int) else tuple(h)

    def _activation_parameter(self) -> float:
        if self.activation == "leaky_relu":
            return float(self.leaky_relu_slope)
        return float(self.elu_alpha) if self.activation == "elu" else 0.0

    def _dropout_rates(self) -> list[float]:
        n = len(self._sizes)
        rates = list(self.dropout) if isinstance(self.dropout, Sequence) else [self.dropout] * n
        if len(rates) != n:
            raise ValueError(
                f"{type(self).__name__}: dropout needs one rate per hidden layer ({n}), "
                f"got {self.dropout!r}"
            )
        return [float(r) for r in rates]

    def _init_weights(self, layer_sizes: list[int], rng: np.random.Generator) -> None:
        init = self.init
        if init == "auto":
            init = "he" if self.activation in ("relu", "leaky_relu", "elu") else "glorot_uniform"
        dtype = np.dtype(self.dtype)
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
            if init == "glorot_uniform":
                bound = np.sqrt(6.0 / (fan_in + fan_out))
                W = rng.uniform(-bound, bound, (fan_in, fan_out))
            elif init == "glorot_normal":
                W = rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), (fan_in, fan_out))
            elif init == "he":
                W = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, fan_out))
            else:
                W = rng.normal(0.0, self.init_std, (fan_in, fan_out))
            self.coefs_.append(W.astype(dtype))
            self.intercepts_.append(np.zeros(fan_out, dtype=dtype))

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        # The flat copy would double a pickled model; it is rebuilt from coefs_ on training.
        state.pop("_flat_parameters", None)
        state.pop("_layers", None)
        return state

    def _is_packed(self) -> bool:
        flat = getattr(self, "_flat_parameters", None)
        return flat is not None and all(a.base is flat for a in [*self.coefs_, *self.intercepts_])

    def _packed_parameters(self) -> np.ndarray:
        """The flat array of every layer's [W; b] (the layout of the workspace's gradients),
        whose views are `coefs_` and `intercepts_`; made anew when they are not its views
        any more (fresh weights, best weights restored, a model loaded from a pickle)."""
        if not self._is_packed():
            flat, layers = packed([layer_shape(W) for W in self.coefs_], self.coefs_[0].dtype)
            for layer, W, b in zip(layers, self.coefs_, self.intercepts_, strict=True):
                layer[:-1], layer[-1] = W, b
            self.coefs_ = [layer[:-1] for layer in layers]
            self.intercepts_ = [layer[-1] for layer in layers]
            self._flat_parameters, self._layers = flat, layers
        return self._flat_parameters

    def _layer_weights(self) -> list[np.ndarray]:
        """Each layer's [W; b]: views of the packed parameters, or stacked copies when the
        parameters are not packed (set by hand, loaded), so that predicting changes nothing."""
        if self._is_packed():
            return self._layers
        return [np.vstack([W, b]) for W, b in zip(self.coefs_, self.intercepts_, strict=True)]

    def _prepare_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Validated inputs in the model's dtype, standardised when asked."""
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        return self._standardize(X.astype(self.dtype, copy=False), reset)

    def _prepare_Xy(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets validated together (same length, finite, y given)."""
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            dtype=[np.float64, np.float32],
            multi_output=self._multi_output,
            y_numeric=self._regression,
        )
        return self._standardize(X.astype(self.dtype, copy=False), reset), y

    def _standardize(self, X: np.ndarray, reset: bool) -> np.ndarray:
        if reset:
            if self.standardize:
                self.mean_ = X.mean(axis=0)
                self.scale_ = X.std(axis=0)
                self.scale_[self.scale_ == 0] = 1.0
            else:
                self.mean_ = self.scale_ = None
        if getattr(self, "mean_", None) is not None:
            X = (X - self.mean_) / self.scale_
        return X

    # -- forward and backward ------------------------------------------------------------
    def _workspace(self, batch: int, training: bool = True) -> _Workspace:
        return _Workspace(self.coefs_, batch, self.activation, self._dropout_rates(), training)

    def _forward(
        self,
        X: np.ndarray,
        masks: list[np.ndarray | None] | None = None,
        ws: _Workspace | None = None,
        layers: list[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """Each layer's output for the batch X; the last is the output layer's pre-activation.

        X may carry a last column of ones (`with_ones`), as training's batches do; hidden
        outputs always do, and are after dropout. ``ws`` keeps what the backward pass needs
        (z for activations that read it, the activation before dropout); ``layers`` are
        the `_layer_weights`, when the caller has them already.
        """
        ws = ws if ws is not None else self._workspace(X.shape[0], training=masks is not None)
        m = X.shape[0]
        act = ACTIVATIONS[self.activation]
        param = self._activation_parameter()
        outputs = [X]
        last = len(self.coefs_) - 1
        layers = layers if layers is not None else self._layer_weights()
        for i, (layer, W, b) in enumerate(zip(layers, self.coefs_, self.intercepts_, strict=True)):
            a, z = outputs[-1], ws.z[i][:m]
            product = z[:, :-1] if i < last else z
            if a.shape[1] == layer.shape[0]:  # a has its ones: the bias comes in the product
                matmul_rows(a, layer, out=product)
            else:  # the user's inputs, as given to predict
                matmul_rows(a, W, out=product)
                product += b
            if i < last:
                if act.needs_input and ws.z_in:
                    np.copyto(ws.z_in[i][:m], z)
                act.forward(z, param)
                if not act.keeps_one:
                    z[:, -1] = 1
                if masks is not None and masks[i] is not None:
                    np.copyto(ws.before_dropout[i][:m], z)
                    product *= masks[i]  # inverted dropout: the mask is already 1/(1-p) scaled
            outputs.append(z)
        return outputs

    def _output_loss(self, z: np.ndarray, Y: np.ndarray) -> float:
        """Mean loss over the batch; overwrites z with d loss / d z."""
        m = z.shape[0]
        if self.loss == "squared_error" and self._output != "identity":
            # Squared error on the probabilities: the slow-learning pairing the
            # cross-entropy loss is compared against.
            p = expit(z) if self._output == "sigmoid" else np.exp(log_softmax(z))
            d = p - Y
            loss = 0.5 * float(np.sum(d * d)) / m
            if self._output == "sigmoid":
                z[...] = d * p * (1 - p) / m
            else:
                z[...] = p * (d - np.sum(d * p, axis=1, keepdims=True)) / m
            return loss
        if self._output == "softmax":
            loss = _softmax_cross_entropy(z, Y, m)
        elif self._output == "sigmoid":
            # log(1 + e^z) - y z, written to stay finite for large |z|.
            loss = float(np.sum(np.logaddexp(0, z)) - np.vdot(Y, z)) / m
            expit(z, out=z)
        else:
            z -= Y
            loss = 0.5 * float(np.vdot(z, z)) / m
            z /= m
            return loss
        z -= Y
        z *= 1.0 / m
        return loss

    def _penalty(self, m: int) -> float:
        penalty = 0.0
        if self.alpha:
            penalty += 0.5 * self.alpha * sum(float(np.vdot(W, W)) for W in self.coefs_) / m
        if self.l1:
            penalty += self.l1 * sum(float(np.abs(W).sum()) for W in self.coefs_) / m
        return penalty

    def _loss_and_grads(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        masks: list[np.ndarray | None] | None = None,
        ws: _Workspace | None = None,
        penalty_loss: bool = True,
    ) -> tuple[float, list[np.ndarray]]:
        """Loss and gradients for one batch. The gradients live in the workspace: a fresh one
        unless ``ws`` is given, so callers that keep them across calls pass none. X is given
        as the user's inputs or, as training passes it, already `with_ones`."""
        m = X.shape[0]
        if X.shape[1] == self.coefs_[0].shape[0]:
            X = with_ones(X)  # so that the first layer's gradient includes its bias's
        ws = ws if ws is not None else self._workspace(m)
        layers = self._layer_weights()
        outputs = self._forward(X, masks, ws, layers)
        loss = self._output_loss(outputs[-1], Y)  # outputs[-1] now holds d loss / d z
        if penalty_loss:
            loss += self._penalty(m)
        act = ACTIVATIONS[self.activation]
        param = self._activation_parameter()
        delta = outputs[-1]
        for i in range(len(self.coefs_) - 1, -1, -1):
            W, g, scratch = self.coefs_[i], ws.coef_grads[i], ws.scratch[i]
            if i < len(self.coefs_) - 1:
                delta = delta[:, :-1]  # a hidden layer's: its last column is not a unit's
            # The gradient of [W; b]: the inputs' column of ones sums delta into the bias's.
            matmul_summed(outputs[i], delta, out=ws.layer_grads[i], scratch=scratch)
            if self.alpha:
                add_scaled(g, W, self.alpha / m)
            if self.l1:
                add_scaled(g, np.sign(W, out=scratch[:-1]), self.l1 / m)
            if i == 0:
                break
            previous = matmul_rows(delta, layers[i].T, out=ws.delta[i - 1][:m])
            dropped = masks is not None and masks[i - 1] is not None
            if dropped:
                previous[:, :-1] *= masks[i - 1]
            a = ws.before_dropout[i - 1][:m] if dropped else outputs[i]
            z = ws.z_in[i - 1][:m] if act.needs_input else None
            previous *= act.derivative(z, a, param, ws.derivative[i - 1][:m])
            delta = previous
        return loss, [*ws.coef_grads, *ws.intercept_grads]

    def _raw_output(self, X: np.ndarray) -> np.ndarray:
        return self._forward(X)[-1]

    # -- training ------------------------------------------------------------------------
    def _validation_split(
        self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n_val = max(1, int(round(self.validation_fraction * X.shape[0])))
        if n_val >= X.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: early_stopping needs more samples than the validation "
                f"fraction takes, got {X.shape[0]} samples"
            )
        order = rng.permutation(X.shape[0])
        val, train = order[:n_val], order[n_val:]
        return X[train], y[train], X[val], y[val]

    def _start(self, X: np.ndarray, n_outputs: int, rng: np.random.Generator) -> None:
        check_params(self, self._rules)
        self._dropout_rates()  # validates the per-layer list now, not mid-training
        self._init_weights([X.shape[1], *self._sizes, n_outputs], rng)
        self._flat_parameters = None
        self._optimizer = self._new_optimizer()
        self._rng = rng
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] = []
        self.best_loss_ = np.inf
        self.n_iter_ = 0
        self.t_ = 0
        self._ws = None
        self._initial_loss: float | None = None  # before any update: the divergence rule's base

    def _epoch(self, X: np.ndarray, Y: np.ndarray) -> float:
        """One pass over the data in mini-batches; the mean training loss."""
        rng, n = self._rng, X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)
        if self.shuffle:  # one gather per epoch; batches are then slices
            order = rng.permutation(n)
            kept = getattr(self, "_shuffled", None)
            if kept is None or kept[0].shape != X.shape:
                kept = self._shuffled = np.empty_like(X), np.empty_like(Y)
            # Into arrays kept for the fit: indexing would make the epoch's copy in fresh
            # memory, whose pages cost about as much as the gather on large data (see
            # docs/benchmarks.md). mode="clip" gathers directly ("raise" buffers), and
            # a permutation is always in range.
            X = np.take(X, order, axis=0, out=kept[0], mode="clip")
            Y = np.take(Y, order, axis=0, out=kept[1], mode="clip")
        lr = self._rate(self.n_iter_)
        rates = self._dropout_rates()
        if self._ws is None or self._ws.batch != batch:
            self._ws = self._workspace(batch)
        ws = self._ws
        params, grads = [self._packed_parameters()], [ws.grads]
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for start in range(0, n, batch):
                Xb, Yb = X[start : start + batch], Y[start : start + batch]
                masks = None
                if any(rates):
                    masks = [
                        ((rng.random((len(Xb), size)) >= p) / (1.0 - p)).astype(X.dtype)
                        if p > 0
                        else None
                        for size, p in zip(self._sizes, rates, strict=True)
                    ]
                loss, _ = self._loss_and_grads(Xb, Yb, masks, ws, penalty_loss=False)
                if self._initial_loss is None:  # the untrained model's loss, on one batch
                    self._initial_loss = loss + self._penalty(len(Xb))
                total += loss * len(Xb)
                self._optimizer.step(params, grads, lr)
                if self.max_norm is not None:
                    self._apply_max_norm()
                self.t_ += len(Xb)
            flush_to_zero([*params, *self._optimizer.state])
            # The penalty's share of the loss, once per epoch at the epoch's final weights
            # rather than on every batch: it only feeds the reported curve, not the gradients.
            return total / n + self._penalty(batch)

    def _apply_max_norm(self) -> None:
        for W in self.coefs_:
            norms = np.sqrt(np.einsum("ij,ij->j", W, W))  # each unit's incoming weights
            too_big = norms > self.max_norm
            if too_big.any():
                W[:, too_big] *= self.max_norm / norms[too_big]

    def _check_diverged(self, loss: float) -> None:
        """Raise `DivergenceError` when the epoch's loss or a weight is not finite, or the
        loss exceeds ``divergence_factor`` times the untrained model's (and the factor
        itself: a loss below 1 times 10 is no divergence, as in the source material's rule
        of an error above 10): a diverging network would otherwise return chance-level
        results as if it had trained."""
        finite = np.isfinite(loss) and all(np.isfinite(W).all() for W in self.coefs_)
        factor, initial = self.divergence_factor, self._initial_loss
        if finite and (factor is None or initial is None or loss <= factor * max(initial, 1.0)):
            return
        if not np.isfinite(loss):
            what = f"the training loss became {loss}"
        elif not finite:
            what = "a weight became non-finite"
        else:
            what = (
                f"the training loss {loss:.4g} exceeds {factor:g} times the untrained "
                f"model's {initial:.4g} (or 1)"
            )
        raise DivergenceError(
            f"diverged at epoch {self.n_iter_}: {what} (learning_rate_init="
            f"{self.learning_rate_init:g}, solver={self.solver!r}, alpha={self.alpha:g})"
        )

    def _new_optimizer(self):
        return make_optimizer(
            self.solver,
            [self._packed_parameters()],
            momentum=self.momentum,
            nesterovs_momentum=self.nesterovs_momentum,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            rho=self.rho,
            epsilon=self.epsilon,
        )

    def _rate(self, epoch: int) -> float:
        return scheduled_rate(
            self.learning_rate,
            self.learning_rate_init,
            epoch,
            lr_decay=self.lr_decay,
            lr_step=self.lr_step,
            power_t=self.power_t,
        )

    def training_state(self) -> dict[str, Any]:
        """What training has reached after the last finished epoch: weights, the
        optimiser's state, the random generator's, the curves and counters, the early-
        stopping record. Picklable; ``fit(..., resume_from=state)`` on the same data goes on
        from there exactly as the uninterrupted fit would (bit for bit). Take it in
        ``epoch_callback``, e.g. to checkpoint a long training."""
        if not hasattr(self, "_patience"):
            raise RuntimeError("training_state() is for use during fit, from epoch_callback")
        state = {name: getattr(self, name) for name in _TRAINING_STATE}
        state["_rng"] = self._rng.bit_generator.state
        patience = self._patience
        state["patience"] = (patience.best_score, patience.best_weights, patience.stale)
        return copy.deepcopy(state)  # the live arrays go on changing

    def _resume(self, state: dict[str, Any]) -> None:
        """Put back a `training_state` (after the fit's set-up, which made the same
        validation split and took the same draws as the fit the state comes from)."""
        for name in _TRAINING_STATE:
            setattr(self, name, copy.deepcopy(state[name]))
        self._flat_parameters = None  # pack the restored weights anew
        self._rng.bit_generator.state = state["_rng"]
        best_score, best_weights, stale = copy.deepcopy(state["patience"])
        patience = self._patience
        patience.best_score, patience.best_weights, patience.stale = best_score, best_weights, stale

    def _train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        eval_set: tuple[Any, Any] | None,
        epochs: int,
        *,
        incremental: bool = False,
        resume_from: dict[str, Any] | None = None,
    ) -> None:
        """Run up to ``epochs`` epochs with callbacks, early stopping and divergence checks.

        ``incremental`` (`partial_fit`): no validation split is held out, whatever
        ``early_stopping`` says; one epoch cannot be judged against the next.
        ``resume_from``: a `training_state` to go on from (its epochs count in ``epochs``).
        """
        early_stopping = self.early_stopping and not incremental
        X_val = y_val = None
        if early_stopping:
            X, y, X_val, y_val = self._validation_split(X, y, self._rng)
        elif eval_set is not None:
            X_val, y_val = self._prepare_X(eval_set[0], reset=False), np.asarray(eval_set[1])
        Y = self._encode(y)
        X = with_ones(X)  # once, so that every batch's rows carry their ones
        patience = self._patience = _Patience(self, on_validation=early_stopping)
        if resume_from is not None:
            self._resume(resume_from)
            epochs -= self.n_iter_
        try:
            for _ in range(epochs):
                train_loss = self._epoch(X, Y)
                self.n_iter_ += 1
                self.loss_curve_.append(train_loss)
                self._check_diverged(train_loss)
                metrics = {"train_loss": train_loss, "learning_rate": self._rate(self.n_iter_ - 1)}
                if X_val is not None:
                    metrics.update(self._score_metrics(X_val, y_val))
                    self.validation_scores_.append(metrics["val_score"])
                stop = bool(
                    self.epoch_callback is not None and self.epoch_callback(self.n_iter_, metrics)
                )
                if patience.exhausted(train_loss, metrics.get("val_score")) or stop:
                    break
        finally:  # buffers are for training only: a fitted or diverged model drops them
            self._ws = self._shuffled = None
            del self._patience
        if patience.best_weights is not None:  # early stopping keeps the best epoch's weights
            self.coefs_, self.intercepts_ = patience.best_weights
            self.best_validation_score_ = patience.best_score
            self._optimizer = self._new_optimizer()

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        resume_from: dict[str, Any] | None = None,
    ) -> Self:
        """Train on ``(X, y)``; ``eval_set=(X_val, y_val)`` adds validation metrics per epoch;
        ``resume_from`` (a `training_state`) goes on from a checkpoint of a fit on the same
        data with the same parameters."""
        X, y = self._prepare_Xy(X, y, reset=True)
        y = self._prepare_y(y)
        self._start(X, self._n_outputs(y), np.random.default_rng(self.random_state))
        self._train(X, y, eval_set, self.max_iter, resume_from=resume_from)
        return self

    def _partial_fit(self, X: Any, y: Any) -> BaseMLP:
        first = not hasattr(self, "coefs_")
        X, y = self._prepare_Xy(X, y, reset=first)
        y = self._prepare_y(y, reset=first)
        if first:
            self._start(X, self._n_outputs(y), np.random.default_rng(self.random_state))
        self._train(X, y, None, 1, incremental=True)
        return self

    def _checked_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coefs_")
        return self._prepare_X(X, reset=False)
