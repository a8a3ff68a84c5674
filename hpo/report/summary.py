"""The sweep's closing report, as pure functions of its trial records.

What the parent run records about a sweep (its settings, its closing tags, `trials.csv`,
`best_configurations.csv`, the specs of its figures) is computed here from the trials,
the space and the direction alone, so each piece is tested without a sweep.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from hpo.core.directions import Directions, loss_sign
from hpo.core.pareto import pareto_front
from hpo.core.space import Choice, Float, Int, Space
from hpo.core.trial import DONOR, END, FROM_STEP, MEMBER, PARENT
from hpo.strategies.base import TrialState, best_of
from hpo.strategies.pruners import Pruner
from hpo.sweep.lifecycle import TrialRecord, count_states
from hpo.tracking.schema import (
    OBJECTIVE,
    ONE_OBJECTIVE,
    TRUE,
    SweepTag,
    count_tag,
    error_text,
)

BEST_CONFIGURATIONS = 20  # rows of the repeats table and figure
DESCRIPTION_ROWS = 10  # best trials in the parent run's description
DESCRIPTION_REASONS = 5  # distinct failure reasons listed there
HEATMAP_MAX_VALUES = 25  # more distinct values per axis than this is not a grid worth drawing
# (file name, kind, arguments): drawn by `hpo.report.plots.render`
FigureSpec = tuple[str, str, dict[str, Any]]
ONE = ONE_OBJECTIVE


def sweep_settings(
    strategy_settings: dict[str, Any],
    *,
    budget: int,
    workers: int,
    pruner: Pruner | None,
    prune_metric: str | None,
    repeats: int,
    resources: str = "cpu=1",
    max_trials_per_worker: int | None = None,
) -> dict[str, Any]:
    """The parent run's params: the strategy's settings and the sweep's own (those left
    at their defaults aside)."""
    settings = {**strategy_settings, "n_trials": budget, "workers": workers}
    if resources != "cpu=1":
        settings["trial_resources"] = resources
    if max_trials_per_worker is not None:
        settings["max_trials_per_worker"] = max_trials_per_worker
    if pruner is not None:
        settings.update(pruner.settings(), prune_metric=prune_metric or "first reported")
    if repeats > 1:
        settings["repeats"] = repeats
    return settings


def closing_tags(
    records: Sequence[TrialRecord],
    directions: Directions | str,
    *,
    elapsed: float,
    prune_metric: str | None = None,
    interrupted: bool = False,
    timed_out: bool = False,
    stopped_by: str | None = None,
    error: str | None = None,
) -> dict[str, str]:
    """The parent run's tags at the end: counts by state, the best trial, how it ended."""
    directions = Directions.parse(directions)
    counts = count_states(records)
    tags = {
        count_tag(state): str(counts[state])
        for state in (TrialState.COMPLETE, TrialState.FAILED, TrialState.PRUNED)
    }
    infeasible = sum(bool(r.trial.attrs.get("infeasible")) for r in records)
    if infeasible:  # among the failed: suggestions the constraints refused, never run
        tags[SweepTag.N_INFEASIBLE] = str(infeasible)
    tags[SweepTag.ELAPSED_SECONDS] = f"{elapsed:.1f}"
    if directions.several:
        front = pareto_front(records, directions)
        tags[SweepTag.N_PARETO] = str(len(front))
        if front:  # the front's trials, in the order of the first objective
            tags[SweepTag.PARETO_FRONT] = _cut(", ".join(str(r.number) for r in front), 5000)
    best = None if directions.several else best_of(records, directions)
    if best is not None:
        tags.update(
            {
                SweepTag.BEST_VALUE: repr(best.value),
                SweepTag.BEST_TRIAL: str(best.number),
                SweepTag.BEST_RUN_ID: best.run_id or "",
            }
        )
    if prune_metric is not None:
        tags[SweepTag.PRUNE_METRIC] = prune_metric
    if interrupted:
        tags[SweepTag.INTERRUPTED] = TRUE
    if timed_out:
        tags[SweepTag.TIMED_OUT] = TRUE
    if stopped_by is not None:
        tags[SweepTag.STOPPED_BY] = stopped_by
    if error is not None:
        tags[SweepTag.ERROR] = error_text(error)
    return tags


