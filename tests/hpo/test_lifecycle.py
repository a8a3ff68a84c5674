"""The sweep driver and the trial lifecycle through every path, with a fake pool and a fake
tracker: no Ray, no MLflow (both are made unimportable for these tests)."""

from __future__ import annotations

import math
import sys

import pytest
from fakes import (
    DIE,
    HANG,
    INTERRUPT,
    FakePool,
    FakeTracker,
    TellingStrategy,
    complete,
    reports,
)

from hpo.core.events import Artifact, Outcome, Report
from hpo.space import Float
from hpo.strategies.base import TrialState
from hpo.strategies.pruners import MedianPruner
from hpo.sweep.config import SweepConfig
from hpo.sweep.lifecycle import Lifecycle, Restored, TrialRecord
from hpo.sweep.loop import Sweep

SPACE = {"x": Float(0.0, 1.0)}


@pytest.fixture(autouse=True)
def no_ray_no_mlflow(monkeypatch):
    # `import ray` / `import mlflow` now raise ImportError: these paths must not need them.
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "mlflow", None)


def sweep(script, *, n_trials=4, workers=2, seed=0, **options):
    strategy = TellingStrategy(SPACE, seed=seed)
    pool, tracker = FakePool(workers, script), FakeTracker()
    s = Sweep(strategy, pool, tracker, **_settings(n_trials, options))
    return s, strategy, pool, tracker


def _settings(n_trials, options):
    """The Sweep's configuration and pruner (made by the caller, so tests can reach it)."""
    pruner = options.pop("pruner", None)
    config = SweepConfig(n_trials=n_trials, progress=False, **options)
    return {"config": config, "pruner": pruner}


def metric_points(run, key):
    return [(step, value) for k, step, value in run.metrics if k == key]


def test_complete_trials_are_told_ended_and_counted_once():
    s, strategy, pool, tracker = sweep(
        lambda r, a: [*reports("loss", [3.0, 2.0]), complete(r.params["x"])]
    )
    result = s.run("r", {})
    assert result.n_complete == 4 and result.n_failed == result.n_pruned == 0
    assert sorted(n for n, *_ in strategy.told) == [0, 1, 2, 3]
    assert all(state is TrialState.COMPLETE for _, state, _, _ in strategy.told)
    for record in result.trials:
        run = tracker.runs[record.number]
        assert run.ends == 1 and run.status == "FINISHED"
        assert run.tags["hpo.state"] == "COMPLETE" and run.tags["hpo.attempt"] == "1"
        assert metric_points(run, "loss") == [(0, 3.0), (1, 2.0)]
        assert metric_points(run, "objective") == [(0, record.value)]
        assert run.artifacts == {"learning_curves.png": b"png"}
        assert record.run_id == f"run-{record.number}" and record.seconds == 0.5
        assert record.last("loss") == 2.0
    best = min(result.trials, key=lambda r: r.value)
    tags = tracker.sweep.tags
    assert tags["hpo.n_complete"] == "4" and tags["hpo.n_failed"] == "0"
    assert tags["hpo.best_trial"] == str(best.number) and tags["hpo.best_run_id"] == best.run_id
    assert tracker.sweep.status == "FINISHED" and tracker.sweep.ends == 1
    # best_objective after each finished trial, at steps 1..4, never getting worse.
    best_curve = metric_points(tracker.sweep, "best_objective")
    assert [step for step, _ in best_curve] == [1, 2, 3, 4]
    assert all(b <= a for (_, a), (_, b) in zip(best_curve, best_curve[1:], strict=False))
    assert set(tracker.sweep.artifacts) >= {"trials.csv", "space.txt", "optimization_history.png"}
    assert pool.shut


def test_a_failed_trial_keeps_its_reason_and_traceback_and_the_sweep_goes_on():
    def script(record, attempt):
        if record.number == 1:
            return [Outcome(TrialState.FAILED, error="ValueError: bad", traceback="Trace\n")]
        return [complete(1.0)]

    s, strategy, _, tracker = sweep(script)
    result = s.run("r", {})
    assert result.n_failed == 1 and result.n_complete == 3
    run = tracker.runs[1]
    assert run.status == "FAILED" and run.tags["hpo.error"] == "ValueError: bad"
    assert run.artifacts["traceback.txt"] == b"Trace\n"
    assert (1, TrialState.FAILED, None, "ValueError: bad") in strategy.told
    assert tracker.sweep.tags["hpo.n_failed"] == "1"


