"""Once-per-sweep PNG figures drawn with matplotlib: heatmaps, repeats, the GP's posterior.

`render` also draws the optimisation history, with Pillow (`hpo.report.curves`), so a sweep that
needs no other figure never imports matplotlib.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly (no pyplot),
so rendering needs no display and no global figure state, in workers and in the driver.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence

import numpy as np

from hpo.core.directions import loss_sign


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


def pareto_png(
    names: Sequence[str],
    directions: Sequence[str],
    values: Sequence[Sequence[float]],
    on_front: Sequence[bool],
    numbers: Sequence[int],
) -> bytes:
    """Every completed trial by its objectives, the Pareto front marked and labelled with
    trial numbers: one panel for two objectives, every pair for three or more."""
    import itertools

    data, front = np.asarray(values, dtype=float), np.asarray(on_front, dtype=bool)
    pairs = list(itertools.combinations(range(len(names)), 2))
    columns = min(len(pairs), 3)
    rows = math.ceil(len(pairs) / columns)
    fig = _figure(4.6 * columns + 0.6, 4.2 * rows + 0.4)
    fig.subplots_adjust(left=0.1 / columns + 0.04, bottom=0.14 / rows, wspace=0.35, hspace=0.4)
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax, (i, j) in zip(axes, pairs, strict=False):
        ax.scatter(data[~front, i], data[~front, j], s=14, color="0.6", label="dominated")
        ax.scatter(data[front, i], data[front, j], s=26, color="C3", label="Pareto front", zorder=3)
        if len(pairs) == 1:  # two objectives: the front is a staircase, its trials labelled
            order = np.argsort(data[front, i])
            xs, ys = data[front, i][order], data[front, j][order]
            # The edge of the region the front dominates: it holds each point's value up
            # to the next point when the first objective is minimised, from the last before.
            where = "post" if directions[i] == "minimize" else "pre"
            ax.step(xs, ys, where=where, color="C3", alpha=0.5)
            for x, y, n in zip(xs, ys, np.asarray(numbers)[front][order], strict=True):
                ax.annotate(
                    f"#{n}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize="x-small"
                )
        ax.set_xlabel(f"{names[i]} ({directions[i]})")
        ax.set_ylabel(f"{names[j]} ({directions[j]})")
        ax.grid(alpha=0.3)
    for ax in axes[len(pairs) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"Pareto front: {int(front.sum())} of {len(data)} completed trials")
    return _png(fig)


INACTIVE = "inactive"  # a conditional parameter's slot in trials whose branch lacks it
FEW_LEVELS = 10  # integers with at most this many values are drawn as levels (branch indices)


def _numeric(values: Sequence[object]) -> bool:
    """Whether values go on a continuous axis: numbers, unless a few integers."""
    if not values or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        return False
    return not (all(isinstance(v, int) for v in values) and len(set(values)) <= FEW_LEVELS)


def _levels(values: Sequence[object]) -> list[str]:
    """The distinct values' reprs, in the values' order (numbers by size: 5 before 28)."""
    distinct = {repr(v): v for v in values}
    return sorted(distinct, key=lambda r: _sort_key(distinct[r]))


def _axis(values: Sequence[object], log: bool) -> tuple[list[float], list[float], list[str]]:
    """Positions in [0, 1] for a parameter's values (None: inactive, at -0.15), and the
    ticks and labels of its axis: numbers on a linear or log scale, other values in order."""
    present = [v for v in values if v is not None]
    if _numeric(present):
        f = (lambda v: math.log10(v)) if log and min(present) > 0 else float
        low, high = min(map(f, present)), max(map(f, present))
        span = (high - low) or 1.0
        where = [-0.15 if v is None else (f(v) - low) / span for v in values]
        ticks = [0.0, 0.5, 1.0]
        labels = [
            _label(10 ** (low + t * span) if f is not float else low + t * span) for t in ticks
        ]
    else:
        levels = _levels(present)
        step = 1.0 / max(len(levels) - 1, 1)
        where = [-0.15 if v is None else levels.index(repr(v)) * step for v in values]
        ticks = [i * step for i in range(len(levels))]
        labels = [lv.strip("'") for lv in levels]
    if any(v is None for v in values):
        ticks, labels = [*ticks, -0.15], [*labels, INACTIVE]
    return where, ticks, labels


def parallel_png(
    columns: dict[str, Sequence[object]],
    log: dict[str, bool],
    values: Sequence[float] | None = None,
    direction: str = "minimize",
    on_front: Sequence[bool] | None = None,
) -> bytes:
    """One line per completed trial across the parameters' axes, coloured by its objective
    (``values``), or, with several objectives, the Pareto front's trials (``on_front``) in
    red over the others in grey; a conditional parameter's inactive trials sit on the
    axis's "inactive" slot."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable  # what the colour bar is drawn from
    from matplotlib.colors import Normalize

    names = list(columns)
    fig = _figure(max(6.0, 1.5 * len(names) + 2.5), 4.8)
    fig.subplots_adjust(left=0.06, right=0.88 if on_front is None else 0.95, bottom=0.2, top=0.88)
    ax = fig.subplots()
    axes = [_axis(columns[n], log.get(n, False)) for n in names]
    n_trials = len(next(iter(columns.values())))
    if on_front is not None:
        # The dominated first, so the front's lines are drawn last, on top.
        order = sorted(range(n_trials), key=lambda i: on_front[i])
        colour = [("C3", 0.9) if front else ("0.65", 0.5) for front in on_front]
        title = f"Parallel coordinates: {n_trials} completed trials, the Pareto front's in red"
    else:
        norm = Normalize(min(values), max(values) if max(values) > min(values) else min(values) + 1)
        cmap = colormaps["viridis_r" if direction == "minimize" else "viridis"]
        # Worst first, so the best lines are drawn last, on top.
        order = sorted(range(n_trials), key=lambda i: -loss_sign(direction) * values[i])
        colour = [(cmap(norm(v)), 0.7) for v in values]
        title = f"Parallel coordinates: {n_trials} completed trials, coloured by the objective"
    for i in order:
        ax.plot(range(len(names)), [a[0][i] for a in axes], color=colour[i][0], alpha=colour[i][1])
    for j, (_, ticks, labels) in enumerate(axes):
        ax.axvline(j, color="black", linewidth=0.8)
        for t, label in zip(ticks, labels, strict=True):
            ax.text(j + 0.03, t, label, fontsize=7, va="center")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.25, 1.08)
    ax.set_title(title)
    if on_front is None:
        bar = fig.add_axes((0.91, 0.2, 0.02, 0.68))
        label = f"objective ({direction})"
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=bar, label=label)
    return _png(fig)


