"""The sweep's closing history figure (Pillow, no matplotlib)."""

import io
import subprocess
import sys

import numpy as np
from PIL import Image

from hpo.curves import COLOURS, FAILED, best_so_far_steps, history_png


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
        "import sys; from hpo.plots import render; "
        "out = render([('h.png', 'history', "
        "{'numbers': [0, 1], 'values': [1.0, 0.5], 'direction': 'minimize'})]); "
        "assert out['h.png'].startswith(b'\\x89PNG'); "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