def test_the_pruner_stops_a_trial_at_its_next_report_and_tags_why():
    # Trials 0 and 1 complete with low losses; 2 and 3 report high ones and are pruned.
    def script(record, attempt):
        level = 1.0 if record.number < 2 else 9.0
        return [*reports("loss", [level] * 6), complete(level)]

    s, strategy, pool, tracker = sweep(
        script, workers=1, pruner=MedianPruner(warmup_steps=1, min_trials=2)
    )
    s.pruner.bind("minimize")
    result = s.run("r", {})
    assert [r.state for r in result.trials] == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED] * 2
    for number in (2, 3):
        run = tracker.runs[number]
        assert run.status == "KILLED" and "objective" not in dict(metric_points(run, "loss"))
        assert run.tags["hpo.pruner"] == "median" and run.tags["hpo.pruned_step"] == "1"
        assert "median" in run.tags["hpo.prune_reason"] and "(loss)" in run.tags["hpo.prune_reason"]
        assert "hpo.error" not in run.tags
        # Pruned at step 1: the report of step 2 was in flight and became the outcome.
        assert [step for step, _ in metric_points(run, "loss")] == [0, 1]
        assert result.trials[number].intermediate == (1, 9.0)
    assert tracker.sweep.tags["hpo.prune_metric"] == "loss"
    assert tracker.sweep.tags["hpo.n_pruned"] == "2"
    assert [(n, st) for n, st, _, _ in strategy.told][2:] == [
        (2, TrialState.PRUNED),
        (3, TrialState.PRUNED),
    ]


def test_an_objective_that_prunes_itself_is_tagged_as_such():
    s, _, _, tracker = sweep(
        lambda r, a: [*reports("loss", [1.0, 0.5]), Outcome(TrialState.PRUNED, seconds=0.1)],
        n_trials=1,
    )
    result = s.run("r", {})
    tags = tracker.runs[0].tags
    assert result.n_pruned == 1 and tags["hpo.pruner"] == "objective"
    assert tags["hpo.pruned_step"] == "1" and "raised TrialPruned" in tags["hpo.prune_reason"]


def test_a_lost_worker_retries_the_trial_as_the_same_run_logging_each_step_once():
    def script(record, attempt):
        if attempt == 1:
            return [*reports("loss", [5.0, 4.0]), DIE]
        return [*reports("loss", [5.0, 4.0, 3.0]), complete(3.0)]

    s, strategy, pool, tracker = sweep(script, n_trials=1)
    result = s.run("r", {})
    [record] = result.trials
    run = tracker.runs[0]
    assert record.state is TrialState.COMPLETE and record.attempts == 2 and pool.attempts[0] == 2
    assert run.tags["hpo.attempt"] == "2" and "died" in run.tags["hpo.attempt_1_error"]
    assert metric_points(run, "loss") == [(0, 5.0), (1, 4.0), (2, 3.0)]
    assert run.ends == 1 and len(strategy.told) == 1
    # The retry is told where its run keeps its artifacts: its checkpoint, if it took one.
    assert pool.stores[-1] == (0, ("file:///store/run-0/artifacts", tracker.tracking_uri))


def test_a_lost_node_the_retry_waits_for_a_worker_and_the_sweep_for_room():
    def script(record, attempt):
        return [DIE] if record.number == 0 and attempt == 1 else [complete(0.5)]

    # Two workers, one lost with its node: its trial runs again on the other one.
    strategy = TellingStrategy(SPACE, seed=0)
    pool, tracker = FakePool(2, script, no_room_waits=10**6), FakeTracker()
    s = Sweep(strategy, pool, tracker, SweepConfig(n_trials=4, progress=False))
    result = s.run("r", {})
    assert result.n_complete == 4 and pool.attempts[0] == 2 and pool.missing == 1

    # One worker, lost: the sweep waits for the cluster to have room again, then goes on.
    strategy = TellingStrategy(SPACE, seed=0)
    pool, tracker = FakePool(1, script, no_room_waits=5), FakeTracker()
    s = Sweep(strategy, pool, tracker, SweepConfig(n_trials=2, progress=False))
    result = s.run("r", {})
    assert result.n_complete == 2 and pool.attempts[0] == 2 and pool.missing == 0
    assert tracker.runs[0].tags["hpo.attempt"] == "2"


