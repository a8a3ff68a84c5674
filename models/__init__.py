"""NumPy neural networks with scikit-learn's estimator API, built to be tuned by `hpo`."""

from models.exceptions import DivergenceError
from models.linear import LogisticRegression, Perceptron
from models.mlp import MLPClassifier, MLPRegressor

# For mlflow.sklearn.log_model(..., skops_trusted_types=SKOPS_TRUSTED_TYPES): MLflow's
# skops serialisation loads only the types it is told to trust. A fitted model holds its
# optimiser's state so that partial_fit can continue training.
SKOPS_TRUSTED_TYPES = [
    "models.mlp.MLPClassifier",
    "models.mlp.MLPRegressor",
    "models.linear.Perceptron",
    "models.linear.LogisticRegression",
    "models._optimizers.SGD",
    "models._optimizers.Adagrad",
    "models._optimizers.RMSprop",
    "models._optimizers.Adam",
]

__all__ = [
    "SKOPS_TRUSTED_TYPES",
    "DivergenceError",
    "LogisticRegression",
    "MLPClassifier",
    "MLPRegressor",
    "Perceptron",
]
