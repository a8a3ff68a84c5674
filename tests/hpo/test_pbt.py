"""Population-based training: the strategy's decisions, its segments through the sweep
driver (fake pool and tracker), the worker's side of a segment, and the rules."""

from __future__ import annotations

import pickle
import queue

import pytest
from fakes import FakePool, FakeTracker, complete

import hpo
from hpo.core.events import Artifact, Outcome, Report
from hpo.execution.worker import run_objective
from hpo.space import Choice, Float, Int
from hpo.strategies import make_strategy
from hpo.strategies.base import TrialState
from hpo.sweep.config import SweepConfig
from hpo.sweep.lifecycle import ObjectiveDoesNotReport
from hpo.sweep.loop import Sweep
from hpo.sweep.start import budget

SPACE = {"x": Float(0.0, 1.0), "width": Int(1, 64), "act": Choice(["relu", "tanh", "gelu"])}
STEPS = 20  # the fake objective's training length


def end_segment(trial, value, end):
    """What the lifecycle does for a segment that reached its last step."""
    trial.attrs["end_step"] = end
    return value


def test_first_segments_are_random_members_then_the_bottom_exploits_the_top():
    s = make_strategy("pbt", SPACE, seed=3, population=4, interval=5, quantile=0.25)
    members = s.ask(8)
    assert len(members) == 4  # the population, no more
    assert [t.attrs for t in members] == [{"member": t.number, "until_step": 4} for t in members]
    for t, value in zip(members, [0.4, 0.1, 0.9, 0.5], strict=True):
        s.tell(t, end_segment(t, value, 4))
    assert s.continuations(0) == [] and s.waiting_to_continue()
    nexts = {t.attrs["member"]: t for t in s.continuations(8)}
    worst, best = members[2], members[1]
    exploit = nexts[worst.number]
    assert exploit.attrs == {
        "member": worst.number,
        "parent": best.number,
        "from_step": 4,
        "until_step": 9,
        "donor": best.number,
    }
    assert exploit.assignment != best.assignment  # explored
    assert exploit.assignment.keys() == best.assignment.keys()
    for m in (members[0], members[1], members[3]):  # the others go on as they were
        t = nexts[m.number]
        assert t.attrs == {"member": m.number, "parent": m.number, "from_step": 4, "until_step": 9}
        assert t.assignment == m.assignment
    assert not s.waiting_to_continue() and not s.exhausted  # they are running


def test_exploring_keeps_values_in_range_and_changes_only_what_may_change():
    s = make_strategy("pbt", SPACE, seed=0, population=2, mutate=["x"], factors=[0.5, 2.0])
    donor = {"x": 0.9, "width": 64, "act": 2}
    seen = set()
    for _ in range(200):
        changed = s._explore(donor)
        assert 0.0 <= changed["x"] <= 1.0
        assert changed["width"] == 64 and changed["act"] == 2
        seen.add(round(changed["x"], 6))
    assert {0.45, 1.0} <= seen  # halved, doubled then clipped (and resampled at times)
    s = make_strategy("pbt", SPACE, seed=0, population=2, resample_probability=0)
    widths = {s._perturb(s.space.param("width"), 1) for _ in range(50)}
    assert widths == {1, 2}  # an int that a factor cannot move moves one step up, or stays


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"population": 1}, "pbt's population must be an int >= 2, got 1"),
        ({"interval": 0}, "pbt's interval must be an int >= 1, got 0"),
        ({"quantile": 0.7}, r"pbt's quantile must be a number in \(0, 0.5\], got 0.7"),
        ({"factors": []}, "pbt's factors must be a list of positive numbers"),
        ({"mutate": ["lr"]}, "pbt's mutate names 'lr', which the space does not have"),
    ],
)
def test_options_out_of_range_are_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        make_strategy("pbt", SPACE, **options)


def test_a_choice_between_branches_cannot_change_while_members_train():
    space = {"model": Choice([{"lr": Float(0.01, 0.1)}, {"depth": Int(1, 3)}])}
    with pytest.raises(ValueError, match="pbt cannot change 'model'"):
        make_strategy("pbt", space, mutate=["model"])
    assert make_strategy("pbt", space).mutable == []  # by default, nothing of the branches


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"pruner": "asha"}, "strategy 'pbt' .* takes no pruner"),
        ({"repeats": 3}, "strategy 'pbt' .* takes no repeats"),
        ({"direction": ["minimize", "maximize"]}, "strategy 'pbt' ranks members by one value"),
    ],
)
def test_pbt_with_a_pruner_repeats_or_several_objectives_is_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        SweepConfig(strategy="pbt", **settings)


