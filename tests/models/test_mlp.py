from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.model_selection import train_test_split

from models import DivergenceError, MLPClassifier, MLPRegressor


def _numeric_grads(model, X, Y, masks, eps=1e-6):
    grads = []
    for p in [*model.coefs_, *model.intercepts_]:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = model._loss_and_grads(X, Y, masks)[0]
            p[i] = old - eps
            down = model._loss_and_grads(X, Y, masks)[0]
            p[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def _check_gradients(model, X, y, masks=None):
    model.set_params(max_iter=1, random_state=0).fit(X, y)
    # Move weights off zero so that |W| (L1) and the ReLU kink are differentiable here.
    for W in model.coefs_:
        W += np.where(np.abs(W) < 1e-3, 0.01, 0.0)
    Y = model._encode(model._prepare_y(y, reset=False))
    _, analytic = model._loss_and_grads(X, Y, masks)
    for a, n in zip(analytic, _numeric_grads(model, X, Y, masks), strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-7)


RNG = np.random.default_rng(0)
X_SMALL = RNG.normal(size=(7, 4))
Y3 = np.array([0, 1, 2, 0, 1, 2, 1])


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize(("alpha", "l1"), [(0.0, 0.0), (0.3, 0.0), (0.0, 0.2)])
def test_gradients_every_activation_and_penalty(activation, alpha, l1):
    model = MLPClassifier(
        (5, 4), activation=activation, alpha=alpha, l1=l1, leaky_relu_slope=0.1, elu_alpha=0.7
    )
    _check_gradients(model, X_SMALL, Y3)


@pytest.mark.parametrize(
    ("model", "y"),
    [
        (MLPClassifier((5,), activation="tanh"), Y3),  # softmax + cross-entropy
        (MLPClassifier((5,), activation="tanh"), Y3 % 2),  # sigmoid + binary cross-entropy
        (MLPClassifier((5,), activation="tanh", loss="squared_error"), Y3),
        (MLPClassifier((5,), activation="tanh", loss="squared_error"), Y3 % 2),
        (MLPRegressor((5,), activation="tanh"), RNG.normal(size=7)),  # squared error
        (MLPRegressor((5,), activation="tanh"), RNG.normal(size=(7, 3))),  # multi-output
        (MLPClassifier((), activation="tanh"), Y3),  # no hidden layer
    ],
)
def test_gradients_every_loss(model, y):
    _check_gradients(model, X_SMALL, y)


def test_gradients_with_a_fixed_dropout_mask():
    model = MLPClassifier((6, 5), activation="elu", dropout=[0.5, 0.3])
    rng = np.random.default_rng(1)
    masks = [(rng.random((7, 6)) >= 0.5) / 0.5, (rng.random((7, 5)) >= 0.3) / 0.7]
    assert 0 < masks[0].mean() and (masks[0] == 0).any()
    _check_gradients(model, X_SMALL, Y3, masks)


def test_hand_worked_two_layer_example():
    # x = (1, 2) -> one ReLU unit -> one linear output, target 1.
    model = MLPRegressor((1,), activation="relu", alpha=0.0, max_iter=1).fit([[1.0, 2.0]], [1.0])
    model.coefs_ = [np.array([[0.5], [-0.25]]), np.array([[2.0]])]
    model.intercepts_ = [np.array([0.1]), np.array([0.3])]
    # z1 = 0.5 - 0.5 + 0.1 = 0.1, a1 = 0.1; z2 = 2 * 0.1 + 0.3 = 0.5; loss = (0.5 - 1)^2 / 2.
    loss, grads = model._loss_and_grads(np.array([[1.0, 2.0]]), np.array([[1.0]]))
    assert loss == pytest.approx(0.125)
    # dL/dz2 = -0.5: dW2 = a1 * -0.5, db2 = -0.5; dL/dz1 = -0.5 * 2 * 1 = -1: dW1 = x * -1.
    dW1, dW2, db1, db2 = grads
    np.testing.assert_allclose(dW2, [[-0.05]])
    np.testing.assert_allclose(db2, [-0.5])
    np.testing.assert_allclose(dW1, [[-1.0], [-2.0]])
    np.testing.assert_allclose(db1, [-1.0])
    assert model.predict([[1.0, 2.0]]) == pytest.approx([0.5])


TEXTBOOK = {
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.1 * z),
    "elu": lambda z: np.where(z > 0, z, 0.7 * np.expm1(z)),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "identity": lambda z: z,
}