def test_no_trial_starts_while_the_record_is_behind_and_the_sweep_waits_for_it():
    # Behind from the start, for 20 checks: nothing runs, yet the sweep neither ends nor
    # skips its budget; it starts the trials once the record has caught up.
    strategy = TellingStrategy(SPACE, seed=0)
    pool, tracker = FakePool(2, lambda r, a: [complete(0.5)]), FakeTracker(behind_checks=20)
    s = Sweep(strategy, pool, tracker, SweepConfig(n_trials=3, progress=False))
    assert s.run("r", {}).n_complete == 3 and tracker.behind_checks < 0


def test_a_trial_out_of_retries_fails_with_the_reason():
    s, strategy, pool, tracker = sweep(lambda r, a: [DIE], n_trials=1, max_retries=1)
    result = s.run("r", {})
    [record] = result.trials
    assert record.state is TrialState.FAILED and pool.attempts[0] == 2
    assert record.error.startswith("the worker process died (2 attempts): ActorDiedError")
    assert tracker.runs[0].tags["hpo.error"] == record.error
    assert tracker.runs[0].ends == 1 and strategy.told == [
        (0, TrialState.FAILED, None, record.error)
    ]


def test_no_retries_means_the_first_loss_fails_the_trial():
    s, _, pool, _ = sweep(lambda r, a: [DIE], n_trials=1, max_retries=0)
    assert s.run("r", {}).trials[0].state is TrialState.FAILED and pool.attempts[0] == 1


def test_a_restored_running_trial_runs_again_and_skips_what_it_had_logged():
    strategy = TellingStrategy(SPACE, seed=0)
    done = strategy.restore(0, {"x": 0.2}, TrialState.COMPLETE, value=0.2)
    lost = strategy.restore(1, {"x": 0.7}, TrialState.RUNNING)
    restored = [
        Restored(done, run_id="old-0", artifact_uri="", attempts=1),
        Restored(lost, run_id="old-1", artifact_uri="", attempts=1, logged={("loss", 0)}),
    ]
    pool, tracker = (
        FakePool(1, lambda r, a: [*reports("loss", [8.0, 7.0]), complete(0.7)]),
        FakeTracker(),
    )
    s = Sweep(strategy, pool, tracker, SweepConfig(n_trials=2, progress=False))
    result = s.resume("sweep", restored)
    assert pool.attempts == {1: 1}  # the finished trial is not run again
    run = tracker.runs[1]
    assert run.tags["hpo.attempt"] == "2" and run.tags["hpo.attempt_1_error"] == "driver lost"
    assert metric_points(run, "loss") == [(1, 7.0)]
    assert result.n_complete == 2 and tracker.sweep.tags["hpo.n_complete"] == "2"
    assert strategy.told == [(1, TrialState.COMPLETE, 0.7, None)]


def test_a_rerun_trial_whose_run_holds_its_value_already_does_not_log_it_twice():
    # The first driver's closing reached the store but its answer did not (an outage): the
    # run holds the value and is still tagged RUNNING, so the trial runs again.
    strategy = TellingStrategy(SPACE, seed=0)
    lost = strategy.restore(0, {"x": 0.7}, TrialState.RUNNING)
    logged = {("loss", 0), ("loss", 1), ("objective", 0)}
    restored = [Restored(lost, run_id="old-0", artifact_uri="", attempts=1, logged=logged)]
    pool = FakePool(1, lambda r, a: [*reports("loss", [8.0, 7.0]), complete(0.7)])
    tracker = FakeTracker()
    result = Sweep(strategy, pool, tracker, SweepConfig(n_trials=1, progress=False)).resume(
        "sweep", restored
    )
    run = tracker.runs[0]
    assert metric_points(run, "objective") == [] and metric_points(run, "loss") == []
    assert result.n_complete == 1 and run.tags["hpo.state"] == "COMPLETE"


def test_a_restored_trial_runs_again_even_when_it_used_up_its_retries():
    strategy = TellingStrategy(SPACE, seed=0)
    lost = strategy.restore(0, {"x": 0.5}, TrialState.RUNNING)
    restored = [Restored(lost, run_id="old", artifact_uri="", attempts=2, why_again="cancelled")]
    pool, tracker = FakePool(1, lambda r, a: [complete(0.5)]), FakeTracker()
    result = Sweep(strategy, pool, tracker, SweepConfig(n_trials=1, progress=False)).resume(
        "sweep", restored
    )
    assert result.trials[0].state is TrialState.COMPLETE and result.trials[0].attempts == 3
    assert tracker.runs[0].tags["hpo.attempt_2_error"] == "cancelled"


