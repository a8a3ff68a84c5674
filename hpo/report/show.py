"""Reading sweeps back from MLflow for `hpo show`."""

from __future__ import annotations

from typing import Any

from hpo.core.checks import check_directions, loss_sign, several_objectives
from hpo.core.pareto import losses, non_dominated
from hpo.tracking.reader import child_runs, objective_names, objective_values, sweep_run


def _sweeps(client: Any, experiment_ids: list[str], max_results: int = 20) -> list[Any]:
    return client.search_runs(
        experiment_ids,
        filter_string="tags.`hpo.sweep` = 'true'",
        order_by=["attributes.start_time DESC"],
        max_results=max_results,
    )


def list_sweeps(client: Any) -> str:
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    runs = _sweeps(client, list(experiments)) if experiments else []
    if not runs:
        return "no sweeps recorded in this tracking store"
    rows = [("sweep id", "experiment", "strategy", "status", "done/failed/pruned", "best")]
    for r in runs:
        t = r.data.tags
        rows.append(
            (
                r.info.run_id,
                experiments.get(r.info.experiment_id, "?"),
                t.get("hpo.strategy", "?"),
                r.info.status,
                "/".join(t.get(f"hpo.n_{s}", "-") for s in ("complete", "failed", "pruned")),
                t.get("hpo.best_value")
                or (f"front of {t['hpo.n_pareto']}" if "hpo.n_pareto" in t else "-"),
            )
        )
    return _table(rows)


def show_sweep(client: Any, sweep_id: str, top: int = 10) -> str:
    parent = sweep_run(client, sweep_id, "this tracking store")
    t = parent.data.tags
    children = child_runs(client, parent.info.experiment_id, sweep_id)
    direction = t.get("hpo.direction", "minimize")
    names = objective_names(t)
    done = [
        r
        for r in children
        if r.data.tags.get("hpo.state") == "COMPLETE"  # a failed run may hold a curve of the name
        and objective_values(r.data.metrics, names) is not None
    ]
    if several_objectives(direction):  # the Pareto front, by the first objective
        values = [objective_values(r.data.metrics, names) for r in done]
        points = losses(values, check_directions(direction))
        done = [r for r, keep in zip(done, non_dominated(points), strict=True) if keep]
        sign = 1.0
        heading = f"Pareto front, {len(done)} trials:"
    else:
        sign = loss_sign(direction)
        heading = f"best {min(top, len(done))} trials:"
    # Best first; of equal values the first trial, as the sweep's own summary names it.
    done.sort(key=lambda r: (sign * r.data.metrics[names[0]], int(r.data.tags["hpo.trial"])))
    shown = done if several_objectives(direction) else done[:top]
    states: dict[str, int] = {}
    for r in children:
        state = r.data.tags.get("hpo.state", "?")
        states[state] = states.get(state, 0) + 1
    lines = [
        f"sweep {sweep_id} ({parent.info.status}), strategy {t.get('hpo.strategy')}, "
        f"{t.get('hpo.direction')}, seed {t.get('hpo.seed')}",
        "trials: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())),
        *([f"stopped early: {t['hpo.stopped_by']}"] if "hpo.stopped_by" in t else []),
        "",
        heading,
    ]
    params = sorted({k for r in shown for k in r.data.params})
    rows = [("trial", *names, *params)]
    for r in shown:
        rows.append(
            (
                r.data.tags.get("hpo.trial", "?"),
                *[f"{r.data.metrics[n]:.6g}" for n in names],
                *[r.data.params.get(n, "") for n in params],
            )
        )
    lines.append(_table(rows))
    failed = [r for r in children if r.data.tags.get("hpo.state") == "FAILED"]
    if failed:
        lines += ["", "failed trials:"]
        lines += [
            f"  trial {r.data.tags.get('hpo.trial')}: {r.data.tags.get('hpo.error', '')[:150]}"
            for r in sorted(failed, key=lambda r: int(r.data.tags.get("hpo.trial", 0)))
        ]
    pruned = [r for r in children if r.data.tags.get("hpo.state") == "PRUNED"]
    if pruned:
        steps = sorted(int(r.data.tags.get("hpo.pruned_step", 0)) for r in pruned)
        lines += [
            "",
            f"pruned trials: {len(pruned)} by {pruned[0].data.tags.get('hpo.pruner', '?')}, "
            f"at steps {steps[0]} to {steps[-1]} (median {steps[len(steps) // 2]})",
        ]
    if parent.info.status != "FINISHED":
        lines += ["", f"the sweep did not finish; continue it with: hpo resume {sweep_id}"]
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
