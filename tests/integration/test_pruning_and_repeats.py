"""Pruning on streamed curves, repeats, and inputs MLflow would refuse (real Ray, real MLflow)."""

from __future__ import annotations

import math

import objectives
import pytest
from conftest import by_trial, child_runs
from ray import cloudpickle

import hpo
from hpo.space import Choice, Float
from hpo.strategies.pruners import ASHAPruner, MedianPruner

cloudpickle.register_pickle_by_value(objectives)

pytestmark = pytest.mark.integration


def test_median_pruning_stops_bad_trials_at_their_next_report(ray_cluster, tracking_uri, client):
    # Good trials first (grid order), so the median exists before the bad ones run.
    strategy = hpo.make_strategy(
        "grid", {"x": Float(0.0, 1.0, grid=[0.0, 0.05, 0.1, 0.8, 0.9, 1.0])}
    )
    result = hpo.run(
        {"x": Float(0.0, 1.0)},
        objectives.slow_bad_curve,
        strategy=strategy,
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="median",
        progress=False,
        pruner=MedianPruner(warmup_steps=2, min_trials=2),
    )
    states = {t.params["x"]: t.state.value for t in result.trials}
    assert states[0.0] == states[0.05] == "COMPLETE"
    assert states[0.9] == states[1.0] == "PRUNED"
    runs = by_trial(child_runs(client, result.sweep_id))
    for trial in result.trials:
        run = runs[trial.number]
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert len(steps) == len(set(steps))
        if trial.state.value != "PRUNED":
            assert run.data.tags["hpo.state"] == "COMPLETE" and steps == list(range(20))
            continue
        tags = run.data.tags
        assert run.info.status == "KILLED" and tags["hpo.state"] == "PRUNED"
        assert tags["hpo.pruner"] == "median" and "median rule" in tags["hpo.prune_reason"]
        assert "(loss)" in tags["hpo.prune_reason"] and "objective" not in run.data.metrics
        pruned_step = int(tags["hpo.pruned_step"])
        # Freed at the next report: a step or two of reports in flight, never the whole curve.
        assert 2 <= pruned_step and max(steps) <= pruned_step + 3 < 19
    parent = client.get_run(result.sweep_id)
    assert parent.data.tags["hpo.n_pruned"] == str(result.n_pruned) != "0"
    assert parent.data.params["pruner"] == "median"
    assert parent.data.params["prune_metric"] == "first reported"
    assert parent.data.tags["hpo.prune_metric"] == "loss"


def test_asha_prunes_a_real_models_training_mid_fit_and_tpe_is_told(
    ray_cluster, tracking_uri, client
):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    data = train_test_split(X[:600] / 16.0, y[:600], test_size=0.3, random_state=0)
    space = {"lr": Float(1e-5, 0.3, log=True)}
    strategy = hpo.make_strategy("tpe", space, direction="maximize", seed=3)
    result = hpo.run(
        space,
        objectives.model_curve,
        direction="maximize",
        strategy=strategy,
        n_trials=10,
        workers=2,
        data=data,
        tracking_uri=tracking_uri,
        experiment_name="asha",
        progress=False,
        pruner=ASHAPruner(min_resource=2, reduction_factor=3),
        prune_metric="val_accuracy",
    )
    assert result.n_pruned >= 1 and result.n_complete >= 1
    assert result.settings["pruner"] == "asha" and result.settings["pruner.reduction_factor"] == 3
    runs = by_trial(child_runs(client, result.sweep_id))
    for trial in result.trials:
        epochs = client.get_metric_history(runs[trial.number].info.run_id, "val_accuracy")
        if trial.state.value == "PRUNED":
            assert "ASHA" in trial.error and len(epochs) < 30
            step = int(runs[trial.number].data.tags["hpo.pruned_step"])
            assert trial.intermediate[0] == step
        else:
            assert trial.state.value == "COMPLETE" and len(epochs) == 30
    # TPE learns from each trial's curve as it was logged, the steps a pruned trial
    # reported after the decision included.
    for trial in strategy.trials:
        history = client.get_metric_history(runs[trial.number].info.run_id, "val_accuracy")
        assert trial.curve == {m.step: m.value for m in history}


