"""What a trial asks of the cluster: parsing, checks, packing and the cluster's capacity."""

from __future__ import annotations

import json

import pytest

from hpo.execution.resources import TrialResources, capacity
from hpo.sweep.config import SweepConfig
from hpo.tracking.schema import SweepTag


def test_the_default_is_one_cpu():
    r = TrialResources.parse(None)
    assert r.ray_options() == {"num_cpus": 1.0}
    assert r.threads == 1
    assert str(r) == "cpu=1"


def test_a_dict_and_the_command_line_give_the_same_request():
    given = {"cpu": 4, "gpu": 0.5, "memory": "8GB", "custom": {"tpu": 1}}
    from_dict = TrialResources.parse(given)
    from_text = TrialResources.parse("cpu=4, gpu=0.5, memory=8GB, custom.tpu=1")
    assert from_dict == from_text
    assert from_dict.ray_options() == {
        "num_cpus": 4.0,
        "num_gpus": 0.5,
        "memory": 8 * 10**9,
        "resources": {"tpu": 1.0},
    }
    assert from_dict.threads == 4
    assert str(from_dict) == "cpu=4, gpu=0.5, memory=8.0GB, tpu=1"
    assert TrialResources.parse(from_dict.recipe()) == from_dict


def test_memory_takes_sizes_in_both_kinds_of_units():
    assert TrialResources.parse({"memory": "512MiB"}).memory == 512 * 2**20
    assert TrialResources.parse({"memory": 10**9}).memory == 10**9


@pytest.mark.parametrize(
    "given, message",
    [
        ({"cpu": 0}, r"cpu must be a number > 0, got 0"),
        ({"cpu": -2}, r"cpu must be a number > 0, got -2"),
        ({"gpu": 0}, r"gpu must be a number > 0, got 0"),
        ({"gpu": 1.5}, r"gpu above 1 must be a whole number of devices .* got 1.5"),
        ({"gpus": 1}, r"unknown key 'gpus' \(known: cpu, gpu, memory, custom"),
        ({"memory": "8 potatoes"}, r"memory must be bytes or a size such as '8GB'"),
        ({"custom": {"tpu": 0}}, r"tpu must be a number > 0, got 0"),
        ({"custom": {"CPU": 1}}, r"a custom resource's name must be a string other than"),
        ("cpu", r"resources are NAME=AMOUNT pairs"),
        ("cpu=four", r"cpu must be a number, got 'four'"),
        ([1, 2], r"resources must be a dict such as"),
    ],
)
def test_bad_requests_are_refused_with_the_rule_and_the_value(given, message):
    with pytest.raises(ValueError, match=message):
        TrialResources.parse(given)


def test_fractional_gpus_pack_per_device_never_across_two():
    # Two devices: 0.4 fits twice on each (4), although 2 / 0.4 = 5.
    assert TrialResources.parse({"gpu": 0.4}).fits({"CPU": 16, "GPU": 2}) == 4
    assert TrialResources.parse({"gpu": 0.5}).fits({"CPU": 16, "GPU": 2}) == 4
    assert TrialResources.parse({"gpu": 2}).fits({"CPU": 16, "GPU": 3}) == 1
    # The CPUs bind first here: one CPU each by default.
    assert TrialResources.parse({"gpu": 0.25}).fits({"CPU": 2, "GPU": 1}) == 2


def test_the_capacity_sums_the_nodes_and_refuses_what_no_node_meets():
    nodes = [{"CPU": 4.0, "GPU": 0.0}, {"CPU": 2.0, "GPU": 1.0, "memory": 4e9}]
    assert capacity(TrialResources.parse({"cpu": 2}), nodes) == 3
    assert capacity(TrialResources.parse({"cpu": 1, "gpu": 0.5}), nodes) == 2
    with pytest.raises(ValueError) as refused:
        capacity(TrialResources.parse({"cpu": 8}), nodes)
    assert str(refused.value) == (
        "resources={cpu=8} per trial fits no node of the Ray cluster (the largest has "
        "cpu=4, gpu=0): ask for less, or add a node that has it"
    )
    with pytest.raises(ValueError, match=r"resources=\{cpu=1, tpu=1\} per trial fits no node"):
        capacity(TrialResources.parse({"custom": {"tpu": 1}}), nodes)


def test_the_configuration_keeps_the_request_for_a_resume():
    config = SweepConfig(resources={"cpu": 2, "gpu": 0.5}, max_trials_per_worker=3, seed=0)
    recipe = json.loads(config.tags()[SweepTag.RECIPE])
    assert recipe["resources"] == {"cpu": 2.0, "gpu": 0.5}
    assert recipe["max_trials_per_worker"] == 3
    again = SweepConfig.from_recipe(config.tags())
    assert again.resources == config.resources
    assert again.max_trials_per_worker == 3
    with pytest.raises(ValueError, match=r"max_trials_per_worker must be an int >= 1, got 0"):
        SweepConfig(max_trials_per_worker=0)
    with pytest.raises(ValueError, match=r"cpu must be a number > 0, got -1"):
        SweepConfig(resources={"cpu": -1})
