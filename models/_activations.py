"""Hidden-layer activations and their derivatives, computed in place.

``forward(z, p)`` overwrites ``z`` with the activation and returns it; ``derivative(z, a, p,
out)`` writes da/dz into ``out``. Both z (when ``needs_input``) and a are given so each
derivative uses whichever is cheaper: sigmoid and tanh from the output, the ReLU family from
its input. Working in place matters: these run on every batch, and fresh arrays of a few
hundred kilobytes each are what made a training step slow.
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
    forward: Callable[[Array, float], Array]
    derivative: Callable[[Array | None, Array, float, Array], Array]
    needs_input: bool  # whether derivative reads z (then the caller keeps a copy of it)
    # Whether forward maps 1 to 1: a layer's column of ones (its bias input to the next
    # layer) then survives the activation, and need not be written again on every batch.
    keeps_one: bool


def _relu(z: Array, _: float) -> Array:
    return np.maximum(z, 0, out=z)


def _relu_grad(z: Array | None, a: Array, _: float, out: Array) -> Array:
    return np.greater(a, 0, out=out, casting="unsafe")


def _leaky_relu(z: Array, slope: float) -> Array:
    z[z < 0] *= slope
    return z


def _leaky_relu_grad(z: Array, a: Array, slope: float, out: Array) -> Array:
    out.fill(1.0)
    out[z < 0] = slope
    return out


def _elu(z: Array, alpha: float) -> Array:
    negative = z < 0
    z[negative] = alpha * np.expm1(z[negative])
    return z


def _elu_grad(z: Array, a: Array, alpha: float, out: Array) -> Array:
    # For z < 0, d/dz alpha*(e^z - 1) = alpha*e^z = a + alpha.
    out.fill(1.0)
    negative = z < 0
    out[negative] = a[negative] + alpha
    return out


def _tanh(z: Array, _: float) -> Array:
    return np.tanh(z, out=z)


def _tanh_grad(z: Array | None, a: Array, _: float, out: Array) -> Array:
    np.square(a, out=out)  # not multiply(a, a): aliased inputs run twice as slow
    np.subtract(1.0, out, out=out)
    return out


def _sigmoid(z: Array, _: float) -> Array:
    return expit(z, out=z)


def _sigmoid_grad(z: Array | None, a: Array, _: float, out: Array) -> Array:
    np.subtract(1.0, a, out=out)
    out *= a
    return out


def _identity(z: Array, _: float) -> Array:
    return z


def _identity_grad(z: Array | None, a: Array, _: float, out: Array) -> Array:
    out.fill(1.0)
    return out


_ALL = [
    Activation("relu", _relu, _relu_grad, needs_input=False, keeps_one=True),
    Activation("leaky_relu", _leaky_relu, _leaky_relu_grad, needs_input=True, keeps_one=True),
    Activation("elu", _elu, _elu_grad, needs_input=True, keeps_one=True),
    Activation("tanh", _tanh, _tanh_grad, needs_input=False, keeps_one=False),
    Activation("sigmoid", _sigmoid, _sigmoid_grad, needs_input=False, keeps_one=False),
    # scikit-learn's name for the sigmoid
    Activation("logistic", _sigmoid, _sigmoid_grad, needs_input=False, keeps_one=False),
    Activation("identity", _identity, _identity_grad, needs_input=False, keeps_one=True),
]
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _ALL}


def log_softmax(z: Array) -> Array:
    """Row-wise log-softmax; subtracting the row max keeps exp from overflowing."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