def test_asha_on_seconds_stops_trials_that_are_slower_for_the_same_curve(
    ray_cluster, tracking_uri, client
):
    # One worker: a fast trial places its values at the rungs (0.1, 0.2, 0.4 s), then two
    # trials with the same curve per step but four or five times slower steps run.
    pace = Float(0.01, 1.0, grid=[0.05, 0.2, 0.25])
    result = hpo.run(
        {"pause": pace},
        objectives.same_curve_any_pace,
        strategy=hpo.make_strategy("grid", {"pause": pace}),
        workers=1,
        tracking_uri=tracking_uri,
        experiment_name="asha-seconds",
        progress=False,
        pruner="asha:resource=seconds,min_resource=0.1,reduction_factor=2",
    )
    states = [t.state.value for t in sorted(result.trials, key=lambda t: t.number)]
    assert states == ["COMPLETE", "PRUNED", "PRUNED"]
    runs = by_trial(child_runs(client, result.sweep_id))
    for trial in result.trials[1:]:
        tags = runs[trial.number].data.tags
        # A slow trial's first report (step 0, loss 1.0) comes after 0.2 s or more, where
        # the fast one was at step 3 or later (0.25 or less): judged there, it stops.
        assert tags["hpo.pruned_step"] == "0"
        assert "ASHA: value 1 at rung 0." in tags["hpo.prune_reason"]
        assert " s is worse than " in tags["hpo.prune_reason"]
    params = client.get_run(result.sweep_id).data.params
    assert params["pruner.resource"] == "seconds" and params["pruner.min_resource"] == "0.1"


def test_bohb_prunes_in_hyperband_brackets_placed_from_the_first_trial(
    ray_cluster, tracking_uri, client
):
    space = {"x": Float(0.0, 1.0)}
    strategy = hpo.make_strategy("bohb", space, seed=4)  # the preset sets the pruner
    result = hpo.run(
        space,
        objectives.long_curve,
        strategy=strategy,
        n_trials=24,
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="bohb",
        progress=False,
    )
    params = client.get_run(result.sweep_id).data.params
    assert params["strategy"] == "bohb" and params["pruner"] == "hyperband"
    assert params["pruner.max_resource"] == "auto" and params["pruner.reduction_factor"] == "3"
    runs = by_trial(child_runs(client, result.sweep_id))
    pruned = [t for t in result.trials if t.state.value == "PRUNED"]
    assert pruned and result.n_complete >= 2
    # The first trial (27 steps, 0 to 26) places the brackets: max 26, min 1, rungs 1, 3, 9.
    for trial in pruned:
        tags = runs[trial.number].data.tags
        assert tags["hpo.pruner"] == "hyperband"
        bracket = int(tags["hpo.prune_reason"].split("Hyperband bracket ")[1].split(":")[0])
        assert bracket in (0, 1, 2)  # bracket 3 never prunes
        assert int(tags["hpo.pruned_step"]) >= (1, 3, 9)[bracket]
    # The strategy learnt from curves: every trial has one, as logged.
    for trial in strategy.trials:
        history = client.get_metric_history(runs[trial.number].info.run_id, "loss")
        assert trial.curve == {m.step: m.value for m in history}


def test_a_pruned_sweep_whose_objective_never_reports_stops_with_the_rule(
    ray_cluster, tracking_uri, client
):
    with pytest.raises(ValueError, match="the hyperband pruner judges the curves") as caught:
        hpo.run(
            {"x": Float(0.0, 1.0)},
            objectives.silent,
            n_trials=10,
            workers=1,
            pruner="hyperband",
            tracking_uri=tracking_uri,
            experiment_name="never-reports",
            progress=False,
        )
    assert "trial 0 completed without reporting a metric" in str(caught.value)
    experiment = client.get_experiment_by_name("never-reports").experiment_id
    [parent] = [
        r for r in client.search_runs([experiment]) if "mlflow.parentRunId" not in r.data.tags
    ]
    assert parent.info.status == "FAILED"
    runs = by_trial(child_runs(client, parent.info.run_id))
    assert list(runs) == [0] and "call report(step, loss=...)" in runs[0].data.tags["hpo.error"]