def repeats_std(values: Sequence[float]) -> float:
    """The sample standard deviation of a configuration's repeated values."""
    return statistics.stdev(values)


def ranked_by_mean(
    records: Sequence[TrialRecord], directions: Directions | str
) -> list[TrialRecord]:
    """Completed trials that ran repeats, best mean first (ties: the first issued)."""
    direction = Directions.parse(directions).single
    done = [r for r in records if r.value is not None and r.repeat_values is not None]
    return sorted(done, key=lambda r: (loss_sign(direction) * r.value, r.number))


def repeats_csv(records: Sequence[TrialRecord], directions: Directions | str) -> str:
    """The best configurations with the mean ± standard deviation of their repeats."""
    ranked = ranked_by_mean(records, directions)[:BEST_CONFIGURATIONS]
    names = list(dict.fromkeys(k for r in ranked for k in r.flat_params))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "trial", "mean", "std", "values", *names])
    for rank, r in enumerate(ranked, start=1):
        values = r.repeat_values
        writer.writerow(
            [
                rank,
                r.number,
                f"{r.value:.6g}",  # the trial's value is the mean of its repeats
                f"{repeats_std(values):.6g}",
                " ".join(f"{v:.6g}" for v in values),
                *[r.flat_params.get(n, "") for n in names],
            ]
        )
    return out.getvalue()


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _objective_cells(record: TrialRecord, objectives: Sequence[str]) -> list[str]:
    values = record.values
    return [""] * len(objectives) if values is None else [repr(v) for v in values]


def trials_csv(records: Sequence[TrialRecord], objectives: Sequence[str] = ONE) -> str:
    """One row per trial: number, state, objective (one column per objective's name when
    there are several), seconds, attempts, run, error, params."""
    names = list(dict.fromkeys(k for r in records for k in r.flat_params))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["trial", "state", *objectives, "seconds", "attempts", "run_id", "error", *names]
    )
    for r in records:
        seconds = r.seconds
        writer.writerow(
            [
                r.number,
                r.state.value,
                *_objective_cells(r, objectives),
                "" if seconds is None or not math.isfinite(seconds) else f"{seconds:.3f}",
                r.attempts,
                r.run_id or "",
                r.error or "",
                *[r.flat_params.get(n, "") for n in names],
            ]
        )
    return out.getvalue()


def pareto_csv(
    records: Sequence[TrialRecord], directions: Directions | str, objectives: Sequence[str]
) -> str:
    """The trials on the Pareto front, in the order of the first objective: number, run,
    one column per objective, params."""
    front = pareto_front(records, Directions.parse(directions))
    names = list(dict.fromkeys(k for r in front for k in r.flat_params))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "run_id", *objectives, *names])
    for r in front:
        writer.writerow(
            [
                r.number,
                r.run_id or "",
                *_objective_cells(r, objectives),
                *[r.flat_params.get(n, "") for n in names],
            ]
        )
    return out.getvalue()


def heatmap_axes(space: Space, records: Sequence[TrialRecord]) -> tuple[str, str] | None:
    """The two parameter names to draw a heatmap over, when the space has exactly two
    (and there are trials to draw)."""
    params = space.params
    if not records or len(params) != 2 or any(p.condition for p in params):
        return None
    if any(isinstance(p.dim, Choice) and p.dim.is_conditional for p in params):
        return None
    if not all(isinstance(p.dim, Float | Int | Choice) for p in params):
        return None
    names = (params[0].name, params[1].name)
    for name in names:
        if len({r.flat_params[name] for r in records}) > HEATMAP_MAX_VALUES:
            return None
    return names


def heatmap_metrics(records: Sequence[TrialRecord], most: int = 2) -> list[str]:
    """Reported metrics worth a heatmap panel, accuracies first: not a copy of the objective,
    nor of a parameter (a constant learning-rate schedule reports the rate it was given)."""
    names = sorted({k for r in records for k in r.last_metrics}, key=lambda n: ("loss" in n, n))
    done = [r for r in records if r.value is not None]

    def copies(name: str) -> bool:
        return all(r.last(name) == r.value for r in done) or all(
            r.last(name) in r.flat_params.values() for r in done
        )

    return [n for n in names if not copies(n)][:most]


