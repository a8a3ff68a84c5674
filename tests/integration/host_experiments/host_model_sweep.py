"""An experiment of the namespace-host tests (test_deployment_hosts.py) whose trials store
a small scikit-learn model: the users' tests load the best one."""

import numpy as np
from sklearn.dummy import DummyRegressor

from hpo.space import Float

direction = "minimize"
strategy = "random"
space = {"x": Float(0.0, 1.0)}


def objective(params, report):
    report(0, loss=params["x"])
    model = DummyRegressor(strategy="constant", constant=params["x"])
    report.model(model.fit(np.zeros((2, 1)), [0.0, 0.0]))
    return params["x"]