def slices_png(
    columns: dict[str, Sequence[object]],
    log: dict[str, bool],
    objectives: dict[str, Sequence[float]],
    directions: Sequence[str],
) -> bytes:
    """Each objective (by name: its completed trials' values) against each parameter, one
    panel each, a row of panels per objective; a conditional parameter's panel shows the
    trials it was active in and says how many it was not."""
    from matplotlib.ticker import NullLocator

    names = list(columns)
    per_row = min(3, len(names))
    rows_each = math.ceil(len(names) / per_row)
    rows = rows_each * len(objectives)
    fig = _figure(4.0 * per_row, 3.2 * rows)
    inches = fig.get_figheight()  # the margins in inches, whatever the number of rows
    fig.subplots_adjust(hspace=0.55, wspace=0.3, top=1 - 0.6 / inches, bottom=0.45 / inches)
    grid = np.atleast_1d(fig.subplots(rows, per_row)).reshape(rows, per_row)
    for k, (objective, values) in enumerate(objectives.items()):
        axes = grid[k * rows_each : (k + 1) * rows_each].ravel()
        for ax, name in zip(axes, names, strict=False):
            present = [(v, y) for v, y in zip(columns[name], values, strict=True) if v is not None]
            xs = [v for v, _ in present]
            if _numeric(xs):
                ax.scatter(xs, [y for _, y in present], s=14, alpha=0.7, color=f"C{k}")
                if log.get(name) and min(xs) > 0:
                    ax.set_xscale("log")
                    # Decades only: a log axis's minor ticks (eight a decade, unlabelled
                    # here as their labels overlap) add drawing time and show nothing.
                    ax.xaxis.set_minor_locator(NullLocator())
            else:
                levels = _levels(xs)
                where = [levels.index(repr(v)) for v in xs]
                ax.scatter(where, [y for _, y in present], s=14, alpha=0.7, color=f"C{k}")
                ax.set_xticks(range(len(levels)), [lv.strip("'") for lv in levels], fontsize=8)
            inactive = len(values) - len(present)
            title = name + (f" ({inactive} trials {INACTIVE})" if inactive else "")
            ax.set_title(title, fontsize=9)
            ax.set_ylabel(objective, fontsize=8)
            ax.grid(alpha=0.3)
        for ax in axes[len(names) :]:
            ax.set_visible(False)
    if len(objectives) == 1:
        title = f"Objective ({directions[0]}) against each parameter"
    else:
        said = ", ".join(f"{n} ({d})" for n, d in zip(objectives, directions, strict=True))
        title = f"Each objective against each parameter: {said}"
    fig.suptitle(title, y=1 - 0.13 / inches)
    return _png(fig)


