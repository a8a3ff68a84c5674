"""`hpo show`'s text: the sweeps in a store, or one sweep's best trials (or Pareto front),
failures and pruning, as the reader (`hpo.tracking.reader`) gives them back."""

from __future__ import annotations

from typing import Any

from hpo.core.directions import loss_sign
from hpo.core.pareto import losses, non_dominated
from hpo.core.trial import TrialState
from hpo.tracking.reader import read_sweep, recent_sweeps
from hpo.tracking.schema import SweepTag, count_tag


def list_sweeps(client: Any) -> str:
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    runs = recent_sweeps(client, list(experiments)) if experiments else []
    if not runs:
        return "no sweeps recorded in this tracking store"
    rows = [("sweep id", "experiment", "strategy", "status", "done/failed/pruned", "best")]
    states = (TrialState.COMPLETE, TrialState.FAILED, TrialState.PRUNED)
    for r in runs:
        t = r.data.tags
        front = f"front of {t[SweepTag.N_PARETO]}" if SweepTag.N_PARETO in t else "-"
        rows.append(
            (
                r.info.run_id,
                experiments.get(r.info.experiment_id, "?"),
                t.get(SweepTag.STRATEGY, "?"),
                r.info.status,
                "/".join(t.get(count_tag(s), "-") for s in states),
                t.get(SweepTag.BEST_VALUE) or front,
            )
        )
    return _table(rows)


def show_sweep(client: Any, sweep_id: str, top: int = 10) -> str:
    sweep = read_sweep(client, sweep_id, "this tracking store")
    t, names, directions = sweep.tags, sweep.objective_names, sweep.directions
    done = [trial for trial in sweep.trials if trial.complete]
    if directions.several:  # the Pareto front, by the first objective
        points = losses([trial.values for trial in done], directions)
        done = [trial for trial, keep in zip(done, non_dominated(points), strict=True) if keep]
        sign = 1.0
        heading = f"Pareto front, {len(done)} trials:"
    else:
        sign = loss_sign(directions.single)
        heading = f"best {min(top, len(done))} trials:"
    # Best first; of equal values the first trial, as the sweep's own summary names it.
    done.sort(key=lambda trial: (sign * trial.values[0], trial.number))
    shown = done if directions.several else done[:top]
    states: dict[str, int] = {}
    for trial in sweep.trials:
        states[trial.state.value] = states.get(trial.state.value, 0) + 1
    lines = [
        f"sweep {sweep_id} ({sweep.run_status}), strategy {t.get(SweepTag.STRATEGY)}, "
        f"{directions}, seed {t.get(SweepTag.SEED)}",
        "trials: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())),
        *([f"stopped early: {sweep.stopped_by}"] if sweep.stopped_by else []),
        "",
        heading,
    ]
    params = sorted({k for trial in shown for k in trial.flat_params})
    rows = [("trial", *names, *params)]
    for trial in shown:
        rows.append(
            (
                str(trial.number),
                *[f"{v:.6g}" for v in trial.values],
                *[str(trial.flat_params.get(n, "")) for n in params],
            )
        )
    lines.append(_table(rows))
    failed = [trial for trial in sweep.trials if trial.state is TrialState.FAILED]
    if failed:
        lines += ["", "failed trials:"]
        lines += [f"  trial {trial.number}: {(trial.error or '')[:150]}" for trial in failed]
    pruned = [trial for trial in sweep.trials if trial.state is TrialState.PRUNED]
    if pruned:
        steps = sorted(trial.pruned_step or 0 for trial in pruned)
        lines += [
            "",
            f"pruned trials: {len(pruned)} by {pruned[0].pruner or '?'}, "
            f"at steps {steps[0]} to {steps[-1]} (median {steps[len(steps) // 2]})",
        ]
    if sweep.run_status != "FINISHED":
        lines += ["", f"the sweep did not finish; continue it with: hpo resume {sweep_id}"]
    return "\n".join(lines)


def progress_line(client: Any, sweep_id: str) -> str:
    """One line of a sweep's progress: its trials by state, the best value so far."""
    sweep = read_sweep(client, sweep_id, "this tracking store")
    states = {state: 0 for state in TrialState}
    for trial in sweep.trials:
        states[trial.state] += 1
    counts = ", ".join(f"{n} {state.value.lower()}" for state, n in states.items())
    done = [trial for trial in sweep.trials if trial.complete]
    best = ""
    if done and not sweep.directions.several:
        sign = loss_sign(sweep.directions.single)
        top = min(done, key=lambda trial: (sign * trial.values[0], trial.number))
        best = f"; best {top.values[0]:.6g} (trial {top.number})"
    waiting = sweep.tags.get(SweepTag.WAITING)
    waiting = f"; {waiting}" if waiting and sweep.run_status == "RUNNING" else ""
    return f"sweep {sweep_id} ({sweep.run_status}): {counts}{best}{waiting}"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
