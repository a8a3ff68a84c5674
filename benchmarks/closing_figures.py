"""The closing figures of a sweep: what each takes to draw, how the drawing is shared
between two idle workers, and how many trees fANOVA's importance needs.

Every sweep ends by drawing its figures on its idle workers, and returns once they are
drawn, so the larger share is on the path of every `hpo.run` and `hpo.SearchCV.fit`. The
sweeps measured are those of `benchmarks/searchcv.py`: an RBF SVC on digits, 5 folds, 32
configurations, once drawn at random over C and gamma on log scales (RandomizedSearchCV's
first seed) and once the 8 x 4 grid of choices. Each configuration is scored here, one
after another, by the objective `hpo.SearchCV` runs in its trials (so each trial reports
the metrics it reports there); the figures are those the sweep's end draws for them.

    .venv/bin/python benchmarks/closing_figures.py [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import _report
import numpy as np
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.metrics import check_scoring
from sklearn.model_selection import ParameterSampler, StratifiedKFold
from sklearn.svm import SVC

import hpo
from hpo.integrations.searchcv import SINGLE, Folds, cross_validate_trial
from hpo.report.importance import TREES, param_importances
from hpo.report.plots import render, share
from hpo.report.summary import figure_specs
from hpo.space import Choice, Float
from hpo.sweep.lifecycle import TrialRecord

C_RANGE, GAMMA_RANGE = (1e-2, 1e3), (1e-5, 1e-1)
FOREST_SEEDS = 6


def sweeps() -> tuple[dict[str, Any], dict[str, list[TrialRecord]]]:
    """The two 32-trial sweeps' records (asked and told through their strategies), each
    trial's reported metrics in them as the sweep keeps them."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    folds = Folds(SVC(), X, y, splits, {SINGLE: check_scoring(SVC())}, SINGLE, {}, np.nan, False)
    distributions = {"C": loguniform(*C_RANGE), "gamma": loguniform(*GAMMA_RANGE)}
    floats = {"C": Float(*C_RANGE, log=True), "gamma": Float(*GAMMA_RANGE, log=True)}
    grid = {"C": Choice(list(np.logspace(-2, 3, 8))), "gamma": Choice(list(np.logspace(-5, -1, 4)))}
    random = hpo.make_strategy("random", floats, direction="maximize", seed=0)
    for params in ParameterSampler(distributions, 32, random_state=0):
        random.enqueue(params)
    out = {
        "random (C, gamma on log scales)": random,
        "grid (8 x 4 choices)": hpo.make_strategy("grid", grid, direction="maximize"),
    }
    records = {}
    for name, strategy in out.items():
        records[name] = []
        for _ in range(32):
            [trial] = strategy.ask()
            record = TrialRecord(trial)

            def report(step, record=record, **metrics):
                record.last_metrics.update({k: (step, v) for k, v in metrics.items()})

            strategy.tell(trial, cross_validate_trial(trial.params, report, folds))
            records[name].append(record)
    return out, records


def drawing_seconds(spec, repeats: int) -> float:
    render([spec])  # the imports, once
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        render([spec])
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    strategies, records_of = sweeps()
    drawn: dict[str, dict[str, float]] = {}
    shares: dict[str, list[float]] = {}
    ratings = []
    for name, strategy in strategies.items():
        specs = figure_specs(records_of[name], strategy.space, "maximize")
        drawn[name] = {kind: drawing_seconds((f, kind, a), args.repeats) for f, kind, a in specs}
        shares[name] = [sum(drawn[name][kind] for _, kind, _ in g) for g in share(specs, 2)]
        assignments = [t.assignment for t in strategy.trials]
        values = [t.value for t in strategy.trials]
        for trees in (64, TREES, 16):
            rated, began = [], time.perf_counter()
            for seed in range(FOREST_SEEDS):
                rated.append(
                    param_importances(
                        strategy.space, assignments, values, "maximize", seed=seed, trees=trees
                    )[0]["C"]
                )
            took = (time.perf_counter() - began) / FOREST_SEEDS
            ratings.append(
                [name, str(trees), f"{np.mean(rated):.3f} ± {np.std(rated):.3f}", f"{took:.3f}"]
            )
    kinds = list(dict.fromkeys(k for d in drawn.values() for k in d))
    rows = [["figure", *(f"{n}, s" for n in drawn)]]
    rows += [[k, *(f"{d[k]:.3f}" if k in d else "-" for d in drawn.values())] for k in kinds]
    rows.append(
        [
            "each of two workers' share (`share(specs, 2)`)",
            *(" / ".join(f"{s:.3f}" for s in shares[n]) for n in drawn),
        ]
    )
    body = (
        "## The closing figures (`benchmarks/closing_figures.py`)\n\n"
        f"Command: `.venv/bin/python benchmarks/closing_figures.py --repeats {args.repeats}`; "
        f"machine: {_report.machine()}. The figures `hpo.run` draws at the end of the two "
        "32-trial SVC sweeps of `benchmarks/searchcv.py` (random configurations over C and "
        "gamma on log scales; the 8 x 4 grid of choices), each drawn alone in this process "
        f"after a first drawing (median of {args.repeats}); then the two groups the sweep's "
        "two idle workers draw side by side, the larger being on the path of the sweep's "
        "return.\n\n"
        + _report.table(rows)
        + f"\n\nfANOVA's rating of C by forest size, over {FOREST_SEEDS} forest seeds "
        f"(hpo uses {TREES} trees):\n\n"
        + _report.table(
            [["sweep", "trees", "importance of C (mean ± sd)", "s per rating"]] + ratings
        )
    )
    print(body)
    if not args.no_write:
        _report.write_section("closing-figures", body)


if __name__ == "__main__":
    main()
