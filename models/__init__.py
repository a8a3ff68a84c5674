"""NumPy neural networks with scikit-learn's estimator API, built to be tuned by `hpo`."""

from models.exceptions import DivergenceError
from models.mlp import MLPClassifier, MLPRegressor

__all__ = ["DivergenceError", "MLPClassifier", "MLPRegressor"]
