"""Gaussian-process search with expected improvement (GP-EI).

How the space is modelled:
- Every parameter gets unit-cube coordinates: a `Float` or `Int` one coordinate (on a log
  scale for ``log=True``), a `Choice` one coordinate per option (one-hot). Suggestions are
  decoded back to valid values: integers are snapped to their lattice, a `Choice` takes the
  option with the largest coordinate.
- Inactive parameters of conditional branches are imputed at a fixed point (0.5, or an
  all-zero one-hot), so two configurations of the same branch are compared on the parameters
  they share, and the branch indicator coordinates separate the branches.

The model is scikit-learn's `GaussianProcessRegressor` with a Matern 5/2 kernel (one length
scale per coordinate) times a constant, plus a learned white-noise term, since the same
configuration trained twice scores differently. Its hyperparameters are fitted by marginal
likelihood times a Gamma(3, 6) prior on each length scale (mode 1/3 of the unit cube): with a
dozen points in six dimensions the plain likelihood often prefers length scales at the bounds,
a flat model or a needle one, and the search then wanders. Fits restart while data are few and
are warm-started from the previous fit afterwards (the fit is what makes an ask cost time);
past 100 observations they happen only as the history grows by a tenth, on at most 300 of
the observations (see `REFIT_GROWTH`), so that an ask stays fast at a thousand.

Objective values are standardised and then Yeo-Johnson transformed (scikit-learn's
`PowerTransformer`, its power fitted by maximum likelihood): losses that span decades are far
from the Gaussian the model assumes, and one huge value would otherwise flatten every other
difference. The transform is monotone, so the best value stays the best and the quantiles of
the posterior map back to objective units exactly.

Expected improvement is computed in log form, which stays finite and informative where EI
underflows to 0, and maximised over Sobol candidates (decoded to valid configurations), the
best of which are polished with L-BFGS-B over their numeric coordinates.

Failed and pruned trials enter the model with the worst value seen: a diverging learning rate
is a genuinely bad region, and leaving it out would let EI propose it again. Trials still
running enter with the mean of the transformed values (constant liar), so parallel asks spread
out instead of piling onto one point.

With several objectives the search is ParEGO's (Knowles, 2006): each ask draws a weight
vector uniformly from the simplex and models one scalar, the augmented Chebyshev
scalarisation of the objectives normalised to [0, 1] over the trials so far,
``max_j(w_j f_j) + 0.05 * sum_j(w_j f_j)``, whose minima are Pareto-optimal points (also on a
non-convex front, where a weighted sum finds only the ends); EI on it then works as for one
objective. It keeps the one model and its speed, where a hypervolume improvement would need
one model per objective and a costly acquisition; successive asks, each with its own
weights, spread the trials along the front.

Everything random is drawn from a generator seeded by ``(seed, number of trials so far)``:
the same seed and history give the same suggestion.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from hpo.core.directions import loss_sign
from hpo.core.pareto import losses
from hpo.core.space import Choice, Float, Int, Space
from hpo.strategies.base import Strategy, TrialState
from hpo.strategies.fidelity import FidelityView, fidelity_view, uses_curves

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

# Fitting the kernel's hyperparameters is what makes an ask cost time: every step of the
# search factorises the kernel matrix and forms its gradient, cubic in the observations. So
# with many observations the hyperparameters are fitted again only once the history has
# grown by REFIT_GROWTH since the last fit (the model in between conditions on every
# observation with the last fit's hyperparameters: one factorisation), and on a subset of
# at most FIT_SUBSET observations: the best third of them (where the search looks) and a
# random draw of the rest. Below REFIT_ALWAYS observations every ask fits on everything.
REFIT_ALWAYS, REFIT_GROWTH, FIT_SUBSET = 100, 1.1, 300


def log_expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """log EI for minimisation, stable for any z = (best - mean) / std.

    EI = std * h(z) with h(z) = phi(z) + z Phi(z). For z > -1 h is computed directly; below,
    h(z) = phi(z) * (1 + z * Phi(z)/phi(z)), where Phi/phi = erfcx(-z/sqrt 2) * sqrt(pi/2)
    keeps the ratio accurate far into the tail.
    """
    # Imported here: SciPy's special functions take ~0.2 s to import, which every Ray
    # worker would pay at start-up through `hpo`'s package imports.
    from scipy.special import erfcx, log_ndtr

    std = np.maximum(std, 1e-12)
    z = (best - mean) / std
    out = np.empty_like(z)
    upper = z > -1.0
    zu = z[upper]
    log_phi_u = -0.5 * zu * zu - _LOG_SQRT_2PI
    out[upper] = np.log(np.exp(log_phi_u) + zu * np.exp(log_ndtr(zu)))
    zl = np.maximum(z[~upper], -1e6)
    ratio = erfcx(-zl / math.sqrt(2)) * math.sqrt(math.pi / 2)
    out[~upper] = -0.5 * zl * zl - _LOG_SQRT_2PI + np.log(np.maximum(1 + zl * ratio, 1e-300))
    return out + np.log(std)


class _Encoding:
    """Maps assignments to unit-cube vectors and back."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.slices: list[tuple[Any, int, int]] = []  # (param, first column, width)
        width = 0
        for p in space.params:
            w = len(p.dim.options) if isinstance(p.dim, Choice) else 1
            self.slices.append((p, width, w))
            width += w
        self.width = width

    def encode(self, assignment: Mapping[str, Any]) -> np.ndarray:
        u = np.zeros(self.width)
        for p, start, _width in self.slices:
            if p.key not in assignment:
                if not isinstance(p.dim, Choice):
                    u[start] = 0.5  # an inactive numeric parameter sits at the centre
                continue
            value = assignment[p.key]
            if isinstance(p.dim, Choice):
                u[start + int(value)] = 1.0
            else:
                u[start] = _to_unit(p.dim, value)
        return u

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        assignment: dict[str, Any] = {}
        for p, start, w in self.slices:
            if not self.space.is_active(p, assignment):
                continue
            if isinstance(p.dim, Choice):
                assignment[p.key] = int(np.argmax(u[start : start + w]))
            else:
                assignment[p.key] = _from_unit(p.dim, float(u[start]))
        return assignment

    def numeric_columns(self, assignment: Mapping[str, Any]) -> list[int]:
        """Columns of the active Float and Int parameters (what L-BFGS-B may move)."""
        return [
            start
            for p, start, _ in self.slices
            if not isinstance(p.dim, Choice) and p.key in assignment
        ]


