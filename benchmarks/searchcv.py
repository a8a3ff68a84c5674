"""`hpo.SearchCV` against scikit-learn's `GridSearchCV` / `RandomizedSearchCV` (n_jobs=2)
and Optuna's `OptunaSearchCV` (n_jobs=2): the same estimator (an RBF SVC on digits), the
same 5 folds, 32 configurations each; wall time and best mean CV accuracy.

The Ray cluster is started once beforehand (its start is measured on its own); every
hpo search records its sweep in a sqlite store. Random searches run with several seeds.

    .venv/bin/python benchmarks/searchcv.py      # OptunaSearchCV: pip install optuna-integration
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import _report
import numpy as np
import psutil
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import (
    GridSearchCV,
    ParameterSampler,
    RandomizedSearchCV,
    StratifiedKFold,
)
from sklearn.svm import SVC

import hpo
from hpo.space import Choice, Float

BUDGET = 32
C_RANGE, GAMMA_RANGE = (1e-2, 1e3), (1e-5, 1e-1)
GRID = {"C": list(np.logspace(-2, 3, 8)), "gamma": list(np.logspace(-5, -1, 4))}


def children_cpu() -> dict[int, float]:
    """CPU seconds so far of each process below this one: joblib's workers; Ray's raylet,
    GCS and workers (the local cluster is started from this process)."""
    used = {}
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        used[child.pid] = times.user + times.system
    return used


def timed(fit):
    """(wall s, best score, the folds' fit and score seconds summed or None, this process's
    CPU s: hpo's driver and its MLflow writer; scikit-learn's and Optuna's parent, the
    CPU s of the processes below it: the workers and Ray's own; those of a process that
    ended during the search are not counted, and said so)."""
    cpu = time.process_time()
    before = children_cpu()
    began = time.perf_counter()
    search = fit()
    wall = time.perf_counter() - began
    cpu = time.process_time() - cpu
    after = children_cpu()
    others = sum(used - before.get(pid, 0.0) for pid, used in after.items())
    ended = set(before) - set(after)
    if ended:
        print(f"{len(ended)} processes ended: their CPU is not counted")
    results = getattr(search, "cv_results_", None)
    work = None
    if results is not None and "mean_fit_time" in results:
        per_config = np.asarray(results["mean_fit_time"]) + np.asarray(results["mean_score_time"])
        work = float(np.nansum(per_config)) * search.n_splits_
    return wall, float(search.best_score_), work, cpu, others


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import ray

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    store = tempfile.mkdtemp(prefix="hpo-bench-searchcv-")
    began = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray_start = time.perf_counter() - began
    space = {"C": Float(*C_RANGE, log=True), "gamma": Float(*GAMMA_RANGE, log=True)}

    def ours(strategy, seed, grid=False):
        return hpo.SearchCV(
            SVC(),
            {k: Choice(v) for k, v in GRID.items()} if grid else space,
            strategy=strategy,
            n_trials=BUDGET,
            cv=folds,
            seed=seed,
            workers=2,
            tracking_uri=f"sqlite:///{store}/mlflow.db",
        ).fit(X, y)

    # One small search of each tool first: the imports, the store's tables, and the worker
    # processes, which both keep up between searches (joblib's loky workers; hpo.SearchCV's
    # keep_workers) as they do for a user's next search in the same process.
    hpo.SearchCV(SVC(), space, n_trials=2, cv=2, tracking_uri=f"sqlite:///{store}/mlflow.db").fit(
        X, y
    )
    GridSearchCV(SVC(), {"C": [1.0, 2.0]}, cv=2, n_jobs=2).fit(X, y)
    runs: dict[str, list[tuple[float, float, float | None, float, float]]] = {}

    def record(name, fit):
        runs.setdefault(name, []).append(timed(fit))
        print(name, runs[name][-1], flush=True)

    record(
        "GridSearchCV (n_jobs=2), 8 x 4 grid",
        lambda: GridSearchCV(SVC(), GRID, cv=folds, n_jobs=2).fit(X, y),
    )
    record("hpo.SearchCV grid, 8 x 4 grid", lambda: ours("grid", 0, grid=True))
    distributions = {"C": loguniform(*C_RANGE), "gamma": loguniform(*GAMMA_RANGE)}
    try:
        import optuna
        from optuna_integration import OptunaSearchCV

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        OptunaSearchCV = None
    for seed in range(args.seeds):
        record(
            "RandomizedSearchCV (n_jobs=2)",
            lambda s=seed: RandomizedSearchCV(
                SVC(), distributions, n_iter=BUDGET, cv=folds, n_jobs=2, random_state=s
            ).fit(X, y),
        )
        for strategy in ("random", "tpe", "gp"):
            record(f"hpo.SearchCV {strategy}", lambda st=strategy, s=seed: ours(st, s))
        # The random searches' wall times differ by their configurations (an SVC's cost
        # depends on C and gamma): hpo on RandomizedSearchCV's own 32 compares the tools.
        same = hpo.make_strategy("random", space, direction="maximize", seed=seed)
        for params in ParameterSampler(distributions, BUDGET, random_state=seed):
            same.enqueue(params)
        record(
            "hpo.SearchCV on RandomizedSearchCV's configurations",
            lambda st=same, s=seed: ours(st, s),
        )
        if OptunaSearchCV is not None:
            optuna_space = {
                "C": optuna.distributions.FloatDistribution(*C_RANGE, log=True),
                "gamma": optuna.distributions.FloatDistribution(*GAMMA_RANGE, log=True),
            }
            record(
                "OptunaSearchCV TPE (n_jobs=2)",
                lambda s=seed, sp=optuna_space: OptunaSearchCV(
                    SVC(), sp, n_trials=BUDGET, cv=folds, n_jobs=2, random_state=s
                ).fit(X, y),
            )
    ray.shutdown()

    rows = [
        [
            "search (32 configurations, 5 folds)",
            "wall s (median)",
            "best CV accuracy (mean of seeds)",
            "folds' fit + score s, summed (median)",
            "wall / (summed / 2) (median)",
            "this process's CPU s (median)",
            "its workers' and Ray's CPU s (median)",
            "runs",
        ]
    ]
    for name, results in runs.items():
        walls, scores = [r[0] for r in results], [r[1] for r in results]
        works = [r[2] for r in results if r[2] is not None]
        # How close to two workers busy all the time: 1.0 when the wall is the fitting alone.
        packing = [r[0] / (r[2] / 2) for r in results if r[2]]
        spread = f" ± {statistics.stdev(scores):.4f}" if len(scores) > 1 else ""
        rows.append(
            [
                name,
                f"{statistics.median(walls):.1f}",
                f"{np.mean(scores):.4f}{spread}",
                f"{statistics.median(works):.1f}" if works else "-",
                f"{statistics.median(packing):.2f}" if packing else "-",
                f"{statistics.median(r[3] for r in results):.2f}",
                f"{statistics.median(r[4] for r in results):.2f}",
                str(len(results)),
            ]
        )
    rows.append(
        [
            "`ray.init()` of the local cluster, once (not in the above), s",
            f"{ray_start:.1f}",
            "-",
            "-",
            "-",
            "-",
            "-",
            "1",
        ]
    )
    body = (
        "## scikit-learn's search API (`benchmarks/searchcv.py`)\n\n"
        f"Command: `.venv/bin/python benchmarks/searchcv.py --seeds {args.seeds}`; machine: "
        f"{_report.machine()}. An RBF `SVC` on digits (inputs / 16), the same 5 stratified "
        f"folds, {BUDGET} configurations of C in [1e-2, 1e3] and gamma in [1e-5, 1e-1] (log "
        "scales; the grid 8 x 4 on the same ranges); the peers with n_jobs=2, hpo with 2 "
        "workers on a local Ray cluster started beforehand, each search recorded in sqlite; "
        "one small search of each tool before the timed ones (imports, and the worker "
        "processes both keep between searches: joblib's, hpo.SearchCV's `keep_workers`). "
        "Seeds 0.."
        f"{args.seeds - 1} for the random and model-based searches.\n\n" + _report.table(rows)
    )
    print(body)
    if not args.no_write:
        _report.write_section("searchcv", body)


if __name__ == "__main__":
    main()
