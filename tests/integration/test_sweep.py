"""Sweeps through the Python API on a real local Ray cluster with a real sqlite store."""

from __future__ import annotations

import functools
import re
import time

import numpy as np
import objectives
import pytest
from conftest import by_trial, child_runs
from ray import cloudpickle

import hpo
from hpo.space import Choice, Float

# The workers cannot import the tests folder: ship these objectives with their code.
cloudpickle.register_pickle_by_value(objectives)

pytestmark = pytest.mark.integration


def test_every_trial_is_a_terminal_child_run_with_params_curves_and_artifacts(
    ray_cluster, tracking_uri, client
):
    result = hpo.run(
        {"x": Float(-1.0, 1.0)},
        objectives.quadratic,
        n_trials=6,
        workers=2,
        seed=0,
        tracking_uri=tracking_uri,
        experiment_name="api",
        progress=False,
    )
    assert len(result.trials) == 6 and result.n_complete == 6
    assert result.best_value == min(t.value for t in result.trials)
    parent = client.get_run(result.sweep_id)
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["hpo.sweep"] == "true" and tags["hpo.strategy"] == "random"
    assert tags["hpo.direction"] == "minimize" and tags["hpo.seed"] == "0"
    assert tags["hpo.n_complete"] == "6" and tags["hpo.n_failed"] == "0"
    assert float(tags["hpo.best_value"]) == result.best_value
    assert {a.path for a in client.list_artifacts(result.sweep_id)} >= {
        "trials.csv",
        "optimization_history.png",
        "space.txt",
    }
    runs = by_trial(child_runs(client, result.sweep_id))
    assert sorted(runs) == list(range(6))
    for trial in result.trials:
        run = runs[trial.number]
        assert run.info.run_id == trial.run_id
        assert run.info.status == "FINISHED" and run.data.tags["hpo.state"] == "COMPLETE"
        assert float(run.data.params["x"]) == trial.params["x"]
        assert run.data.metrics["objective"] == trial.value
        history = client.get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in history) == [0, 1, 2, 3, 4]
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["learning_curves.png"]
    best_curve = client.get_metric_history(result.sweep_id, "best_objective")
    assert len(best_curve) == 6

    # The same trials as data, from the live result and read back from the store.
    live = result.to_dataframe()
    loaded = hpo.load_sweep(result.sweep_id, tracking_uri=tracking_uri)
    stored = loaded.to_dataframe()
    columns = ["number", "state", "value", "attempts", "run_id", "params.x", "metrics.loss"]
    assert list(live.columns[:7]) == [
        "number",
        "state",
        "value",
        "duration",
        "attempts",
        "run_id",
        "error",
    ]
    assert live[columns].equals(stored[columns])
    assert (live["duration"] - stored["duration"]).abs().max() < 1e-3  # stored to the ms
    assert loaded.best_params == result.best_params and loaded.best_value == result.best_value
    assert loaded.direction == "minimize" and loaded.settings["n_trials"] == 6


def test_failures_are_recorded_and_the_sweep_goes_on(ray_cluster, tracking_uri, client):
    space = {"kind": Choice(["ok", "raise", "nan", "inf", "text"]), "x": Float(0.0, 1.0)}
    strategy = hpo.make_strategy("grid", {"kind": space["kind"], "x": Float(0.0, 1.0, grid=2)})
    result = hpo.run(
        space,
        objectives.flaky,
        strategy=strategy,
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="failures",
        progress=False,
    )
    assert len(result.trials) == 10
    runs = by_trial(child_runs(client, result.sweep_id))
    reasons = {}
    for trial in result.trials:
        run = runs[trial.number]
        kind = trial.params["kind"]
        if kind == "ok":
            assert run.data.tags["hpo.state"] == "COMPLETE"
            continue
        assert trial.state.value == "FAILED"
        assert run.info.status == "FAILED" and run.data.tags["hpo.state"] == "FAILED"
        assert "objective" not in run.data.metrics
        assert "traceback.txt" in {a.path for a in client.list_artifacts(run.info.run_id)}
        reasons[kind] = run.data.tags["hpo.error"]
    assert reasons["raise"] == "RuntimeError: the objective failed on purpose"
    assert reasons["nan"] == "ValueError: the objective returned nan, which is not a finite number"
    assert reasons["inf"] == "ValueError: the objective returned inf, which is not a finite number"
    assert reasons["text"].startswith("TypeError: the objective must return a real number, got str")
    loaded = hpo.load_sweep(result.sweep_id, tracking_uri=tracking_uri).trials
    assert [(t.state, t.error, t.params) for t in loaded] == [
        (t.state, t.error, t.params) for t in result.trials
    ]
    parent = client.get_run(result.sweep_id)
    assert parent.data.tags["hpo.n_failed"] == "8" and parent.data.tags["hpo.n_complete"] == "2"


