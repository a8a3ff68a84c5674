"""The shipped framework experiments (XGBoost, LightGBM, Lightning) as sweeps on a real
local Ray cluster: curves in MLflow as they train, pruning that stops the training, models
stored, and a Lightning fit whose worker dies going on from its checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import objectives
import pytest
from conftest import by_trial, child_runs
from ray import cloudpickle

from hpo.sweep.experiment_file import load_experiment
from hpo.sweep.start import start

cloudpickle.register_pickle_by_value(objectives)

pytestmark = pytest.mark.integration

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def experiment(name):
    exp = load_experiment(EXPERIMENTS / f"{name}.py")
    return exp, sys.modules[exp.objective.__module__]


def sweep(exp, tracking_uri, objective=None, **changes):
    config = exp.config.replace(tracking_uri=tracking_uri, progress=False, seed=0, **changes)
    return start(
        config, space=exp.space, objective=objective or exp.objective, data=exp.load_data()
    )


def steps(client, run_id, metric):
    return [m.step for m in client.get_metric_history(run_id, metric)]


def test_xgboost_rounds_are_curves_and_asha_stops_a_slow_learner(ray_cluster, tracking_uri, client):
    exp, module = experiment("xgboost_breast_cancer")
    good = {"max_depth": 4, "learning_rate": 0.3, "subsample": 1.0, "min_child_weight": 1.0}
    slow = {**good, "learning_rate": 0.01}
    result = sweep(exp, tracking_uri, n_trials=3, enqueue=[good, good, slow])
    assert client.get_run(result.sweep_id).data.params["workers"] == "1"  # cpu=2 each
    runs = by_trial(child_runs(client, result.sweep_id))
    first, _, last = result.trials
    assert first.state.name == "COMPLETE" and last.state.name == "PRUNED", first.error
    curve = steps(client, first.run_id, "validation_0-logloss")
    assert curve == list(range(module.ROUNDS))
    # Judged at ASHA's first rung (round 5); the training stops at its first report after
    # the driver's word arrives (rounds take milliseconds here), long before its end.
    assert runs[2].data.tags["hpo.pruned_step"] == "5"
    assert 5 < len(steps(client, last.run_id, "validation_0-logloss")) < module.ROUNDS // 2
    assert runs[0].data.tags["hpo.resources"] == "cpu=2"
    assert "model" in {a.path for a in client.list_artifacts(first.run_id)}


def test_lightgbm_rounds_are_curves_and_the_model_is_stored(ray_cluster, tracking_uri, client):
    exp, module = experiment("lightgbm_diabetes")
    result = sweep(exp, tracking_uri, n_trials=2, pruner="none")
    for trial in result.trials:
        assert trial.state.name == "COMPLETE", trial.error
        assert steps(client, trial.run_id, "valid_0-l2") == list(range(module.ROUNDS))
        assert trial.value == pytest.approx(trial.last("valid_0-l2"))
        assert "model" in {a.path for a in client.list_artifacts(trial.run_id)}


def test_a_lightning_fit_whose_worker_dies_goes_on_from_its_checkpoint(
    ray_cluster, tracking_uri, client, tmp_path
):
    exp, module = experiment("lightning_digits")
    cloudpickle.register_pickle_by_value(module)
    log = tmp_path / "steps.log"
    killed = objectives.KilledOnce(exp.objective, at=2, log=log)
    point = {"hidden_units": 32, "learning_rate": 0.01, "batch_size": 64}
    result = sweep(exp, tracking_uri, objective=killed, n_trials=1, enqueue=[point], pruner="none")
    [trial] = result.trials
    assert trial.state.name == "COMPLETE", trial.error
    assert trial.attempts == 2 and (tmp_path / "killed").exists()
    # Killed at epoch 2 before its checkpoint: the second attempt goes on from epoch 1's.
    epochs = [int(line) for line in log.read_text().split()]
    assert epochs == [0, 1, 2, *range(2, module.EPOCHS)]
    assert steps(client, trial.run_id, "val_accuracy") == list(range(module.EPOCHS))
    assert trial.value == pytest.approx(trial.last("val_accuracy")) and trial.value > 0.8