@pytest.mark.parametrize("activation", list(TEXTBOOK))
def test_training_and_prediction_compute_the_textbook_forward_pass(activation):
    # Training multiplies each layer's [W; b] with inputs that carry a column of ones; both it
    # and prediction must compute a = f(a_prev @ W + b), whatever f does to a one.
    model = MLPClassifier(
        (5, 4), activation=activation, leaky_relu_slope=0.1, elu_alpha=0.7, max_iter=3
    ).fit(X_SMALL, Y3)
    for b in model.intercepts_:
        b += 0.5  # biases clearly off zero, so that a bias input other than one shows
    a = X_SMALL
    for W, b in zip(model.coefs_[:-1], model.intercepts_[:-1], strict=True):
        a = TEXTBOOK[activation](a @ W + b)
    logits = a @ model.coefs_[-1] + model.intercepts_[-1]
    np.testing.assert_allclose(model._raw_output(X_SMALL), logits, rtol=1e-10)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    Y = model._encode(Y3)
    loss, _ = model._loss_and_grads(X_SMALL, Y, penalty_loss=False)
    assert loss == pytest.approx(-np.mean(np.sum(Y * log_p, axis=1)), rel=1e-10)


def test_and_is_learned_faster_with_cross_entropy_than_squared_error():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 0, 0, 1])

    def epochs_to_learn(loss):
        model = MLPClassifier(
            (),
            loss=loss,
            solver="sgd",
            momentum=0.0,
            learning_rate_init=0.5,
            batch_size=4,
            max_iter=1,
            init="normal",
            init_std=0.01,
            shuffle=False,
            random_state=0,
        )
        for epoch in range(1, 5001):
            model.partial_fit(X, y, classes=[0, 1])
            if model.predict_proba(X)[np.arange(4), y].min() > 0.9:
                return epoch
        return np.inf

    ce, se = epochs_to_learn("log_loss"), epochs_to_learn("squared_error")
    assert ce < se / 2, (ce, se)


@pytest.mark.slow
@pytest.mark.slow
def test_xor_is_learned_far_more_often_with_ten_hidden_units_than_two():
    seeds = 25
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])

    def success_rate(units):
        # The textbook's setting: 10,000 plain SGD steps, one sample per step.
        # 25 seeds: measured 0.48 with two units and 1.0 with ten (0.54 and 1.0 over 50).
        learned = 0
        for seed in range(seeds):
            model = MLPClassifier(
                (units,),
                activation="tanh",
                solver="sgd",
                momentum=0.0,
                alpha=0.0,
                learning_rate_init=0.1,
                batch_size=1,
                max_iter=2500,
                n_iter_no_change=2500,
                random_state=seed,
            )
            learned += model.fit(X, y).score(X, y) == 1.0
        return learned / seeds

    two, ten = success_rate(2), success_rate(10)
    assert ten >= 0.9 and ten > two + 0.15, (two, ten)


def test_digits_reaches_097_test_accuracy():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.2, random_state=0, stratify=y
    )
    model = MLPClassifier((128,), learning_rate_init=3e-3, max_iter=60, random_state=0)
    assert model.fit(X_train, y_train).score(X_test, y_test) >= 0.97


def test_diabetes_regression_reaches_a_sensible_r2():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    model = MLPRegressor(
        (16,),
        learning_rate_init=0.01,
        alpha=1.0,
        batch_size=32,
        max_iter=150,
        n_iter_no_change=150,
        standardize=True,
        random_state=0,
    )
    model.fit(X_train, y_train / 100)
    assert model.score(X_test, y_test / 100) >= 0.35  # linear regression gets about 0.36


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
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    assert set(model.predict(X)) <= set(model.classes_)
    assert model.n_features_in_ == 4 and len(model.loss_curve_) == model.n_iter_


