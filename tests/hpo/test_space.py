from __future__ import annotations

import numpy as np
import pytest

from hpo.space import Choice, Float, Int, Space


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Float(2.0, 1.0), r"low <= high, but got \(low=2.0, high=1.0\)"),
        (lambda: Float(0.0, 1.0, log=True), r"log=True needs low > 0, but got \(low=0.0"),
        (lambda: Float(-1.0, 1.0, log=True), r"log=True needs low > 0"),
        (lambda: Float(0.0, float("inf")), r"high must be a finite real number, got inf"),
        (lambda: Float("a", 1.0), r"low must be a finite real number, got 'a'"),
        (lambda: Float(0.0, 1.0, grid=0), r"grid count must be >= 1, got 0"),
        (
            lambda: Float(0.0, 1.0, grid=[0.5, 2.0]),
            r"Float grid points must lie in \[0, 1\], got 2.0",
        ),
        (lambda: Int(5, 1), r"low <= high, but got \(low=5, high=1\)"),
        (lambda: Int(0, 10, log=True), r"log=True needs low > 0"),
        (lambda: Int(1.5, 3), r"low must be an int, got 1.5 \(float\)"),
        (lambda: Int(0, 10, step=0), r"step >= 1, but got step=0"),
        (lambda: Int(0, 10, step=3), r"multiple of step, but got \(low=0, high=10, step=3\)"),
        (lambda: Int(1, 16, log=True, step=3), r"log=True needs step == 1"),
        (
            lambda: Int(0, 10, grid=[11]),
            r"grid points must be allowed values of Int\(0, 10\), got 11",
        ),
        (lambda: Choice([]), r"at least one option, got an empty list"),
        (lambda: Choice("abc"), r"list or tuple, got str: 'abc'"),
        (lambda: Space({"x": {1, 2}}), r"unsupported value at 'x': \{1, 2\} \(set\)"),
        (lambda: Space({"a": {"b": object}}), r"unsupported value at 'a.b'"),
        (lambda: Space({"x": float("nan")}), r"constants must be finite, got nan at 'x'"),
        (lambda: Space({1: Float(0, 1)}), r"keys must be non-empty strings, got 1"),
        (lambda: Space([Float(0, 1)]), r"a search space must be a dict, got list"),
        (lambda: Space({"a.b": 1, "a": {"b": Float(0, 1)}}), r"duplicate parameter name 'a.b'"),
        (lambda: Space({"a.0": Int(0, 1), "a": [Int(0, 1)]}), r"duplicate parameter name 'a.0'"),
    ],
)
def test_invalid_spaces_say_the_rule_and_the_value(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_same_name_in_exclusive_branches_is_not_a_duplicate():
    space = Space({"layers": Choice([{"units": [Int(1, 5)]}, {"units": [Int(1, 5), Int(1, 5)]}])})
    assert [p.key for p in space.params] == [
        "layers",
        "layers[0].units.0",
        "layers[1].units.0",
        "layers[1].units.1",
    ]
    assert {p.name for p in space.params} == {"layers", "layers.units.0", "layers.units.1"}


TREE = {
    "lr": Float(1e-4, 1e-1, log=True),
    "momentum": Float(0.0, 0.99),
    "batch": Int(16, 512, log=True),
    "units": Int(10, 100, step=10),
    "act": Choice(["relu", "tanh", "sigmoid"]),
    "layers": Choice(
        [
            {"n": 1, "units": [Int(50, 1000)]},
            {
                "n": 2,
                "units": [Int(50, 1000), Int(50, 1000)],
                "dropout": Choice([None, {"rate": Float(0.0, 0.5)}]),
            },
        ]
    ),
    "epochs": 50,
}


def test_samples_are_valid_and_in_bounds():
    space = Space(TREE)
    rng = np.random.default_rng(0)
    seen_branches = set()
    for _ in range(500):
        a = space.sample(rng)
        space.validate(a)
        p = space.build(a)
        assert 1e-4 <= p["lr"] <= 1e-1 and 0.0 <= p["momentum"] <= 0.99
        assert 16 <= p["batch"] <= 512 and isinstance(p["batch"], int)
        assert p["units"] % 10 == 0 and 10 <= p["units"] <= 100
        assert p["act"] in ("relu", "tanh", "sigmoid")
        assert p["epochs"] == 50
        assert len(p["layers"]["units"]) == p["layers"]["n"]
        assert all(50 <= u <= 1000 for u in p["layers"]["units"])
        seen_branches.add(p["layers"]["n"])
    assert seen_branches == {1, 2}


def test_log_int_reaches_both_ends_and_favours_small_values():
    dim = Int(1, 100, log=True)
    rng = np.random.default_rng(0)
    values = np.array([dim.sample(rng) for _ in range(20000)])
    assert values.min() == 1 and values.max() == 100
    assert np.mean(values <= 10) > 0.4  # log-uniform: a decade in each half


def test_sampling_is_reproducible_with_a_seed():
    space = Space(TREE)
    draw = lambda seed: [space.sample(np.random.default_rng(seed)) for _ in range(3)]  # noqa: E731
    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_grid_enumerates_every_combination_once():
    space = Space(
        {"lr": Float(1e-5, 1e1, log=True, grid=7), "l2": Float(1e-5, 1e1, log=True, grid=7)}
    )
    points = list(space.grid())
    assert space.grid_size() == len(points) == 49
    assert len({tuple(sorted(p.items())) for p in points}) == 49
    assert [p["lr"] for p in points[::7]] == [1e-05, 1e-04, 1e-03, 1e-02, 0.1, 1.0, 10.0]


def test_grid_over_conditional_space_and_int_ranges():
    space = Space({"x": Choice([None, {"u": Int(1, 3)}]), "y": Int(1, 7, step=3)})
    points = list(space.grid())
    assert space.grid_size() == len(points) == (1 + 3) * 3
    for p in points:
        space.validate(p)
    assert Int(50, 1000, grid=3).grid_values() == [50, 525, 1000]
    assert Int(1, 1000, log=True, grid=4).grid_values() == [1, 10, 100, 1000]


def test_grid_needs_points_for_a_float():
    space = Space({"lr": Float(0.0, 1.0)})
    with pytest.raises(ValueError, match=r"Float\(0, 1\) has no grid: give grid=COUNT"):
        space.grid_size()


def test_flat_names_for_mlflow():
    space = Space(TREE)
    a = {
        "lr": 0.01,
        "momentum": 0.5,
        "batch": 32,
        "units": 20,
        "act": 1,
        "layers": 1,
        "layers[1].units.0": 100,
        "layers[1].units.1": 200,
        "layers[1].dropout": 1,
        "layers[1].dropout[1].rate": 0.25,
    }
    space.validate(a)
    assert space.flat(a) == {
        "lr": 0.01,
        "momentum": 0.5,
        "batch": 32,
        "units": 20,
        "act": "tanh",
        "layers": 1,
        "layers.n": 2,
        "layers.units.0": 100,
        "layers.units.1": 200,
        "layers.dropout": 1,
        "layers.dropout.rate": 0.25,
        "epochs": 50,
    }
    assert space.build(a)["layers"] == {"n": 2, "units": [100, 200], "dropout": {"rate": 0.25}}


def test_validate_rejects_wrong_assignments():
    space = Space({"x": Float(0, 1), "c": Choice([None, {"u": Int(1, 3)}])})
    with pytest.raises(ValueError, match="misses active parameter 'x'"):
        space.validate({"c": 0})
    with pytest.raises(ValueError, match=r"value 2.0 is not in Float\(0, 1\)"):
        space.validate({"x": 2.0, "c": 0})
    with pytest.raises(ValueError, match="sets inactive parameter 'c\\[1\\].u'"):
        space.validate({"x": 0.5, "c": 0, "c[1].u": 2})


def test_repr_is_compact_and_readable():
    space = Space(
        {"lr": Float(1e-5, 10.0, log=True), "n": Int(1, 9, step=2), "a": Choice(["x", "y"])}
    )
    assert repr(space) == (
        "Space({'lr': Float(1e-05, 10, log=True), 'n': Int(1, 9, step=2), 'a': Choice(['x', 'y'])})"
    )


def test_assignment_of_inverts_build_and_complete_fills_what_is_left_out():
    space = Space(
        {
            "lr": Float(1e-4, 1e-1, log=True),
            "act": Choice(["relu", "tanh"]),
            "momentum": Choice([0.0, 0.9, True]),
            "layers": Choice([{"units": [Int(1, 9)]}, {"units": [Int(1, 9), Int(1, 9)]}]),
            "fixed": 3,
        }
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        assignment = space.sample(rng)
        assert space.assignment_of(space.build(assignment)) == assignment
    # 0 is the option 0.0, not True; True is the option True, not 1.
    assert space.assignment_of({"momentum": 0})["momentum"] == 0
    assert space.assignment_of({"momentum": True})["momentum"] == 2
    partial = space.assignment_of({"layers": {"units": [4, 5]}})
    assert partial == {"layers": 1, "layers[1].units.0": 4, "layers[1].units.1": 5}
    whole = space.complete(partial, rng)
    space.validate(whole)
    assert space.build(whole)["layers"] == {"units": [4, 5]}
    with pytest.raises(ValueError, match="'fixed' is the constant 3 here, got 4"):
        space.assignment_of({"fixed": 4})
