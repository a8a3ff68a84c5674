"""The figures of population-based training: the population's curves with each exploit
marked, and the schedule of parameters that led to the best trial."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hpo.report.plots import _figure, _png

# One colour per member, cycled (matplotlib's tab10).
_COLOURS = [f"C{i}" for i in range(10)]


def population_png(segments: Sequence[dict[str, Any]], metric: str, direction: str) -> bytes | None:
    """Each member's curve of ``metric`` over steps, segment by segment; where a member took
    another's checkpoint, a dashed line from its own last value to the donor's, and a cross."""
    if not any(s["points"] for s in segments):
        return None
    fig = _figure(8.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    members = sorted({s["member"] for s in segments})
    colour = {m: _COLOURS[i % len(_COLOURS)] for i, m in enumerate(members)}
    labelled: set[int] = set()
    exploits = 0
    for s in segments:
        if not s["points"]:
            continue
        steps, values = zip(*s["points"], strict=True)
        label = None if s["member"] in labelled else f"member {s['member']}"
        labelled.add(s["member"])
        ax.plot(steps, values, color=colour[s["member"]], linewidth=1.2, label=label)
        jump = s.get("jump")
        if jump is not None:  # (own step, own value, donor step, donor value)
            own_step, own_value, step, value = jump
            ax.plot([own_step, step], [own_value, value], color="0.45", linestyle="--", lw=0.8)
            ax.plot([step], [value], marker="x", color=colour[s["member"]], markersize=7)
            exploits += 1
    values = [v for s in segments for _, v in s["points"]]
    if min(values) > 0 and max(values) > 10 * min(values):  # early losses dwarf the rest
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"{metric} ({direction})")
    ax.set_title(
        f"Population-based training: {len(members)} members, {exploits} exploits "
        "(x: a member takes a better one's checkpoint, then explores)",
        fontsize=9,
    )
    if len(members) <= 12:
        ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def schedule_png(
    rows: Sequence[dict[str, Any]], names: Sequence[str], trial: int, log: Sequence[str] = ()
) -> bytes | None:
    """Each numeric parameter of the best trial's lineage over the steps it trained with it
    (one panel per parameter, on a log axis for those in ``log``); ``rows`` are the
    lineage's segments in order."""
    if not rows or not names:
        return None
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.2, not 2 x 10^-1, on a log axis
    fig = _figure(8.0, 1.4 + 1.8 * len(names))
    bottom = 0.55 / (1.4 + 1.8 * len(names))  # room for the x label, in inches
    fig.subplots_adjust(left=0.12, right=0.97, bottom=bottom, top=0.88, hspace=0.5)
    for i, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, i + 1)
        xs: list[float] = []
        ys: list[float] = []
        for row in rows:
            value = row["params"].get(name)
            if value is None:
                continue
            xs += [row["start"], row["end"]]
            ys += [value, value]
        ax.plot(xs, ys, color="C0", linewidth=1.6)
        if name in log:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
        for row in rows[1:]:
            if row["donor"] is not None:
                ax.axvline(row["start"], color="0.6", linestyle=":", linewidth=0.8)
        ax.set_ylabel(name, fontsize=8)
        if i == len(names) - 1:
            ax.set_xlabel("step (dotted: the member took another's checkpoint)")
    fig.suptitle(f"The schedule of parameters that trained trial {trial}", fontsize=9)
    return _png(fig)
