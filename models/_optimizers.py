"""Gradient-descent updates on lists of parameter arrays, applied in place.

Each optimiser keeps only its state arrays; the learning rate is passed to every `step`
so that schedules stay outside the optimisers. Hyperparameters are held as Python floats:
under NumPy 2's promotion rules a NumPy float64 scalar (what a sampler may hand over) turns
an operation on a float32 array into a float64 one with casts, about 7 times slower.
"""

from __future__ import annotations

import math

import numpy as np

from models._blas import add_scaled

Arrays = list[np.ndarray]


BLOCK = 65536  # elements per block: a block of each state array stays in cache across passes


def _blocks(*arrays: np.ndarray):
    """Aligned flat slices of equally shaped arrays, in cache-sized blocks.

    An update of several passes (Adam's ten) over weights that do not fit in cache is
    limited by memory traffic; done block by block, each block is read from memory once.
    """
    flat = [a.reshape(-1) for a in arrays]  # views: parameters and state are contiguous
    n = flat[0].size
    if n <= BLOCK:  # a small network's: one block, without slicing each array again
        yield n, flat
        return
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        yield stop - start, [f[start:stop] for f in flat]


def flush_to_zero(arrays: Arrays) -> None:
    """Set values too small to matter to zero, in place: those below the dtype's smallest
    normal number divided by its epsilon (about 1e-31 at float32).

    Weights that no gradient reaches but the L2 penalty (inputs that are always zero, units
    that never fire) decay geometrically under Adam, and so do their moments; arithmetic on
    subnormal numbers is many times slower on x86. Without a flush, a digits epoch at
    float32 took 2.4 times as long by epoch 300. Flushing only subnormal values is not
    enough: the L2 gradient of a weight just above the smallest normal number (alpha / batch
    times it) is subnormal, and so is the Adam update computed from it. A value below this
    threshold is lost next to any term larger than about 1e-24 (2 tiny / eps**2 at float32),
    and zero is what these values are heading to anyway.
    """
    for a in arrays:
        info = np.finfo(a.dtype)
        small = np.abs(a) < info.tiny / info.eps
        if small.any():
            a[small] = 0


class SGD:
    """Plain, momentum or Nesterov-momentum gradient descent."""

    def __init__(self, params: Arrays, *, momentum: float = 0.0, nesterov: bool = False) -> None:
        self.momentum, self.nesterov = float(momentum), nesterov
        self.velocities = [np.zeros_like(p) for p in params] if momentum > 0 else []
        self.state = self.velocities

    def step(self, params: Arrays, grads: Arrays, lr: float) -> None:
        if not self.velocities:
            for p, g in zip(params, grads, strict=True):
                add_scaled(p, g, -lr)
            return
        mu = self.momentum
        for p, g, v in zip(params, grads, self.velocities, strict=True):
            for _, (p_, g_, v_) in _blocks(p, g, v):
                v_ *= mu
                add_scaled(v_, g_, -lr)
                if self.nesterov:  # look ahead along the new velocity (Sutskever et al., 2013)
                    add_scaled(p_, v_, mu)
                    add_scaled(p_, g_, -lr)
                else:
                    p_ += v_


class Adagrad:
    """Per-weight steps shrinking with the sum of squared gradients (Duchi et al., 2011)."""

    def __init__(self, params: Arrays, *, epsilon: float) -> None:
        self.epsilon = float(epsilon)
        self.sums = [np.zeros_like(p) for p in params]
        self.state = self.sums
        self.scratch = np.empty(BLOCK, params[0].dtype)

    def step(self, params: Arrays, grads: Arrays, lr: float) -> None:
        for p, g, s in zip(params, grads, self.sums, strict=True):
            for n, (p_, g_, s_) in _blocks(p, g, s):
                t = np.square(g_, out=self.scratch[:n])
                s_ += t
                np.sqrt(s_, out=t)
                t += self.epsilon
                np.divide(g_, t, out=t)
                add_scaled(p_, t, -lr)


