"""LightGBM on scikit-learn's diabetes data, pruned with the median rule on its rounds.

`hpo.integrations.lightgbm.LightGBMCallback` reports each boosting round's validation L2
loss (``valid_0-l2``); the median rule stops a trial whose loss is behind the median of the
others at the same round.

    pip install "hpo[lightgbm]"
    hpo run experiments/lightgbm_diabetes.py
"""

from __future__ import annotations

from hpo.space import Float, Int

direction = "minimize"
strategy = "tpe"
n_trials = 30
pruner = "median"

space = {
    "num_leaves": Int(4, 64, log=True),
    "learning_rate": Float(0.01, 0.3, log=True),
    "min_child_samples": Int(5, 50),
    "reg_lambda": Float(1e-3, 10.0, log=True),
}

ROUNDS = 200


def load_data():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def objective(params, report, data):
    import lightgbm

    from hpo.integrations.lightgbm import LightGBMCallback

    X_train, X_val, y_train, y_val = data
    model = lightgbm.LGBMRegressor(n_estimators=ROUNDS, random_state=0, verbose=-1, **params)
    model.fit(X_train, y_train, eval_X=X_val, eval_y=y_val, callbacks=[LightGBMCallback(report)])
    report.model(model)
    return float(model.evals_result_["valid_0"]["l2"][-1])