def short_label(record: TrialRecord, most: int = 40) -> str:
    """``#4 hidden_units=3, activation=tanh``, cut to ``most`` characters."""
    return _cut(
        f"#{record.number} " + ", ".join(f"{k}={v}" for k, v in record.flat_params.items()), most
    )


def figure_specs(
    records: Sequence[TrialRecord],
    space: Space,
    directions: Directions | str,
    *,
    repeats: int = 1,
    names: Sequence[str] = ONE,
    watched: str | None = None,
) -> list[FigureSpec]:
    """What the closing figures show, as plain data for `hpo.report.plots.render`; with several
    objectives, the Pareto front, the parallel coordinates with the front marked, and each
    objective's slices and importance (the history and heatmap are figures of one value).
    Population-based training adds its population and schedule (``watched``: the metric
    it ranks members by)."""
    directions = Directions.parse(directions)
    if any(MEMBER in r.trial.attrs for r in records):
        return population_specs(records, space, watched or "metric", directions.single)
    done = [r for r in records if r.state is TrialState.COMPLETE]
    if directions.several:
        if not done:
            return []
        on_front = {r.number for r in pareto_front(done, directions)}
        arguments = {
            "names": list(names),
            "directions": list(directions),
            "values": [list(r.values) for r in done],
            "on_front": [r.number in on_front for r in done],
            "numbers": [r.number for r in done],
        }
        objectives = {n: [r.values[i] for r in done] for i, n in enumerate(names)}
        return [("pareto_front.png", "pareto", arguments)] + _by_parameter_specs(
            done, space, objectives, directions, on_front=arguments["on_front"]
        )
    direction = directions.single
    specs: list[FigureSpec] = []
    if records:
        specs.append(
            (
                "optimization_history.png",
                "history",
                {
                    "numbers": [r.number for r in records],
                    "values": [r.value for r in records],
                    "direction": direction,
                },
            )
        )
    repeated = ranked_by_mean(records, directions)[:BEST_CONFIGURATIONS]
    if repeats > 1 and repeated:
        specs.append(
            (
                "repeats.png",
                "repeats",
                {
                    "labels": [short_label(r) for r in repeated],
                    "values": [r.repeat_values for r in repeated],
                    "direction": direction,
                },
            )
        )
    specs += _by_parameter_specs(done, space, {OBJECTIVE: [r.value for r in done]}, [direction])
    axes = heatmap_axes(space, records)
    if axes is not None:
        x, y = axes
        cell = {r.number: (r.flat_params[x], r.flat_params[y]) for r in records}
        panels = {OBJECTIVE: {cell[r.number]: r.value for r in records}}
        for name in heatmap_metrics(records):
            panels[f"final {name}"] = {cell[r.number]: r.last(name) for r in records}
        specs.append(("heatmap.png", "heatmap", {"x_name": x, "y_name": y, "panels": panels}))
    return specs


def _by_parameter_specs(
    done: Sequence[TrialRecord],
    space: Space,
    objectives: dict[str, list[float]],
    directions: Sequence[str],
    on_front: list[bool] | None = None,
) -> list[FigureSpec]:
    """The figures of the objectives against the parameters: parallel coordinates (coloured
    by the objective, or with several by being on the Pareto front, ``on_front``), slices
    and fANOVA importance (a panel row or a bar colour per objective)."""
    # Over one parameter these say nothing the history does not, and drawing them costs a
    # sweep matplotlib's import (0.35 s) and fANOVA's forest.
    if len(done) < 2 or len(space.params) < 2:
        return []
    columns = {p.name: [r.flat_params.get(p.name) for r in done] for p in space.params}
    log = {p.name: bool(getattr(p.dim, "log", False)) for p in space.params}
    specs: list[FigureSpec] = []
    if on_front is not None:
        arguments = {"columns": columns, "log": log, "on_front": on_front}
    else:
        [values], [direction] = objectives.values(), directions
        arguments = {"columns": columns, "log": log, "values": values, "direction": direction}
    specs.append(("parallel_coordinates.png", "parallel", arguments))
    each = {"objectives": objectives, "directions": list(directions)}
    specs.append(("slices.png", "slices", {"columns": columns, "log": log, **each}))
    assignments = [r.trial.assignment for r in done]
    specs.append(
        ("param_importance.png", "importance", {"space": space, "assignments": assignments, **each})
    )
    return specs


