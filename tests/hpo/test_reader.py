"""The one reader, on a real sqlite store written by hand as the writer would: every state,
a retried trial, several objectives, a pruned and an infeasible trial, a cut-off end."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from hpo.core.trial import TrialState
from hpo.tracking.reader import load_sweep, read_sweep, recent_sweeps, trial_run
from hpo.tracking.schema import (
    PARENT_RUN,
    TRUE,
    SweepTag,
    TrialTag,
    encode_objectives,
    objective_names,
)


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("reader", artifact_location=(tmp_path / "a").as_uri())
    return uri, client, experiment


def make_sweep(client, experiment, direction="minimize", **tags):
    run = client.create_run(
        experiment,
        tags={SweepTag.SWEEP: TRUE, SweepTag.DIRECTION: direction, SweepTag.SEED: "0", **tags},
    )
    client.log_param(run.info.run_id, "n_trials", "5")
    return run.info.run_id


def make_trial(client, experiment, sweep_id, number, *, metrics=None, params=None, **tags):
    params = params or {"x": number / 10}
    run = client.create_run(
        experiment,
        tags={
            PARENT_RUN: sweep_id,
            TrialTag.TRIAL: str(number),
            TrialTag.ASSIGNMENT: json.dumps(params),
            TrialTag.PARAMS: json.dumps(params),
            **tags,
        },
    )
    for key, value in params.items():
        client.log_param(run.info.run_id, key, str(value))
    for key, value in (metrics or {}).items():
        client.log_metric(run.info.run_id, key, value, step=0)
    return run.info.run_id


def test_every_state_reads_back_as_the_writer_recorded_it(store):
    uri, client, experiment = store
    sweep_id = make_sweep(client, experiment, **{SweepTag.STOPPED_BY: "patience: ..."})
    done = make_trial(
        client,
        experiment,
        sweep_id,
        0,
        metrics={"objective": 0.3, "loss": 0.4},
        **{
            TrialTag.STATE: "COMPLETE",
            TrialTag.SECONDS: "1.500",
            TrialTag.ATTEMPT: "2",
            "hpo.attempt_1_error": "driver lost",
            TrialTag.ENQUEUED: TRUE,
        },
    )
    client.set_terminated(done, status="FINISHED")
    make_trial(
        client,
        experiment,
        sweep_id,
        1,
        metrics={"loss": 9.0},
        **{TrialTag.STATE: "FAILED", TrialTag.ERROR: "ValueError: nan"},
    )
    make_trial(
        client,
        experiment,
        sweep_id,
        2,
        metrics={"loss": 2.0},
        **{
            TrialTag.STATE: "PRUNED",
            TrialTag.PRUNE_REASON: "below the median",
            TrialTag.PRUNED_STEP: "4",
            TrialTag.PRUNER: "median",
        },
    )
    make_trial(
        client,
        experiment,
        sweep_id,
        3,
        **{TrialTag.STATE: "FAILED", TrialTag.INFEASIBLE: TRUE, TrialTag.ERROR: "refused"},
    )
    make_trial(client, experiment, sweep_id, 4)  # its driver died before any tag but its own
    make_trial(client, experiment, sweep_id, 5, **{TrialTag.STATE: "COMPLETE"})  # cut off
    make_trial(
        client,
        experiment,
        sweep_id,
        6,
        metrics={"objective": 0.1},
        **{
            TrialTag.STATE: "FAILED",
            TrialTag.CANCELLED: TRUE,
            TrialTag.ERROR: "cancelled: the sweep's timeout",
        },
    )

    sweep = read_sweep(client, sweep_id, uri)
    assert [t.number for t in sweep.trials] == list(range(7))
    assert sweep.stopped_by == "patience: ..." and sweep.objective_names == ("objective",)
    t0, t1, t2, t3, t4, t5, t6 = sweep.trials
    assert t0.complete and t0.values == (0.3,) and t0.metrics == {"loss": 0.4}
    assert (t0.seconds, t0.attempts, t0.enqueued, t0.run_status) == (1.5, 2, True, "FINISHED")
    assert t1.state is TrialState.FAILED and t1.error == "ValueError: nan" and t1.values is None
    assert t2.state is TrialState.PRUNED and t2.error == "below the median"
    assert (t2.pruned_step, t2.pruner) == (4, "median")
    assert t3.infeasible and not t3.complete
    assert t4.state is TrialState.RUNNING and t4.attempts == 1 and t4.run_status == "RUNNING"
    assert t5.state is TrialState.COMPLETE and not t5.complete  # its value never came
    assert t6.cancelled and t6.state is TrialState.FAILED

    result = load_sweep(sweep_id, tracking_uri=uri)
    assert result.best_trial.number == 0 and result.best_value == 0.3
    assert [t.value for t in result.trials] == [0.3, None, None, None, None, None, None]
    assert result.trials[0].params == {"x": 0.0} and result.trials[0].last("loss") == 0.4
    assert result.trials[5].state is TrialState.RUNNING  # a resume runs it again too
    assert result.n_complete == 1 and result.n_failed == 3 and result.n_pruned == 1
    assert result.stopped_by == "patience: ..." and result.settings == {"n_trials": 5}
    with pytest.raises(AttributeError):
        result.trials[0].number = 3  # frozen


def test_several_objectives_are_read_by_name_and_unnamed_ones_give_no_values(store):
    uri, client, experiment = store
    named = make_sweep(
        client,
        experiment,
        "minimize,maximize",
        **{SweepTag.OBJECTIVES: encode_objectives(["error", "speed"])},
    )
    make_trial(
        client,
        experiment,
        named,
        0,
        metrics={"error": 0.2, "speed": 5.0},
        **{TrialTag.STATE: "COMPLETE"},
    )
    make_trial(
        client,
        experiment,
        named,
        1,
        metrics={"error": 0.1},  # a curve, no value
        **{TrialTag.STATE: "FAILED", TrialTag.ERROR: "named like an objective"},
    )
    sweep = read_sweep(client, named, uri)
    assert sweep.directions == ("minimize", "maximize") and sweep.named_objectives
    assert sweep.trials[0].values == (0.2, 5.0) and sweep.trials[0].metrics == {}
    assert not sweep.trials[1].complete
    result = sweep.result()
    assert result.direction == "minimize,maximize" and result.trials[0].value is None
    assert [t.number for t in result.best_trials] == [0]

    unnamed = make_sweep(client, experiment, "minimize,maximize")  # no result named them
    assert objective_names(client.get_run(unnamed).data.tags) == ()
    assert read_sweep(client, unnamed, uri).objective_names == ()


def test_two_runs_of_one_trial_and_a_run_that_is_not_a_sweep_are_refused(store):
    uri, client, experiment = store
    sweep_id = make_sweep(client, experiment)
    make_trial(client, experiment, sweep_id, 0)
    make_trial(client, experiment, sweep_id, 0)
    with pytest.raises(ValueError, match="two child runs for trial 0"):
        read_sweep(client, sweep_id, uri)
    plain = client.create_run(experiment).info.run_id
    with pytest.raises(ValueError, match="is not an hpo sweep"):
        read_sweep(client, plain, uri)
    with pytest.raises(ValueError, match="no sweep 'nope'"):
        read_sweep(client, "nope", uri)


def test_a_trials_run_and_the_latest_sweeps_are_found(store):
    uri, client, experiment = store
    first = make_sweep(client, experiment)
    second = make_sweep(client, experiment)
    run_id = make_trial(client, experiment, second, 3)
    assert trial_run(client, experiment, second, 3).info.run_id == run_id
    assert trial_run(client, experiment, first, 3) is None
    found = [r.info.run_id for r in recent_sweeps(client, [experiment])]
    assert sorted(found) == sorted([first, second])  # the trial's run is not a sweep
