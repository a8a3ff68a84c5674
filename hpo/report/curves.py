"""Line-plot PNGs drawn with Pillow: per-trial learning curves, the sweep's history.

A sweep renders a curve figure for every trial, so it must cost milliseconds: a matplotlib
figure costs more than all of a trial's MLflow writes. The optimisation history closes
every sweep, where importing matplotlib for it alone would add to every sweep's wall time
(docs/benchmarks.md, "Figures behind the code's choices"). Figures that only some sweeps
draw (heatmap, repeats, the GP's posterior) use matplotlib in `hpo.report.plots`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from hpo.core.directions import better

PANEL_W, PANEL_H = 460, 300
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 40, 38
LEGEND_Y, LEGEND_ROW = 28, 18  # the legend's first row, and the step to each next one
# matplotlib's tab10, so these match the sweep-level figures.
COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


FAILED = COLOURS[3]  # red


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """About ``target`` round numbers (1, 2 or 5 times a power of ten apart) in [low, high]."""
    if not high > low:
        return [low]
    raw = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _is_loss(name: str) -> bool:
    return "loss" in name or "error" in name


def _is_time(name: str) -> bool:
    return name.endswith(("_time", "_seconds"))


def _label(v: float) -> str:
    return format(v, ".3g")


def _panel(
    draw,
    font,
    x0: int,
    title: str,
    series: dict[str, list[tuple[int, float]]],
    colours: dict[str, str],
    *,
    x_label: str = "step",
    dots: frozenset[str] = frozenset(),
    x_also: tuple[int, ...] = (),
    width: int = PANEL_W,
    height: int = PANEL_H,
    legend_also: tuple[str, ...] = (),
):
    """Draw ``series`` (in the order given for equal steps) in one panel at ``x0``.

    Series named in ``dots`` are drawn as points, the others as lines; ``x_also`` widens
    the x range; the panel is ``width`` by ``height`` pixels, its legend in rows above the
    plot (`_legend_height`). Returns the data-to-pixel mapping and where the legend places
    the entries ``legend_also`` names (drawn by the caller), or None when there is nothing
    finite to draw.
    """
    points = [(s, v) for pts in series.values() for s, v in pts if math.isfinite(v)]
    if not points:
        draw.text((x0 + LEFT, TOP), f"{title}: no finite values", fill="black", font=font)
        return None
    xs, ys = [p[0] for p in points] + list(x_also), [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.05 or abs(y_hi) * 0.05 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    left, right, bottom = x0 + LEFT, x0 + width - RIGHT, height - BOTTOM
    places = _legend_places(font, [*series, *legend_also], left, right)
    top = TOP + places[-1][1] - LEGEND_Y  # below the legend's last row

    def to_px(s: float, v: float) -> tuple[float, float]:
        return (
            left + (s - x_lo) / (x_hi - x_lo) * (right - left),
            bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top),
        )

    for y in nice_ticks(y_lo, y_hi):
        _, py = to_px(x_lo, y)
        draw.line([(left, py), (right, py)], fill="#e6e6e6")
        draw.text((left - 6, py), _label(y), fill="black", font=font, anchor="rm")
    for x in nice_ticks(x_lo, x_hi):
        px, _ = to_px(x, y_lo)
        draw.line([(px, top), (px, bottom)], fill="#e6e6e6")
        draw.text((px, bottom + 5), _label(x), fill="black", font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right) / 2, height - 6), x_label, fill="black", font=font, anchor="mb")
    draw.text(((left + right) / 2, 6), title, fill="black", font=font, anchor="mt")
    for (name, pts), (legend_x, legend_y) in zip(series.items(), places, strict=False):
        colour = colours[name]
        ordered = sorted(pts, key=lambda p: p[0])  # stable: a step's points keep their order
        if name in dots:
            for s, v in ordered:
                if math.isfinite(v):
                    _dot(draw, to_px(s, v), colour)
            _dot(draw, (legend_x + 7, legend_y), colour)
        else:
            segment: list[tuple[float, float]] = []
            for s, v in ordered:
                if math.isfinite(v):
                    segment.append(to_px(s, v))
                    continue
                _polyline(draw, segment, colour)  # a NaN breaks the line
                segment = []
            _polyline(draw, segment, colour)
            draw.line([(legend_x, legend_y), (legend_x + 14, legend_y)], fill=colour, width=3)
        _legend_text(draw, font, (legend_x, legend_y), name)
    return to_px, places[len(series) :]


def _legend_places(font, names: list[str], left: float, right: float) -> list[tuple[float, float]]:
    """Where each legend entry (its mark, then its name) starts: in rows from the panel's
    top, a new row when the entry would pass ``right``, so that every name shows however
    many series a trial reports (a cross-validation's per-fold metrics)."""
    places: list[tuple[float, float]] = []
    x, y = left + 6, LEGEND_Y
    for name in names:
        width = 30 + font.getlength(name)
        if places and x + width > right:
            x, y = left + 6, y + LEGEND_ROW
        places.append((x, y))
        x += width
    return places


def _legend_height(font, names: list[str], width: int = PANEL_W) -> int:
    """The pixels a panel ``width`` wide needs for its legend's rows beyond the first."""
    if not names:
        return 0
    return int(_legend_places(font, names, LEFT, width - RIGHT)[-1][1]) - LEGEND_Y


def _legend_text(draw, font, at: tuple[float, float], name: str) -> None:
    x, y = at
    draw.text((x + 18, y), name, fill="black", font=font, anchor="lm")


def _dot(draw, at: tuple[float, float], colour: str) -> None:
    x, y = at
    draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)


