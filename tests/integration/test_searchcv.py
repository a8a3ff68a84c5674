"""`hpo.SearchCV` against scikit-learn's own searches, on a real local Ray cluster and a
real sqlite MLflow store."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import hpo
from hpo.space import Choice, Float

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_a_grid_gives_gridsearchcv_s_scores_and_best_params(
    ray_cluster, tracking_uri, client, iris
):
    X, y = iris
    folds = StratifiedKFold(4, shuffle=True, random_state=0)
    grid = {"C": [0.01, 0.1, 1.0, 10.0], "kernel": ["linear", "rbf"]}
    theirs = GridSearchCV(SVC(), grid, cv=folds).fit(X, y)
    search = hpo.SearchCV(
        SVC(),
        {name: Choice(values) for name, values in grid.items()},
        strategy="grid",
        cv=folds,
        tracking_uri=tracking_uri,
    ).fit(X, y)
    ours = search.cv_results_
    assert len(ours["params"]) == 8 and search.n_splits_ == 4

    def by_params(results, key):
        pairs = zip(results["params"], results[key], strict=True)
        return {tuple(sorted(p.items())): v for p, v in pairs}

    for key in ["mean_test_score", "std_test_score", "rank_test_score"] + [
        f"split{k}_test_score" for k in range(4)
    ]:
        assert by_params(ours, key) == pytest.approx(by_params(theirs.cv_results_, key)), key
    assert search.best_params_ == theirs.best_params_
    assert search.best_score_ == pytest.approx(theirs.best_score_)
    assert ours["rank_test_score"][search.best_index_] == 1
    assert np.all(ours["mean_fit_time"] > 0) and np.all(ours["mean_score_time"] >= 0)
    assert list(ours["param_C"]) == [p["C"] for p in ours["params"]]
    # The refit best estimator answers for the search.
    assert search.refit_time_ > 0
    assert (search.predict(X) == theirs.predict(X)).all()
    assert search.score(X, y) == pytest.approx(theirs.score(X, y))
    assert not hasattr(search, "predict_proba")  # SVC without probability=True has none
    assert list(search.classes_) == [0, 1, 2]
    # Tracked in MLflow as a sweep: one child run per configuration, folds as steps.
    parent = client.get_run(search.sweep_id_)
    assert parent.data.tags["hpo.direction"] == "maximize"
    assert parent.data.tags["hpo.n_complete"] == "8"
    sweep = hpo.load_sweep(search.sweep_id_, tracking_uri=tracking_uri)
    curve = client.get_metric_history(sweep.best_trial.run_id, "mean_test_score")
    assert [m.step for m in curve] == [0, 1, 2, 3]


def test_a_pipeline_s_parameters_several_metrics_and_refit_by_name(ray_cluster, tracking_uri, iris):
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    search = hpo.SearchCV(
        pipe,
        {"clf__C": Float(1e-3, 1e2, log=True), "scale__with_mean": Choice([True, False])},
        strategy="tpe",
        n_trials=6,
        cv=3,
        scoring=["accuracy", "f1_macro"],
        refit="f1_macro",
        return_train_score=True,
        seed=0,
        tracking_uri=tracking_uri,
    ).fit(X, y)
    results = search.cv_results_
    for metric in ("accuracy", "f1_macro"):
        for key in ("mean_test_", "std_test_", "rank_test_", "split2_test_", "mean_train_"):
            assert len(results[key + metric]) == 6, key + metric
    best = int(np.argmax(results["mean_test_f1_macro"]))
    assert search.best_score_ == results["mean_test_f1_macro"][best]
    assert search.best_params_ == results["params"][best]
    assert search.best_estimator_.get_params()["clf__C"] == search.best_params_["clf__C"]
    assert search.multimetric_ and set(search.scorer_) == {"accuracy", "f1_macro"}
    assert search.predict_proba(X[:3]).shape == (3, 3)


def test_it_clones_and_nests_inside_cross_validate(ray_cluster, tracking_uri):
    X, y = load_diabetes(return_X_y=True)
    search = hpo.SearchCV(
        Ridge(),
        {"alpha": Float(1e-3, 10.0, log=True)},
        n_trials=3,
        cv=2,
        seed=1,
        tracking_uri=tracking_uri,
    )
    copy = clone(search)
    assert copy.get_params()["n_trials"] == 3 and not hasattr(copy, "best_params_")
    outer = cross_validate(search, X, y, cv=KFold(2), return_estimator=True)
    assert len(outer["test_score"]) == 2 and np.all(np.isfinite(outer["test_score"]))
    assert len({e.sweep_id_ for e in outer["estimator"]}) == 2  # a sweep per outer fold


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"space": {"gamma_typo": Float(0.1, 1.0)}},
            r"the space's key 'gamma_typo' is not a parameter of SVC; its parameters: C, "
            r"break_ties, cache_size",
        ),
        ({"scoring": "accuracy_typo"}, r"scoring 'accuracy_typo' is not a scorer scikit-learn"),
        ({"scoring": ["accuracy", "f1_macro"]}, r"refit must name the one that picks"),
    ],
)
def test_bad_input_is_refused_before_any_sweep(ray_cluster, tracking_uri, client, kwargs, message):
    X, y = load_iris(return_X_y=True)
    settings = {"space": {"C": Float(0.1, 1.0)}, **kwargs}
    space = settings.pop("space")
    with pytest.raises(ValueError, match=message):
        hpo.SearchCV(
            SVC(), space, tracking_uri=tracking_uri, experiment_name="refused", **settings
        ).fit(X, y)
    assert client.get_experiment_by_name("refused") is None
