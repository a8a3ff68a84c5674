"""The sweep's closing history figure (Pillow, no matplotlib)."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hpo.report.curves import (
    COLOURS,
    FAILED,
    LEFT,
    PANEL_H,
    PANEL_W,
    RIGHT,
    _legend_places,
    best_so_far_steps,
    history_png,
    learning_curves_png,
)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def _has_colour(png: bytes, rgb: tuple[int, int, int]) -> bool:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return bool(np.all(pixels == rgb, axis=-1).any())


def test_best_so_far_steps_hold_the_best_until_a_trial_beats_it():
    done = [(0, 3.0), (1, 5.0), (2, 1.0)]
    assert best_so_far_steps(done, "minimize") == [(0, 3.0), (1, 3.0), (1, 3.0), (2, 3.0), (2, 1.0)]
    assert best_so_far_steps(done, "maximize") == [(0, 3.0), (1, 3.0), (1, 5.0), (2, 5.0), (2, 5.0)]
    assert best_so_far_steps([], "minimize") == []


def _cross_validation_history(folds: int) -> dict[str, list[tuple[int, float]]]:
    """What a SearchCV trial reports: each fold's metrics at its step, the mean so far."""
    history: dict[str, list[tuple[int, float]]] = {}
    for k in range(folds):
        history[f"split{k}_test_score"] = [(k, 0.9 + 0.01 * k)]
        history[f"split{k}_fit_time"] = [(k, 0.05)]
        history[f"split{k}_score_time"] = [(k, 0.01)]
        history["mean_test_score"] = [(j, 0.9 + 0.005 * j) for j in range(k + 1)]
    return history


def test_learning_curves_legend_wraps_so_that_every_name_shows():
    from PIL import ImageFont

    font = ImageFont.load_default(size=12)
    names = list(_cross_validation_history(5))  # 16 series
    left, right = LEFT, PANEL_W - RIGHT  # the panel's plot, as the figure lays it out
    places = _legend_places(font, names, left, right)
    assert len(places) == len(names)
    ends = [x + 30 + font.getlength(name) for (x, _), name in zip(places, names, strict=True)]
    assert max(ends) <= right  # no name runs off its panel
    assert len({y for _, y in places}) > 1  # it took several rows
    # The figure grows by those rows; two short names keep the usual height.
    tall = Image.open(io.BytesIO(learning_curves_png(_cross_validation_history(5))))
    short = Image.open(io.BytesIO(learning_curves_png({"loss": [(0, 1.0), (1, 0.5)]})))
    assert tall.size[1] > PANEL_H and short.size == (PANEL_W, PANEL_H)


def test_learning_curves_put_times_apart_from_scores():
    # A fold's fit time (0.05 s) beside its accuracy (0.9) would flatten both on one scale.
    png = learning_curves_png(_cross_validation_history(3))
    assert Image.open(io.BytesIO(png)).size[0] == 2 * PANEL_W  # seconds, metrics
    png = learning_curves_png({"val_loss": [(0, 1.0)], "fit_time": [(0, 0.1)], "acc": [(0, 0.5)]})
    assert Image.open(io.BytesIO(png)).size[0] == 3 * PANEL_W


def test_history_draws_trials_best_so_far_and_failed_trials():
    values = [0.9, None, 0.5, 0.7, None, 0.2]
    png = history_png(list(range(len(values))), values, "minimize")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] > image.size[1] > 100
    assert _has_colour(png, _rgb(COLOURS[0]))  # the trial points
    assert _has_colour(png, _rgb(COLOURS[1]))  # the best-so-far line
    assert _has_colour(png, _rgb(FAILED))


def test_history_without_failures_has_no_failure_marks():
    png = history_png([0, 1, 2], [0.3, 0.1, 0.2], "maximize")
    assert not _has_colour(png, _rgb(FAILED))


def test_history_when_every_trial_failed_says_so():
    png = history_png([0, 1], [None, None], "minimize")
    assert _has_colour(png, _rgb(FAILED))  # the "all 2 trials failed" line


