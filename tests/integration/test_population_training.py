"""Population-based training on a real Ray cluster and a real MLflow store: segments as
runs with their lineage, exploits that go on from the donor's checkpoint, the figures, the
schedule replayed, a worker lost mid-segment, and a sweep cut short then resumed."""

from __future__ import annotations

import objectives
import pytest
from conftest import child_runs
from invariants import check_invariants, cluster_workers
from ray import cloudpickle

import hpo
from hpo.space import Float

cloudpickle.register_pickle_by_value(objectives)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPACE = {"lr": Float(0.01, 0.3, log=True)}


def pbt(seed=0):
    return hpo.make_strategy("pbt", SPACE, seed=seed, population=4, interval=3)


def loss_history(client, run_id):
    return {m.step: m.value for m in client.get_metric_history(run_id, "loss")}


def test_a_population_trains_exploits_and_its_schedule_replays(
    ray_cluster, tracking_uri, client, tmp_path
):
    data = {"log": str(tmp_path / "steps.log"), "kill_at": None}
    result = hpo.run(
        SPACE,
        objectives.weight_training,
        strategy=pbt(),
        data=data,
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="pbt",
        progress=False,
    )
    runs = check_invariants(client, result.sweep_id, len(result.trials), workers=cluster_workers)
    assert result.n_complete == len(result.trials)
    members = {t.segment["member"] for t in result.trials}
    assert len(members) == 4
    assert sum("end_step" not in t.segment for t in result.trials) == 4  # one end per member
    # Read back from MLflow alone, the segments and the lineage are the same.
    stored = hpo.load_sweep(result.sweep_id, tracking_uri=tracking_uri)
    assert [dict(t.segment) for t in stored.trials] == [dict(t.segment) for t in result.trials]
    assert [t.number for t in stored.lineage()] == [t.number for t in result.lineage()]
    # An exploit goes on from its donor's state: its first step's loss is one gradient step
    # at its own rate from the donor's loss at the step it took.
    exploits = [t for t in result.trials if "donor" in t.segment]
    assert exploits, "no member exploited another"
    by_number = {t.number: t for t in result.trials}
    for t in exploits:
        at = t.segment["from_step"]
        donor = loss_history(client, by_number[t.segment["parent"]].run_id)[at]
        first = loss_history(client, t.run_id)
        if at == objectives.PBT_STEPS - 1:  # it took a finished training: nothing to train
            assert first == {} and t.value == pytest.approx(donor)
            continue
        assert min(first) == at + 1
        assert first[at + 1] == pytest.approx((1 - 2 * t.params["lr"]) ** 2 * donor)
        assert t.params["lr"] != by_number[t.segment["parent"]].params["lr"]  # explored
        tags = runs[t.number].data.tags
        assert tags["hpo.pbt.donor"] == str(t.segment["donor"])
    artifacts = {f.path for f in client.list_artifacts(result.sweep_id)}
    assert {"pbt_population.png", "pbt_schedule.png"} <= artifacts

    replay = hpo.replay_schedule(
        result.sweep_id, SPACE, objectives.weight_training, data=data, tracking_uri=tracking_uri
    )
    chain = result.lineage()
    assert [t.params["lr"] for t in replay.trials] == [t.params["lr"] for t in chain]
    assert {t.segment["member"] for t in replay.trials} == {replay.trials[0].number}
    # The same rates over the same steps: the same final loss as the best trial's.
    assert replay.best_value == pytest.approx(result.best_value, rel=1e-9)
    assert client.get_run(replay.sweep_id).data.tags["hpo.replay_of"] == result.sweep_id


def test_a_member_lost_mid_segment_goes_on_from_its_own_last_checkpoint(
    ray_cluster, tracking_uri, client, tmp_path
):
    log = tmp_path / "steps.log"
    result = hpo.run(
        SPACE,
        objectives.weight_training,
        strategy=pbt(seed=1),
        data={"log": str(log), "kill_at": 4},  # in a second segment, which trains 3 to 5
        workers=2,
        tracking_uri=tracking_uri,
        experiment_name="pbt-lost",
        progress=False,
    )
    runs = check_invariants(client, result.sweep_id, len(result.trials), workers=cluster_workers)
    [lost] = [t for t in result.trials if t.attempts == 2]
    assert lost.segment["from_step"] == 2 and lost.state is hpo.TrialState.COMPLETE
    assert runs[lost.number].data.tags["hpo.attempt_1_error"]
    # Its run holds each of its steps once, and the rerun trained only step 4 again (from
    # its own checkpoint of step 3, not its parent's of step 2).
    assert sorted(loss_history(client, lost.run_id)) == [3, 4, 5]
    steps = [int(line) for line in log.read_text().split()]
    trained_4 = steps.count(4)
    trained_3 = steps.count(3)
    assert trained_4 == trained_3 + 1


def test_a_sweep_cut_short_resumes_to_every_members_end(
    ray_cluster, tracking_uri, client, tmp_path
):
    # 12 steps of 0.15 s for each of 4 members on 2 workers: over 3 s of training alone.
    data = {"log": str(tmp_path / "steps.log"), "kill_at": None, "sleep": 0.15}
    first = hpo.run(
        SPACE,
        objectives.weight_training,
        strategy=pbt(seed=2),
        data=data,
        workers=2,
        timeout=2.0,
        tracking_uri=tracking_uri,
        experiment_name="pbt-resume",
        progress=False,
    )
    assert first.timed_out
    assert (
        sum("end_step" not in t.segment and t.state.value == "COMPLETE" for t in first.trials) < 4
    )
    result = hpo.resume(
        first.sweep_id,
        SPACE,
        objectives.weight_training,
        data={**data, "sleep": 0.02},
        tracking_uri=tracking_uri,
    )
    check_invariants(client, result.sweep_id, len(result.trials), workers=cluster_workers)
    finals = [t for t in result.trials if "end_step" not in t.segment]
    assert len(finals) == 4 and all(t.state.value == "COMPLETE" for t in finals)
    # The best trial's lineage trained every step once, across the two drivers.
    steps = [step for t in result.lineage() for step in loss_history(client, t.run_id)]
    assert sorted(steps) == list(range(objectives.PBT_STEPS))
    assert len(child_runs(client, first.sweep_id)) == len(result.trials)