def test_string_labels_and_two_classes():
    X, y = load_iris(return_X_y=True)
    keep = y < 2
    labels = np.where(y[keep] == 0, "setosa", "versicolor")
    model = MLPClassifier(
        (4,), learning_rate_init=0.01, standardize=True, max_iter=200, random_state=0
    ).fit(X[keep], labels)
    assert model.score(X[keep], labels) >= 0.98
    assert model.predict_proba(X[keep]).shape == (keep.sum(), 2)
    assert model.coefs_[-1].shape == (4, 1)  # one sigmoid output unit


def test_same_seed_same_model_and_shuffling_changes_it():
    X, y = load_iris(return_X_y=True)

    def fit(**kw):
        return MLPClassifier((6,), batch_size=16, max_iter=20, random_state=3, **kw).fit(X, y)

    np.testing.assert_array_equal(fit().coefs_[0], fit().coefs_[0])
    assert not np.array_equal(fit().coefs_[0], fit(shuffle=False).coefs_[0])


def test_softmax_is_stable_for_huge_logits():
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((3,), max_iter=1, random_state=0).fit(X, y)
    model.coefs_[-1] *= 1e6
    assert np.isfinite(model.predict_proba(X)).all()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_loss_is_exact_when_one_rows_logits_lie_far_below_anothers(dtype):
    # The loss shifts the logits by the batch's largest; a row far below it would
    # underflow to a zero total, so that case must fall back to each row's own max.
    model = MLPClassifier(dtype=dtype)  # softmax output, cross-entropy loss
    z = np.array([[1000.0, 0.0, -5.0], [0.0, 1.0, 2.0], [3.0, 2.0, 1.0]], dtype)
    Y = np.eye(3, dtype=dtype)[[0, 2, 1]]
    shifted = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = model._output_loss(z, Y)
    assert loss == pytest.approx(-(Y * log_p).sum() / 3, rel=1e-6)
    np.testing.assert_allclose(z, (np.exp(log_p) - Y) / 3, atol=1e-7)


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
    assert set(seen[0][1]) == {
        "train_loss",
        "learning_rate",
        "val_loss",
        "val_accuracy",
        "val_score",
    }


def test_early_stopping_restores_the_best_weights():
    X, y = load_digits(return_X_y=True)
    scores, snapshots = [], []
    model = MLPClassifier(
        (32,),
        learning_rate_init=0.05,
        early_stopping=True,
        max_iter=200,
        n_iter_no_change=5,
        random_state=0,
    )

    def record(epoch, metrics):
        scores.append(metrics["val_score"])
        snapshots.append([W.copy() for W in model.coefs_])

    model.set_params(epoch_callback=record).fit(X / 16.0, y)
    assert model.n_iter_ < 200  # patience ran out
    best = int(np.argmax(scores))
    assert model.best_validation_score_ == scores[best]
    assert model.n_iter_ - 1 - best >= 5  # trained past the best epoch, then went back to it
    for W, W_best in zip(model.coefs_, snapshots[best], strict=True):
        np.testing.assert_array_equal(W, W_best)


@pytest.mark.parametrize("schedule", ["constant", "step", "exponential", "invscaling"])
def test_learning_rate_schedules(schedule):
    X, y = load_iris(return_X_y=True)
    rates = []
    MLPClassifier(
        (4,),
        solver="sgd",
        learning_rate=schedule,
        learning_rate_init=0.1,
        lr_decay=0.5,
        lr_step=2,
        power_t=1.0,
        max_iter=4,
        n_iter_no_change=10,
        random_state=0,
        epoch_callback=lambda e, m: rates.append(m["learning_rate"]),
    ).fit(X, y)
    expected = {
        "constant": [0.1] * 4,
        "step": [0.1, 0.1, 0.05, 0.05],
        "exponential": [0.1, 0.05, 0.025, 0.0125],
        "invscaling": [0.1, 0.05, 0.1 / 3, 0.025],
    }
    np.testing.assert_allclose(rates, expected[schedule])


