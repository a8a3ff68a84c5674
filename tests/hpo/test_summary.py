"""The closing report's pure functions, on hand-made trial records."""

from __future__ import annotations

import csv
import io

import pytest

from hpo.report.summary import (
    closing_artifacts,
    closing_tags,
    figure_specs,
    heatmap_axes,
    heatmap_metrics,
    ranked_by_mean,
    repeats_csv,
    repeats_std,
    sweep_settings,
    trials_csv,
)
from hpo.space import Choice, Float, Int, as_space
from hpo.strategies.base import Trial, TrialState
from hpo.strategies.pruners import MedianPruner
from hpo.sweep.lifecycle import TrialRecord


def record(number, state, value=None, *, params=None, metrics=None, repeats=None, **fields):
    params = params or {"lr": 0.1, "act": "relu"}
    trial = Trial(number, {}, params, dict(params), state=state, value=value)
    if state is TrialState.FAILED:
        trial.error = "ValueError: diverged"
    last = {k: (9, v) for k, v in (metrics or {}).items()}
    return TrialRecord(trial, last_metrics=last, repeat_values=repeats, **fields)


def test_closing_tags_count_states_and_name_the_best_trial():
    records = [
        record(0, TrialState.COMPLETE, 0.5, run_id="r0"),
        record(1, TrialState.FAILED, run_id="r1"),
        record(2, TrialState.COMPLETE, 0.2, run_id="r2"),
        record(3, TrialState.PRUNED, run_id="r3"),
        record(4, TrialState.COMPLETE, 0.2, run_id="r4"),  # ties trial 2: the first wins
    ]
    tags = closing_tags(records, "minimize", elapsed=12.34, prune_metric="loss", timed_out=True)
    assert tags == {
        "hpo.n_complete": "3",
        "hpo.n_failed": "1",
        "hpo.n_pruned": "1",
        "hpo.elapsed_seconds": "12.3",
        "hpo.best_value": "0.2",
        "hpo.best_trial": "2",
        "hpo.best_run_id": "r2",
        "hpo.prune_metric": "loss",
        "hpo.timed_out": "true",
    }
    maximize = closing_tags(records, "maximize", elapsed=1, interrupted=True, error="E: x")
    assert maximize["hpo.best_trial"] == "0" and maximize["hpo.interrupted"] == "true"
    assert maximize["hpo.error"] == "E: x" and "hpo.timed_out" not in maximize


def test_closing_tags_without_a_completed_trial_name_no_best():
    tags = closing_tags([record(0, TrialState.FAILED)], "minimize", elapsed=0.0)
    assert tags["hpo.n_failed"] == "1" and "hpo.best_value" not in tags


def test_trials_csv_has_a_row_per_trial_with_every_parameter():
    records = [
        record(0, TrialState.COMPLETE, 0.5, run_id="r0", seconds=1.23456, attempts=2),
        record(1, TrialState.FAILED, params={"lr": 0.2, "layers.units.0": 64}),
    ]
    rows = list(csv.reader(io.StringIO(trials_csv(records))))
    assert rows[0] == [
        "trial",
        "state",
        "objective",
        "seconds",
        "attempts",
        "run_id",
        "error",
        "lr",
        "act",
        "layers.units.0",
    ]
    assert rows[1] == ["0", "COMPLETE", "0.5", "1.235", "2", "r0", "", "0.1", "relu", ""]
    assert rows[2] == ["1", "FAILED", "", "", "1", "", "ValueError: diverged", "0.2", "", "64"]


def test_repeats_are_ranked_by_mean_with_their_standard_deviation():
    records = [
        record(0, TrialState.COMPLETE, 2.0, repeats=[1.0, 3.0]),
        record(1, TrialState.COMPLETE, 1.0, repeats=[1.0, 1.0]),
        record(2, TrialState.FAILED),
    ]
    assert [r.number for r in ranked_by_mean(records, "minimize")] == [1, 0]
    assert [r.number for r in ranked_by_mean(records, "maximize")] == [0, 1]
    assert repeats_std([1.0, 3.0]) == pytest.approx(2**0.5)
    rows = list(csv.reader(io.StringIO(repeats_csv(records, "minimize"))))
    assert rows[0][:5] == ["rank", "trial", "mean", "std", "values"]
    assert rows[1][:5] == ["1", "1", "1", "0", "1 1"]
    assert rows[2][:5] == ["2", "0", "2", "1.41421", "1 3"]


