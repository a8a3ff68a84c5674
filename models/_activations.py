"""Hidden-layer activations, each with its derivative written in terms of its output."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit

Array = np.ndarray


def _relu(z: Array) -> Array:
    return np.maximum(z, 0, out=z)


def _tanh(z: Array) -> Array:
    return np.tanh(z, out=z)


def _sigmoid(z: Array) -> Array:
    return expit(z, out=z)


def _identity(z: Array) -> Array:
    return z


# Derivatives from the activation's output a, so the forward pass need not keep z.
def _relu_grad(a: Array) -> Array:
    return (a > 0).astype(a.dtype)


def _tanh_grad(a: Array) -> Array:
    return 1.0 - a * a


def _sigmoid_grad(a: Array) -> Array:
    return a * (1.0 - a)


def _identity_grad(a: Array) -> Array:
    return np.ones_like(a)


ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "relu": (_relu, _relu_grad),
    "tanh": (_tanh, _tanh_grad),
    "logistic": (_sigmoid, _sigmoid_grad),  # scikit-learn's name
    "sigmoid": (_sigmoid, _sigmoid_grad),
    "identity": (_identity, _identity_grad),
}


def log_softmax(z: Array) -> Array:
    """Row-wise log-softmax; subtracting the row max keeps exp from overflowing."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
