"""Reading a warm start's history from a real sqlite store in a temporary directory."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from hpo.space import Choice, Float, Space
from hpo.strategies.base import TrialState
from hpo.sweep.warm_start import load_history


@pytest.fixture
def store(tmp_path):
    """A sqlite store in a temporary directory: its URI, a client, an experiment id."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    return uri, client, client.create_experiment("e", artifact_location=tmp_path.as_uri())


def _sweep(client, experiment_id, direction, trials):
    """A parent run and one child run per (params, state, value), as hpo records them."""
    tags = {"hpo.sweep": "true", "hpo.direction": direction}
    parent = client.create_run(experiment_id, tags=tags)
    sweep_id = parent.info.run_id
    for number, (params, state, value) in enumerate(trials):
        run = client.create_run(
            experiment_id,
            tags={
                "mlflow.parentRunId": sweep_id,
                "hpo.trial": str(number),
                "hpo.state": state,
                "hpo.params": json.dumps(params),
            },
        )
        if value is not None:
            client.log_metric(run.info.run_id, "objective", value)
    return sweep_id


def test_history_keeps_finished_trials_that_fit_the_new_space_by_their_values(store):
    uri, client, experiment_id = store
    sweep_id = _sweep(
        client,
        experiment_id,
        "minimize",
        [
            ({"lr": 0.01, "act": "elu"}, "COMPLETE", 0.3),
            ({"lr": 0.5, "act": "relu"}, "COMPLETE", 0.9),  # lr outside the narrowed range
            ({"lr": 0.001, "act": "tanh"}, "COMPLETE", 0.2),  # tanh was removed
            ({"lr": 0.002, "act": "relu"}, "FAILED", None),
            ({"lr": 0.003, "act": "relu"}, "RUNNING", None),  # never finished: not history
        ],
    )
    # The earlier space: lr in [1e-4, 1], act relu/tanh/elu. Now the range is narrowed and
    # "tanh" removed: "elu" is now option 1, and is found as such.
    new = Space({"lr": Float(1e-4, 0.1, log=True), "act": Choice(["relu", "elu"])})
    history = load_history([sweep_id], new, "minimize", uri)
    assert history.trials == [
        ({"lr": 0.01, "act": 1}, TrialState.COMPLETE, 0.3),
        ({"lr": 0.002, "act": 0}, TrialState.FAILED, None),
    ]
    assert history.left_out == 2
    assert history.describe() == (
        "warm start: 2 finished trials of 1 earlier sweep as history; 2 left out (their "
        "parameters fall outside this space)"
    )
    with pytest.raises(ValueError, match="was to minimize its objective, this one is to maximize"):
        load_history([sweep_id], new, "maximize", uri)
    with pytest.raises(ValueError, match="no sweep 'nope'"):
        load_history(["nope"], new, "minimize", uri)
    with pytest.raises(ValueError, match="warm_start must be a list of sweep ids"):
        load_history(sweep_id, new, "minimize", uri)


def test_a_history_of_several_objectives_carries_each_value_and_checks_the_names(store):
    uri, client, experiment_id = store
    sweep_id = _sweep(
        client,
        experiment_id,
        "minimize,maximize",
        [({"lr": 0.01}, "COMPLETE", None), ({"lr": 0.02}, "COMPLETE", None)],
    )
    client.set_tag(sweep_id, "hpo.objectives", '["error", "speed"]')
    runs = client.search_runs([experiment_id], "tags.hpo.trial = '0'")
    client.log_metric(runs[0].info.run_id, "error", 0.1)
    client.log_metric(runs[0].info.run_id, "speed", 7.0)  # trial 1 lacks its values: left
    space = Space({"lr": Float(1e-4, 0.1, log=True)})
    history = load_history([sweep_id], space, "minimize,maximize", uri, ("error", "speed"))
    assert history.trials == [({"lr": 0.01}, TrialState.COMPLETE, (0.1, 7.0))]
    assert history.objective_names == ("error", "speed")  # a sweep not naming them takes these
    assert load_history([sweep_id], space, "minimize,maximize", uri).trials == history.trials
    with pytest.raises(ValueError, match=r"objectives are \['error', 'speed'\], this one's are"):
        load_history([sweep_id], space, "minimize,maximize", uri, ("loss", "speed"))
    with pytest.raises(ValueError, match="needs the same direction"):
        load_history([sweep_id], space, "minimize", uri)
