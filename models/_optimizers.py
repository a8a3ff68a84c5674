"""Gradient-descent updates on lists of parameter arrays, applied in place."""

from __future__ import annotations

import numpy as np


class SGD:
    """Stochastic gradient descent with (optionally Nesterov) momentum."""

    def __init__(
        self, params: list[np.ndarray], *, learning_rate: float, momentum: float, nesterov: bool
    ) -> None:
        self.learning_rate, self.momentum, self.nesterov = learning_rate, momentum, nesterov
        self.velocities = [np.zeros_like(p) for p in params]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        lr, mu = self.learning_rate, self.momentum
        for p, g, v in zip(params, grads, self.velocities, strict=True):
            if mu == 0.0:
                p -= lr * g
                continue
            v *= mu
            v -= lr * g
            # Nesterov looks ahead along the updated velocity (Sutskever et al., 2013).
            p += mu * v - lr * g if self.nesterov else v


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction folded into the step size."""

    def __init__(
        self,
        params: list[np.ndarray],
        *,
        learning_rate: float,
        beta_1: float,
        beta_2: float,
        epsilon: float,
    ) -> None:
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = (
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
        )
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        lr = self.learning_rate * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= lr * m / (np.sqrt(v) + self.epsilon)