def importance_png(
    space, assignments: list[dict], objectives: dict[str, list[float]], directions: Sequence[str]
) -> bytes | None:
    """fANOVA importance of each parameter (see `hpo.report.importance`) as bars, a colour per
    objective when there are several; None when too few trials completed to rate any."""
    from hpo.report.importance import param_importances

    rated: dict[str, dict[str, float]] = {}  # by objective, then parameter
    unrated: dict[str, int] = {}
    for (objective, values), direction in zip(objectives.items(), directions, strict=True):
        rated[objective], unrated = param_importances(space, assignments, values, direction)
    if not any(rated.values()):
        return None
    names = sorted(
        {n for r in rated.values() for n in r},
        key=lambda n: max(r.get(n, 0.0) for r in rated.values()),
    )
    several = len(objectives) > 1
    height = 0.8 / len(objectives)  # of each objective's bar in a parameter's row
    fig = _figure(7.0, max(3.0, 0.4 * len(names) * len(objectives) ** 0.5 + 2.0))
    fig.subplots_adjust(left=0.28, bottom=0.18, top=0.8)
    ax = fig.subplots()
    for k, (objective, by_name) in enumerate(rated.items()):
        shift = (k - (len(objectives) - 1) / 2) * height if several else 0.0
        rows = [i + shift for i in range(len(names))]
        shares = [by_name.get(n, 0.0) for n in names]
        ax.barh(rows, shares, height=height if several else 0.8, color=f"C{k}", label=objective)
        for y, share in zip(rows, shares, strict=True):
            ax.text(share, y, f" {share:.2f}", va="center", fontsize=8 if not several else 7)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlim(0, 1.1)
    what = "each objective's" if several else "the objective's"
    ax.set_xlabel(f"importance (fANOVA, share of {what} variance)")
    if several:
        ax.legend(fontsize="small", loc="lower right")
    trials = len(assignments)
    note = ", ".join(f"{n} (in {k} of {trials})" for n, k in sorted(unrated.items()))
    title = f"Parameter importance over {trials} completed trials"
    if note:  # conditional parameters: fANOVA rates what every trial has
        title += "\n" + textwrap.fill(f"not rated, in conditional branches: {note}", 80)
    ax.set_title(title, fontsize=9)
    return _png(fig)


# What each kind of figure takes to draw, relative to the others (a kind not named: 1), to
# share the drawing among the idle workers: as measured by `benchmarks/closing_figures.py`
# for 32-trial sweeps of two parameters (docs/benchmarks.md, "The closing figures").
DRAWING_COST = {"heatmap": 3.5, "importance": 3.0, "pareto": 2.5, "history": 0.1}


def share(specs: list[tuple[str, str, dict]], parts: int) -> list[list[tuple[str, str, dict]]]:
    """``specs`` in at most ``parts`` groups of about equal drawing time (the costliest
    first, each to the group with the least so far); empty groups left out.

    >>> share([("a", "importance", {}), ("b", "parallel", {}), ("c", "slices", {}),
    ...        ("d", "heatmap", {})], 2)
    [[('d', 'heatmap', {}), ('c', 'slices', {})], [('a', 'importance', {}), ('b', 'parallel', {})]]
    """
    groups: list[list[tuple[str, str, dict]]] = [[] for _ in range(max(1, parts))]
    load = [0.0] * len(groups)
    for spec in sorted(specs, key=lambda s: -DRAWING_COST.get(s[1], 1.0)):
        least = load.index(min(load))
        groups[least].append(spec)
        load[least] += DRAWING_COST.get(spec[1], 1.0)
    return [g for g in groups if g]


def render(specs: list[tuple[str, str, dict]]) -> dict[str, bytes]:
    """PNG bytes by file name for ``(name, kind, arguments)`` specs ("history", "heatmap",
    "repeats", "parallel", "slices", "importance", "pareto", "population", "schedule"); a
    figure with nothing to draw is left out."""
    from hpo.report.curves import history_png
    from hpo.report.pbt_plots import population_png, schedule_png

    draw = {
        "history": history_png,
        "heatmap": heatmap_png,
        "repeats": repeats_png,
        "parallel": parallel_png,
        "slices": slices_png,
        "importance": importance_png,
        "pareto": pareto_png,
        "population": population_png,
        "schedule": schedule_png,
    }
    out = {name: draw[kind](**arguments) for name, kind, arguments in specs}
    return {name: png for name, png in out.items() if png is not None}