class RMSprop:
    """Steps scaled by a running average of squared gradients (Tieleman & Hinton, 2012)."""

    def __init__(self, params: Arrays, *, rho: float, epsilon: float) -> None:
        self.rho, self.epsilon = float(rho), float(epsilon)
        self.averages = [np.zeros_like(p) for p in params]
        self.state = self.averages
        self.scratch = np.empty(BLOCK, params[0].dtype)

    def step(self, params: Arrays, grads: Arrays, lr: float) -> None:
        rho = self.rho
        for p, g, a in zip(params, grads, self.averages, strict=True):
            for n, (p_, g_, a_) in _blocks(p, g, a):
                t = np.square(g_, out=self.scratch[:n])
                a_ *= rho
                add_scaled(a_, t, 1 - rho)
                np.sqrt(a_, out=t)
                t += self.epsilon
                np.divide(g_, t, out=t)
                add_scaled(p_, t, -lr)


class Adam:
    """Adam (Kingma & Ba, 2015).

    The moments are kept unscaled (m' = m / (1 - beta_1), v' = v / (1 - beta_2)) and the
    constants folded into the step size: the same update in two fewer passes over the
    weights, which is what a step costs on wide layers.
    """

    def __init__(self, params: Arrays, *, beta_1: float, beta_2: float, epsilon: float) -> None:
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.state = [*self.m, *self.v]
        self.scratch = np.empty(BLOCK, params[0].dtype)

    def step(self, params: Arrays, grads: Arrays, lr: float) -> None:
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        # p -= lr * m_hat / (sqrt(v_hat) + eps), with m_hat = (1-b1) m' / (1-b1^t) and
        # v_hat = (1-b2) v' / (1-b2^t), rewritten in terms of m' and v'.
        root = math.sqrt((1 - b2) / (1 - b2**self.t))
        step = lr * (1 - b1) / (1 - b1**self.t) / root
        eps = self.epsilon / root
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            for n, (p_, g_, m_, v_) in _blocks(p, g, m, v):
                # square, not multiply(g, g): that one's aliased inputs run twice as slow.
                t = np.square(g_, out=self.scratch[:n])
                v_ *= b2
                v_ += t
                m_ *= b1
                m_ += g_
                np.sqrt(v_, out=t)
                t += eps
                np.divide(m_, t, out=t)
                add_scaled(p_, t, -step)


SOLVERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def make_optimizer(
    solver: str,
    params: Arrays,
    *,
    momentum: float,
    nesterovs_momentum: bool,
    beta_1: float,
    beta_2: float,
    rho: float,
    epsilon: float,
):
    """The optimiser named ``solver`` over ``params``, with the settings it uses (the
    estimator's parameters of the same names, whose defaults are the estimator's)."""
    if solver == "sgd":  # scikit-learn's: momentum and nesterovs_momentum apply
        return SGD(params, momentum=momentum, nesterov=nesterovs_momentum)
    if solver == "momentum":
        return SGD(params, momentum=momentum, nesterov=False)
    if solver == "nesterov":
        return SGD(params, momentum=momentum, nesterov=True)
    if solver == "adagrad":
        return Adagrad(params, epsilon=epsilon)
    if solver == "rmsprop":
        return RMSprop(params, rho=rho, epsilon=epsilon)
    if solver == "adam":
        return Adam(params, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")


SCHEDULES = ("constant", "step", "exponential", "invscaling")


def scheduled_rate(
    schedule: str,
    lr0: float,
    epoch: int,
    *,
    lr_decay: float = 0.5,
    lr_step: int = 10,
    power_t: float = 0.5,
) -> float:
    """Learning rate for ``epoch`` (0-based) under ``schedule``, from the initial ``lr0``."""
    if schedule == "step":
        rate = lr0 * lr_decay ** (epoch // lr_step)
    elif schedule == "exponential":
        rate = lr0 * lr_decay**epoch
    elif schedule == "invscaling":
        rate = lr0 / (epoch + 1) ** power_t
    else:
        rate = lr0
    return float(rate)