def test_a_trial_past_its_timeout_is_killed_and_fails_without_retry():
    def script(record, attempt):
        return [HANG] if record.number == 0 else [complete(0.1)]

    s, strategy, pool, tracker = sweep(script, n_trials=3, trial_timeout=0.05)
    result = s.run("r", {})
    assert pool.killed == [0] and pool.attempts[0] == 1
    assert result.trials[0].error == "timeout after 0.05 s"
    assert tracker.runs[0].status == "FAILED" and result.n_complete == 2


def test_the_sweep_timeout_cancels_running_trials_and_starts_no_more():
    s, strategy, pool, tracker = sweep(lambda r, a: [HANG], n_trials=10, timeout=0.05)
    result = s.run("r", {})
    assert result.timed_out and len(result.trials) == 2  # the first two; none after
    for number in (0, 1):
        run = tracker.runs[number]
        assert run.status == "KILLED" and run.tags["hpo.cancelled"] == "true"
        assert "timeout of 0.05 s" in run.tags["hpo.error"] and run.ends == 1
    assert tracker.sweep.tags["hpo.timed_out"] == "true" and tracker.sweep.status == "FINISHED"
    assert sorted(n for n, *_ in strategy.told) == [0, 1]


def test_an_interrupt_cancels_running_and_waiting_trials_and_kills_the_sweep():
    def script(record, attempt):
        if record.number == 0:
            return [DIE] if attempt == 1 else [complete(0.5)]
        return [*reports("loss", [1.0]), INTERRUPT]  # Ctrl-C at the second wait

    # Trial 0's worker dies at the first wait; its retry is running when Ctrl-C comes.
    s, strategy, pool, tracker = sweep(script, n_trials=4, workers=2)
    result = s.run("r", {})
    assert pool.attempts == {0: 2, 1: 1} and len(result.trials) == 2
    assert result.interrupted and tracker.sweep.status == "KILLED"
    assert tracker.sweep.tags["hpo.interrupted"] == "true"
    for record in result.trials:
        run = tracker.runs[record.number]
        assert run.ends == 1 and record.state.is_finished
        if record.state is TrialState.FAILED:
            assert run.tags["hpo.cancelled"] == "true" and "Ctrl-C" in run.tags["hpo.error"]
    assert len(strategy.told) == len(result.trials)


def test_an_error_in_the_driver_closes_the_sweep_failed_and_ends_every_run():
    class Broken(TellingStrategy):
        def _suggest(self, n):
            if len(self.trials) >= 2:
                raise RuntimeError("the model broke")
            return super()._suggest(n)

    strategy = Broken(SPACE, seed=0)
    # Trial 0 runs on while trial 1 completes; the next ask then fails.
    script = lambda r, a: [HANG] if r.number == 0 else [complete(1.0)]  # noqa: E731
    pool, tracker = FakePool(2, script), FakeTracker()
    s = Sweep(strategy, pool, tracker, SweepConfig(n_trials=4, progress=False))
    with pytest.raises(RuntimeError, match="the model broke"):
        s.run("r", {})
    assert tracker.sweep.status == "FAILED" and "the model broke" in tracker.sweep.tags["hpo.error"]
    assert all(run.ends == 1 for run in tracker.runs.values()) and len(tracker.runs) == 2
    assert tracker.runs[0].tags["hpo.cancelled"] == "true" and tracker.runs[1].status == "FINISHED"
    assert "driver stopped on an error" in tracker.runs[0].tags["hpo.error"] and pool.shut


def test_lifecycle_report_logs_each_metric_and_step_once_and_keeps_the_latest():
    strategy = TellingStrategy(SPACE, seed=0)
    tracker = FakeTracker()
    life = Lifecycle(strategy, tracker)
    [trial] = strategy.ask(1)
    record = life.start(trial)
    for report in [Report(0, {"a": 1.0}, 0.1), Report(1, {"a": 2.0, "b": 5.0}, 0.2)]:
        assert life.report(record, report) is False
    life.report(record, Report(0, {"a": 1.0, "b": 4.0}, 0.3))  # a retry's early step
    assert tracker.runs[0].metrics == [("a", 0, 1.0), ("a", 1, 2.0), ("b", 1, 5.0), ("b", 0, 4.0)]
    assert record.last("a") == 2.0 and record.last("b") == 5.0 and record.last("c") is None


