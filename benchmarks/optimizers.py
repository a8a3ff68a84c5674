"""Optimiser quality (Bayesmark-style normalised score) and ask latency.

Protocol (shared/docs/benchmarks.md): per task and optimiser, R seeds; per run the best-so-far
curve, clipped at the median of random search's first evaluation, normalised so 0 is the
task's optimum and 1 the clip, averaged over runs and tasks and divided by random search's
figure (random scores about 1, a perfect optimiser 0). Budgets 16, 32, 64; sequential asks
and batches of 4. Ask latency: ``ask()`` alone after 10, 100, 300 observations in 2, 6, 9
dimensions, one BLAS thread, median and p95.

    .venv/bin/python benchmarks/optimizers.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_report", HERE / "_report.py")
_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_report)

import hpo  # noqa: E402
from hpo.space import Choice, Float, Int  # noqa: E402

BUDGETS = (16, 32, 64)


# -- tasks: (space, function of params, best value known) ---------------------------------
def branin(p):
    x, y = p["x"], p["y"]
    return (
        (y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x)
        + 10
    )


_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p):
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def rosenbrock(p):
    x = [p[f"x{i}"] for i in range(4)]
    return float(sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3)))


def mixed(p):
    penalty = {"a": 0.0, "b": 1.0, "c": 2.5}[p["kind"]]
    return (p["n"] - 7) ** 2 / 10 + penalty + (p["x"] - 0.3) ** 2 + (math.log10(p["m"]) - 1) ** 2


TASKS = {
    "Branin": ({"x": Float(-5.0, 10.0), "y": Float(0.0, 15.0)}, branin, 0.397887),
    "Hartmann6": ({f"x{i}": Float(0.0, 1.0) for i in range(6)}, hartmann6, -3.32237),
    "Rosenbrock (log box)": (
        {f"x{i}": Float(1e-2, 10.0, log=True) for i in range(4)},
        rosenbrock,
        0.0,
    ),
    "mixed categorical/integer": (
        {
            "n": Int(1, 20),
            "kind": Choice(["a", "b", "c"]),
            "x": Float(0.0, 1.0),
            "m": Int(1, 1000, log=True),
        },
        mixed,
        0.0,
    ),
}


# -- optimisers: each returns the objective values in evaluation order ----------------------
def run_ours(name, space, fn, seed, budget, batch):
    s = hpo.make_strategy(name, space, seed=seed)
    values = []
    while len(values) < budget:
        trials = s.ask(min(batch, budget - len(values)))
        for t in trials:  # a batch is asked together, then told (parallel workers)
            values.append(fn(t.params))
        for t, v in zip(trials, values[-len(trials) :], strict=True):
            s.tell(t, v)
    return values


def run_optuna_native(space, fn, seed, budget, batch):
    """Optuna's TPESampler as an Optuna user writes it, with its defaults."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    values = []
    while len(values) < budget:
        # Optuna samples at suggest time: a batch draws every trial's parameters before any
        # result is told, as parallel workers would.
        asked = [study.ask() for _ in range(min(batch, budget - len(values)))]
        drawn = [(trial, _suggest_all(trial, space)) for trial in asked]
        for _, params in drawn:
            values.append(fn(params))
        for (trial, _), value in zip(drawn, values[-len(drawn) :], strict=True):
            study.tell(trial, value)
    return values


def _suggest_all(trial, space):
    params = {}
    for key, dim in space.items():
        if isinstance(dim, Float):
            params[key] = trial.suggest_float(key, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Int):
            params[key] = trial.suggest_int(key, dim.low, dim.high, log=dim.log)
        else:
            params[key] = trial.suggest_categorical(key, dim.options)
    return params


OPTIMISERS = {
    "hpo gp": lambda *a: run_ours("gp", *a),
    "hpo tpe": lambda *a: run_ours("tpe", *a),
    "Optuna TPE (native)": run_optuna_native,
    "hyperopt TPE": lambda *a: run_ours("hyperopt-tpe", *a),
    "random": lambda *a: run_ours("random", *a),
}