def test_a_diverging_model_fails_its_trial_with_the_reason(ray_cluster, tracking_uri, client):
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(40, 3)) * 1e3, rng.integers(0, 2, size=40))
    space = {"lr": Float(1e-6, 1e6, log=True, grid=[1e-6, 1e6])}
    result = hpo.run(
        space,
        objectives.diverging,
        strategy="grid",
        data=data,
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="diverge",
        progress=False,
    )
    small, large = sorted(result.trials, key=lambda t: t.params["lr"])
    assert small.state.value == "COMPLETE"
    assert large.state.value == "FAILED"
    assert re.match(
        r"DivergenceError: diverged at epoch \d+: the training loss became (inf|nan) "
        r"\(learning_rate_init=1e\+06,",
        large.error,
    )
    run = client.get_run(large.run_id)
    assert run.data.tags["hpo.error"] == large.error
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) >= 2


def test_data_is_shipped_once_per_worker_and_blas_uses_one_thread(ray_cluster, tracking_uri):
    data = np.arange(200_000, dtype=np.float64)
    result = hpo.run(
        {"x": Float(0.0, 1.0)},
        objectives.introspect,
        data=data,
        n_trials=8,
        workers=2,
        seed=1,
        tracking_uri=tracking_uri,
        experiment_name="data",
        progress=False,
    )
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    seen: dict[int, set[int]] = {}
    for trial in result.trials:
        m = client.get_run(trial.run_id).data.metrics
        assert m["blas_threads"] == 1
        assert m["data_sum"] == float(data.sum())
        seen.setdefault(int(m["pid"]), set()).add(int(m["data_id"]))
    assert len(seen) == 2  # both workers ran trials; long-lived, so a pid runs several
    assert all(len(ids) == 1 for ids in seen.values())  # the same data object every trial


def test_a_killed_worker_loses_no_trial(ray_cluster, tracking_uri, client, tmp_path):
    marker = tmp_path / "killed"
    space = {"x": Float(0.0, 1.0, grid=4), "victim": Choice([False, True]), "marker": str(marker)}
    result = hpo.run(
        space,
        objectives.killed_once,
        strategy="grid",
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="kill",
        progress=False,
    )
    assert marker.exists()  # a worker really was SIGKILLed mid-trial
    assert len(result.trials) == 8 and result.n_complete == 8
    runs = child_runs(client, result.sweep_id)
    assert sorted(int(r.data.tags["hpo.trial"]) for r in runs) == list(range(8))
    retried = [r for r in runs if r.data.tags["hpo.attempt"] == "2"]
    assert len(retried) == 1
    assert "ActorDiedError" in retried[0].data.tags["hpo.attempt_1_error"]
    for run in runs:
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert sorted(steps) == list(range(6))  # reported twice for the retried one, logged once


def test_a_trial_whose_worker_keeps_dying_ends_failed(ray_cluster, tracking_uri, client):
    result = hpo.run(
        {"x": Float(0.0, 1.0)},
        objectives.always_killed,
        n_trials=2,
        workers=2,
        max_retries=1,
        seed=0,
        tracking_uri=tracking_uri,
        experiment_name="dead",
        progress=False,
    )
    assert result.n_failed == 2
    for trial in result.trials:
        assert trial.error.startswith("the worker process died (2 attempts)")
        run = client.get_run(trial.run_id)
        assert run.info.status == "FAILED" and run.data.tags["hpo.attempt"] == "2"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space": {"x": {1, 2}}}, r"unsupported value at 'x': \{1, 2\} \(set\)"),
        ({"strategy": "grid"}, r"Float\(0, 1\) has no grid"),
        ({"strategy": "bayes"}, r"unknown strategy 'bayes'"),
        ({"n_trials": 0}, r"n_trials must be an int >= 1, got 0"),
        (
            {"workers": 3},
            r"workers must not exceed the trials the cluster runs at once \(2 with cpu=1 "
            r"each\), got workers=3",
        ),
        (
            {"resources": {"cpu": 3}},
            r"resources=\{cpu=3\} per trial fits no node of the Ray cluster \(the largest "
            r"has cpu=2, gpu=2, memory=",
        ),
        ({"resources": {"gpu": 3}}, r"resources=\{cpu=1, gpu=3\} per trial fits no node"),
        ({"resources": {"custom": {"tpu": 1}}}, r"resources=\{cpu=1, tpu=1\} per trial fits"),
        ({"resources": {"cpu": 0}}, r"resources: cpu must be a number > 0, got 0"),
        ({"max_trials_per_worker": 0}, r"max_trials_per_worker must be an int >= 1, got 0"),
        ({"direction": "up"}, r"direction must be 'minimize' or 'maximize', got 'up'"),
        ({"objective": lambda params: 0.0}, r"must take \(params, report\)"),
        ({"data": [1, 2]}, r"data was given but the objective takes \(params, report\)"),
    ],
)
def test_bad_input_is_refused_before_any_run_is_created(
    ray_cluster, tracking_uri, client, kwargs, message
):
    call = {
        "space": {"x": Float(0.0, 1.0)},
        "objective": objectives.quadratic,
        "tracking_uri": tracking_uri,
        "experiment_name": "bad",
        "progress": False,
        **kwargs,
    }
    with pytest.raises((ValueError, TypeError), match=message):
        hpo.run(call.pop("space"), call.pop("objective"), **call)
    assert client.get_experiment_by_name("bad") is None