def test_the_budget_is_the_population():
    s = make_strategy("pbt", SPACE, population=6)
    assert budget(s, SweepConfig(strategy="pbt")) == 6
    with pytest.raises(ValueError, match="trains population=6 members, and n_trials counts"):
        budget(s, SweepConfig(strategy="pbt", n_trials=10))
    # Without a population, n_trials (the CLI's --trials) is one.
    config = SweepConfig(strategy="pbt", n_trials=5, strategy_options={"interval": 4})
    assert config.strategy_options == {"interval": 4, "population": 5}


def play_population(space, seed, rounds=4):
    """Members, then rounds of continuations, each segment told a value of its params."""
    from test_strategy_conformance import objective

    s = make_strategy("pbt", space, seed=seed, population=4, interval=2)
    issued = s.ask(4)
    for t in issued:
        s.tell(t, end_segment(t, objective(t.params), 1))
    for _ in range(rounds):
        nexts = s.continuations(4)
        for t in nexts:
            s.tell(t, end_segment(t, objective(t.params), t.attrs["until_step"]))
        issued += nexts
    return s, issued


@pytest.mark.parametrize("space_name", ["float", "log", "int", "stepped int", "categorical"])
def test_every_segment_is_a_valid_configuration_and_a_seed_replays_them(space_name):
    from test_strategy_conformance import SPACES

    s, issued = play_population(SPACES[space_name], seed=5)
    assert len(issued) == 4 * 5
    for t in issued:
        s.space.validate(t.assignment)
        assert t.params == s.space.build(t.assignment)
    again = [t.assignment for t in play_population(SPACES[space_name], seed=5)[1]]
    assert again == [t.assignment for t in issued]


def test_members_of_a_conditional_space_keep_their_branch():
    from test_strategy_conformance import SPACES

    s, issued = play_population(SPACES["conditional"], seed=5)
    for t in issued:
        s.space.validate(t.assignment)
        parent = next((p for p in issued if p.number == t.attrs.get("parent")), None)
        if parent is not None:
            assert t.assignment["layers"] == parent.assignment["layers"]


# -- through the sweep driver --------------------------------------------------------------
def loss(params, step):
    return (params["x"] - 0.3) ** 2 + 1.0 / (step + 1)


def segment_script(record, attempt):
    """A fake objective of STEPS steps that trains the steps of its segment."""
    attrs = record.trial.attrs
    start = attrs.get("from_step", -1) + 1
    until = attrs.get("until_step", STEPS - 1)
    last = min(until, STEPS - 1)
    steps = range(start, last + 1)
    out = [Report(s, {"loss": loss(record.params, s)}, 0.01) for s in steps]
    if until < STEPS - 1:
        return [*out, Outcome(TrialState.COMPLETE, seconds=0.1, segment_end=until)]
    return [*out, complete(loss(record.params, STEPS - 1))]


def pbt_sweep(script=segment_script, workers=2, **options):
    strategy = make_strategy("pbt", {"x": Float(0.0, 1.0)}, seed=1, **options)
    pool, tracker = FakePool(workers, script), FakeTracker()
    config = SweepConfig(strategy="pbt", n_trials=strategy.population, progress=False)
    return Sweep(strategy, pool, tracker, config), pool, tracker


