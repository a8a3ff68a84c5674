"""Hidden-layer activations and their derivatives.

Each activation is a pair ``(f(z), f'(z) given (z, a=f(z)))``: passing both lets each derivative
use whichever is cheaper (sigmoid and tanh from the output, the ReLU family from the input).
Forward functions may overwrite ``z``: the caller keeps a copy only when the derivative needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    name: str
    forward: Callable[[Array, float], Array]  # (z, parameter) -> a
    derivative: Callable[[Array, Array, float], Array]  # (z, a, parameter) -> da/dz
    needs_input: bool  # whether derivative reads z (then z must be kept)


def _relu(z: Array, _: float) -> Array:
    return np.maximum(z, 0, out=z)


def _relu_grad(z: Array, a: Array, _: float) -> Array:
    return (a > 0).astype(a.dtype)


def _leaky_relu(z: Array, slope: float) -> Array:
    return np.where(z > 0, z, slope * z)


def _leaky_relu_grad(z: Array, a: Array, slope: float) -> Array:
    return np.where(z > 0, 1.0, slope).astype(a.dtype)


def _elu(z: Array, alpha: float) -> Array:
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


def _elu_grad(z: Array, a: Array, alpha: float) -> Array:
    # For z <= 0, d/dz alpha*(e^z - 1) = alpha*e^z = a + alpha.
    return np.where(z > 0, 1.0, a + alpha).astype(a.dtype)


def _tanh(z: Array, _: float) -> Array:
    return np.tanh(z, out=z)


def _tanh_grad(z: Array, a: Array, _: float) -> Array:
    return 1.0 - a * a


def _sigmoid(z: Array, _: float) -> Array:
    return expit(z, out=z)


def _sigmoid_grad(z: Array, a: Array, _: float) -> Array:
    return a * (1.0 - a)


def _identity(z: Array, _: float) -> Array:
    return z


def _identity_grad(z: Array, a: Array, _: float) -> Array:
    return np.ones_like(a)


_ALL = [
    Activation("relu", _relu, _relu_grad, needs_input=False),
    Activation("leaky_relu", _leaky_relu, _leaky_relu_grad, needs_input=True),
    Activation("elu", _elu, _elu_grad, needs_input=True),
    Activation("tanh", _tanh, _tanh_grad, needs_input=False),
    Activation("sigmoid", _sigmoid, _sigmoid_grad, needs_input=False),
    Activation("logistic", _sigmoid, _sigmoid_grad, needs_input=False),  # scikit-learn's name
    Activation("identity", _identity, _identity_grad, needs_input=False),
]
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _ALL}


def log_softmax(z: Array) -> Array:
    """Row-wise log-softmax; subtracting the row max keeps exp from overflowing."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
