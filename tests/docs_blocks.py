"""The Python code blocks of the README and docs/, for the tests that hold them to the code.

A block preceded by ``<!-- test: run -->`` is a program (the blocks of a page run in order,
sharing their names); ``<!-- test: experiment -->``, an experiment file; any other block is
a sketch with names the reader supplies, whose imports and ``hpo.`` names must exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"(?:<!-- test: (\w+) -->\n)?```python\n(.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    page: Path
    number: int  # in its page
    kind: str  # "run", "experiment" or "sketch"
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}#{self.number}"


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        if page.name == "index.md":  # made from the README by `make docs`
            continue
        for number, match in enumerate(_BLOCK.finditer(page.read_text())):
            found.append(Block(page, number, match.group(1) or "sketch", match.group(2)))
    return found