def test_the_tally_counts_and_keeps_the_best_in_the_sweeps_direction():
    strategy = TellingStrategy(SPACE, seed=0, direction="maximize")
    life = Lifecycle(strategy, FakeTracker())
    records = [life.start(t) for t in strategy.ask(3)]
    life.finish(records[0], complete(0.2))
    life.finish(records[1], Outcome.failed("nan"))
    life.finish(records[2], complete(0.9))
    assert life.tally.finished == 3 and life.tally.best == 0.9
    assert life.tally.counts[TrialState.FAILED] == 1
    assert isinstance(records[0], TrialRecord) and not math.isnan(records[0].value)


def test_files_from_the_objective_reach_the_run_and_workers_learn_where_it_is():
    from hpo.core.events import Artifact

    def script(record, attempt):
        return [
            Artifact({"notes.txt": b"n"}),
            Artifact({}, model="model", stored=("model/MLmodel",)),  # the worker wrote it
            complete(1.0),
        ]

    s, _, pool, tracker = sweep(script, n_trials=2)
    result = s.run("r", {})
    for record in result.trials:
        assert tracker.runs[record.number].artifacts == {
            "notes.txt": b"n",
            "learning_curves.png": b"png",
        }
        assert s.trials.records[record.number].models == ["model"]
    # Each running trial's worker was told its run's artifact location once.
    assert sorted(pool.located) == [
        (0, "file:///store/run-0/artifacts"),
        (1, "file:///store/run-1/artifacts"),
    ]


def test_enqueued_configurations_run_first_count_in_the_budget_and_are_tagged():
    s, strategy, pool, tracker = sweep(lambda r, a: [complete(r.params["x"])], n_trials=4)
    strategy.enqueue({"x": 0.25})
    strategy.enqueue({"x": 0.75})
    result = s.run("r", {})
    assert [r.params["x"] for r in result.trials[:2]] == [0.25, 0.75]
    assert len(result.trials) == 4  # the two queued ones and two of the strategy's
    tagged = [n for n, run in tracker.runs.items() if run.tags.get("hpo.enqueued") == "true"]
    assert tagged == [0, 1]
    assert sorted(n for n, *_ in strategy.told) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("values", "rule", "ran", "why"),
    [
        ([5, 4, 3, 2, 1, 0], {"stop_at": 3.5}, 3, "stop_at: the best value 3 reached 3.5"),
        ([3, 2, 2.5, 2.5, 2, 1], {"patience": 3}, 5, "patience: no improvement in the last 3"),
        ([3, 2, 1, 0], {"stop_at": -1.0, "patience": 9}, 4, None),  # neither met: the budget
    ],
)
def test_a_stopping_rule_starts_no_more_trials_and_says_which_stopped_the_sweep(
    values, rule, ran, why
):
    s, strategy, pool, tracker = sweep(
        lambda r, a: [complete(values[r.number])], n_trials=len(values), workers=1, **rule
    )
    result = s.run("r", {})
    assert len(result.trials) == ran and result.n_complete == ran  # none cancelled
    if why is None:
        assert result.stopped_by is None and "hpo.stopped_by" not in tracker.sweep.tags
    else:
        assert result.stopped_by.startswith(why) and "stopped early" in result.summary()
        assert tracker.sweep.tags["hpo.stopped_by"] == result.stopped_by
        assert "stopped early" in tracker.sweep.tags["mlflow.note.content"]
        assert tracker.sweep.status == "FINISHED"


def test_refused_configurations_are_recorded_not_run_and_not_counted():
    s, strategy, pool, tracker = sweep(lambda r, a: [complete(r.params["x"])], n_trials=5)
    strategy.constraints = lambda params: params["x"] < 0.5
    result = s.run("r", {})
    ran = [r for r in result.trials if not r.infeasible]
    refused = [r for r in result.trials if r.infeasible]
    assert len(ran) == 5 and all(r.state is TrialState.COMPLETE for r in ran)
    assert refused and all(r.params["x"] >= 0.5 and r.state is TrialState.FAILED for r in refused)
    assert sorted(pool.attempts) == sorted(r.number for r in ran)  # never sent to a worker
    for r in refused:
        run = tracker.runs[r.number]
        assert run.tags["hpo.infeasible"] == "true" and run.status == "FAILED"
        assert run.tags["hpo.error"] == "infeasible: the constraints returned False"
    assert tracker.sweep.tags["hpo.n_infeasible"] == str(len(refused))


