"""The documentation: the site builds strict (a broken link or reference fails it), and
every Python block of the README and docs/ compiles, with imports and ``hpo.`` names that
exist; the experiment files shown load and their objectives run. (The program blocks run
on a real Ray cluster: tests/integration/test_docs_programs.py.)"""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from docs_blocks import ROOT, blocks

import hpo
from hpo.sweep.experiment_file import load_experiment

MKDOCS = Path(sys.executable).with_name("mkdocs")


@pytest.mark.slow
def test_the_site_builds_strict_and_a_broken_link_fails_it(tmp_path):
    built = subprocess.run(
        ["make", "-s", "docs"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert (ROOT / "site" / "reference" / "index.html").read_text().count("SearchCV") > 1
    # The same build with one broken link: strict mode refuses it.
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    with (copy / "docs" / "cli.md").open("a") as page:
        page.write("\nSee [the missing page](missing.md).\n")
    broken = subprocess.run(
        [str(MKDOCS), "build", "--strict", "-f", str(copy / "mkdocs.yml")],
        cwd=ROOT,  # hpo importable for the reference, as in the real build
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(MKDOCS.parent), "HOME": str(tmp_path)},
    )
    assert broken.returncode != 0 and "missing.md" in broken.stdout + broken.stderr


@pytest.mark.parametrize("block", blocks(), ids=lambda b: b.name)
def test_every_python_block_compiles_and_its_names_exist(block):
    tree = ast.parse(block.code, filename=block.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ), f"{block.name}: {node.module} has no {alias.name}"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "hpo":
                assert hasattr(hpo, node.attr), f"{block.name}: hpo has no {node.attr}"


class _Report:
    def __init__(self):
        self.calls, self.models = [], []

    def __call__(self, step, **metrics):
        self.calls.append((step, metrics))

    def model(self, estimator, name="model"):
        self.models.append(estimator)


@pytest.mark.parametrize(
    "block", [b for b in blocks() if b.kind == "experiment"], ids=lambda b: b.name
)
def test_the_experiment_files_shown_load_and_their_objective_runs(block, tmp_path):
    path = tmp_path / "shown.py"
    path.write_text(block.code)
    exp = load_experiment(path)
    strategy = hpo.make_strategy(
        exp.config.strategy, exp.space, direction=exp.config.direction, seed=0
    )
    [trial] = strategy.ask(1)
    report = _Report()
    value = exp.objective(trial.params, report, exp.load_data())
    assert 0.0 <= value <= 1.0 and report.calls and report.models
    assert np.isfinite([m for _, metrics in report.calls for m in metrics.values()]).all()
