"""The pruning rules on hand-made curves (no Ray, no MLflow)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpo.strategies.pruners import ASHAPruner, HyperbandPruner, MedianPruner, make_pruner


def feed(pruner, number, curve):
    """Report ``curve`` (values at steps 0, 1, ...) until pruned; the pruned step or None."""
    for step, value in enumerate(curve):
        if pruner.report(number, step, value) is not None:
            return step
    return None


def test_median_rule_waits_for_warmup_and_completed_trials_then_stops_worse_trials():
    p = MedianPruner(warmup_steps=2, min_trials=3)
    p.bind("minimize")
    good = [1.0, 0.8, 0.6, 0.5, 0.4]
    for n in range(2):
        assert feed(p, n, good) is None
        p.complete(n)
    # Only two completed trials: the worst possible curve still runs to its end.
    assert feed(p, 2, [9.0] * 5) is None
    p.complete(2)
    # Three completed (medians 1.0, 0.8, 0.6, 0.5, 0.4); step 2 is the first after warm-up.
    assert feed(p, 3, [5.0, 5.0, 5.0, 5.0, 5.0]) == 2
    # A trial whose best so far beats the median is never stopped.
    assert feed(p, 4, [0.9, 0.7, 0.5, 0.45, 0.3]) is None


def test_median_rule_uses_the_best_value_so_far_and_the_direction():
    p = MedianPruner(warmup_steps=0, min_trials=1, direction="maximize")
    p.bind("minimize")  # an explicit direction wins over the sweep's
    assert feed(p, 0, [0.5, 0.6, 0.7]) is None
    p.complete(0)
    # Best so far 0.9 beats the median at steps 1 and 2 although the latest values do not.
    assert feed(p, 1, [0.9, 0.55, 0.65]) is None
    reason = p.report(2, 0, 0.4)
    assert reason is not None and "median 0.5" in reason and "step 0" in reason


def test_asha_lets_a_trial_on_within_the_best_third_of_the_values_before_it():
    p = ASHAPruner(min_resource=1, reduction_factor=3)
    p.bind("minimize")
    assert [p.rung_step(k) for k in range(3)] == [1, 3, 9]
    # Nothing is judged before the first rung.
    assert p.report(0, 0, 100.0) is None
    # The first trial at a rung always goes on.
    assert feed(p, 0, [5.0, 0.5, 0.5, 0.3, 0.3]) is None
    values = [0.6, 0.1, 0.9, 0.2, 0.95, 0.05, 0.99]
    decisions = [feed(p, n, [5.0, v, v, v]) for n, v in enumerate(values, start=1)]
    # 0.2 arrives fifth at step 1, after 0.1, 0.5, 0.6 and 0.9 (their third: 0.5), and goes
    # on, where counting itself among the best 5 // 3 it would have had to be the best; at
    # step 3 it comes after 0.1 and 0.3 (their third: 0.1667) and stops.
    assert decisions == [1, None, 1, 3, 1, None, 1]
    reason = p.report(99, 1, 0.31)
    assert reason == (
        "ASHA: value 0.31 at rung step 1 is worse than 0.3, the best 1/3 of the 8 values "
        "there before it"
    )


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("eta", [2, 3, 4])
def test_asha_cutoff_is_the_quantile_of_the_values_before_it_as_numpy_computes_it(direction, eta):
    p = ASHAPruner(min_resource=1, reduction_factor=eta)
    p.bind(direction)
    sign = 1.0 if direction == "minimize" else -1.0
    before: list[float] = []
    for n, value in enumerate(np.random.default_rng(eta).random(60)):
        goes_on = p.report(n, 1, float(value)) is None
        expected = not before or sign * value <= np.percentile(before, 100 / eta)
        assert goes_on == expected, (n, value)
        before.append(sign * value)


def test_asha_judges_a_trial_that_skips_steps_at_the_highest_rung_reached():
    p = ASHAPruner(min_resource=1, reduction_factor=2)
    p.bind("maximize")
    assert p.report(0, 4, 0.9) is None  # rung 4 directly
    reason = p.report(1, 5, 0.1)
    assert reason is not None and "rung step 4" in reason
    assert p.report(2, 4, math.nan) is not None  # NaN is never among the best


def test_trials_that_would_be_promoted_twice_are_judged_once_per_rung():
    p = ASHAPruner(min_resource=2, reduction_factor=2)
    p.bind("minimize")
    assert p.report(0, 2, 1.0) is None
    assert p.report(0, 3, 50.0) is None  # between rungs: not judged again
    assert p.report(0, 4, 0.9) is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MedianPruner(warmup_steps=-1), "warmup_steps must be an int >= 0, got -1"),
        (lambda: MedianPruner(min_trials=0), "min_trials must be an int >= 1, got 0"),
        (lambda: ASHAPruner(reduction_factor=1), "reduction_factor must be an int >= 2, got 1"),
        (lambda: ASHAPruner(min_resource=1.5), "min_resource must be an int >= 1, got 1.5"),
        (lambda: make_pruner("successive"), "unknown pruner 'successive'; choose one of"),
        (
            lambda: HyperbandPruner(min_resource=9, max_resource=9),
            "min_resource must be less than max_resource, got min_resource=9 and max_resource=9",
        ),
        (lambda: HyperbandPruner(max_resource=0), "max_resource must be an int >= 1, got 0"),
        (
            lambda: HyperbandPruner(resource="epochs"),
            "resource must be 'step' or 'seconds', got 'epochs'",
        ),
        (
            lambda: HyperbandPruner(reduction_factor=1),
            "reduction_factor must be an int >= 2, got 1",
        ),
        (
            lambda: HyperbandPruner(resource="seconds", min_resource=-1.0),
            "min_resource must be",
        ),
        (lambda: MedianPruner(direction="up"), "direction must be 'minimize' or 'maximize'"),
    ],
)
def test_bad_settings_are_refused_with_the_rule_and_the_value(build, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_make_pruner_by_name():
    assert make_pruner("none") is None and make_pruner(None) is None
    assert isinstance(make_pruner("median"), MedianPruner)
    asha = ASHAPruner(min_resource=3)
    assert make_pruner(asha) is asha


def test_the_docstring_examples_hold():
    import doctest

    import hpo.strategies.pruners

    assert doctest.testmod(hpo.strategies.pruners).failed == 0


def test_asha_auto_places_its_rungs_from_the_first_completed_trial():
    p = ASHAPruner(reduction_factor=3)
    p.bind("minimize")
    first = [1.0 / (s + 1) for s in range(50)]  # steps 0..49
    # Nothing is judged before a trial completes, however bad.
    assert feed(p, 0, first) is None
    assert p.report(1, 10, 99.0) is None
    p.complete(0)
    assert p.min_resource == 5 and [p.rung_step(k) for k in range(3)] == [5, 15, 45]
    # Trial 1 reaches its next report at step 11: judged at rung 5 against trial 0's 1/6.
    assert "rung step 5" in p.report(1, 11, 0.9)
    # A trial better than the first at every rung goes on.
    assert feed(p, 2, [0.5 / (s + 1) for s in range(50)]) is None
    assert p.settings()["pruner.min_resource"] == "auto"


def test_asha_on_seconds_judges_trials_at_equal_time_not_equal_steps():
    p = ASHAPruner(min_resource=1.0, reduction_factor=2, resource="seconds")
    p.bind("minimize")
    assert [p.rung_step(k) for k in range(3)] == [1.0, 2.0, 4.0]
    # A fast trial: ten steps a second. At 1 s (step 9) it is at 0.5.
    fast = [(step, 1 / (step + 1) + 0.4, step * 0.1) for step in range(20)]
    for step, value, seconds in fast:
        assert p.report(0, step, value, seconds=seconds) is None
    # A slow trial with the same curve per step, one step a second: at 1 s it has only
    # reached step 1 (0.9), so it is judged against the fast trial's 1-second value and stops.
    assert p.report(1, 0, 1.4, seconds=0.0) is None
    reason = p.report(1, 1, 0.9, seconds=1.0)
    assert reason is not None and "at rung 1 s" in reason
    # Per step the same two curves are tied, and the slow trial runs on.
    q = ASHAPruner(min_resource=1, reduction_factor=2)
    q.bind("minimize")
    assert [q.report(0, s, v, seconds=t) for s, v, t in fast[:2]] == [None, None]
    assert q.report(1, 0, 1.4, seconds=0.0) is None and q.report(1, 1, 0.9, seconds=1.0) is None


def test_asha_on_seconds_places_its_rungs_from_the_first_completed_trials_seconds():
    p = ASHAPruner(reduction_factor=3, resource="seconds")
    p.bind("minimize")
    for step in range(10):
        assert p.report(0, step, 1.0 - step / 10, seconds=0.9 * (step + 1)) is None
    p.complete(0)  # ran 9 s: rungs at 1 s, 3 s and 9 s
    assert [p.rung_step(k) for k in range(3)] == pytest.approx([1.0, 3.0, 9.0])
    # Its values at the rungs it passed are their first entries (0.9 at 1.8 s, 0.7 at 3.6 s).
    assert p.report(1, 0, 0.85, seconds=1.1) is None  # the best of two at rung 0
    assert "worse than 0.8667, the best 1/3 of the 2 values" in p.report(2, 0, 0.95, seconds=1.2)
    assert "at rung 3 s" in p.report(1, 3, 0.75, seconds=3.3)  # 0.7 was there first
    with pytest.raises(ValueError, match="needs each report's seconds"):
        p.report(3, 0, 0.5)


def test_asha_resource_options_are_checked():
    with pytest.raises(ValueError, match="resource must be 'step' or 'seconds', got 'epochs'"):
        ASHAPruner(resource="epochs")
    for bad in (0, None, "1", math.inf, math.nan):
        with pytest.raises(
            ValueError, match=f"min_resource must be a number of seconds > 0, got {bad!r}"
        ):
            ASHAPruner(min_resource=bad, resource="seconds")
    with pytest.raises(ValueError, match="min_resource must be an int >= 1, got 0.5"):
        ASHAPruner(min_resource=0.5)
    assert ASHAPruner(min_resource=0.5, resource="seconds").rung_step(1) == 1.5


def test_make_pruner_reads_options_written_after_the_name():
    p = make_pruner("asha:resource=seconds,reduction_factor=4,min_resource=2.5")
    assert (p.resource, p.reduction_factor, p.min_resource) == ("seconds", 4, 2.5)
    assert make_pruner("median:warmup_steps=3").warmup_steps == 3
    assert make_pruner("none") is None
    cases = [
        ("asha:speed=2", r"pruner 'asha' takes the options min_resource, .* got \['speed'\]"),
        ("asha:seconds", "pruner options are key=value pairs, got 'seconds'"),
        ("none:warmup_steps=1", "pruner 'none' takes no options"),
        ("hyperband:eta=3", "pruner 'hyperband' takes the options max_resource, min_resource"),
    ]
    for spec, message in cases:
        with pytest.raises(ValueError, match=message):
            make_pruner(spec)


def test_asha_places_no_rung_at_or_beyond_max_resource():
    p = ASHAPruner(min_resource=1, reduction_factor=3, max_resource=9)
    p.bind("minimize")
    assert p.report(0, 9, 0.1) is None  # steps 1 and 3 are its rungs; 9 is the full training
    assert p.report(1, 9, 0.9) is not None  # judged at rung 3, the highest below 9
    assert p.report(2, 1, 0.5) is None and p.report(2, 3, 0.5) is not None


def test_hyperband_judges_each_trial_in_its_own_bracket_only():
    p = HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3)
    p.bind("minimize")
    assert p.rungs() == [1.0, 3.0]
    by_bracket: dict[int, list[int]] = {}
    for n in range(34):
        by_bracket.setdefault(p.bracket_of(n), []).append(n)
    # Hyperband's proportions per round of 17: 9 trials judged from rung 1, 5 from rung 3,
    # 3 never.
    assert {s: len(ns) for s, ns in by_bracket.items()} == {0: 18, 1: 10, 2: 6}
    b0, b1, b2 = by_bracket[0], by_bracket[1], by_bracket[2]
    # A good trial of bracket 1 at step 1 sets no bar for bracket 0, which is not judged
    # there yet: bracket 0's first trial at rung 1 goes on (the best of 1).
    assert p.report(b1[0], 1, 0.1) is None
    assert p.report(b0[0], 1, 0.9) is None
    # Two more bracket-0 trials at rung 1: the worse of the three stops there.
    assert p.report(b0[1], 1, 0.8) is None
    reason = p.report(b0[2], 1, 0.95)
    assert reason is not None and reason.startswith("Hyperband bracket 0: ASHA")
    assert "rung step 1" in reason
    # Bracket 1 is judged from step 3: a bad step-1 value there is not judged at all.
    assert p.report(b1[1], 1, 5.0) is None
    # The last bracket trains to the end, however bad.
    assert all(p.report(b2[0], step, 100.0) is None for step in range(10))


def test_hyperband_places_its_brackets_from_the_first_completed_trial():
    p = HyperbandPruner()  # max: the first completed trial's last step; min: max / 27
    p.bind("minimize")
    for step in range(81):
        assert p.report(0, step, 1.0 / (step + 1)) is None
        assert p.report(1, step, 5.0) is None  # nothing judged before placement
    p.complete(0)
    assert p.max_resource == 80 and p.min_resource == 3
    assert p.rungs() == [3.0, 9.0, 27.0]
    # The first curve seeded every bracket's rungs; a worse trial of bracket 0 stops at 3.
    bad = next(n for n in range(2, 100) if p.bracket_of(n) == 0)
    assert feed(p, bad, [9.0] * 10) == 3
    assert p.settings()["pruner.max_resource"] == "auto"


def test_hyperband_by_name_with_options_and_its_recipe_makes_it_again():
    p = make_pruner("hyperband:min_resource=2,max_resource=54,resource=step")
    assert isinstance(p, HyperbandPruner) and p.rungs() == [2.0, 6.0, 18.0]
    again = make_pruner(**p.recipe())
    assert again.recipe() == p.recipe() and again.rungs() == p.rungs()