def test_max_norm_caps_each_units_incoming_weights():
    X, y = load_digits(return_X_y=True)
    model = MLPClassifier(
        (20,), learning_rate_init=0.05, max_norm=0.5, max_iter=5, random_state=0
    ).fit(X / 16.0, y)
    for W in model.coefs_:
        assert np.linalg.norm(W, axis=0).max() <= 0.5 + 1e-9


def test_float32_end_to_end():
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((8,), dtype="float32", max_iter=50, random_state=0).fit(X, y)
    assert all(W.dtype == np.float32 for W in model.coefs_)
    assert model.predict_proba(X).dtype == np.float32


def test_partial_fit_trains_one_epoch_per_call():
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((8,), random_state=0)
    for _ in range(3):
        model.partial_fit(X, y, classes=np.unique(y))
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    with pytest.raises(ValueError, match="labels not seen"):
        model.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match=r"labels not in classes: \[2\]"):
        MLPClassifier((8,)).partial_fit(X, y, classes=[0, 1])


@pytest.mark.parametrize("labels", [["b"], ["b", "a"], ["c", "a", "b", "d"], [3, -1, 7]])
def test_targets_are_encoded_as_scikit_learns_label_binarizer_does(labels):
    from sklearn.preprocessing import LabelBinarizer

    y = np.array(labels * 5)[np.random.default_rng(0).permutation(5 * len(labels))]
    model = MLPClassifier(dtype="float32")
    model._prepare_y(y)
    expected = LabelBinarizer().fit(y).transform(y)
    if len(labels) == 1:  # LabelBinarizer gives a column of zeros there too
        assert not expected.any()
    Y = model._encode(y)
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(Y, expected)


@pytest.mark.parametrize(
    "y",
    [
        np.array([3, -1, 7, 3], np.int64),
        np.array([2, 0, 2], np.uint8),
        np.array([True, False, True]),
        np.array([1.0, 0.0, 2.0]),
        np.array(["b", "a", "b"]),
        np.array(["b", "a"], dtype=object),
    ],
)
def test_classes_are_scikit_learns_unique_labels_for_every_kind_of_label(y):
    # Integer labels skip scikit-learn's checks (they cannot fail); the classes must not
    # change for it, nor their dtype.
    from sklearn.utils.multiclass import unique_labels

    model = MLPClassifier()
    model._prepare_y(y)
    expected = unique_labels(y)
    assert model.classes_.dtype == expected.dtype
    np.testing.assert_array_equal(model.classes_, expected)