def test_a_population_trains_in_segments_each_one_run_with_its_lineage_tags():
    sweep, pool, tracker = pbt_sweep(population=4, interval=5)
    result = sweep.run("pbt", {})
    members = {t.segment["member"] for t in result.trials}
    assert len(members) == 4
    # Every member trained to its end, in segments of 5 steps (a member that exploited
    # another went on from the donor's step, which may be later than its own).
    finals = [t for t in result.trials if "end_step" not in t.segment]
    assert len(finals) == 4 and all(t.state is TrialState.COMPLETE for t in finals)
    assert result.n_complete == len(result.trials) <= 16
    exploits = [t for t in result.trials if "donor" in t.segment]
    assert exploits, "no member exploited another"
    for t in result.trials:
        run = tracker.runs[t.number]
        assert run.ends == 1
        for key, value in t.segment.items():
            assert run.tags[f"hpo.pbt.{key}"] == str(value)
    by_number = {t.number: t for t in result.trials}
    for t in exploits:
        donor_segment = by_number[t.segment["parent"]]
        assert donor_segment.segment["member"] == t.segment["donor"]
        assert t.segment["from_step"] == donor_segment.segment["end_step"]
        # The worker is told where the donor's checkpoint is: the donor segment's run.
        spec = pool.segments[t.number]
        assert spec["source"] == (tracker.artifact_location(donor_segment.number), "fake://")
        assert spec["from_step"] == t.segment["from_step"]
    # The parent run's tally counts members, not segments; each run's value is the loss
    # at its segment's last step.
    assert [v for k, _, v in tracker.sweep.metrics if k == "best_objective"][-1] == min(
        t.value for t in finals
    )
    for t in result.trials:
        if "end_step" in t.segment:
            assert t.value == loss(t.params, t.segment["end_step"])
    # The best is a member's end: a segment's value is a training's middle.
    assert result.best_value == min(t.value for t in finals)
    assert result.summary().startswith(f"sweep {result.sweep_id}: 4 members in ")
    chain = result.lineage()
    assert chain[-1].number == result.best_trial.number
    assert "parent" not in chain[0].segment
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.segment["parent"] == before.number
        assert after.segment["from_step"] == before.segment["end_step"]


def test_a_checkpoint_sent_through_the_driver_is_held_for_the_next_segment_until_stored():
    def script(record, attempt):
        out = segment_script(record, attempt)
        if "until_step" in record.trial.attrs and out[-1].segment_end is not None:
            state = f"state of trial {record.number}".encode()
            out.insert(-1, Artifact({"checkpoint.pkl": state}))
        return out

    sweep, pool, tracker = pbt_sweep(script, population=2, interval=5)
    tracker.writing = {0, 1}  # the writer has not stored the first segments' files yet
    original_fill = sweep._fill

    def fill():
        if len(sweep.strategy.trials) >= 4:
            tracker.writing = set()  # now it has
        original_fill()

    sweep._fill = fill
    result = sweep.run("pbt", {})
    first_continuations = [t for t in result.trials if t.segment.get("from_step") == 4]
    for t in first_continuations:  # given the bytes the driver held
        assert pool.segments[t.number]["held"] == f"state of trial {t.segment['parent']}".encode()
    later = [t for t in result.trials if t.segment.get("from_step", 0) > 4]
    assert later and all(pool.segments[t.number]["held"] is None for t in later)  # stored
    assert sweep.trials.holding == set()
    assert all(not r.checkpoints for r in sweep.trials.records.values())  # let go


def test_lineage_of_a_trial_that_is_not_a_segment_says_so():
    sweep, _, _ = pbt_sweep(population=2, interval=30)  # one segment each: trained to the end
    result = sweep.run("pbt", {})
    assert [len(result.lineage(t.number)) for t in result.trials] == [1, 1]
    with pytest.raises(ValueError, match="has no trial 7"):
        result.lineage(7)
    import dataclasses

    plain = dataclasses.replace(
        result, trials=[dataclasses.replace(t, segment={}) for t in result.trials]
    )  # as a sweep of any other strategy reads back
    with pytest.raises(ValueError, match="trial 0 of sweep .* is not a segment of population"):
        plain.lineage(0)


def test_a_failed_segment_takes_its_member_out_and_the_others_go_on():
    def script(record, attempt):
        if record.trial.attrs.get("member") == 0 and "from_step" in record.trial.attrs:
            return [Outcome.failed("ValueError: diverged")]
        return segment_script(record, attempt)

    sweep, _, _ = pbt_sweep(script, population=3, interval=5)
    result = sweep.run("pbt", {})
    member_0 = [t for t in result.trials if t.segment["member"] == 0]
    assert [t.state for t in member_0] == [TrialState.COMPLETE, TrialState.FAILED]
    others = [t for t in result.trials if t.segment["member"] != 0]
    assert sum("end_step" not in t.segment for t in others) == 2  # both trained to the end
    assert all(t.segment.get("donor") != 0 for t in result.trials)


def test_a_segment_that_ended_without_its_metric_fails_with_the_rule():
    def script(record, attempt):
        return [Report(0, {"acc": 0.5}, 0.0), Report(1, {"loss": 1.0}, 0.0)] + [
            Outcome(TrialState.COMPLETE, segment_end=0)
        ]

    sweep, _, _ = pbt_sweep(script, population=2, interval=1)
    sweep.config = SweepConfig(strategy="pbt", n_trials=2, progress=False, prune_metric="loss")
    sweep.trials.prune_metric = "loss"
    result = sweep.run("pbt", {})
    assert {t.error for t in result.trials} == {
        "population-based training ranks members by the metric 'loss', and this segment "
        "ended at step 0 without a finite value of it; report it at every step"
    }


