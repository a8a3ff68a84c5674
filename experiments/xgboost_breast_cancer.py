"""XGBoost on scikit-learn's breast-cancer data, pruned with ASHA on its boosting rounds.

`hpo.integrations.xgboost.XGBoostCallback` reports each round's validation log loss, so the
trials' curves grow in MLflow as they train and ASHA stops the unpromising ones at its
rungs (rounds 5, 15, 45, ...). Each trial takes two CPUs: XGBoost trains with two threads.

    pip install "hpo[xgboost]"
    hpo run experiments/xgboost_breast_cancer.py
"""

from __future__ import annotations

from hpo.space import Float, Int

direction = "minimize"
strategy = "tpe"
n_trials = 30
pruner = "asha:min_resource=5,reduction_factor=3"
resources = {"cpu": 2}

space = {
    "max_depth": Int(2, 8),
    "learning_rate": Float(0.01, 0.5, log=True),
    "subsample": Float(0.5, 1.0),
    "min_child_weight": Float(0.1, 10.0, log=True),
}

ROUNDS = 150


def load_data():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def objective(params, report, data):
    import xgboost

    from hpo.integrations.xgboost import XGBoostCallback

    X_train, X_val, y_train, y_val = data
    model = xgboost.XGBClassifier(
        n_estimators=ROUNDS,
        eval_metric="logloss",
        callbacks=[XGBoostCallback(report)],
        random_state=0,
        **params,
    )
    model.fit(X_train, y_train, eval_set=[(X_val, y_val)], verbose=False)
    report.model(model)
    return float(model.evals_result()["validation_0"]["logloss"][-1])