def _to_unit(dim: Float | Int, value: float) -> float:
    if dim.high == dim.low:
        return 0.5
    if dim.log:
        return (math.log(value) - math.log(dim.low)) / (math.log(dim.high) - math.log(dim.low))
    return (value - dim.low) / (dim.high - dim.low)


def _from_unit(dim: Float | Int, u: float) -> float | int:
    u = min(max(u, 0.0), 1.0)
    if dim.log:
        x = math.exp(math.log(dim.low) + u * (math.log(dim.high) - math.log(dim.low)))
    else:
        x = dim.low + u * (dim.high - dim.low)
    if isinstance(dim, Int):
        return dim._snap(x)
    return min(max(x, dim.low), dim.high)


class _OutputWarp:
    """Objective values to the model's units and back: standardised, then Yeo-Johnson."""

    def __init__(self, y: np.ndarray) -> None:
        from sklearn.preprocessing import PowerTransformer

        self.mean, self.std = float(np.mean(y)), float(np.std(y)) or 1.0
        self.power = None
        if np.ptp(y) > 0:  # a power cannot be fitted to one repeated value
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # overflow notices while searching the power
                self.power = PowerTransformer().fit(self._standard(y)[:, None])

    def _standard(self, y: Any) -> np.ndarray:
        return (np.asarray(y, dtype=float) - self.mean) / self.std

    def __call__(self, y: Any) -> np.ndarray:
        z = self._standard(y)
        return z if self.power is None else self.power.transform(z.reshape(-1, 1)).ravel()

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """Back to objective units; NaN where the power transform has no inverse."""
        z = u if self.power is None else self.power.inverse_transform(u.reshape(-1, 1)).ravel()
        return self.mean + self.std * z


