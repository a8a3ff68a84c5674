"""A sweep in a Jupyter notebook: a progress display that updates in place, and the
sweep's links as clickable links.

No widget library is needed: the display is HTML that the kernel replaces by its display
id (Jupyter's ``update_display_data``), so the notebook keeps one output, not a line per
update.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's terminal shell is not one)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class NotebookBar:
    """The few parts of tqdm's interface `hpo.sweep.loop` uses, drawn as one HTML output."""

    def __init__(self, total: int, unit: str = "trial", **_: Any) -> None:
        from IPython.display import HTML, display

        self.total, self.unit, self.n = total, unit, 0
        self._postfix: dict[str, Any] = {}
        self._began = time.monotonic()
        self._html = HTML
        self._handle = display(HTML(self._render()), display_id=True)

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        self._postfix = values
        if refresh:
            self.refresh()

    def update(self, n: int = 1) -> None:
        self.n += n
        self.refresh()

    def refresh(self) -> None:
        self._handle.update(self._html(self._render()))

    def close(self) -> None:
        self.refresh()

    def _render(self) -> str:
        share = self.n / self.total if self.total else 1.0
        extra = ", ".join(f"{k}={v}" for k, v in self._postfix.items())
        elapsed = time.monotonic() - self._began
        return (
            f'<div class="hpo-progress"><progress value="{self.n}" max="{self.total}" '
            f'style="width: 24em"></progress> {self.n}/{self.total} {self.unit}s '
            f"({share:.0%}) · {elapsed:.0f} s"
            + (f" · {html.escape(extra)}" if extra else "")
            + "</div>"
        )


def show_links(result: Any, ui: str) -> None:
    """The sweep's pages in the MLflow UI at ``ui`` as links (the UI of a local store is
    `hpo ui`'s)."""
    from IPython.display import HTML, display

    experiment = f"{ui}/#/experiments/{result.experiment_id}"
    links = [f'<a href="{experiment}/runs?workflowType=machine_learning">the trials</a>']
    links.append(f'<a href="{experiment}/runs/{result.sweep_id}">the sweep run</a>')
    best = result.best_trial if len(result.directions) == 1 else None
    if best is not None and best.run_id is not None:
        links.append(f'<a href="{experiment}/runs/{best.run_id}">best trial {best.number}</a>')
    display(HTML(f"sweep {html.escape(result.sweep_id)} in MLflow: " + " · ".join(links)))
