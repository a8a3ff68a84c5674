"""The models honour scikit-learn's estimator contract and work in its tools and in MLflow.

scikit-learn's array-API checks are skipped by scikit-learn itself unless SCIPY_ARRAY_API is
set: the models compute with NumPy only and do not claim array-API support.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from models import (
    SKOPS_TRUSTED_TYPES,
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
    Perceptron,
)


@parametrize_with_checks(
    [
        MLPClassifier(random_state=0),
        MLPRegressor(random_state=0),
        Perceptron(random_state=0),
        LogisticRegression(random_state=0),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_grid_search_and_cross_validation():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier((8,), learning_rate_init=0.01, max_iter=100, random_state=0)
    )
    search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.85
    scores = cross_val_score(
        MLPRegressor((8,), learning_rate_init=0.01, max_iter=100, standardize=True, random_state=0),
        *load_diabetes(return_X_y=True),
        cv=3,
    )
    assert scores.shape == (3,) and np.all(np.isfinite(scores))


@pytest.mark.integration
def test_round_trip_through_mlflow_sklearn(tmp_path):
    import mlflow
    import mlflow.sklearn

    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((8,), max_iter=50, random_state=0).fit(X, y)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("models", artifact_location=(tmp_path / "a").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(
            model, name="model", pip_requirements=[], skops_trusted_types=SKOPS_TRUSTED_TYPES
        )
    loaded = mlflow.sklearn.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.get_params() == model.get_params()
