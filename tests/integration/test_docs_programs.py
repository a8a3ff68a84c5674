"""The program blocks of the docs (``<!-- test: run -->``) run as written, a page's blocks
in order sharing their names, on the session's real Ray cluster, in a fresh folder (their
``sqlite:///mlflow.db`` lands there)."""

from __future__ import annotations

import sys
from itertools import groupby
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/docs_blocks.py
from docs_blocks import blocks  # noqa: E402

pytestmark = pytest.mark.integration

PROGRAMS = {
    page.name: list(page_blocks)
    for page, page_blocks in groupby((b for b in blocks() if b.kind == "run"), key=lambda b: b.page)
}


@pytest.mark.parametrize("page", sorted(PROGRAMS))
def test_the_program_blocks_of_a_page_run(page, ray_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names: dict = {"__name__": "__docs__"}
    for block in PROGRAMS[page]:
        exec(compile(block.code, block.name, "exec"), names)  # noqa: S102 - the docs' own code
    # What each page's program leaves behind, checked: it did what its text says.
    if page == "python-api.md":
        assert names["result"].n_complete == 20 and len(names["df"]) == 20
        assert names["old"].sweep_id == names["sweep_id"]
        assert len(names["s"].trials) == 4
    elif page == "integrations.md":
        assert 0.9 < names["search"].best_score_ <= 1.0
