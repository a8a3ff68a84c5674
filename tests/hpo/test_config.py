"""The sweep configuration: checked when made, immutable, and the same after a round trip
through the parent run's tags (what `hpo resume` reads)."""

from __future__ import annotations

import dataclasses

import pytest

from hpo.core.directions import Directions
from hpo.strategies.pruners import ASHAPruner
from hpo.sweep.config import RECIPE, SweepConfig
from hpo.tracking.schema import SweepTag


def test_defaults_are_those_of_hpo_run():
    c = SweepConfig(tracking_uri="sqlite:///x.db")
    assert c.direction == Directions(["minimize"]) and c.strategy == "random"
    assert (c.n_trials, c.repeats, c.max_retries, c.pruner, c.enqueue) == (None, 1, 1, None, ())
    assert c.experiment_name == "hpo" and c.progress is True


def test_the_recipe_round_trips_through_the_parent_runs_tags():
    c = SweepConfig(
        direction="maximize",
        strategy="tpe",
        strategy_options={"n_startup": 5},
        seed=3,
        n_trials=30,
        enqueue=[{"x": 0.5}],
        warm_start=["abc", "abc", "def"],  # kept once each, in order
        stop_at=0.9,
        patience=7,
        max_retries=2,
        timeout=60.0,
        trial_timeout=5.0,
        pruner=ASHAPruner(reduction_factor=4),
        prune_metric="val_loss",
        register_model="m",
        tracking_uri="sqlite:///x.db",
    )
    tags = c.tags()
    assert tags[SweepTag.DIRECTION] == "maximize" and tags[SweepTag.SEED] == "3"
    back = SweepConfig.from_recipe(tags, tracking_uri="sqlite:///x.db")
    kept = [f.name for f in dataclasses.fields(c) if RECIPE in f.metadata["where"]]
    assert {name: getattr(back, name) for name in kept} == {name: getattr(c, name) for name in kept}
    assert (back.direction, back.seed, back.strategy) == (c.direction, 3, "tpe")
    assert back.warm_start == ("abc", "def") and back.pruner["reduction_factor"] == 4


def test_a_recipe_written_before_the_configuration_existed_still_reads():
    old = {
        SweepTag.DIRECTION: "minimize,maximize",
        SweepTag.SEED: "0",
        SweepTag.OBJECTIVES: '["error", "size"]',
        SweepTag.RECIPE: (
            '{"strategy": "gp", "options": {}, "n_trials": 12, "max_retries": 1, "timeout": '
            'null, "trial_timeout": null, "pruner": null, "prune_metric": null, "repeats": 1, '
            '"register_model": null, "enqueue": [], "stop_at": null, "patience": 3, '
            '"warm_start": null}'
        ),
    }
    c = SweepConfig.from_recipe(old, tracking_uri="sqlite:///x.db")
    assert c.direction == ("minimize", "maximize") and c.objective_names == ("error", "size")
    assert (c.strategy, c.n_trials, c.patience) == ("gp", 12, 3)


def test_the_prune_metric_a_first_report_chose_is_read_back():
    tags = SweepConfig(pruner="median", seed=0, tracking_uri="sqlite:///x.db").tags()
    tags[SweepTag.PRUNE_METRIC] = "val_loss"
    assert SweepConfig.from_recipe(tags, tracking_uri="x").prune_metric == "val_loss"


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"n_trials": 0}, "n_trials must be an int >= 1, got 0"),
        ({"workers": 1.5}, "workers must be an int >= 1"),
        ({"seed": -1}, "seed must be a non-negative int, got -1"),
        ({"timeout": 0}, "timeout must be a number of seconds > 0"),
        ({"stop_at": float("nan")}, "stop_at must be a finite number"),
        ({"experiment_name": " "}, "experiment_name must be a non-empty string"),
        ({"register_model": ""}, "register_model must be a non-empty string"),
        ({"direction": []}, "non-empty list"),
        ({"pruner": "nope"}, "unknown pruner 'nope'"),
        ({"prune_metric": "a%b"}, "may only contain"),
        ({"enqueue": {"x": 1}}, "enqueue must be a list of configurations"),
        ({"warm_start": "abc"}, "warm_start must be a list of sweep ids"),
        ({"objective_names": ["a"]}, "objective_names names several objectives"),
        (
            {"direction": ["minimize", "minimize"], "objective_names": ["a"]},
            "must be a list of 2 names",
        ),
        ({"direction": ["minimize", "maximize"], "stop_at": 1.0}, "stop_at=1.0 ranks trials"),
        ({"direction": "minimize,maximize", "pruner": "asha"}, "pruner='asha' ranks trials"),
        ({"pruner": "median", "repeats": 3}, "cannot be combined with repeats > 1"),
    ],
)
def test_bad_settings_are_refused_with_the_rule_and_the_value(settings, says):
    with pytest.raises((ValueError, TypeError), match=says.replace("[", r"\[")):
        SweepConfig(tracking_uri="sqlite:///x.db", **settings)


def test_it_is_immutable_and_a_changed_copy_is_checked_again():
    c = SweepConfig(tracking_uri="sqlite:///x.db")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.n_trials = 5  # type: ignore[misc]
    assert c.replace(n_trials=5, repeats=None).n_trials == 5  # None: not given
    with pytest.raises(ValueError, match="n_trials"):
        c.replace(n_trials=-1)


def test_experiment_files_name_the_settings_they_may_define():
    names = SweepConfig.file_settings()
    assert {"direction", "strategy", "n_trials", "pruner", "enqueue", "warm_start"} <= set(names)
    assert "tracking_uri" not in names and "workers" not in names  # the command line's


def test_a_pruner_is_made_fresh_and_bound_to_the_sweeps_direction():
    c = SweepConfig(direction="maximize", pruner="asha:reduction_factor=4", tracking_uri="x")
    first, second = c.make_pruner(), c.make_pruner()
    assert first is not second and first.direction == "maximize"
    assert SweepConfig(tracking_uri="x").make_pruner() is None