def test_repeats_record_each_value_their_mean_and_spread(ray_cluster, tracking_uri, client):
    strategy = hpo.make_strategy("grid", {"x": Float(0.0, 1.0, grid=3)})
    result = hpo.run(
        {"x": Float(0.0, 1.0, grid=3)},
        objectives.seeded,
        strategy=strategy,
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="repeats",
        progress=False,
        repeats=4,
    )
    import numpy as np

    noise = [np.random.default_rng(s).normal(0.0, 0.1) for s in range(4)]
    runs = by_trial(child_runs(client, result.sweep_id))
    for trial in result.trials:
        run_id = runs[trial.number].info.run_id
        expected = [trial.params["x"] + n for n in noise]
        values = client.get_metric_history(run_id, "objective_repeat")
        assert [m.step for m in sorted(values, key=lambda m: m.step)] == [0, 1, 2, 3]
        assert [m.value for m in sorted(values, key=lambda m: m.step)] == pytest.approx(expected)
        metrics = runs[trial.number].data.metrics
        assert trial.value == pytest.approx(np.mean(expected)) == metrics["objective"]
        assert metrics["objective_std"] == pytest.approx(np.std(expected, ddof=1))
        # Each repeat's curve is its own metric.
        for r in range(4):
            assert len(client.get_metric_history(run_id, f"loss/repeat_{r}")) == 1
    table = client.download_artifacts(result.sweep_id, "best_configurations.csv")
    with open(table) as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("rank,trial,mean,std,values")
    assert len(lines) == 4 and lines[1].split(",")[1] == str(result.best_trial.number)
    assert client.get_run(result.sweep_id).data.params["repeats"] == "4"


def test_settings_that_cannot_work_are_refused_before_any_run(ray_cluster, tracking_uri, client):
    space = {"x": Float(0.0, 1.0)}
    cases = [
        (dict(pruner="median", repeats=2), "cannot be combined with repeats > 1"),
        (dict(repeats=0), "repeats must be an int >= 1, got 0"),
        (dict(pruner="successive"), "unknown pruner 'successive'"),
        (
            dict(pruner="hyperband:min_resource=9,max_resource=3"),
            "min_resource must be less than max_resource, got min_resource=9",
        ),
        (dict(prune_metric="a:b?"), "may only contain letters"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            hpo.run(space, objectives.quadratic, tracking_uri=tracking_uri, **kwargs)
    with pytest.raises(ValueError, match="already has a parameter named 'seed'"):
        hpo.run({"seed": Float(0, 1)}, objectives.quadratic, repeats=3, tracking_uri=tracking_uri)
    with pytest.raises(ValueError, match=r"parameter name may only contain .* got 'lr\?'"):
        hpo.run({"lr?": Float(0, 1)}, objectives.quadratic, tracking_uri=tracking_uri)
    assert client.search_experiments() == [] or all(
        not client.search_runs([e.experiment_id]) for e in client.search_experiments()
    )


def test_values_mlflow_would_refuse_are_converted_or_fail_the_trial_clearly(
    ray_cluster, tracking_uri, client
):
    long_text = "y" * 7000
    space = {"x": Float(0.0, 1.0), "bad": Choice(["ok", "name", "none"]), "note": long_text}
    many = {f"p{i}": 1 for i in range(150)}  # more params than one MLflow call takes
    strategy = hpo.make_strategy("grid", {**space, "x": Float(0.0, 1.0, grid=1), **many})
    result = hpo.run(
        {**space, **many},
        objectives.odd_metrics,
        strategy=strategy,
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="limits",
        progress=False,
    )
    runs = by_trial(child_runs(client, result.sweep_id))
    by_bad = {t.params["bad"]: runs[t.number] for t in result.trials}
    ok = by_bad["ok"]
    assert ok.data.tags["hpo.state"] == "COMPLETE"
    assert len(ok.data.params) == 153 and len(ok.data.params["note"]) == 6000
    assert "note (7000 chars)" in ok.data.tags["hpo.truncated"]
    assert ok.data.metrics["converged"] == 1.0 and math.isnan(ok.data.metrics["loss"])
    assert "may only contain letters" in by_bad["name"].data.tags["hpo.error"]
    assert (
        "'loss' must be a real number or a bool, got NoneType"
        in by_bad["none"].data.tags["hpo.error"]
    )


def test_an_objective_may_prune_itself(ray_cluster, tracking_uri, client):
    result = hpo.run(
        {"x": Float(0.0, 1.0, grid=[0.2, 0.8])},
        objectives.prunes_itself,
        strategy="grid",
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="self-pruning",
        progress=False,
    )
    states = {t.params["x"]: t.state.value for t in result.trials}
    assert states == {0.2: "COMPLETE", 0.8: "PRUNED"}
    runs = by_trial(child_runs(client, result.sweep_id))
    [pruned] = [runs[t.number] for t in result.trials if t.params["x"] == 0.8]
    assert pruned.data.tags["hpo.pruner"] == "objective"
    assert pruned.data.tags["hpo.pruned_step"] == "1"