def test_a_sweep_with_only_the_history_figure_does_not_import_matplotlib():
    # Importing matplotlib cost ~0.4 s of every sweep's wall time.
    code = (
        "import sys; from hpo.report.plots import render; "
        "out = render([('h.png', 'history', "
        "{'numbers': [0, 1], 'values': [1.0, 0.5], 'direction': 'minimize'})]); "
        "assert out['h.png'].startswith(b'\\x89PNG'); "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _conditional_sweep(n=24):
    from hpo.space import Choice, Float, Int
    from hpo.strategies import make_strategy

    space = {
        "lr": Float(1e-4, 1e-1, log=True),
        "act": Choice(["relu", "tanh"]),
        "layers": Choice([{"units": [Int(4, 64)]}, {"units": [Int(4, 64), Int(4, 64)]}]),
    }
    s = make_strategy("random", space, seed=0)
    trials = s.ask(n)
    for t in trials:  # the objective depends on lr alone
        s.tell(t, float(np.log10(t.params["lr"]) ** 2))
    return s, trials


def test_parallel_coordinates_slices_and_importance_are_drawn_for_a_conditional_space():
    from hpo.report.plots import render
    from hpo.report.summary import figure_specs
    from hpo.sweep.lifecycle import TrialRecord

    s, trials = _conditional_sweep()
    specs = figure_specs([TrialRecord(t) for t in trials], s.space, "minimize")
    kinds = {name: kind for name, kind, _ in specs}
    assert kinds["parallel_coordinates.png"] == "parallel" and kinds["slices.png"] == "slices"
    [parallel] = [args for name, _, args in specs if name == "parallel_coordinates.png"]
    # The second layer's units are None (inactive) in one-layer trials, not left out.
    second = parallel["columns"]["layers.units.1"]
    assert None in second and len(second) == len(trials) and parallel["log"]["lr"]
    pngs = render(specs)
    for name in ("parallel_coordinates.png", "slices.png", "param_importance.png"):
        image = Image.open(io.BytesIO(pngs[name]))
        assert image.format == "PNG" and image.size[0] > 300


def test_importance_rates_the_parameter_the_objective_depends_on_and_names_the_conditional():
    from hpo.report.importance import param_importances

    s, trials = _conditional_sweep(40)
    rated, unrated = param_importances(
        s.space, [t.assignment for t in trials], [t.value for t in trials], "minimize"
    )
    assert max(rated, key=rated.get) == "lr" and rated["lr"] > 0.8
    assert sum(rated.values()) == pytest.approx(1.0)
    # Both branches' first layer add up to every trial; the second layer is in some only.
    assert unrated["layers.units.0"] == 40 and 0 < unrated["layers.units.1"] < 40
    few = param_importances(s.space, [t.assignment for t in trials[:3]], [1, 2, 3], "minimize")
    assert few[0] == {}  # fewer than 4 completed trials: nothing rated
    # An objective that never varies has nothing to rate (fANOVA raises on it).
    flat = param_importances(s.space, [t.assignment for t in trials], [0.5] * 40, "minimize")
    assert flat[0] == {} and flat[1] == unrated


@pytest.mark.parametrize("k", [2, 3])
def test_the_pareto_figure_marks_the_front_in_one_panel_or_every_pair(k):
    from hpo.report.plots import render

    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, size=(20, k)).tolist()
    on_front = [bool(i % 3 == 0) for i in range(20)]
    spec = {
        "names": [f"f{i}" for i in range(k)],
        "directions": ["minimize", "maximize", "minimize"][:k],
        "values": values,
        "on_front": on_front,
        "numbers": list(range(20)),
    }
    png = render([("pareto_front.png", "pareto", spec)])["pareto_front.png"]
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert _has_colour(png, (0xD6, 0x27, 0x28))  # matplotlib's C3: the front's points
    # Three objectives: three pairs side by side, so the figure is three panels wide.
    assert image.size[0] > (2.5 if k == 3 else 1.0) * image.size[1]


def test_a_sweep_of_two_objectives_gets_its_front_on_the_parallel_coordinates_and_each_slices():
    from hpo.report.plots import render
    from hpo.report.summary import figure_specs
    from hpo.sweep.lifecycle import TrialRecord

    s, trials = _conditional_sweep(30)
    records = []
    for t in trials:  # the first objective depends on lr, the second on the activation
        t.values = (float(np.log10(t.params["lr"]) ** 2), float(t.params["act"] == "relu"))
        records.append(TrialRecord(t))
    specs = figure_specs(records, s.space, "minimize,maximize", names=["error", "speed"])
    assert [name for name, _, _ in specs] == [
        "pareto_front.png",
        "parallel_coordinates.png",
        "slices.png",
        "param_importance.png",
    ]
    [pareto] = [args for name, _, args in specs if name == "pareto_front.png"]
    [parallel] = [args for name, _, args in specs if name == "parallel_coordinates.png"]
    assert parallel["on_front"] == pareto["on_front"] and any(pareto["on_front"])
    [importance] = [args for name, _, args in specs if name == "param_importance.png"]
    assert list(importance["objectives"]) == ["error", "speed"]
    assert importance["objectives"]["speed"] == [t.values[1] for t in trials]
    pngs = render(specs)
    for name in ("parallel_coordinates.png", "slices.png", "param_importance.png"):
        image = Image.open(io.BytesIO(pngs[name]))
        assert image.format == "PNG" and image.size[0] > 300
    # Each objective is rated on its own values: lr drives one, the activation the other.
    from hpo.report.importance import param_importances

    assignments = importance["assignments"]
    error = param_importances(s.space, assignments, importance["objectives"]["error"], "minimize")
    speed = param_importances(s.space, assignments, importance["objectives"]["speed"], "maximize")
    ratings = [error[0], speed[0]]
    assert [max(r, key=r.get) for r in ratings] == ["lr", "act"]


def test_a_few_integers_are_levels_in_the_order_of_their_size():
    from hpo.report.plots import _axis

    where, ticks, labels = _axis([218, 5, 28, None, 5], log=False)
    assert labels == ["5", "28", "218", "inactive"]  # not "218" < "28" < "5" as text
    assert where == [1.0, 0.0, 0.5, -0.15, 0.0]
    assert _axis(["relu", "elu"], log=False)[2] == ["elu", "relu"]