def test_workers_that_cannot_start_stop_the_sweep_with_the_reason(
    ray_cluster, tracking_uri, client
):
    from hpo.execution.pool import WorkerStartError

    with pytest.raises(WorkerStartError, match="No module named 'hpo_test_module_that_does_not"):
        hpo.run(
            {"x": Float(0.0, 1.0)},
            objectives.Unshippable(),
            n_trials=4,
            workers=2,
            tracking_uri=tracking_uri,
            experiment_name="unshippable",
            progress=False,
        )
    experiment = client.get_experiment_by_name("unshippable")
    [parent] = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`hpo.sweep` = 'true'"
    )
    assert parent.info.status == "FAILED"
    assert "could not start" in parent.data.tags["hpo.error"]
    for run in child_runs(client, parent.info.run_id):
        assert run.info.status != "RUNNING"


@pytest.mark.parametrize(
    ("strategy", "setting", "expected"),
    [("tpe", "sampler", "TPESampler"), ("gp", "acquisition", "log EI")],
)
def test_model_based_sweep_over_a_conditional_space_records_its_settings(
    ray_cluster, tracking_uri, client, strategy, setting, expected
):
    space = {
        "x": Float(-1.0, 1.0),
        "layers": Choice(
            [{"units": [Float(0.0, 1.0)]}, {"units": [Float(0.0, 1.0), Float(0.0, 1.0)]}]
        ),
    }
    result = hpo.run(
        space,
        objectives.conditional,
        strategy=strategy,
        n_trials=12,
        workers=2,
        seed=4,
        tracking_uri=tracking_uri,
        experiment_name=strategy,
        progress=False,
    )
    assert result.n_complete == 12
    parent = client.get_run(result.sweep_id)
    assert parent.data.tags["hpo.strategy"] == strategy
    assert parent.data.params[setting] == expected
    branches = {len(t.params["layers"]["units"]) for t in result.trials}
    assert branches == {1, 2}


def test_a_hanging_trial_is_stopped_by_the_trial_timeout(ray_cluster, tracking_uri, client):
    space = {"x": Float(0.0, 1.0, grid=2), "hang": Choice([False, True])}
    started = time.monotonic()
    result = hpo.run(
        space,
        objectives.hangs_when_told,
        strategy="grid",
        workers=2,
        trial_timeout=3,
        tracking_uri=tracking_uri,
        experiment_name="hang",
        progress=False,
    )
    assert time.monotonic() - started < 60  # nothing waited for the hung objectives
    for trial in result.trials:
        run = client.get_run(trial.run_id)
        if trial.params["hang"]:
            assert trial.error == "timeout after 3 s" and run.data.tags["hpo.state"] == "FAILED"
            assert run.data.tags["hpo.error"] == "timeout after 3 s"
        else:
            assert trial.state.value == "COMPLETE"
        assert run.info.status != "RUNNING"


def test_the_sweep_timeout_stops_asking_and_closes_running_trials(
    ray_cluster, tracking_uri, client, tmp_path
):
    hold = tmp_path / "hold"  # trials with x > 0.1 are sure to be running at the timeout
    hold.touch()
    result = hpo.run(
        {"x": Float(0.0, 1.0)},
        functools.partial(objectives.one_second_unless_held, hold=str(hold)),
        n_trials=100,
        workers=2,
        timeout=4,
        seed=0,
        tracking_uri=tracking_uri,
        experiment_name="timeout",
        progress=False,
    )
    assert result.timed_out and 2 <= len(result.trials) < 100
    cancelled = [t for t in result.trials if t.state.value == "FAILED"]
    assert cancelled and all(
        t.error == "cancelled: the sweep's timeout of 4 s was reached" for t in cancelled
    )
    parent = client.get_run(result.sweep_id)
    assert parent.data.tags["hpo.timed_out"] == "true"
    assert all(r.info.status != "RUNNING" for r in child_runs(client, result.sweep_id))
    assert len(child_runs(client, result.sweep_id)) == len(result.trials)