def test_an_objective_that_never_reports_is_refused_at_the_first_end():
    sweep, _, _ = pbt_sweep(lambda r, a: [complete(0.5)], population=2)
    with pytest.raises(ObjectiveDoesNotReport, match="the pbt strategy judges the curves"):
        sweep.run("pbt", {})


# -- the worker's side of a segment --------------------------------------------------------
def run_segment(objective, params, segment, place=None):
    events: queue.Queue = queue.Queue()
    place = {"segment": segment, **(place or {})}
    run_objective(objective, params, None, 2, events, place=place)
    out = []
    while not events.empty():
        out.append(events.get())
    return out


def trainer(params, report):
    """Counts steps in its state; checkpoints after every report."""
    restored = report.restore()
    state, start = (0, 0) if restored is None else (restored[0], restored[1] + 1)
    for step in range(start, STEPS):
        state += 1
        report(step, loss=loss(params, step))
        report.checkpoint(state)
    return loss(params, STEPS - 1)


def segment(from_step=None, until=4, parent=None, held=None):
    return {
        "from_step": from_step,
        "until": until,
        "parent": parent,
        "source": None,
        "held": held,
        "interval": 5,
    }


def saved(state, step):
    return pickle.dumps({"step": step, "state": state, "reports": []})


def test_a_first_segment_trains_its_steps_and_ends_at_its_checkpoint():
    events = run_segment(trainer, {"x": 0.5}, segment())
    outcome = events[-1]
    assert outcome.state is TrialState.COMPLETE and outcome.segment_end == 4
    assert [e.step for e in events if isinstance(e, Report)] == [0, 1, 2, 3, 4]


def test_a_later_segment_goes_on_from_its_parents_checkpoint_without_its_reports():
    events = run_segment(trainer, {"x": 0.5}, segment(4, 9, parent=2, held=saved(5, 4)))
    assert [e.step for e in events if isinstance(e, Report)] == [5, 6, 7, 8, 9]
    assert events[-1].segment_end == 9
    last = run_segment(trainer, {"x": 0.5}, segment(14, None, parent=3, held=saved(15, 14)))
    assert last[-1].state is TrialState.COMPLETE and last[-1].segment_end is None  # to the end
    assert last[-1].value == loss({"x": 0.5}, STEPS - 1)


def test_an_objective_without_checkpoints_fails_saying_what_pbt_needs():
    def no_checkpoints(params, report):
        for step in range(STEPS):
            report(step, loss=1.0)
        return 1.0

    outcome = run_segment(no_checkpoints, {}, segment())[-1]
    assert outcome.state is TrialState.FAILED
    assert "call report.checkpoint(state) after report() at least every 5 steps" in outcome.error


def test_a_segment_that_does_not_restore_fails_saying_so():
    def forgets(params, report):
        for step in range(STEPS):
            report(step, loss=1.0)
            report.checkpoint(step)
        return 1.0

    outcome = run_segment(forgets, {}, segment(4, 9, parent=1, held=saved(5, 4)))[-1]
    assert outcome.state is TrialState.FAILED
    assert "goes on from step 4 of trial 1, but the objective reported step 0" in outcome.error


def test_a_segment_whose_parent_checkpoint_is_gone_fails_saying_which():
    outcome = run_segment(trainer, {"x": 0.5}, segment(4, 9, parent=1))[-1]
    assert outcome.state is TrialState.FAILED
    assert "the checkpoint of trial 1 (step 4)" in outcome.error


def test_a_rerun_segment_restores_its_own_checkpoint_before_its_parents():
    own = pickle.dumps(
        {"step": 7, "state": 8, "reports": [Report(s, {"loss": 1.0}, 0.0) for s in (5, 6, 7)]}
    )
    place = {"rerun": True, "checkpoints": {"checkpoint.pkl": own}}
    events = run_segment(trainer, {"x": 0.5}, segment(4, 9, parent=1, held=saved(5, 4)), place)
    steps = [e.step for e in events if isinstance(e, Report)]
    assert steps == [5, 6, 7, 8, 9]  # the lost attempt's reports again, then on from 8
    assert events[-1].segment_end == 9


def test_replay_schedule_is_exported():
    assert hpo.replay_schedule.__module__ == "hpo.sweep.replay"


