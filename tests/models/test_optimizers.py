"""Each optimiser against its textbook update, and the array helpers the updates use."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from models import MLPClassifier, _blas
from models._blas import add_scaled, matmul_rows, matmul_summed, ones, pieces
from models._optimizers import (
    BLOCK,
    SGD,
    Adagrad,
    Adam,
    RMSprop,
    flush_to_zero,
    scheduled_rate,
)


def textbook(solver: str, **h):
    """The update rules as the papers write them, one step at a time, no tricks."""
    state = {}

    def step(p, g, lr, t):
        s = state.setdefault("s", np.zeros_like(p))
        if solver == "sgd":
            p -= lr * g
        elif solver == "momentum":
            s[...] = h["mu"] * s - lr * g
            p += s
        elif solver == "nesterov":
            s[...] = h["mu"] * s - lr * g
            p += h["mu"] * s - lr * g
        elif solver == "adagrad":
            s += g * g
            p -= lr * g / (np.sqrt(s) + h["eps"])
        elif solver == "rmsprop":
            s[...] = h["rho"] * s + (1 - h["rho"]) * g * g
            p -= lr * g / (np.sqrt(s) + h["eps"])
        else:
            v = state.setdefault("v", np.zeros_like(p))
            s[...] = h["b1"] * s + (1 - h["b1"]) * g
            v[...] = h["b2"] * v + (1 - h["b2"]) * g * g
            m_hat, v_hat = s / (1 - h["b1"] ** t), v / (1 - h["b2"] ** t)
            p -= lr * m_hat / (np.sqrt(v_hat) + h["eps"])

    return step


HYPER = dict(mu=0.9, eps=1e-7, rho=0.9, b1=0.9, b2=0.999)


def ours(solver: str, params):
    if solver in ("sgd", "momentum", "nesterov"):
        mu = 0.0 if solver == "sgd" else HYPER["mu"]
        return SGD(params, momentum=mu, nesterov=solver == "nesterov")
    if solver == "adagrad":
        return Adagrad(params, epsilon=HYPER["eps"])
    if solver == "rmsprop":
        return RMSprop(params, rho=HYPER["rho"], epsilon=HYPER["eps"])
    return Adam(params, beta_1=HYPER["b1"], beta_2=HYPER["b2"], epsilon=HYPER["eps"])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
@pytest.mark.parametrize("size", [BLOCK + 1000, 500])  # in blocks, and in one
def test_each_optimiser_follows_its_textbook_update(solver, dtype, size):
    rng = np.random.default_rng(0)
    p = rng.normal(size=size).astype(dtype)
    expected = p.astype(np.float64)
    optimizer, reference = ours(solver, [p]), textbook(solver, **HYPER)
    for t in range(1, 6):
        g = rng.normal(size=p.size).astype(dtype)
        optimizer.step([p], [g.copy()], 0.01)
        reference(expected, g.astype(np.float64), 0.01, t)
    tolerance = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(p, expected, rtol=tolerance * 100, atol=tolerance)


def test_add_scaled_updates_in_place_contiguous_or_not():
    y = np.arange(12.0).reshape(3, 4)
    add_scaled(y, np.ones((3, 4)), 2.0)
    np.testing.assert_array_equal(y, np.arange(12.0).reshape(3, 4) + 2)
    strided = np.zeros((4, 6), np.float32)[:, ::2]  # not contiguous: BLAS cannot take it
    add_scaled(strided, np.ones((4, 3), np.float32), -0.5)
    np.testing.assert_array_equal(strided, np.full((4, 3), -0.5, np.float32))


def test_products_are_split_only_into_small_products_of_enough_rows(monkeypatch):
    monkeypatch.setattr(_blas, "_small_kernels", lambda: True)
    assert pieces(200, 65 * 100) == 2  # a digits batch's first layer, bias row included
    assert pieces(1797, 65 * 100) == 12
    assert pieces(150, 65 * 100) == 1  # small already
    assert pieces(256, 65 * 256) == 1  # its pieces would be thinner than MIN_ROWS
    assert pieces(128, 785 * 500) == 1  # an MNIST-sized layer: BLAS's general path
    monkeypatch.setattr(_blas, "_small_kernels", lambda: False)  # a BLAS without them
    assert pieces(200, 65 * 100) == 1


def test_small_kernels_are_assumed_only_for_numpys_openblas_on_avx512(monkeypatch):
    import threadpoolctl

    detect = _blas._small_kernels.__wrapped__  # not the per-process cached answer
    config = {"Build Dependencies": {"blas": {"name": "scipy-openblas"}}}
    monkeypatch.setattr(np, "show_config", lambda mode=None: config)
    for target, expected in (("SkylakeX", True), ("SapphireRapids", True), ("Haswell", False)):
        found = [{"user_api": "blas", "internal_api": "openblas", "architecture": target}]
        monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda found=found: found)
        assert detect() is expected
    config["Build Dependencies"]["blas"]["name"] = "mkl-rt"  # NumPy on MKL: not its kernels
    assert detect() is False
    monkeypatch.setattr(np, "show_config", lambda mode=None: {})  # a NumPy that does not say
    assert detect() is False


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("small_kernels", [True, False])
@pytest.mark.parametrize("rows", [200, 197, 1797, 40])
def test_products_in_pieces_equal_the_whole_product(monkeypatch, dtype, small_kernels, rows):
    monkeypatch.setattr(_blas, "_small_kernels", lambda: small_kernels)
    rng = np.random.default_rng(0)
    a, w = rng.normal(size=(rows, 65)).astype(dtype), rng.normal(size=(65, 100)).astype(dtype)
    # As training passes them: the hidden layer's output and error are views that leave out
    # the last column of a wider array.
    delta = rng.normal(size=(rows, 101)).astype(dtype)[:, :-1]
    rtol = 1e-5 if dtype == "float32" else 1e-12
    out = np.empty((rows, 101), dtype)[:, :-1]
    assert matmul_rows(a, w, out=out) is out
    np.testing.assert_allclose(out, a @ w, rtol=rtol, atol=rtol)
    grad, scratch = np.empty((65, 100), dtype), np.empty((65, 100), dtype)
    assert matmul_summed(a, delta, out=grad, scratch=scratch) is grad
    np.testing.assert_allclose(grad, a.T @ delta, rtol=rtol, atol=rtol * rows)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_to_zero_zeroes_only_values_below_tiny_over_eps(dtype):
    info = np.finfo(dtype)
    limit = info.tiny / info.eps
    a = np.array([info.tiny / 4, -info.tiny, limit * 0.99, -limit, limit, 1.0, 0.0], dtype)
    flush_to_zero([a])
    np.testing.assert_array_equal(a, np.array([0, 0, 0, -limit, limit, 1.0, 0.0], dtype))


def _subnormal(a: np.ndarray) -> np.ndarray:
    return (a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)


def test_float32_training_keeps_no_subnormal_weights_moments_or_gradients():
    # Digits has pixels that are zero in every image: their weights get only the L2
    # gradient and decay geometrically under Adam; at float32 some turn subnormal within
    # these 150 epochs (32 weights and moments without a flush), and with more epochs they
    # made each epoch up to 2.4 times slower. While a weight is still normal its L2 gradient
    # (alpha / batch times it) may not be: 684 subnormal gradient values over one pass here
    # when only subnormal values were flushed.
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    model = MLPClassifier(
        (100,), dtype="float32", max_iter=150, tol=0.0, n_iter_no_change=300, random_state=0
    )
    model.fit(X, y)
    assert model.n_iter_ == 150
    for a in [*model.coefs_, *model._optimizer.state]:
        assert not _subnormal(a).any()
    ws, Y = model._workspace(200), model._encode(y)
    for start in range(0, len(X), 200):
        model._loss_and_grads(X[start : start + 200], Y[start : start + 200], ws=ws)
        assert not _subnormal(ws.grads).any()


def test_hyperparameters_given_as_numpy_scalars_are_held_as_python_floats():
    # A sampler may hand over np.float64 values. Under NumPy 2's promotion rules such a
    # scalar makes an in-place update of a float32 array run as a float64 loop with casts,
    # about 7 times slower; a Python float keeps the float32 loop.
    p = [np.zeros(4, np.float32)]
    h = {k: np.float64(v) for k, v in dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8).items()}
    held = [
        *vars(Adam(p, **h)).values(),
        *vars(SGD(p, momentum=np.float64(0.9))).values(),
        *vars(RMSprop(p, rho=np.float64(0.9), epsilon=np.float64(1e-8))).values(),
        *vars(Adagrad(p, epsilon=np.float64(1e-8))).values(),
    ]
    scalars = [v for v in held if isinstance(v, (float, np.floating))]
    assert len(scalars) == 7 and all(type(v) is float for v in scalars)
    for schedule in ("constant", "step", "exponential", "invscaling"):
        rate = scheduled_rate(
            schedule, np.float64(0.01), 3, lr_decay=np.float64(0.5), power_t=np.float64(0.5)
        )
        assert type(rate) is float, schedule
        model = MLPClassifier(learning_rate_init=np.float64(0.01), learning_rate=schedule)
        assert type(model._rate(3)) is float, schedule


def test_vectors_of_ones_are_shared_and_read_only():
    assert ones(10, np.float32) is ones(10, np.dtype(np.float32))  # shared
    assert not ones(10, np.float32).flags.writeable
    assert ones(10, np.float32).sum() == 10
