"""Gradient-descent updates on lists of parameter arrays, applied in place.

Each optimiser keeps only its state arrays; the learning rate is passed to every `step`
so that schedules stay outside the optimisers.
"""

from __future__ import annotations

import numpy as np

Arrays = list[np.ndarray]


class SGD:
    """Plain, momentum or Nesterov-momentum gradient descent."""

    def __init__(self, params: Arrays, *, momentum: float = 0.0, nesterov: bool = False) -> None:
        self.momentum, self.nesterov = momentum, nesterov
        self.velocities = [np.zeros_like(p) for p in params] if momentum > 0 else []

    def step(self, params: Arrays, grads: Arrays, lr: float) -> None:
        if not self.velocities:
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
            return
        mu = self.momentum
        for p, g, v in zip(params, grads, self.velocities, strict=True):
            v *= mu
            v -= lr * g
            if self.nesterov:  # look ahead along the new velocity (Sutskever et al., 2013)
                p += mu * v - lr * g
            else:
                p += v


class Adagrad:
    """Per-weight steps shrinking with the sum of squared gradients (Duchi et al., 2011)."""

    def __init__(self, params: Arrays, *, epsilon: float) -> None:
        self.epsilon = epsilon
        self.sums = [np.zeros_like(p) for p in params]

    def step(self, params: Arrays, grads: Arrays, lr: float) -> None:
        for p, g, s in zip(params, grads, self.sums, strict=True):
            s += g * g
            p -= lr * g / (np.sqrt(s) + self.epsilon)


class RMSprop:
    """Steps scaled by a running average of squared gradients (Tieleman & Hinton, 2012)."""

    def __init__(self, params: Arrays, *, rho: float, epsilon: float) -> None:
        self.rho, self.epsilon = rho, epsilon
        self.averages = [np.zeros_like(p) for p in params]

    def step(self, params: Arrays, grads: Arrays, lr: float) -> None:
        rho = self.rho
        for p, g, a in zip(params, grads, self.averages, strict=True):
            a *= rho
            a += (1 - rho) * g * g
            p -= lr * g / (np.sqrt(a) + self.epsilon)


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction folded into the step size."""

    def __init__(self, params: Arrays, *, beta_1: float, beta_2: float, epsilon: float) -> None:
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params: Arrays, grads: Arrays, lr: float) -> None:
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        step = lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= step * m / (np.sqrt(v) + self.epsilon)


SOLVERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def make_optimizer(est, params: Arrays):
    """The optimiser named by ``est.solver``, configured from the estimator's parameters."""
    solver = est.solver
    if solver == "sgd":  # scikit-learn's: momentum and nesterovs_momentum apply
        return SGD(params, momentum=est.momentum, nesterov=est.nesterovs_momentum)
    if solver == "momentum":
        return SGD(params, momentum=est.momentum, nesterov=False)
    if solver == "nesterov":
        return SGD(params, momentum=est.momentum, nesterov=True)
    if solver == "adagrad":
        return Adagrad(params, epsilon=est.epsilon)
    if solver == "rmsprop":
        return RMSprop(params, rho=est.rho, epsilon=est.epsilon)
    return Adam(params, beta_1=est.beta_1, beta_2=est.beta_2, epsilon=est.epsilon)


SCHEDULES = ("constant", "step", "exponential", "invscaling")


def scheduled_rate(est, epoch: int) -> float:
    """Learning rate for ``epoch`` (0-based) under ``est.learning_rate``."""
    lr0, schedule = est.learning_rate_init, est.learning_rate
    if schedule == "step":
        return lr0 * est.lr_decay ** (epoch // est.lr_step)
    if schedule == "exponential":
        return lr0 * est.lr_decay**epoch
    if schedule == "invscaling":
        return lr0 / (epoch + 1) ** est.power_t
    return lr0
