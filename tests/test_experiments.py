"""Every experiment file loads, names a strategy that exists and fits its objective's shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hpo
from hpo.execution.worker import objective_arity
from hpo.sweep.experiment_file import load_experiment

EXPERIMENTS = sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.py"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_file_is_consistent(path):
    exp = load_experiment(path)
    strategy = hpo.make_strategy(
        exp.config.strategy,
        exp.space,
        direction=exp.config.direction,
        seed=0,
        **exp.config.strategy_options,
    )
    assert strategy.ask(1)
    assert (objective_arity(exp.objective) == 3) == (exp.load_data is not None)


def test_seed_variance_shows_a_spread_over_seeds():
    exp = load_experiment(Path(__file__).resolve().parent.parent / "experiments/seed_variance.py")
    assert exp.config.repeats == 8 and exp.config.strategy == "grid"
    scores = [
        exp.objective({"hidden_units": 2, "activation": "tanh", "seed": s}, lambda *a, **k: None)
        for s in range(8)
    ]
    assert all(0.0 <= v <= 1.0 for v in scores)
    assert len(set(scores)) > 1, "two hidden units learn XOR from some starts, not from all"


def _experiment(name: str):
    """The experiment file's `Experiment`, with its module's constants (EPOCHS, ...) too."""
    import sys

    from hpo.sweep.experiment_file import MODULE_PREFIX

    exp = load_experiment(Path(__file__).resolve().parent.parent / "experiments" / f"{name}.py")
    module = sys.modules[MODULE_PREFIX + name]
    exp.EPOCHS, exp.module = getattr(module, "EPOCHS", None), module
    return exp


class _Reports:
    """The objective's ``report``, keeping every (step, metrics) call."""

    def __init__(self):
        self.calls, self.models = [], []

    def model(self, estimator, name="model"):
        self.models.append(estimator)

    def __call__(self, step, **metrics):
        self.calls.append((step, metrics))

    def last(self, name):
        return [m[name] for _, m in self.calls if name in m][-1]


def test_diabetes_regression_minimises_the_rmsle_it_reports():
    from sklearn.metrics import root_mean_squared_log_error

    exp = _experiment("diabetes_regression")
    data = exp.load_data()
    X_train, X_val, y_train, y_val = data
    assert X_train.min() == 0.0 and X_train.max() == 1.0  # min-max scaled on the training split
    assert y_train.min() == 0.0 and y_train.max() == 1.0
    reports = _Reports()
    params = {"hidden_units": 16, "activation": "sigmoid", "learning_rate": 1e-2, "l2_alpha": 1e-4}
    value = exp.objective(params, reports, data)
    assert value == reports.last("val_rmsle")
    [model] = reports.models  # the trained model, stored in the trial's run
    assert exp.module.rmsle(model.predict(X_val), y_val) == value
    assert 0.0 < value < 0.2 and reports.last("r2") > 0.2  # it learns something
    assert [s for s, m in reports.calls if "val_loss" in m] == list(range(1, exp.EPOCHS + 1))
    predicted = np.array([-0.1, 0.5, 2.0])
    target = np.array([0.0, 0.4, 1.0])
    assert exp.module.rmsle(predicted, target) == pytest.approx(
        root_mean_squared_log_error(target, np.clip(predicted, 0, None))
    )


def test_digits_grid_sklearn_sweeps_scikit_learns_estimator_over_the_same_grid():
    exp = _experiment("digits_grid_sklearn")
    ours = _experiment("digits_grid")
    assert exp.space.grid_size() == 49 and repr(exp.space) == repr(ours.space)
    reports = _Reports()
    value = exp.objective({"learning_rate": 0.1, "l2_lambda": 1e-3}, reports, exp.load_data())
    assert [s for s, m in reports.calls if "val_accuracy" in m] == list(range(1, exp.EPOCHS + 1))
    assert value == reports.calls[-2][1]["val_accuracy"] and value > 0.9