def closing_artifacts(
    records: Sequence[TrialRecord],
    space: Space,
    directions: Directions | str,
    *,
    repeats: int = 1,
    names: Sequence[str] = ONE,
) -> dict[str, bytes]:
    """The parent run's files that are not figures: trials.csv, space.txt and, with
    repeats, best_configurations.csv; with several objectives, pareto_front.csv."""
    directions = Directions.parse(directions)
    files = {
        "trials.csv": trials_csv(records, names).encode(),
        "space.txt": repr(space).encode(),
    }
    if directions.several:
        files["pareto_front.csv"] = pareto_csv(records, directions, names).encode()
    if repeats > 1:
        files["best_configurations.csv"] = repeats_csv(records, directions).encode()
    return files


def _front_lines(
    records: Sequence[TrialRecord],
    directions: Directions,
    names: Sequence[str],
    experiment_id: str,
) -> list[str]:
    """The description's Pareto front: its size and its first trials, linked."""
    front = pareto_front(records, directions)
    if not front:
        return ["No trial completed."]
    lines = [
        f"**Pareto front: {len(front)} trials** (none is beaten in every objective by "
        "another; `pareto_front.csv` lists them, `pareto_front.png` draws them)",
        "",
    ]
    params = list(dict.fromkeys(k for r in front[:DESCRIPTION_ROWS] for k in r.flat_params))
    lines.append("| trial | " + " | ".join([*names, *params]) + " |")
    lines.append("|---" * (len(names) + len(params) + 1) + "|")
    for r in front[:DESCRIPTION_ROWS]:
        link = f"[{r.number}](#/experiments/{experiment_id}/runs/{r.run_id})"
        cells = [f"{v:.6g}" for v in r.values] + [str(r.flat_params.get(n, "")) for n in params]
        lines.append(f"| {link} | " + " | ".join(cells) + " |")
    if len(front) > DESCRIPTION_ROWS:
        lines.append(f"| … {len(front) - DESCRIPTION_ROWS} more |")
    lines += ["", "A trial's model, if it stored one: `hpo.load_trial_model(SWEEP_ID, TRIAL)`."]
    return lines


def _reason(error: str | None) -> str:
    """A failure reason without what differs between trials (numbers), for grouping."""
    text = (error or "unknown").splitlines()[0]
    return re.sub(r"-?\d[\d.e+-]*", "N", text)[:160]


def description(
    records: Sequence[TrialRecord],
    *,
    experiment_id: str,
    directions: Directions | str,
    strategy: str,
    budget: int,
    status: str,
    names: Sequence[str] = ONE,
) -> str:
    """The parent run's description (MLflow's note, the Overview's "Description"): a
    Markdown summary of the sweep with links to the best trials' runs."""
    directions = Directions.parse(directions)
    counts = count_states(records)
    goal = (
        ", ".join(f"{d} {n}" for d, n in zip(directions, names, strict=True))
        if directions.several
        else f"{directions.single} the objective"
    )
    best = None if directions.several else best_of(records, directions)
    # First, one click to the right view: the sidebar's mode follows the last page seen, so
    # a run page reached from the GenAI view stays there; these links name the training view.
    view = f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    links = [f"[All trials in the model-training view]({view})"]
    if best is not None and best.run_id is not None:
        links.append(
            f"[best trial {best.number}](#/experiments/{experiment_id}/runs/{best.run_id}"
            "?workflowType=machine_learning)"
        )
    lines = [
        " · ".join(links),
        "",
        f"**hpo sweep**, {strategy}, {goal}: {_trials(records, budget)} "
        f"({counts[TrialState.COMPLETE]} complete, {counts[TrialState.FAILED]} failed, "
        f"{counts[TrialState.PRUNED]} pruned); {status.lower()}.",
        "",
    ]
    if directions.several:
        lines += _front_lines(records, directions, names, experiment_id)
    elif best is None:
        lines.append("No trial completed.")
    else:
        params = ", ".join(f"`{k}` = {v!r}" for k, v in best.flat_params.items())
        lines += [f"**Best value: {best.value:.6g}** (trial {best.number}): {params}", ""]
        if best.models:
            run = f"#/experiments/{experiment_id}/runs/{best.run_id}"
            lines += [
                f"Best model: `runs:/{best.run_id}/{best.models[0]}` "
                f"([trial {best.number}'s artifacts]({run}/artifacts)); "
                "load it with `hpo.load_best_model(SWEEP_ID)`.",
                "",
            ]
        ranked = sorted(
            (r for r in records if r.state is TrialState.COMPLETE),
            key=lambda r: (loss_sign(directions.single) * r.value, r.number),
        )[:DESCRIPTION_ROWS]
        names = list(dict.fromkeys(k for r in ranked for k in r.flat_params))
        lines.append("| trial | objective | " + " | ".join(names) + " |")
        lines.append("|---" * (len(names) + 2) + "|")
        for r in ranked:
            link = f"[{r.number}](#/experiments/{experiment_id}/runs/{r.run_id})"
            cells = [str(r.flat_params.get(n, "")) for n in names]
            lines.append(f"| {link} | {r.value:.6g} | " + " | ".join(cells) + " |")
    failed = Counter(_reason(r.error) for r in records if r.state is TrialState.FAILED)
    if failed:
        lines += ["", "**Failures:**"]
        for reason, n in failed.most_common(DESCRIPTION_REASONS):
            lines.append(f"- {n} × {reason}")
        if len(failed) > DESCRIPTION_REASONS:
            lines.append(f"- and {len(failed) - DESCRIPTION_REASONS} other reasons")
    return "\n".join(lines)