def test_a_schedule_replay_trains_one_member_through_the_schedule():
    schedule = [[4, {"x": 0.9}], [9, {"x": 0.5}], [None, {"x": 0.3}]]
    strategy = make_strategy("pbt-replay", {"x": Float(0.0, 1.0)}, schedule=schedule)
    pool, tracker = FakePool(2, segment_script), FakeTracker()
    result = Sweep(strategy, pool, tracker, SweepConfig(n_trials=1, progress=False)).run("r", {})
    assert [(t.params["x"], t.segment.get("end_step")) for t in result.trials] == [
        (0.9, 4),
        (0.5, 9),
        (0.3, None),
    ]
    assert [pool.segments[t.number]["until"] for t in result.trials] == [4, 9, None]
    assert result.trials[-1].value == pytest.approx(loss({"x": 0.3}, STEPS - 1))


def test_hpo_run_trials_is_pbts_population(monkeypatch):
    """`hpo run experiments/digits_pbt.py --trials 4`: a population of 4, not a refusal of
    the file's population of 8."""
    from pathlib import Path

    import hpo.sweep.start
    from hpo import cli

    class Started(Exception):
        pass

    def start(config, **code):
        raise Started(config)

    monkeypatch.setattr(hpo.sweep.start, "start", start)
    monkeypatch.setattr(cli, "_load_data", lambda exp: None)
    path = Path(__file__).resolve().parents[2] / "experiments" / "digits_pbt.py"
    with pytest.raises(Started) as started:
        cli.main(["run", str(path), "--trials", "4", "--no-progress"])
    config = started.value.args[0]
    assert config.n_trials == 4 and config.strategy_options["population"] == 4
    assert config.strategy_options["interval"] == 4  # the file's other options stay


def test_the_figures_show_the_population_and_the_best_schedule_of_what_changed():
    from hpo.report.plots import render
    from hpo.report.summary import figure_specs

    space = {"x": Float(0.01, 1.0, log=True), "fixed": Float(0.0, 1.0)}
    strategy = make_strategy("pbt", space, seed=1, population=4, interval=5, mutate=["x"])
    pool, tracker = FakePool(2, segment_script), FakeTracker()
    sweep = Sweep(strategy, pool, tracker, SweepConfig(n_trials=4, progress=False))
    result = sweep.run("pbt", {})
    records = [sweep.trials.records[t.number] for t in result.trials]
    specs = {
        name: arguments
        for name, _, arguments in figure_specs(
            records, strategy.space, strategy.directions, watched="loss"
        )
    }
    assert set(specs) == {"pbt_population.png", "pbt_schedule.png"}
    jumps = [s["jump"] for s in specs["pbt_population.png"]["segments"] if s["jump"]]
    assert len(jumps) == sum("donor" in t.segment for t in result.trials) > 0
    schedule = specs["pbt_schedule.png"]
    assert schedule["trial"] == result.best_trial.number
    lineage = result.lineage()
    assert [row["params"]["x"] for row in schedule["rows"]] == [t.params["x"] for t in lineage]
    expected = ["x"] if len({t.params["x"] for t in lineage}) > 1 else ["fixed", "x"]
    assert schedule["names"] == expected and schedule["log"] == ["x"]
    pngs = render(list(figure_specs(records, strategy.space, strategy.directions, watched="loss")))
    assert all(png.startswith(b"\x89PNG") for png in pngs.values()) and len(pngs) == 2


def test_hpo_replay_replays_a_sweeps_schedule_with_the_files_objective(monkeypatch, capsys):
    from pathlib import Path

    from hpo import cli

    calls = []

    def replay_schedule(sweep_id, space, objective, **options):
        calls.append((sweep_id, objective.__name__, options))
        raise ValueError(f"trial 9 of sweep {sweep_id!r} is not a segment of pbt")

    monkeypatch.setattr(hpo, "replay_schedule", replay_schedule)
    monkeypatch.setattr(cli, "_load_data", lambda exp: "data")
    path = Path(__file__).resolve().parents[2] / "experiments" / "digits_pbt.py"
    code = cli.main(["replay", "abc", "--file", str(path), "--trial", "9", "--no-progress"])
    [(sweep_id, objective, options)] = calls
    assert (sweep_id, objective, options["trial"], options["data"]) == (
        "abc",
        "objective",
        9,
        "data",
    )
    assert code == cli.EXIT_USAGE  # the refusal in one line, no traceback
    assert "is not a segment of pbt" in capsys.readouterr().err
