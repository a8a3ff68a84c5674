"""What a resume reads back for the pruner, on a real sqlite store in a temporary directory."""

from __future__ import annotations

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from hpo.strategies.base import Trial, TrialState
from hpo.strategies.pruners import ASHAPruner
from hpo.sweep.lifecycle import Restored
from hpo.sweep.resume import _replay_curves


def _finished_trial(client, experiment_id, number, state, start_ms, curve):
    """A child run whose 'loss' was logged at (seconds after start, value) points."""
    run = client.create_run(experiment_id, start_time=start_ms)
    metrics = [
        Metric("loss", value, start_ms + int(seconds * 1000), step)
        for step, (seconds, value) in enumerate(curve)
    ]
    client.log_batch(run.info.run_id, metrics=metrics)
    return Restored(
        trial=Trial(number, {}, {}, {}, state=state),
        run_id=run.info.run_id,
        artifact_uri=run.info.artifact_uri,
        attempts=1,
        start_ms=start_ms,
    )


@pytest.mark.slow
def test_a_resumed_asha_on_seconds_reads_each_reports_seconds_from_its_timestamp(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("e", artifact_location=tmp_path.as_uri())
    start = 1_700_000_000_000
    completed = _finished_trial(
        client, experiment_id, 0, TrialState.COMPLETE, start, [(1.5, 0.9), (4.5, 0.5), (9.0, 0.2)]
    )
    pruned = _finished_trial(
        client, experiment_id, 1, TrialState.PRUNED, start + 60_000, [(2.0, 0.95)]
    )
    pruner = ASHAPruner(resource="seconds", reduction_factor=3)
    pruner.bind("minimize")
    _replay_curves(client, pruner, "loss", [completed, pruned], "minimize")
    # The trials get their curves back, for a strategy that learns from them.
    assert completed.trial.curve == {0: 0.9, 1: 0.5, 2: 0.2} and pruned.trial.curve == {0: 0.95}
    # Rungs from the completed trial's 9 s: 1, 3 and 9 s, as the first driver placed them.
    assert [pruner.rung_step(k) for k in range(3)] == pytest.approx([1.0, 3.0, 9.0])
    # Rung 1 s holds 0.9 (trial 0 at 1.5 s) and the pruned trial's 0.95 (at 2 s, not 62 s:
    # its seconds count from its own run's start): a third value of 0.92 is not within the
    # best third of those two.
    assert "worse than 0.9167, the best 1/3 of the 2 values" in pruner.report(
        2, 0, 0.92, seconds=1.2
    )