def test_a_sweep_whose_strategy_finds_nothing_feasible_stops_with_the_reason():
    s, strategy, pool, tracker = sweep(lambda r, a: [complete(r.params["x"])], n_trials=5)
    strategy.constraints = lambda params: False
    result = s.run("r", {})
    assert result.stopped_by.startswith("constraints: the random strategy suggested 100")
    assert result.n_complete == 0 and tracker.sweep.status == "FINISHED"
    assert tracker.sweep.tags["hpo.stopped_by"] == result.stopped_by


def test_a_checkpoint_sent_through_the_driver_goes_to_the_rerun_and_is_freed_at_the_end():
    seen = []

    def script(record, attempt):
        if attempt == 1:
            return [Artifact({"checkpoint.pkl": b"epoch 5"}), DIE]
        seen.append(dict(record.checkpoints))  # what the rerun is handed
        return [complete(1.0)]

    s, strategy, pool, tracker = sweep(script, n_trials=1)
    [trial] = s.run("r", {}).trials
    assert seen == [{"checkpoint.pkl": b"epoch 5"}]
    # An ended trial holds none in the driver's memory.
    assert s.trials.records[trial.number].checkpoints == {}
    assert tracker.runs[0].artifacts["checkpoint.pkl"] == b"epoch 5"  # and the run has it


# -- several objectives ---------------------------------------------------------------------
def multi_sweep(script, *, n_trials=6, **options):
    strategy = TellingStrategy(SPACE, direction=["minimize", "maximize"], seed=0)
    pool, tracker = FakePool(1, script), FakeTracker()
    s = Sweep(strategy, pool, tracker, **_settings(n_trials, options))
    return s, strategy, pool, tracker


def test_several_objectives_are_named_by_the_first_dict_and_each_logged_as_a_metric():
    def script(record, attempt):
        x = record.params["x"]
        if record.number == 2:
            return [complete({"size": x, "wrong": 1.0})]
        if record.number == 3:
            return [complete(0.5)]
        if record.number == 0:  # the first result names them, in its order
            return [complete({"size": x, "accuracy": x**0.5})]
        return [complete({"accuracy": x**0.5, "size": x})]  # matched by name

    s, strategy, pool, tracker = multi_sweep(script)
    result = s.run("r", {})
    assert tracker.sweep.tags["hpo.objectives"] == '["size", "accuracy"]'
    assert result.objective_names == ("size", "accuracy")
    failed = {r.number: r.error for r in result.trials if r.state is TrialState.FAILED}
    assert failed == {
        2: "the objective returned ['size', 'wrong'], the sweep's objectives are "
        "['size', 'accuracy']",
        3: "the objective returned one value (0.5); this sweep has 2 directions "
        "['minimize', 'maximize'], so it must return 2",
    }
    for r in result.trials:
        metrics = {k: v for k, step, v in tracker.runs[r.number].metrics if step == 0}
        if r.state is TrialState.COMPLETE:
            x = r.params["x"]
            assert r.values == (x, x**0.5) and r.value is None
            assert metrics == {"size": x, "accuracy": x**0.5}
        else:
            assert metrics == {}
    # Smaller and more accurate at once is impossible here: every completed trial is on it.
    done = [r for r in result.trials if r.state is TrialState.COMPLETE]
    assert {r.number for r in result.best_trials} == {r.number for r in done}
    tags = tracker.sweep.tags
    assert tags["hpo.n_pareto"] == "4" and "hpo.best_value" not in tags
    assert tags["hpo.pareto_front"] == ", ".join(str(r.number) for r in result.best_trials)
    rows = tracker.sweep.artifacts["pareto_front.csv"].decode().splitlines()
    assert rows[0] == "trial,run_id,size,accuracy,x" and len(rows) == 5
    assert "pareto_front.png" in tracker.sweep.artifacts
    assert "optimization_history.png" not in tracker.sweep.artifacts  # one value's figure
    assert ("pareto_size", 6, 4.0) in tracker.sweep.metrics
    with pytest.raises(ValueError, match="no single best trial"):
        _ = result.best_value