def test_heatmap_axes_need_exactly_two_unconditional_parameters_with_few_values():
    two = as_space({"lr": Float(1e-3, 1.0, log=True), "act": Choice(["relu", "tanh"])})
    records = [record(i, TrialState.COMPLETE, 0.1) for i in range(3)]
    assert heatmap_axes(two, records) == ("lr", "act")
    three = as_space({"a": Float(0, 1), "b": Float(0, 1), "c": Int(1, 3)})
    assert heatmap_axes(three, records) is None
    branches = as_space({"a": Float(0, 1), "b": Choice([{"u": Int(1, 4)}, {"v": 2}])})
    assert heatmap_axes(branches, records) is None
    many = [record(i, TrialState.COMPLETE, 0.1, params={"lr": i, "act": "relu"}) for i in range(30)]
    assert heatmap_axes(two, many) is None


def test_heatmap_metrics_leave_out_copies_of_the_objective_and_put_accuracies_first():
    records = [
        record(0, TrialState.COMPLETE, 0.9, metrics={"val_accuracy": 0.9, "val_loss": 0.3}),
        record(1, TrialState.COMPLETE, 0.8, metrics={"val_accuracy": 0.8, "train_acc": 0.95}),
    ]
    assert heatmap_metrics(records) == ["train_acc", "val_loss"]


def test_heatmap_metrics_leave_out_a_schedule_that_reports_its_parameter():
    # A constant learning-rate schedule reports the rate each trial was given.
    records = [
        record(0, TrialState.COMPLETE, 0.9, params={"lr": 0.1}, metrics={"learning_rate": 0.1}),
        record(1, TrialState.COMPLETE, 0.8, params={"lr": 1.0}, metrics={"learning_rate": 1.0}),
    ]
    for r, loss in zip(records, (0.2, 0.4), strict=True):
        r.last_metrics["train_loss"] = (9, loss)
    assert heatmap_metrics(records) == ["train_loss"]


def test_figure_specs_hold_history_repeats_and_heatmap_data():
    space = as_space({"lr": Float(0.01, 1.0, grid=2), "act": Choice(["relu", "tanh"])})
    records = [
        record(0, TrialState.COMPLETE, 0.5, params={"lr": 0.01, "act": "relu"}, repeats=[0.4, 0.6]),
        record(1, TrialState.FAILED, params={"lr": 1.0, "act": "relu"}),
    ]
    specs = {name: (kind, args) for name, kind, args in figure_specs(records, space, "minimize")}
    assert specs["optimization_history.png"] == (
        "history",
        {"numbers": [0, 1], "values": [0.5, None], "direction": "minimize"},
    )
    assert "repeats.png" not in specs  # repeats=1
    kind, args = specs["heatmap.png"]
    assert args["panels"] == {"objective": {(0.01, "relu"): 0.5, (1.0, "relu"): None}}
    with_repeats = figure_specs(records, space, "minimize", repeats=2)
    [repeats] = [args for name, _, args in with_repeats if name == "repeats.png"]
    assert repeats["values"] == [[0.4, 0.6]] and repeats["labels"] == ["#0 lr=0.01, act=relu"]
    assert figure_specs([], space, "minimize") == []


def test_settings_and_artifacts_follow_the_sweeps_options():
    pruner = MedianPruner()
    pruner.bind("minimize")
    settings = sweep_settings(
        {"strategy": "tpe"}, budget=9, workers=2, pruner=pruner, prune_metric=None, repeats=1
    )
    assert settings["n_trials"] == 9 and settings["workers"] == 2
    assert settings["pruner"] == "median" and settings["prune_metric"] == "first reported"
    assert "repeats" not in settings
    assert sweep_settings({}, budget=1, workers=1, pruner=None, prune_metric=None, repeats=3) == {
        "n_trials": 1,
        "workers": 1,
        "repeats": 3,
    }
    space = as_space({"x": Float(0, 1)})
    records = [record(0, TrialState.COMPLETE, 1.0, repeats=[1.0, 1.0])]
    assert set(closing_artifacts(records, space, "minimize")) == {"trials.csv", "space.txt"}
    assert "best_configurations.csv" in closing_artifacts(records, space, "minimize", repeats=2)


def test_a_one_parameter_sweep_gets_the_history_alone():
    # Parallel coordinates, slices and importance say nothing more over one parameter, and
    # would cost the sweep matplotlib's import and a fANOVA forest.
    space = as_space({"x": Float(0.0, 1.0)})
    records = [record(i, TrialState.COMPLETE, 0.1 * i, params={"x": 0.1 * i}) for i in range(9)]
    assert [name for name, _, _ in figure_specs(records, space, "minimize")] == [
        "optimization_history.png"
    ]
