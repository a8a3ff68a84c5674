"""The schema is the one place that spells what hpo writes to MLflow."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hpo
from hpo.tracking import schema

PACKAGE = Path(hpo.__file__).parent
HPO_NAME = re.compile(r"^hpo\.[a-z_]+$|tags\.`?hpo\.")


def code_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string constant that is not a docstring."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_module_but_the_schema_spells_an_hpo_tag_name():
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(schema.__file__):
            continue
        tree = ast.parse(path.read_text())
        for line, text in code_strings(tree):
            if HPO_NAME.search(text) or text.startswith("hpo.n_"):
                spelled.append(f"{path.relative_to(PACKAGE)}:{line}: {text!r}")
    assert spelled == []


def test_the_check_sees_a_tag_name_in_code_and_not_in_a_docstring():
    tree = ast.parse('"""About the ``hpo.state`` tag."""\nx = {"hpo.state": 1}\n')
    found = [text for _, text in code_strings(tree) if HPO_NAME.search(text)]
    assert found == ["hpo.state"]


def test_only_the_reader_searches_runs_to_rebuild_trials():
    callers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "search_runs(" in path.read_text()
    )
    assert callers == ["tracking/reader.py"]


def test_every_tag_name_is_unique_and_in_hpos_namespace():
    names = [
        value
        for group in (schema.SweepTag, schema.TrialTag)
        for key, value in vars(group).items()
        if key.isupper()
    ]
    assert all(n.startswith("hpo.") for n in names)
    sweep = [v for k, v in vars(schema.SweepTag).items() if k.isupper()]
    trial = [v for k, v in vars(schema.TrialTag).items() if k.isupper()]
    assert len(set(sweep)) == len(sweep) and len(set(trial)) == len(trial)
    assert set(schema.ENDING_TAGS) <= set(sweep)
