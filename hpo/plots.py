"""Once-per-sweep PNG figures drawn with matplotlib: heatmaps, repeats, the GP's posterior.

`render` also draws the optimisation history, with Pillow (`hpo.curves`), so a sweep that
needs no other figure never imports matplotlib.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly (no pyplot),
so rendering needs no display and no global figure state, in workers and in the driver.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    # No layout engine: constrained layout doubles the drawing time.
    fig = Figure(figsize=(width, height), dpi=90)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.16, top=0.9, wspace=0.3)
    return fig


def _label(v: object) -> str:
    return format(v, ".3g") if isinstance(v, float) else str(v)


def heatmap_png(
    x_name: str,
    y_name: str,
    panels: dict[str, dict[tuple[object, object], float | None]],
) -> bytes:
    """Annotated heatmaps over two parameters, one panel per quantity (objective, metrics).

    ``panels`` maps a title to ``{(x, y): value}``; a missing or None cell (a failed
    trial) is drawn blank and marked "failed".
    """
    cells = set().union(*(p.keys() for p in panels.values()))
    xs = sorted({x for x, _ in cells}, key=_sort_key)
    ys = sorted({y for _, y in cells}, key=_sort_key)
    fig = _figure(max(4.5, 0.62 * len(xs) + 2.0) * len(panels), max(3.5, 0.5 * len(ys) + 1.5))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, values) in zip(axes, panels.items(), strict=True):
        grid = np.full((len(ys), len(xs)), np.nan)
        for (x, y), v in values.items():
            if v is not None and math.isfinite(v):
                grid[ys.index(y), xs.index(x)] = v
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        fig.colorbar(image, ax=ax, shrink=0.85)
        span = np.nanmax(grid) - np.nanmin(grid) if np.isfinite(grid).any() else 0.0
        for i in range(len(ys)):
            for j in range(len(xs)):
                v = grid[i, j]
                text = "failed" if not np.isfinite(v) else f"{v:.3g}"
                bright = np.isfinite(v) and span > 0 and v > np.nanmin(grid) + 0.6 * span
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if bright else "white" if np.isfinite(v) else "red",
                )
        ax.set_xticks(range(len(xs)), [_label(x) for x in xs], rotation=45, fontsize=8)
        ax.set_yticks(range(len(ys)), [_label(y) for y in ys], fontsize=8)
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
        ax.set_title(title)
    return _png(fig)


def _sort_key(v: object) -> tuple[int, object]:
    return (0, v) if isinstance(v, int | float) else (1, str(v))


def gp_posterior_png(
    name: str, xs, mean, lower, upper, obs_x, obs_y, ei, *, log_x: bool, direction: str
) -> bytes:
    """A one-parameter GP: its mean and 95% band (in objective units: after a monotone output
    transform the mean maps back to the median) over the observations, and EI beneath."""
    fig = _figure(7.0, 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    top.fill_between(xs, lower, upper, alpha=0.25, label="95% band")
    top.plot(xs, mean, label="GP median (model mean mapped back)")
    top.scatter(obs_x, obs_y, color="black", s=18, zorder=3, label="observations")
    # The band is mapped back through the model's output transform and can widen steeply
    # far from the data; the view is kept on the observations and the mean.
    seen = np.concatenate([np.asarray(obs_y, float), np.asarray(mean, float)])
    seen = seen[np.isfinite(seen)]
    low, high = float(seen.min()), float(seen.max())
    pad = 0.3 * (high - low) or 1.0
    top.set_ylim(low - pad, high + pad)
    top.set_ylabel(f"objective ({direction})")
    top.set_title(f"Gaussian process over {name} after {len(obs_x)} observations")
    top.legend(fontsize="small")
    top.grid(alpha=0.3)
    bottom.plot(xs, ei, color="C2")
    bottom.axvline(xs[int(np.argmax(ei))], color="C2", linestyle=":", label="next ask (max EI)")
    bottom.set_ylabel("EI (model units)")
    bottom.set_xlabel(name)
    bottom.legend(fontsize="small")
    bottom.grid(alpha=0.3)
    if log_x:
        bottom.set_xscale("log")
    fig.subplots_adjust(hspace=0.08, top=0.93, bottom=0.1, left=0.12, right=0.97)
    return _png(fig)


def repeats_png(labels: Sequence[str], values: Sequence[Sequence[float]], direction: str) -> bytes:
    """Each configuration's repeat values as points, with their mean and standard deviation."""
    fig = _figure(max(6.5, 0.45 * len(labels) + 2), 5.2)
    fig.subplots_adjust(left=0.16, bottom=0.42)  # room for the rotated configuration labels
    ax = fig.subplots()
    for i, vs in enumerate(values):
        ax.scatter([i] * len(vs), vs, s=16, alpha=0.6, color="C0", zorder=2)
        std = float(np.std(vs, ddof=1)) if len(vs) > 1 else 0.0
        ax.errorbar(i, float(np.mean(vs)), yerr=std, fmt="_", color="C3", capsize=5, zorder=3)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize="small")
    ax.set_ylabel(f"objective ({direction})")
    ax.set_title("Repeats per configuration: values, mean ± standard deviation")
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def render(specs: list[tuple[str, str, dict]]) -> dict[str, bytes]:
    """PNG bytes by file name for ``(name, kind, arguments)`` specs ("history", "heatmap",
    "repeats")."""
    from hpo.curves import history_png

    draw = {"history": history_png, "heatmap": heatmap_png, "repeats": repeats_png}
    return {name: draw[kind](**arguments) for name, kind, arguments in specs}
