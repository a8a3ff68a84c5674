"""Multi-fidelity search at 2 workers: wall time, epochs trained and the best found.

`benchmarks/multifidelity.py` compares the searches per epoch, one trial at a time. Here
each method is a real sweep, `hpo.run(..., workers=2)` on a local Ray cluster of 2 CPUs
recorded in sqlite, of a fixed number of trials on the same task, space and training
(`multifidelity.train`, the validation loss reported every epoch): what a user waits for,
with two trials running at once, so a strategy that ignored its pending trials, or whose
model costs more than the trials, shows in the wall time. The peer in the same run:
Optuna's TPE with its HyperbandPruner, `study.optimize(n_jobs=2)` (two threads, as its
documentation parallelises in one process).

    .venv/bin/python benchmarks/multifidelity_wall.py [--seeds 0 1 2] [--trials 40]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _report import machine, table, write_section  # noqa: E402
from multifidelity import EPOCHS, OURS, load_task, optuna_params, space, train  # noqa: E402


def objective(params, report, job):
    """One training; the value is its lowest validation loss. A pruned trial stops at the
    report that raises; the metric ``epochs`` counts the epochs trained so far."""
    best, trained = math.inf, 0

    def on_epoch(epoch, loss):
        nonlocal best, trained
        trained += 1
        best = min(best, loss) if math.isfinite(loss) else best
        report(epoch, val_loss=loss if math.isfinite(loss) else 1e9, epochs=trained)
        return True

    state, _ = train(params, job["data"], job["seed"], on_epoch)  # as the other script
    if state == "failed" or not math.isfinite(best):
        raise RuntimeError(f"diverged after {trained} epochs")
    return best


def run_ours(method: str, data, seed: int, trials: int, store: str) -> tuple[float, int, float]:
    """(wall s, epochs trained, best value of a fully trained trial) of one sweep."""
    import hpo

    strategy, pruner = OURS[method]
    began = time.perf_counter()
    result = hpo.run(
        space(),
        objective,
        data={"data": data, "seed": seed},
        strategy=strategy,
        pruner=pruner,
        n_trials=trials,
        workers=2,
        seed=seed,
        tracking_uri=f"sqlite:///{store}/mlflow.db",
        experiment_name=f"wall-{method}",
        progress=False,
    )
    wall = time.perf_counter() - began
    # A pruned trial trained one epoch past its last report (the report that raised).
    epochs = sum(
        int(t.metrics.get("epochs", 0)) + (t.state.value == "PRUNED") for t in result.trials
    )
    full = [t.value for t in result.trials if t.metrics.get("epochs") == EPOCHS and t.value]
    return wall, epochs, min(full, default=math.nan)


def run_optuna(data, seed: int, trials: int) -> tuple[float, int, float]:
    import threading

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.HyperbandPruner()
    )
    lock, counted = threading.Lock(), {"epochs": 0}
    full: list[float] = []

    def optuna_objective(trial):
        params = optuna_params(trial)
        values: list[float] = []

        def on_epoch(epoch, loss):
            with lock:
                counted["epochs"] += 1
            values.append(loss)
            if math.isfinite(loss):
                trial.report(loss, epoch)
            return not trial.should_prune()

        state, _ = train(params, data, seed, on_epoch)
        finite = [v for v in values if math.isfinite(v)]
        if state == "stopped":
            raise optuna.TrialPruned()
        if state == "failed" or not finite:
            raise RuntimeError("diverged")
        if len(values) == EPOCHS:
            full.append(min(finite))
        return min(finite)

    began = time.perf_counter()
    study.optimize(optuna_objective, n_trials=trials, n_jobs=2, catch=(RuntimeError,))
    return time.perf_counter() - began, counted["epochs"], min(full, default=math.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=["digits", "synthetic"])
    parser.add_argument("--methods", nargs="+", default=[*OURS, "optuna-tpe+hyperband"])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import ray
    import threadpoolctl

    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent)])  # for workers
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    threadpoolctl.threadpool_limits(1)  # Optuna's threads: one BLAS thread each, as ours
    store = tempfile.mkdtemp(prefix="hpo-bench-mf-wall-")
    runs: dict[tuple[str, str], list[tuple[float, int, float]]] = {}
    for task in args.tasks:
        data = load_task(task)
        for seed in args.seeds:
            for method in args.methods:
                if method in OURS:
                    got = run_ours(method, data, seed, args.trials, store)
                else:
                    got = run_optuna(data, seed, args.trials)
                runs.setdefault((task, method), []).append(got)
                print(task, method, seed, got, flush=True)
    ray.shutdown()
    rows = [
        [
            "task",
            "method",
            "wall s (median)",
            "epochs (median)",
            "epochs / wall s",
            "best fully trained (mean)",
        ]
    ]
    for (task, method), got in runs.items():
        walls, epochs = [g[0] for g in got], [g[1] for g in got]
        bests = [g[2] for g in got if math.isfinite(g[2])]
        rows.append(
            [
                task,
                method,
                f"{statistics.median(walls):.1f}",
                f"{statistics.median(epochs):.0f}",
                f"{statistics.median(e / w for e, w in zip(epochs, walls, strict=True)):.0f}",
                f"{statistics.mean(bests):.4f}" if bests else "none",
            ]
        )
    body = (
        "### At 2 workers (`benchmarks/multifidelity_wall.py`)\n\n"
        f"`benchmarks/multifidelity_wall.py --seeds {' '.join(map(str, args.seeds))} "
        f"--trials {args.trials}` on {machine()}: each method a sweep of {args.trials} "
        f"trials (up to {EPOCHS} epochs each) at 2 workers on a local Ray cluster of 2 CPUs, "
        "recorded in sqlite; Optuna's study with n_jobs=2 (threads). Medians over the "
        f"seeds; the best is the lowest validation loss of a trial trained all {EPOCHS} "
        "epochs, mean over the seeds that have one.\n\n" + table(rows)
    )
    print(body)
    if not args.no_write:
        write_section("multifidelity-wall", body)


if __name__ == "__main__":
    main()