def _cross(draw, at: tuple[float, float], colour: str) -> None:
    x, y = at
    draw.line([(x - 4, y - 4), (x + 4, y + 4)], fill=colour, width=2)
    draw.line([(x - 4, y + 4), (x + 4, y - 4)], fill=colour, width=2)


def _polyline(draw, segment: list[tuple[float, float]], colour: str) -> None:
    if len(segment) == 1:
        x, y = segment[0]
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    elif segment:
        draw.line(segment, fill=colour, width=2, joint="curve")


def learning_curves_png(history: dict[str, list[tuple[int, float]]]) -> bytes:
    """Metric against step; losses, times (names ending in ``_time`` or ``_seconds``, such as
    a cross-validation's per-fold fit times) and the other metrics (accuracies) in separate
    panels, so that each panel's values share a scale."""
    from PIL import Image, ImageDraw, ImageFont

    groups = [
        ("loss", {n: p for n, p in history.items() if _is_loss(n)}),
        ("seconds", {n: p for n, p in history.items() if _is_time(n) and not _is_loss(n)}),
        ("metrics", {n: p for n, p in history.items() if not (_is_loss(n) or _is_time(n))}),
    ]
    groups = [(title, series) for title, series in groups if series]
    colours = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(history)}
    font = ImageFont.load_default(size=12)
    height = PANEL_H + max((_legend_height(font, list(series)) for _, series in groups), default=0)
    image = Image.new("RGB", (PANEL_W * max(len(groups), 1), height), "white")
    draw = ImageDraw.Draw(image)
    for i, (title, series) in enumerate(groups):
        _panel(draw, font, i * PANEL_W, title, series, colours, height=height)
    return _png(image)


def history_png(numbers: Sequence[int], values: Sequence[float | None], direction: str) -> bytes:
    """Objective per trial as points, the best so far as a step line, and each failed trial
    (value None) as a red cross on the trial axis."""
    from PIL import Image, ImageDraw, ImageFont

    done = sorted((n, v) for n, v in zip(numbers, values, strict=True) if v is not None)
    failed = [n for n, v in zip(numbers, values, strict=True) if v is None]
    failed_label = f"failed ({len(failed)})"
    image = Image.new("RGB", (int(PANEL_W * 1.5), PANEL_H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    drawn = _panel(
        draw,
        font,
        0,
        f"optimisation history: objective ({direction})",
        {"trial": done, "best so far": best_so_far_steps(done, direction)},
        {"trial": COLOURS[0], "best so far": COLOURS[1]},
        x_label="trial",
        dots=frozenset({"trial"}),
        x_also=tuple(failed),
        width=int(PANEL_W * 1.5),
        legend_also=(failed_label,) if failed else (),
    )
    if drawn is not None and failed:
        to_px, [(legend_x, legend_y)] = drawn
        axis = PANEL_H - BOTTOM
        for n in failed:
            _cross(draw, (to_px(n, 0)[0], axis), FAILED)
        _cross(draw, (legend_x + 7, legend_y), FAILED)
        _legend_text(draw, font, (legend_x, legend_y), failed_label)
    elif failed:
        draw.text((LEFT, TOP + 20), f"all {len(failed)} trials failed", fill=FAILED, font=font)
    return _png(image)


def best_so_far_steps(done: list[tuple[int, float]], direction: str) -> list[tuple[int, float]]:
    """The best value after each (trial, value), as the corners of a step line."""
    steps: list[tuple[int, float]] = []
    for n, v in done:
        if steps:
            best = steps[-1][1]
            steps.append((n, best))  # the old best holds up to this trial
            v = v if better(v, best, direction) else best
        steps.append((n, v))
    return steps


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()