class _Posterior:
    """Mean and standard deviation of a fitted GP, straight from its factorisation.

    scikit-learn's ``predict`` validates its input on every call, which costs more than the
    arithmetic when L-BFGS-B asks for one point at a time. Predictions are in model units
    (``warp`` maps objective values there).
    """

    def __init__(self, model: Any, warp: _OutputWarp) -> None:
        self.model, self.warp = model, warp
        self.kernel = model.kernel_

    @property
    def observed(self) -> np.ndarray:
        """The values the model was fitted on, in model units."""
        return self.model.y_train_

    def predict(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.linalg import solve_triangular

        K = self.kernel(U, self.model.X_train_)
        mean = K @ self.model.alpha_
        v = solve_triangular(self.model.L_, K.T, lower=True, check_finite=False)
        var = self.kernel.diag(U) - np.einsum("ij,ij->j", v, v)
        return mean, np.sqrt(np.maximum(var, 1e-18))

    def conditioned(self, X: np.ndarray, u: np.ndarray) -> _Posterior:
        """The same kernel conditioned on (X, u), u in model units."""
        from sklearn.gaussian_process import GaussianProcessRegressor

        model = GaussianProcessRegressor(kernel=self.kernel, optimizer=None)
        model.fit(X, u)
        return _Posterior(model, self.warp)


def _length_scale_prior_optimizer(kernel: Any):
    """scikit-learn's hyperparameter search with a Gamma(3, 6) prior on each length scale.

    scikit-learn minimises the negative log marginal likelihood over theta = log(hyper-
    parameters); adding the negative log prior (written for log length scales, Jacobian
    included: 3 theta - 6 exp(theta)) turns the fit into a maximum a posteriori one.
    """
    from scipy.optimize import minimize

    first = 0
    for h in kernel.hyperparameters:  # where the length scales sit in theta
        if h.name.endswith("length_scale"):
            scales = slice(first, first + h.n_elements)
            break
        first += h.n_elements

    def optimizer(objective, theta0, bounds):
        def negative_log_posterior(theta):
            value, grad = objective(theta, eval_gradient=True)
            log_scale = theta[scales]
            grad = grad.copy()
            grad[scales] -= 3.0 - 6.0 * np.exp(log_scale)
            return value - float(np.sum(3.0 * log_scale - 6.0 * np.exp(log_scale))), grad

        result = minimize(
            negative_log_posterior, theta0, jac=True, method="L-BFGS-B", bounds=bounds
        )
        return result.x, result.fun

    return optimizer


def default_initial_size(space: Space) -> int:
    """The initial design's default size: 2, plus 1 per Float, plus 2 per Int and per
    option of each Choice, between 5 and 20.

    Why a Float counts once: along a continuous coordinate the GP generalises well, and once
    there are a couple of points per dimension each model-guided ask teaches it more than a
    space-filling one. On Hartmann6 (six Floats; 60 seeds, budget 32) a design of 8 left a
    mean regret of 0.27 against 0.35 with the former default of 12 (two per coordinate).
    Why an Int or an option counts twice: the objective is flat between lattice points and
    each one-hot coordinate needs its option seen more than once, so the model learns less
    from each point there. With one per coordinate, the random-forest task (three Ints and
    a Float; 30 seeds) did worse at 32 evaluations (regret 0.029 against 0.025), and the
    mixed task (two Ints, a Float, a 3-option Choice; 60 seeds) left 0.009 with 8 points and
    0.004 with 11 against 0.0005 with 12. (Ad-hoc runs on the tasks of
    benchmarks/optimizers.py, gp alone, sequential asks.)
    """
    floats = sum(isinstance(p.dim, Float) for p in space.params)
    ints = sum(isinstance(p.dim, Int) for p in space.params)
    options = sum(len(p.dim.options) for p in space.params if isinstance(p.dim, Choice))
    return min(max(5, 2 + floats + 2 * ints + 2 * options), 20)


class GPEI(Strategy):
    """Gaussian-process search with expected improvement (see the module docstring).

    Parameters
    ----------
    space, direction, seed
        As for every strategy.
    n_initial : int, optional
        Size of the initial Sobol design before the model is used; by default 2, plus 1 per
        `Float`, plus 2 per `Int` and per option of each `Choice`, between 5 and 20 (see
        `default_initial_size`).
    n_candidates : int, default=1024
        Sobol candidates scored by EI on each ask.
    n_polish : int, default=10
        How many of the best candidates L-BFGS-B polishes.

    Examples
    --------
    >>> from hpo.core.space import Float
    >>> s = GPEI({"x": Float(-2.0, 2.0)}, seed=0, n_initial=3)
    >>> for _ in range(6):
    ...     [t] = s.ask()
    ...     s.tell(t, (t.params["x"] - 1.0) ** 2)
    >>> abs(s.best_trial().params["x"] - 1.0) < 0.5
    True
    """

    name = "gp"
    multi_objective = True

    def _configure(
        self, *, n_initial: int | None = None, n_candidates: int = 1024, n_polish: int = 10
    ) -> None:
        self.encoding = _Encoding(self.space)
        default = default_initial_size(self.space)
        self.n_initial = default if n_initial is None else int(n_initial)
        if self.n_initial < 1:
            raise ValueError(f"n_initial must be >= 1, got {n_initial!r}")
        self.n_candidates, self.n_polish = int(n_candidates), int(n_polish)
        self.recipe["options"] = {
            "n_initial": n_initial,
            "n_candidates": self.n_candidates,
            "n_polish": self.n_polish,
        }
        self._theta: np.ndarray | None = None  # kernel hyperparameters of the last fit
        self._fitted_on = 0  # the number of observations when they were fitted

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "n_initial": self.n_initial,
            "n_candidates": self.n_candidates,
            "kernel": "Matern(nu=2.5, ARD) + noise, Gamma(3, 6) length-scale prior",
            "outputs": "standardised, Yeo-Johnson",
            "acquisition": "log EI"
            + (" on a random ParEGO scalarisation per ask" if self.n_objectives > 1 else ""),
            "refits": f"every ask up to {REFIT_ALWAYS} observations, then at each "
            f"{REFIT_GROWTH:g}x growth, on at most {FIT_SUBSET} of them",
            "pending": "constant liar (mean)",
            "failures": "worst value seen",
            "curves": "with a pruner, fitted at the highest step n_initial trials reached",
        }

    # -- suggestions ---------------------------------------------------------------------
    def _suggest(self, n: int) -> list[dict[str, Any]]:
        rng = np.random.default_rng([self.seed, len(self.trials)])
        if uses_curves(self.known):  # a pruner watches curves: learn from them (BOHB-style)
            view = fidelity_view(self.known, max(self.n_initial, 2))
            if view is None:
                return self._initial_design(n)
            X, y = self._curve_data(view)
            running = view.pending
        else:
            told = [t for t in self.known if t.state is not TrialState.RUNNING]
            complete = sum(t.state is TrialState.COMPLETE for t in told)
            if complete < 2 or len(told) < self.n_initial:
                return self._initial_design(n)
            # Drawn only with several objectives: one objective's suggestions stay as they were.
            weights = rng.dirichlet(np.ones(self.n_objectives)) if self.n_objectives > 1 else None
            X, y = self._data(told, weights)
            running = self.pending
        posterior = self._fit(X, y, rng)
        u = posterior.observed
        best = float(np.min(u))
        pending = [self.encoding.encode(t.assignment) for t in running]
        liar = float(np.mean(u))
        out: list[dict[str, Any]] = []
        seen = {self._key(t.assignment) for t in self.known}
        for _ in range(n):
            if pending:  # condition on the lies; the kernel stays the one fitted on data
                posterior = posterior.conditioned(
                    np.vstack([X, *pending]), np.concatenate([u, [liar] * len(pending)])
                )
            assignment = self._maximise_ei(posterior, best, rng, seen)
            out.append(assignment)
            seen.add(self._key(assignment))
            pending.append(self.encoding.encode(assignment))
        return out

    def _initial_design(self, n: int) -> list[dict[str, Any]]:
        from scipy.stats import qmc

        # One Sobol sequence for the whole design, so successive asks continue it.
        sobol = qmc.Sobol(self.encoding.width, scramble=True, seed=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Sobol prefers powers of two; any n is fine here
            points = sobol.random(len(self.trials) + n)[len(self.trials) :]
        return [self.encoding.decode(u) for u in points]

    def _data(
        self, told: list[Any], weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The encoded trials and their losses (failures at the worst); with several
        objectives, their ParEGO scalarisation under ``weights``."""
        done = np.array([t.state is TrialState.COMPLETE for t in told])
        scores = losses([t.values for t in told if t.state is TrialState.COMPLETE], self.directions)
        if weights is not None:
            low, span = scores.min(axis=0), np.ptp(scores, axis=0)
            scaled = (scores - low) / np.where(span > 0, span, 1.0)
            weighted = scaled * weights
            scores = weighted.max(axis=1) + 0.05 * weighted.sum(axis=1)
        scores = scores.reshape(len(scores), -1)[:, 0]
        y = np.full(len(told), scores.max())
        y[done] = scores
        X = np.array([self.encoding.encode(t.assignment) for t in told])
        return X, y

    def _curve_data(self, view: FidelityView) -> tuple[np.ndarray, np.ndarray]:
        """The trials observed at the view's budget and their losses there, failures at
        the worst of them."""
        trials = [t for t, _ in view.observed] + view.failed
        scores = losses([(v,) for _, v in view.observed], self.directions)[:, 0]
        y = np.concatenate([scores, np.full(len(view.failed), scores.max())])
        X = np.array([self.encoding.encode(t.assignment) for t in trials])
        return X, y

    def _kernel(self, width: int):
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        return ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
            length_scale=np.full(width, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
        ) + WhiteKernel(1e-3, (1e-6, 1e-1))

    def _fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> _Posterior:
        from sklearn.gaussian_process import GaussianProcessRegressor

        kernel = self._kernel(X.shape[1])
        if self._theta is not None:  # warm start from the previous fit
            kernel = kernel.clone_with_theta(self._theta)
        warp = _OutputWarp(y)
        u, n = warp(y), len(y)
        if n < REFIT_ALWAYS or self._theta is None or n >= REFIT_GROWTH * self._fitted_on:
            rows = self._fit_subset(u, rng) if n > FIT_SUBSET else slice(None)
            model = GaussianProcessRegressor(
                kernel=kernel,
                optimizer=_length_scale_prior_optimizer(kernel),
                n_restarts_optimizer=2 if n < 40 else 0,
                random_state=int(rng.integers(2**31)),
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence notices at the bounds
                model.fit(X[rows], u[rows])
            self._theta, self._fitted_on = model.kernel_.theta, n
            if n <= FIT_SUBSET:
                return _Posterior(model, warp)
            kernel = model.kernel_
        model = GaussianProcessRegressor(kernel=kernel, optimizer=None)
        model.fit(X, u)  # every observation, the hyperparameters as they are
        return _Posterior(model, warp)

    @staticmethod
    def _fit_subset(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """FIT_SUBSET rows of ``u``: the best third of them, and a random draw of the rest."""
        order = np.argsort(u, kind="stable")
        best, rest = order[: FIT_SUBSET // 3], order[FIT_SUBSET // 3 :]
        drawn = rng.choice(rest, FIT_SUBSET - len(best), replace=False)
        return np.sort(np.concatenate([best, drawn]))

    def _score(self, posterior: _Posterior, U: np.ndarray, best: float) -> np.ndarray:
        mean, std = posterior.predict(U)
        return log_expected_improvement(mean, std, best)

    def _maximise_ei(
        self, posterior, best: float, rng: np.random.Generator, seen: set[tuple]
    ) -> dict[str, Any]:
        from scipy.optimize import minimize
        from scipy.stats import qmc

        raw = qmc.Sobol(self.encoding.width, scramble=True, seed=rng).random(self.n_candidates)
        candidates = [self.encoding.decode(u) for u in raw]
        U = np.array([self.encoding.encode(a) for a in candidates])
        scores = self._score(posterior, U, best)
        order = np.argsort(-scores)
        polished: list[tuple[float, dict[str, Any]]] = []
        for i in order[: self.n_polish]:
            start, assignment = U[i].copy(), candidates[i]
            cols = self.encoding.numeric_columns(assignment)
            if cols:

                def negative_and_gradient(x: np.ndarray, start=start, cols=cols):
                    # The value and its forward differences in one prediction.
                    h = 1e-6
                    U = np.repeat(start[None, :], len(cols) + 1, axis=0)
                    U[:, cols] = x
                    U[np.arange(1, len(cols) + 1), cols] += h
                    scores = self._score(posterior, U, best)
                    return -scores[0], -(scores[1:] - scores[0]) / h

                result = minimize(
                    negative_and_gradient,
                    start[cols],
                    jac=True,
                    method="L-BFGS-B",
                    bounds=[(0.0, 1.0)] * len(cols),
                    options={"maxiter": 20},
                )
                u = start.copy()
                u[cols] = result.x
                assignment = self.encoding.decode(u)  # snap integers back to valid values
            polished.append(
                (
                    float(
                        self._score(posterior, self.encoding.encode(assignment)[None, :], best)[0]
                    ),
                    assignment,
                )
            )
        polished.sort(key=lambda pair: -pair[0])
        for _, assignment in polished:
            if self._key(assignment) not in seen:
                return assignment
        for i in order:  # every polished point was taken: the best unseen candidate
            if self._key(candidates[i]) not in seen:
                return candidates[i]
        return candidates[order[0]]  # a space smaller than the history: repeat the best

    def artifacts(self) -> dict[str, bytes]:
        """``gp_posterior.png`` for a search over one number: the model's mean with its 95%
        band, the observations, and the expected-improvement curve the next ask maximises."""
        params = self.space.params
        told = [t for t in self.known if t.state is not TrialState.RUNNING]
        done = [t for t in told if t.state is TrialState.COMPLETE]
        if len(params) != 1 or isinstance(params[0].dim, Choice) or len(done) < 2:
            return {}
        if self.n_objectives > 1:  # the model is of a different scalarisation at each ask
            return {}
        from hpo.report.plots import gp_posterior_png

        p = params[0]
        X, y = self._data(told)
        posterior = self._fit(X, y, np.random.default_rng([self.seed, len(self.trials), 1]))
        grid = np.linspace(0.0, 1.0, 300)[:, None]
        mean, std = posterior.predict(grid)
        ei = np.exp(log_expected_improvement(mean, std, float(np.min(posterior.observed))))
        sign = loss_sign(self.direction)
        dim = p.dim
        if dim.log:
            xs = np.exp(np.log(dim.low) + grid[:, 0] * (np.log(dim.high) - np.log(dim.low)))
        else:
            xs = dim.low + grid[:, 0] * (dim.high - dim.low)
        # The transform is monotone: the band's quantiles map back exactly.
        centre = sign * posterior.warp.inverse(mean)
        low, high = (
            sign * posterior.warp.inverse(mean - 1.96 * std),
            sign * posterior.warp.inverse(mean + 1.96 * std),
        )
        return {
            "gp_posterior.png": gp_posterior_png(
                p.name,
                xs,
                centre,
                np.minimum(low, high),
                np.maximum(low, high),
                [t.assignment[p.key] for t in done],
                [t.value for t in done],
                ei,
                log_x=dim.log,
                direction=self.direction,
            )
        }

    @staticmethod
    def _key(assignment: Mapping[str, Any]) -> tuple:
        return tuple(sorted(assignment.items()))