def _fake_mnist(path, n_train=600, n_test=200, seed=0):
    """An mnist.npz in Keras' format whose digit is written as a bright row: learnable."""
    rng = np.random.default_rng(seed)

    def images(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        x[np.arange(n), 4 + 2 * labels, :] = 255
        return x, labels

    (x_train, y_train), (x_test, y_test) = images(n_train), images(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


@pytest.mark.slow
def test_mnist_mlp_trains_both_networks_of_the_source_on_a_file_in_keras_format(
    tmp_path, monkeypatch
):
    _fake_mnist(tmp_path / "mnist.npz")
    monkeypatch.setenv("HPO_MNIST", str(tmp_path / "mnist.npz"))
    exp = _experiment("mnist_mlp")
    data = exp.load_data()
    X_train, X_val, X_test, y_train, y_val, y_test = data
    assert X_train.shape == (500, 784) and X_val.shape == (100, 784) and X_test.shape == (200, 784)
    assert X_train.dtype == np.float32 and X_train.max() == 1.0
    source = {"network": "500-300", "learning_rate": 0.01, "momentum": 0.99, "nesterov": True}
    textbook = {"network": "100", "learning_rate": 0.001, "momentum": 0.9, "nesterov": False}
    for point in ({**source, "batch_size": 128}, {**textbook, "batch_size": 8192}):
        exp.space.validate(exp.space.assignment_of({**point, "l2_alpha": 0.0}))  # in the space
    for params in (source, {**textbook, "learning_rate": 0.01}):  # a step this small data learns at
        reports = _Reports()
        value = exp.objective({**params, "batch_size": 32, "l2_alpha": 0.0}, reports, data)
        assert value > 0.8, params  # chance is 0.1
        assert 0.0 <= reports.last("test_accuracy") <= 1.0
        assert [s for s, m in reports.calls if "val_accuracy" in m] == list(range(1, 11))


def test_mnist_mlp_says_what_is_wrong_with_the_file(tmp_path, monkeypatch):
    exp = _experiment("mnist_mlp")
    monkeypatch.delenv("HPO_MNIST", raising=False)
    with pytest.raises(FileNotFoundError, match="name it in HPO_MNIST"):
        exp.load_data()
    monkeypatch.setenv("HPO_MNIST", str(tmp_path / "absent.npz"))
    with pytest.raises(FileNotFoundError, match="absent.npz', which is not a file"):
        exp.load_data()
    np.savez(tmp_path / "other.npz", x_train=np.zeros((4, 28, 28)))
    monkeypatch.setenv("HPO_MNIST", str(tmp_path / "other.npz"))
    with pytest.raises(ValueError, match="missing y_train, x_test, y_test"):
        exp.load_data()


def test_digits_size_returns_the_error_and_the_weights_it_names():
    exp = _experiment("digits_size")
    assert exp.config.direction == ("minimize", "minimize")
    assert exp.config.objective_names == ("val_error", "weights")
    data = exp.load_data()
    reports = _Reports()
    reports.model = lambda model: reports.calls.append(("model", {"model": model}))
    params = {"learning_rate": 1e-2, "layers": {"units": [8, 4]}}
    values = exp.objective(params, reports, data)
    assert values["weights"] == (64 * 8 + 8) + (8 * 4 + 4) + (4 * 10 + 10)
    assert 0.0 <= values["val_error"] < 0.3  # it learns
    assert values["val_error"] == pytest.approx(1.0 - reports.last("val_accuracy"))


@pytest.mark.parametrize(
    "name", ["digits_grid", "digits_tpe", "digits_pbt", "hidden_units_gp", "diabetes_regression"]
)
def test_the_shipped_experiments_store_their_trained_model(name, monkeypatch):
    """So that every sweep of them has a best model (`hpo.load_best_model`), the demo's too."""
    exp = _experiment(name)
    monkeypatch.setattr(exp.module, "EPOCHS", 3)  # what is stored, not how well it learns
    strategy = hpo.make_strategy(
        exp.config.strategy, exp.space, direction=exp.config.direction, seed=0
    )
    [trial] = strategy.ask(1)
    reports = _Reports()
    reports.checkpoint = lambda state: None  # digits_tpe checkpoints as it trains
    reports.restore = lambda: None
    exp.objective(trial.params, reports, exp.load_data())
    [model] = reports.models
    assert hasattr(model, "predict") and model.n_iter_ >= 1