def test_continuous_or_mixed_labels_are_refused():
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        MLPClassifier().fit(X, [0.5, 1.5, 2.0])
    with pytest.raises(ValueError, match="Unknown label type: unknown"):  # str and int mixed
        MLPClassifier().fit(X, np.array([1, "a", 2], dtype=object))


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_training_continues_the_same_across_a_pickle(solver):
    # The weights are views of one flat array the optimiser updates; a pickled model has
    # plain arrays, which training must take up again with the optimiser's state intact.
    import pickle

    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(8, 5), solver=solver, momentum=0.9, random_state=0)
    straight = MLPClassifier(**kw)
    resumed = MLPClassifier(**kw)
    straight.partial_fit(X, y, classes=np.unique(y))
    resumed.partial_fit(X, y, classes=np.unique(y))
    resumed = pickle.loads(pickle.dumps(resumed))
    assert "_flat_parameters" not in resumed.__dict__  # the pickle holds each weight once
    for _ in range(3):
        straight.partial_fit(X, y)
        resumed.partial_fit(X, y)
    after = [*resumed.coefs_, *resumed.intercepts_]
    for a, b in zip([*straight.coefs_, *straight.intercepts_], after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_after_early_stopping_updates_the_restored_weights():
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((8,), early_stopping=True, max_iter=30, random_state=0).fit(X, y)
    before = [W.copy() for W in model.coefs_]
    model.partial_fit(X, y)
    assert all(not np.array_equal(W, b) for W, b in zip(model.coefs_, before, strict=True))


def test_standardize_uses_training_statistics():
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier(
        (8,), standardize=True, learning_rate_init=0.01, batch_size=16, max_iter=100, random_state=0
    ).fit(X * 100, y)
    np.testing.assert_allclose(model.mean_, (X * 100).mean(axis=0))
    assert model.score(X * 100, y) > 0.9


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
    with pytest.raises(
        DivergenceError, match=r"diverged at epoch \d+: .*learning_rate_init=1e\+06"
    ):
        model.fit(X, y)
    # Nor does the failed model keep its training buffers (a shuffled copy of the data).
    assert model._ws is None and model._shuffled is None


def test_a_fitted_model_keeps_no_copy_of_its_training_data():
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    assert model._ws is None and model._shuffled is None
    model.partial_fit(X, y)
    assert model._ws is None and model._shuffled is None


@pytest.mark.parametrize(
    ("param", "value", "rule"),
    [
        ("activation", "swish", "activation must be one of"),
        ("solver", "lbfgs", "solver must be one of"),
        ("learning_rate_init", 0.0, "learning_rate_init must be a real number > 0, got 0.0"),
        ("hidden_layer_sizes", (10, 0), r"hidden_layer_sizes must be a tuple of positive ints"),
        ("batch_size", 0, "batch_size must be 'auto' or an int >= 1, got 0"),
        ("dropout", 1.0, r"dropout must be a rate in \[0, 1\)"),
        ("dropout", [0.1, 0.2], r"dropout needs one rate per hidden layer \(1\)"),
        ("dtype", "float16", "dtype must be 'float32' or 'float64', got 'float16'"),
    ],
)
def test_bad_parameters_are_refused_in_fit(param, value, rule):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=rule):
        MLPClassifier(**{param: value}).fit(X, y)


def test_partial_fit_leaves_the_early_stopping_setting_alone_even_when_training_fails():
    X, y = load_iris(return_X_y=True)
    seen = []

    def callback(epoch, metrics):
        seen.append(model.early_stopping)
        if epoch == 2:
            raise RuntimeError("stopped from the callback")

    model = MLPClassifier((4,), early_stopping=True, epoch_callback=callback)
    model.partial_fit(X, y, classes=[0, 1, 2])  # one epoch on all of X: no held-out split
    assert seen == [True] and model.validation_scores_ == []
    with pytest.raises(RuntimeError, match="from the callback"):
        model.partial_fit(X, y)
    assert seen == [True, True] and model.early_stopping is True


def test_the_output_layer_is_derived_from_the_classes_not_stored_per_instance():
    X, y = load_iris(return_X_y=True)
    binary = MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y == 2)
    multi = MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)
    assert "_output" not in vars(binary) and "_output" not in vars(multi)
    assert binary._output == "sigmoid" and multi._output == "softmax"
    assert binary.predict_proba(X).shape == (150, 2) and multi.predict_proba(X).shape == (150, 3)


def test_a_loss_far_above_the_untrained_models_stops_training_as_diverged():
    # The source material aborts training when the error exceeds a bound; a finite but
    # exploding loss (1e10 here) must not come back as a chance-level result.
    X, y = load_digits(return_X_y=True)
    model = MLPClassifier((50,), learning_rate_init=1e4, max_iter=20, random_state=0)
    with pytest.raises(DivergenceError) as caught:
        model.fit(X / 16, y)
    message = str(caught.value)
    assert message.startswith("diverged at epoch 1: the training loss ")
    assert "exceeds 10 times the untrained model's 2." in message  # about log(10) = 2.3
    # The same network at a sane rate trains; without the rule the bad one runs to the end.
    assert (
        MLPClassifier((50,), learning_rate_init=0.01, max_iter=20, random_state=0)
        .fit(X / 16, y)
        .score(X / 16, y)
        > 0.9
    )
    unguarded = MLPClassifier(
        (50,), learning_rate_init=1e4, max_iter=5, random_state=0, divergence_factor=None
    ).fit(X / 16, y)
    assert unguarded.n_iter_ == 5 and unguarded.loss_curve_[0] > 1e6


def test_divergence_factor_is_validated():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="divergence_factor"):
        MLPClassifier(divergence_factor=0.5).fit(X, y)