def normalised_scores(curves, first_random, optimum):
    """Mean normalised best-so-far at each budget for one task and optimiser."""
    clip = statistics.median(first_random)
    out = {}
    for b in BUDGETS:
        scores = []
        for values in curves:
            best = min(values[:b])
            scores.append(min(max((best - optimum) / (clip - optimum), 0.0), 1.0))
        out[b] = float(np.mean(scores))
    return out


def quality(seeds: int, batch: int) -> dict[str, dict[int, float]]:
    per_task: dict[str, dict[str, dict[int, float]]] = {}
    for task, (space, fn, optimum) in TASKS.items():
        curves = {
            name: [run(space, fn, seed, max(BUDGETS), batch) for seed in range(seeds)]
            for name, run in OPTIMISERS.items()
        }
        first = [c[0] for c in curves["random"]]
        per_task[task] = {name: normalised_scores(c, first, optimum) for name, c in curves.items()}
        print(f"  {task} (batch {batch}) done", flush=True)
    result = {}
    for name in OPTIMISERS:
        mean = {b: np.mean([per_task[t][name][b] for t in TASKS]) for b in BUDGETS}
        rnd = {b: np.mean([per_task[t]["random"][b] for t in TASKS]) for b in BUDGETS}
        result[name] = {b: mean[b] / rnd[b] if rnd[b] > 0 else float("nan") for b in BUDGETS}
    return result


def latency(name: str, dims: int, n_obs: int, asks: int = 7) -> tuple[float, float]:
    space = {f"x{i}": Float(0.0, 1.0) for i in range(dims)}
    s = hpo.make_strategy(name, space, seed=0)
    rng = np.random.default_rng(0)
    if name == "gp":
        s.n_initial = n_obs + 1  # feed the history through the cheap initial design
    for _ in range(n_obs):
        [t] = s.ask()
        s.tell(t, float(rng.random()))
    if name == "gp":
        s.n_initial = 1
    times = []
    for _ in range(asks):
        start = time.perf_counter()
        [t] = s.ask()
        times.append(time.perf_counter() - start)
        s.tell(t, float(rng.random()))
    return float(np.median(times)), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with threadpool_limits(limits=1):
        tables = {batch: quality(args.seeds, batch) for batch in (1, 4)}
        lat_rows = [
            ["strategy", "dims", "after 10 obs (median / p95 ms)", "after 100", "after 300"]
        ]
        for name in ("gp", "tpe", "hyperopt-tpe"):
            for dims in (2, 6, 9):
                cells = []
                for n in (10, 100, 300):
                    med, p95 = latency(name, dims, n)
                    cells.append(f"{med * 1e3:.0f} / {p95 * 1e3:.0f}")
                lat_rows.append([name, str(dims), *cells])
                print("  latency", name, dims, cells, flush=True)
    rows = [["optimiser", "mode", *(f"budget {b}" for b in BUDGETS)]]
    for batch, table in tables.items():
        for name, scores in table.items():
            rows.append(
                [
                    name,
                    "sequential" if batch == 1 else f"batches of {batch}",
                    *(f"{scores[b]:.3f}" for b in BUDGETS),
                ]
            )
    body = "\n".join(
        [
            "## Optimiser quality and ask latency (`benchmarks/optimizers.py`)",
            "",
            f"Command: `.venv/bin/python benchmarks/optimizers.py --seeds {args.seeds}`; machine: "
            f"{_report.machine()}; one BLAS thread.",
            f"Normalised score (lower is better; random = 1, optimum = 0), averaged over "
            f"{', '.join(TASKS)}, {args.seeds} seeds each. Not in this run: the scikit-learn model "
            "tasks and Optuna's GPSampler (needs torch).",
            "",
            _report.table(rows),
            "",
            "Ask latency (ms), history of random values:",
            "",
            _report.table(lat_rows),
        ]
    )
    print(body)
    if not args.no_write:
        _report.write_section("optimizers", body)


if __name__ == "__main__":
    sys.exit(main())