def test_timeouts_must_be_positive(ray_cluster, tracking_uri):
    with pytest.raises(ValueError, match=r"trial_timeout must be a number of seconds > 0, got 0"):
        hpo.run(
            {"x": Float(0.0, 1.0)},
            objectives.quadratic,
            trial_timeout=0,
            tracking_uri=tracking_uri,
            progress=False,
        )


def test_a_direction_that_contradicts_the_strategy_object_is_refused_before_anything():
    strategy = hpo.make_strategy("random", {"x": Float(0.0, 1.0)}, direction="minimize")
    with pytest.raises(ValueError, match="direction='maximize' differs from the strategy's own"):
        hpo.run(
            {"x": Float(0.0, 1.0)}, objectives.quadratic, strategy=strategy, direction="maximize"
        )


def test_a_sweep_warm_started_from_earlier_ones_learns_from_them_without_running_them(
    ray_cluster, tracking_uri, client
):
    space = {"x": Float(-1.0, 1.0)}
    earlier = [
        hpo.run(
            space,
            objectives.quadratic,
            strategy="random",
            n_trials=6,
            workers=2,
            seed=seed,
            tracking_uri=tracking_uri,
            experiment_name="warm",
            progress=False,
        )
        for seed in (1, 2)
    ]
    narrowed = {"x": Float(0.0, 1.0)}  # trials at x < 0 fall outside it
    outside = sum(t.params["x"] < 0 for r in earlier for t in r.trials)
    result = hpo.run(
        narrowed,
        objectives.quadratic,
        strategy="gp",
        n_trials=4,
        workers=2,
        seed=3,
        warm_start=[r.sweep_id for r in earlier],
        tracking_uri=tracking_uri,
        experiment_name="warm",
        progress=False,
    )
    # Its own 4 trials only: the history was learnt from, not run and not counted.
    assert [t.number for t in result.trials] == [0, 1, 2, 3] and result.n_complete == 4
    assert len(child_runs(client, result.sweep_id)) == 4
    tags = client.get_run(result.sweep_id).data.tags
    kept = 12 - outside
    assert tags["hpo.warm_start"].startswith(f"warm start: {kept} finished trials of 2 earlier")
    assert (f"{outside} left out" in tags["hpo.warm_start"]) == (outside > 0)
    assert tags["hpo.warm_start"].endswith(f"from {earlier[0].sweep_id}, {earlier[1].sweep_id}")
    assert all(0.0 <= t.params["x"] <= 1.0 for t in result.trials)  # inside the new space
    with pytest.raises(ValueError, match="needs the same direction"):
        hpo.run(
            narrowed,
            objectives.quadratic,
            direction="maximize",
            warm_start=[earlier[0].sweep_id],
            tracking_uri=tracking_uri,
            progress=False,
        )


def test_constraints_keep_infeasible_configurations_from_running(ray_cluster, tracking_uri, client):
    result = hpo.run(
        {"x": Float(-1.0, 1.0)},
        objectives.quadratic,
        strategy="tpe",
        n_trials=8,
        workers=2,
        seed=2,
        constraints=lambda params: params["x"] >= 0.0,  # half the interval is infeasible
        tracking_uri=tracking_uri,
        experiment_name="constrained",
        progress=False,
    )
    ran = [t for t in result.trials if not t.infeasible]
    refused = [t for t in result.trials if t.infeasible]
    assert refused, "TPE's random start proposes x < 0 too"
    assert len(ran) == 8 and result.n_complete == 8 and all(t.params["x"] >= 0 for t in ran)
    runs = by_trial(child_runs(client, result.sweep_id))
    assert sorted(runs) == sorted(t.number for t in result.trials)  # one run each
    for t in refused:
        run = runs[t.number]
        assert t.params["x"] < 0 and run.info.status == "FAILED"
        assert run.data.tags["hpo.infeasible"] == "true" and "objective" not in run.data.metrics
        assert "loss" not in run.data.metrics  # never run: nothing reported
    tags = client.get_run(result.sweep_id).data.tags
    assert tags.get("hpo.n_infeasible", "0") == str(len(refused))
