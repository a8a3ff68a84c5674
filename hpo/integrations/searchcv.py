"""`SearchCV`: scikit-learn's search API over an hpo sweep.

A meta-estimator with the interface of `GridSearchCV` and `RandomizedSearchCV`: ``fit``
runs a sweep on Ray, one trial per configuration with the cross-validation inside it,
tracked in MLflow like any sweep. Each fold is a step of the trial's curves (so a pruner
can stop a configuration after its first folds), and ``cv_results_`` has scikit-learn's
keys, read from what the trials reported.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring, get_scorer, get_scorer_names
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, indexable

from hpo.core.trial import TrialState
from hpo.space import Space

SINGLE = "score"  # the metric's name with one scorer, as scikit-learn names it
KEEP_WORKERS_SECONDS = 60.0


@dataclass(frozen=True)
class Folds:
    """What every trial needs, shipped to each worker once: the estimator, the data, the
    splits and the scorers."""

    estimator: Any
    X: Any
    y: Any
    splits: list[tuple[np.ndarray, np.ndarray]]
    scorers: dict[str, Callable[..., float]]
    refit_metric: str
    fit_params: dict[str, Any]
    error_score: Any
    return_train_score: bool
    pruned: bool = False  # a pruner watches the folds as they end


def cross_validate_trial(params: dict[str, Any], report: Any, folds: Folds) -> float:
    """The objective of every trial: fit and score ``params`` on each split, reporting
    each fold as a step; the value is the mean test score of the refit metric.

    With a pruner each fold is reported as it ends, for the pruner to judge; without one
    the folds are reported together at the trial's end (or its failure), so that they
    reach the driver, and MLflow, as one message and one write instead of one each."""
    done: dict[str, list[float]] = {m: [] for m in folds.scorers}
    held: list[tuple[int, dict[str, float]]] = []
    try:
        for k, (train, test) in enumerate(folds.splits):
            metrics = _fit_and_score(folds, params, k, train, test)
            for m in folds.scorers:
                done[m].append(metrics[f"split{k}_test_{m}"])
                metrics[f"mean_test_{m}"] = float(np.mean(done[m]))  # over the folds so far
            if folds.pruned:
                report(k, **metrics)
            else:
                held.append((k, metrics))
    finally:
        for k, metrics in held:
            report(k, **metrics)
    return float(np.mean(done[folds.refit_metric]))


def _fit_and_score(
    folds: Folds, params: dict[str, Any], k: int, train: np.ndarray, test: np.ndarray
) -> dict[str, float]:
    estimator = clone(folds.estimator).set_params(**params)
    X_train, y_train = _safe_indexing(folds.X, train), _subset(folds.y, train)
    X_test, y_test = _safe_indexing(folds.X, test), _subset(folds.y, test)
    began = time.perf_counter()
    try:
        estimator.fit(X_train, y_train, **folds.fit_params)
    except Exception:
        if isinstance(folds.error_score, str):  # "raise": the trial fails with the reason
            raise
        fit_time = time.perf_counter() - began
        out = {f"split{k}_test_{m}": float(folds.error_score) for m in folds.scorers}
        if folds.return_train_score:
            out |= {f"split{k}_train_{m}": float(folds.error_score) for m in folds.scorers}
        return out | {f"split{k}_fit_time": fit_time, f"split{k}_score_time": 0.0}
    fit_time = time.perf_counter() - began
    out = {
        f"split{k}_test_{m}": float(scorer(estimator, X_test, y_test))
        for m, scorer in folds.scorers.items()
    }
    score_time = time.perf_counter() - began - fit_time
    if folds.return_train_score:
        for m, scorer in folds.scorers.items():
            out[f"split{k}_train_{m}"] = float(scorer(estimator, X_train, y_train))
    return out | {f"split{k}_fit_time": fit_time, f"split{k}_score_time": score_time}


def _subset(y: Any, rows: np.ndarray) -> Any:
    return None if y is None else _safe_indexing(y, rows)


def _best_has(name: str) -> Callable[[Any], bool]:
    """For `available_if`: the refit best estimator has method ``name``."""

    def check(search: SearchCV) -> bool:
        if hasattr(search, "best_estimator_"):
            return hasattr(search.best_estimator_, name)
        return hasattr(search.estimator, name)

    return check


class SearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search ``space`` for ``estimator``'s best parameters with an hpo sweep, with
    the interface of scikit-learn's `GridSearchCV`.

    Parameters
    ----------
    estimator : estimator
        A scikit-learn estimator (or pipeline); cloned for every fold.
    space : dict or Space
        Keys are the estimator's parameter names (a pipeline's ``step__param``); values
        are hpo's ranges (`hpo.space.Float`, `Int`, `Choice`, ...).
    strategy : str
        An hpo strategy ("random", "grid", "gp", "tpe", "optuna:NAME", ...).
    n_trials : int, optional
        Configurations to try (a grid's size for "grid"; 20 otherwise).
    cv : int, cross-validation generator or iterable
        As in scikit-learn: 5-fold (stratified for classifiers) by default.
    scoring : str, callable, list or dict, optional
        As in scikit-learn; the estimator's ``score`` when omitted. Several metrics need
        ``refit`` to name the one that ranks configurations.
    refit : bool or str
        Refit the best configuration on all the data (``best_estimator_``).
    pruner : str, optional
        An hpo pruner ("median", "asha", ...): stops a configuration after its first folds
        when their mean test score is behind.
    error_score : "raise" or number
        A fold whose fit fails scores this (NaN by default: the configuration then fails).
    return_train_score : bool
        Also score each fold's training data.
    keep_workers : float, optional
        Seconds the search's worker processes stay up after ``fit`` for the next search of
        this process (a nested cross-validation fits once per outer fold), as joblib's
        workers stay up between scikit-learn's searches: 60 by default; None ends them with
        the search. They hold their CPUs meanwhile; `hpo.release_workers()` ends them.
    workers, resources, address, tracking_uri, experiment_name, seed
        As for `hpo.run`.
    verbose : int
        Above 0: hpo's progress display and summary.

    Attributes
    ----------
    best_params_, best_score_, best_estimator_, best_index_, cv_results_, n_splits_,
    refit_time_, scorer_, multimetric_ : as in scikit-learn.
    sweep_id_ : str
        The sweep's parent run in MLflow.
    """

    def __init__(
        self,
        estimator: Any,
        space: Mapping[str, Any] | Space,
        *,
        strategy: str = "random",
        n_trials: int | None = None,
        cv: Any = 5,
        scoring: Any = None,
        refit: bool | str = True,
        pruner: str | None = None,
        error_score: Any = np.nan,
        return_train_score: bool = False,
        workers: int | None = None,
        resources: Mapping[str, Any] | None = None,
        keep_workers: float | None = KEEP_WORKERS_SECONDS,
        address: str | None = None,
        tracking_uri: str | None = None,
        experiment_name: str = "hpo-searchcv",
        seed: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.estimator = estimator
        self.space = space
        self.strategy = strategy
        self.n_trials = n_trials
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.pruner = pruner
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.workers = workers
        self.resources = resources
        self.keep_workers = keep_workers
        self.address = address
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.seed = seed
        self.verbose = verbose

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, groups: Any = None, **fit_params: Any) -> SearchCV:
        """Run the sweep over ``space`` on (``X``, ``y``), then refit the best."""
        import hpo

        self._check_space()
        scorers = self._scorers()
        refit_metric = self._refit_metric(scorers)
        if not (isinstance(self.error_score, numbers.Real) or self.error_score == "raise"):
            raise ValueError(f"error_score must be 'raise' or a number, got {self.error_score!r}")
        X, y, groups = indexable(X, y, groups)
        splitter = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(splitter.split(X, y, groups))
        folds = Folds(
            self.estimator,
            X,
            y,
            splits,
            scorers,
            refit_metric,
            dict(fit_params),
            self.error_score,
            self.return_train_score,
            pruned=self.pruner is not None,
        )
        result = hpo.run(
            self.space,
            cross_validate_trial,
            data=folds,
            direction="maximize",  # scikit-learn's scorers: greater is better
            strategy=self.strategy,
            n_trials=self.n_trials,
            pruner=self.pruner,
            prune_metric=f"mean_test_{refit_metric}" if self.pruner else None,
            workers=self.workers,
            resources=self.resources,
            keep_workers=self.keep_workers,
            address=self.address,
            tracking_uri=self.tracking_uri,
            experiment_name=self.experiment_name,
            seed=self.seed,
            progress=self.verbose > 0,
        )
        self.sweep_id_ = result.sweep_id
        self.n_splits_ = len(splits)
        self.multimetric_ = not self._single_metric()
        self.scorer_ = scorers if self.multimetric_ else scorers[SINGLE]
        trials = [t for t in result.trials if not t.infeasible]
        self.cv_results_ = cv_results(trials, list(scorers), len(splits), self.return_train_score)
        ranks = self.cv_results_[f"rank_test_{refit_metric}"]
        self.best_index_ = int(np.argmin(ranks))
        self.best_params_ = self.cv_results_["params"][self.best_index_]
        self.best_score_ = float(self.cv_results_[f"mean_test_{refit_metric}"][self.best_index_])
        if self.refit:
            began = time.perf_counter()
            best = clone(self.estimator).set_params(**self.best_params_)
            self.best_estimator_ = best.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - began
        return self

    def _check_space(self) -> None:
        names = list(self.space.tree if isinstance(self.space, Space) else self.space)
        known = self.estimator.get_params(deep=True)
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(
                f"SearchCV: the space's key {unknown[0]!r} is not a parameter of "
                f"{type(self.estimator).__name__}; its parameters: {', '.join(sorted(known))}"
            )

    def _single_metric(self) -> bool:
        return self.scoring is None or isinstance(self.scoring, str) or callable(self.scoring)

    def _scorers(self) -> dict[str, Callable[..., float]]:
        scoring = self.scoring
        if self._single_metric():
            return {SINGLE: _scorer(self.estimator, scoring)}
        if isinstance(scoring, Mapping):
            return {name: _scorer(self.estimator, s) for name, s in scoring.items()}
        if isinstance(scoring, list | tuple | set) and all(isinstance(s, str) for s in scoring):
            return {name: _scorer(self.estimator, name) for name in scoring}
        raise ValueError(
            f"scoring must be a name, a callable, a list of names or a dict of them, got "
            f"{scoring!r}"
        )

    def _refit_metric(self, scorers: dict[str, Any]) -> str:
        if list(scorers) == [SINGLE]:
            return SINGLE
        if isinstance(self.refit, str) and self.refit in scorers:
            return self.refit
        if self.refit is False:
            return next(iter(scorers))  # ranks the configurations; nothing is refit
        raise ValueError(
            f"with several metrics, refit must name the one that picks the best "
            f"configuration ({', '.join(scorers)}) or be False, got refit={self.refit!r}"
        )

    # -- the best estimator's methods ------------------------------------------------------
    def _best(self) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    @available_if(_best_has("predict"))
    def predict(self, X: Any) -> Any:
        return self._best().predict(X)

    @available_if(_best_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        return self._best().predict_proba(X)

    @available_if(_best_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        return self._best().predict_log_proba(X)

    @available_if(_best_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        return self._best().decision_function(X)

    @available_if(_best_has("transform"))
    def transform(self, X: Any) -> Any:
        return self._best().transform(X)

    @available_if(_best_has("inverse_transform"))
    def inverse_transform(self, X: Any) -> Any:
        return self._best().inverse_transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The refit metric's scorer on the best estimator (as `GridSearchCV.score`)."""
        best = self._best()
        scorer = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
        return float(scorer(best, X, y))

    @property
    def classes_(self) -> Any:
        return self._best().classes_

    @property
    def n_features_in_(self) -> int:
        return self._best().n_features_in_


def _scorer(estimator: Any, scoring: Any) -> Callable[..., float]:
    if scoring is None or callable(scoring):
        return check_scoring(estimator, scoring=scoring)
    try:
        return get_scorer(scoring)
    except ValueError:
        raise ValueError(
            f"scoring {scoring!r} is not a scorer scikit-learn knows (see "
            f"sklearn.metrics.get_scorer_names(), e.g. {', '.join(get_scorer_names()[:4])})"
        ) from None


def cv_results(
    trials: list[Any], metrics: list[str], n_splits: int, train_scores: bool
) -> dict[str, Any]:
    """scikit-learn's ``cv_results_`` from the trials' last reported metrics: one entry
    per trial in issue order. A fold a pruned or failed trial did not score is NaN, and so
    is its mean: it ranks last."""

    def splits(name: str) -> np.ndarray:
        return np.array(
            [[_metric(t, f"split{k}_{name}") for k in range(n_splits)] for t in trials]
        ).reshape(len(trials), n_splits)

    results: dict[str, Any] = {}
    for part in ("fit_time", "score_time"):
        times = splits(part)
        results[f"mean_{part}"] = np.nanmean(_nan_rows_as(times, 0.0), axis=1)
        results[f"std_{part}"] = np.nanstd(_nan_rows_as(times, 0.0), axis=1)
    params = [dict(t.params) for t in trials]
    for name in sorted({name for p in params for name in p}):
        column = np.ma.MaskedArray(np.empty(len(trials), dtype=object), mask=True)
        for i, p in enumerate(params):
            if name in p:
                column[i] = p[name]
        results[f"param_{name}"] = column
    results["params"] = params
    sides = ("test", "train") if train_scores else ("test",)
    for metric in metrics:
        for side in sides:
            scores = splits(f"{side}_{metric}")
            for k in range(n_splits):
                results[f"split{k}_{side}_{metric}"] = scores[:, k]
            complete = np.array([t.state is TrialState.COMPLETE for t in trials])
            # A configuration that did not finish its folds has no mean: it ranks last.
            means = np.where(complete, scores.mean(axis=1), np.nan)
            results[f"mean_{side}_{metric}"] = means
            results[f"std_{side}_{metric}"] = np.where(complete, scores.std(axis=1), np.nan)
            if side == "test":
                results[f"rank_test_{metric}"] = _ranks(means)
    return results


def _metric(trial: Any, name: str) -> float:
    value = trial.metrics.get(name)
    return np.nan if value is None else float(value)


def _nan_rows_as(values: np.ndarray, fill: float) -> np.ndarray:
    """Rows with no value at all (a trial that never ran a fold) as ``fill``."""
    out = values.copy()
    out[np.isnan(out).all(axis=1)] = fill
    return out


def _ranks(means: np.ndarray) -> np.ndarray:
    """1 for the best mean, ties sharing the lowest rank; NaN last (as scikit-learn)."""
    if np.isnan(means).all():
        return np.ones(len(means), dtype=np.int32)
    worst = np.nanmin(means) - 1
    return rankdata(-np.where(np.isnan(means), worst, means), method="min").astype(np.int32)