def population_specs(
    records: Sequence[TrialRecord], space: Space, metric: str, direction: str
) -> list[FigureSpec]:
    """The figures of population-based training: every segment's curve by member, with each
    exploit's jump, and the parameters over steps along the best trial's lineage (its other
    figures, of one value per configuration, would mix segments of different lengths)."""
    by_number = {r.number: r for r in records}
    segments = []
    last_of: dict[int, tuple[int, float]] = {}  # member -> its latest point so far
    for r in sorted(records, key=lambda r: r.number):
        attrs, points = r.trial.attrs, sorted(r.trial.curve.items())
        segment: dict[str, Any] = {"member": attrs[MEMBER], "points": points, "jump": None}
        donor_segment = by_number.get(attrs.get(PARENT, -1))
        own = last_of.get(attrs[MEMBER])
        if attrs.get(DONOR) is not None and donor_segment is not None and own is not None:
            at = attrs[FROM_STEP]
            value = donor_segment.trial.curve.get(at)
            if value is not None:
                segment["jump"] = (*own, at, value)
        if points:
            last_of[attrs[MEMBER]] = points[-1]
        segments.append(segment)
    specs: list[FigureSpec] = [
        (
            "pbt_population.png",
            "population",
            {"segments": segments, "metric": metric, "direction": direction},
        )
    ]
    best = best_of(records, direction)
    if best is not None:
        chain, number = [], best.number
        while number is not None:
            chain.append(by_number[number])
            number = chain[-1].trial.attrs.get(PARENT)
        rows = []
        for r in reversed(chain):
            attrs, steps = r.trial.attrs, sorted(r.trial.curve)
            start = attrs.get(FROM_STEP, 0)
            end = attrs.get(END, steps[-1] if steps else start)
            numeric = {
                k: v
                for k, v in r.flat_params.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            rows.append({"start": start, "end": end, "params": numeric, "donor": attrs.get(DONOR)})
        names = sorted({k for row in rows for k in row["params"]})
        # The parameters the schedule changes; all of them when it changed none.
        changed = [n for n in names if len({row["params"].get(n) for row in rows}) > 1]
        log = [p.name for p in space.params if getattr(p.dim, "log", False)]
        arguments = {"rows": rows, "names": changed or names, "trial": best.number, "log": log}
        specs.append(("pbt_schedule.png", "schedule", arguments))
    return specs


def _trials(records: Sequence[TrialRecord], budget: int) -> str:
    """How many trials of the budget ran; for population-based training, its members and
    the segments (each a trial) they trained in."""
    members = {r.trial.attrs[MEMBER] for r in records if MEMBER in r.trial.attrs}
    if members:
        return f"{len(members)} of {budget} members in {len(records)} segments"
    return f"{len(records)} of {budget} trials"