def test_a_one_objective_sweep_fails_a_trial_that_returns_several_values():
    s, strategy, pool, tracker = sweep(lambda r, a: [complete((1.0, 2.0))], n_trials=1)
    [record] = s.run("r", {}).trials
    assert record.state is TrialState.FAILED
    assert record.error.startswith("the objective returned (1.0, 2.0); this sweep has one")


def test_patience_with_several_objectives_counts_trials_that_left_the_front_as_it_was():
    # (size, accuracy): trial 2 dominates 0 and 1; 3 and 5 are dominated by it, and 4 is
    # the same point again (on the front too, but the front did not move).
    values = [(3, 0.5), (2, 0.4), (1, 0.9), (2, 0.8), (1, 0.9), (4, 0.1), (0, 1.0)]
    s, strategy, pool, tracker = multi_sweep(
        lambda r, a: [complete(values[r.number])], n_trials=7, patience=3
    )
    result = s.run("r", {})
    assert len(result.trials) == 6
    assert result.stopped_by == "patience: no improvement in the last 3 trials"
    assert [r.number for r in result.best_trials] == [2, 4]


def test_a_sweep_of_several_objectives_where_every_trial_failed_closes_with_its_record():
    s, strategy, pool, tracker = multi_sweep(lambda r, a: [Outcome.failed("boom")], n_trials=2)
    result = s.run("r", {})
    assert result.n_failed == 2 and result.best_trials == []
    assert result.objective_names == ("objective_0", "objective_1")  # named by no result
    assert tracker.sweep.status == "FINISHED" and tracker.sweep.tags["hpo.n_pareto"] == "0"
    assert "No trial completed." in tracker.sweep.tags["mlflow.note.content"]
    header = tracker.sweep.artifacts["trials.csv"].decode().splitlines()[0]
    assert header.startswith("trial,state,objective_0,objective_1,seconds")


def test_a_trial_that_reports_a_metric_named_as_an_objective_fails_with_the_rule():
    # One objective: its metric is "objective", known before any trial; the trial is
    # stopped at that report, which is not logged.
    s, strategy, pool, tracker = sweep(
        lambda r, a: [*reports("objective", [0.9, 0.8]), complete(0.8)], n_trials=1
    )
    [record] = s.run("r", {}).trials
    assert record.state is TrialState.FAILED
    assert record.error == (
        "a metric given to report() must not be named like an objective: report() got "
        "'objective', the metric of the value the objective returns; report that curve "
        "under another name"
    )
    assert tracker.runs[0].metrics == [] and pool.stopped
    assert strategy.told[0][1] is TrialState.FAILED


def test_several_objectives_named_by_a_result_refuse_a_curve_of_the_same_name():
    def script(record, attempt):
        x = record.params["x"]
        return [*reports("error", [1.0, x]), complete({"error": x, "size": 2.0})]

    s, strategy, pool, tracker = multi_sweep(script, n_trials=2)
    result = s.run("r", {})
    first, second = result.trials
    # The first trial's result names the objectives: its curve was logged before that.
    assert first.state is TrialState.FAILED and metric_points(tracker.runs[0], "error")
    assert first.error.startswith(
        "a metric given to report() must not be named like an objective: report() got "
        "'error', and the sweep's objectives are ['error', 'size']; report that curve under "
        "another name (e.g. 'error_curve') or name the objectives apart with objective_names"
    )
    # The second trial is stopped at its first report, which is not logged.
    assert second.state is TrialState.FAILED and second.error == first.error
    assert tracker.runs[1].metrics == []


def test_the_driver_runs_its_linear_algebra_on_one_thread_during_the_sweep():
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    seen = []

    class Watching(TellingStrategy):
        def ask(self, *args, **kwargs):
            seen.append(blas_threads())
            return super().ask(*args, **kwargs)

    with threadpool_limits(limits=2, user_api="blas"):
        strategy = Watching(SPACE, seed=0)
        pool, tracker = FakePool(2, lambda r, a: [complete(r.params["x"])]), FakeTracker()
        Sweep(strategy, pool, tracker, **_settings(3, {})).run("r", {})
        after = blas_threads()
    assert seen and all(threads == {1} for threads in seen), seen
    assert after == {2}  # the caller's setting is back once the sweep ends
