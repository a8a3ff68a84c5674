"""Sweep overhead per trial against the MLflow floor, and parallel efficiency.

Protocol (shared/docs/benchmarks.md): a no-op objective reporting 10 steps, N trials on 2
workers with a sqlite store; overhead per trial = (wall - ideal) / N with ideal = sum of
objective times / workers. The MLflow floor is a minimal run (create_run, one log_batch of
2 params and 20 metric points, set_terminated) timed in this same process on its own sqlite
store: in sqlite's default journal mode (the protocol's floor) and in the write-ahead-log
mode hpo switches its store to (hpo's overhead over the same store). The peers, where
installed, run the same objective in the same run: Optuna TPE with optuna-integration's
MLflowCallback (sequential, as Optuna runs in one process) and Ray Tune with
MLflowLoggerCallback on the same 2-CPU cluster; their cost per trial is wall / N (their
objective time is nil). Parallel efficiency = ideal / wall for 0.5 s CPU-bound trials.

    .venv/bin/python benchmarks/overhead.py [--trials 200] [--tune-trials 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine, table, write_section  # noqa: E402


def noop(params, report):
    for step in range(10):
        report(step, loss=params["x"] / (step + 1))
    return params["x"]


def cpu_bound(params, report):
    # Busy for 0.5 s of this thread's CPU time: real work, not sleep.
    end = time.thread_time() + 0.5
    x = 0.0
    while time.thread_time() < end:
        x += sum(i * i for i in range(1000)) * 1e-12
    report(0, work=x)
    return params["x"]


def mlflow_floor(n: int, workdir: Path, wal: bool = False) -> float:
    """Seconds per minimal run on a fresh sqlite store (schema creation not timed); with
    ``wal``, on a store switched to write-ahead logging as hpo switches its own."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from hpo.tracking.store import use_write_ahead_log

    db = workdir / ("floor-wal.db" if wal else "floor.db")
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("floor", artifact_location=(workdir / "floor-art").as_uri())
    if wal:
        assert use_write_ahead_log(db), db
    start = time.perf_counter()
    for i in range(n):
        run = client.create_run(exp)
        ts = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            params=[Param("a", str(i)), Param("b", "x")],
            metrics=[Metric(f"m{k % 2}", float(k), ts, k // 2) for k in range(20)],
        )
        client.set_terminated(run.info.run_id)
    return (time.perf_counter() - start) / n


def optuna_with_mlflow(n: int, workdir: Path) -> float | None:
    """Seconds per trial of Optuna TPE logging to MLflow through its callback."""
    try:
        from optuna_integration.mlflow import MLflowCallback
    except ImportError:
        return None
    import optuna
    from mlflow.tracking import MlflowClient

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    uri = f"sqlite:///{workdir / 'optuna.db'}"
    MlflowClient(uri).search_experiments()  # schema created beforehand, as for hpo

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(10):
            trial.report(x / (step + 1), step)
        return x

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated since Optuna 4.9, still there
        callback = MLflowCallback(tracking_uri=uri, metric_name="value")
    study = optuna.create_study(
        study_name=f"optuna-{workdir.name}", sampler=optuna.samplers.TPESampler(seed=0)
    )
    start = time.perf_counter()
    study.optimize(objective, n_trials=n, callbacks=[callback])
    return (time.perf_counter() - start) / n


def tune_noop(config):
    from ray import tune

    for step in range(10):
        tune.report({"loss": config["x"] / (step + 1)})


def ray_tune_with_mlflow(n: int, workdir: Path) -> float | None:
    """Seconds per trial of Ray Tune logging to MLflow through MLflowLoggerCallback."""
    try:
        from ray import tune
        from ray.air.integrations.mlflow import MLflowLoggerCallback
    except ImportError:
        return None
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{workdir / 'tune.db'}"
    MlflowClient(uri).search_experiments()
    tuner = tune.Tuner(
        tune_noop,
        param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(num_samples=n, max_concurrent_trials=2),
        run_config=tune.RunConfig(
            storage_path=str(workdir / "tune"),
            verbose=0,
            callbacks=[MLflowLoggerCallback(tracking_uri=uri, experiment_name="tune")],
        ),
    )
    start = time.perf_counter()
    results = tuner.fit()
    seconds = (time.perf_counter() - start) / n
    assert results.num_errors == 0, results.errors
    return seconds


def sweep(objective, n: int, workers: int, workdir: Path, name: str) -> tuple[float, float]:
    """(wall seconds, ideal seconds) of one sweep on the running Ray cluster."""
    import hpo
    from hpo.space import Float

    uri = f"sqlite:///{workdir / 'hpo.db'}"
    # The store's schema is created once, as for any user; not part of a sweep's cost.
    from mlflow.tracking import MlflowClient

    MlflowClient(uri).search_experiments()
    start = time.perf_counter()
    result = hpo.run(
        {"x": Float(0.0, 1.0)},
        objective,
        n_trials=n,
        workers=workers,
        seed=0,
        tracking_uri=uri,
        experiment_name=name,
        progress=False,
    )
    wall = time.perf_counter() - start
    assert result.n_complete == n, result.summary()
    ideal = sum(t.seconds for t in result.trials) / workers
    return wall, ideal


def repeats_row(label: str, values: list[float], fmt: str, target: str = "-") -> list[str]:
    """A table row: the label, the median of the repeats, each repeat, the target."""
    return [
        label,
        format(statistics.median(values), fmt),
        ", ".join(format(v, fmt) for v in values),
        target,
    ]


def peer_rows(overheads: list[float], peers: list[tuple[str, list]]) -> list[list[str]]:
    """A row per measured peer (ms per trial) and one for hpo's speed against it."""
    rows = []
    for label, costs in peers:
        if not costs or None in costs:
            continue
        rows.append(repeats_row(f"{label}, ms/trial", [c * 1e3 for c in costs], ".1f"))
        # Medians only: the peers run after all of hpo's repeats, so repeat r of one is not
        # paired with repeat r of the other.
        rows.append(
            [
                f"{label.split(' (')[0]} per trial / hpo overhead per trial (medians)",
                f"{statistics.median(costs) / statistics.median(overheads):.2f}",
                "-",
                "-",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument(
        "--cpu-trials",
        type=int,
        nargs="+",
        default=[40, 100],
        help="sweep sizes for the parallel-efficiency measurement",
    )
    parser.add_argument(
        "--tune-trials",
        type=int,
        default=40,
        help="trials for Ray Tune (about 1.4 s each here); 0 leaves it out",
    )
    parser.add_argument("--no-optuna", action="store_true", help="leave Optuna out")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray_start = time.perf_counter() - t0

    floors, wal_floors, overheads, optunas, tunes = [], [], [], [], []
    effs: dict[int, list[float]] = {n: [] for n in args.cpu_trials}
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            floors.append(mlflow_floor(args.trials, work))
            wal_floors.append(mlflow_floor(args.trials, work, wal=True))
            wall, ideal = sweep(noop, args.trials, 2, work, f"noop{r}")
            overheads.append((wall - ideal) / args.trials)
            for n in args.cpu_trials:
                wall, ideal = sweep(cpu_bound, n, 2, work, f"cpu{n}-{r}")
                effs[n].append(ideal / wall)
        efficiencies = ", ".join(f"{v[-1]:.3f}" for v in effs.values())
        print(
            f"repeat {r}: floor {floors[-1] * 1e3:.1f} ms (WAL {wal_floors[-1] * 1e3:.1f}), "
            f"overhead {overheads[-1] * 1e3:.1f} "
            f"ms/trial, efficiency {efficiencies}",
            flush=True,
        )
    # The peers after all of hpo's repeats: Ray Tune leaves worker processes behind that
    # would otherwise share the cores with the next repeat's sweeps.
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            if not args.no_optuna:
                optunas.append(optuna_with_mlflow(args.trials, Path(tmp)))
            if args.tune_trials:
                tunes.append(ray_tune_with_mlflow(args.tune_trials, Path(tmp)))
        peers = ", ".join(
            f"{name} {v[-1] * 1e3:.1f} ms/trial"
            for name, v in (("Optuna+MLflow", optunas), ("Ray Tune+MLflow", tunes))
            if v and v[-1] is not None
        )
        print(f"peers, repeat {r}: {peers or 'none measured'}", flush=True)
    ray.shutdown()

    ms = [[v * 1e3 for v in values] for values in (floors, wal_floors, overheads)]
    rows = [
        ["measure", "median", "all repeats", "target"],
        repeats_row("MLflow floor (minimal run, sqlite), ms/run", ms[0], ".1f"),
        repeats_row("MLflow floor on a sqlite store in WAL mode (as hpo's), ms/run", ms[1], ".1f"),
        repeats_row(
            f"hpo overhead per trial ({args.trials} no-op trials, 10 reports, 2 workers), ms",
            ms[2],
            ".1f",
        ),
        # Each repeat's sweep against the floor measured just before it, on the same machine
        # state; the median of those pairs, not a ratio of two medians.
        repeats_row(
            "overhead / MLflow floor (median of each repeat's ratio)",
            [o / f for o, f in zip(overheads, floors, strict=True)],
            ".2f",
            "<= 1.2",
        ),
        repeats_row(
            "overhead / MLflow floor in WAL mode (median of each repeat's ratio)",
            [o / f for o, f in zip(overheads, wal_floors, strict=True)],
            ".2f",
        ),
        *peer_rows(
            overheads,
            [
                (f"Optuna TPE + MLflowCallback ({args.trials} trials, sequential)", optunas),
                (f"Ray Tune + MLflowLoggerCallback ({args.tune_trials} trials, 2 CPUs)", tunes),
            ],
        ),
        *[
            repeats_row(
                f"parallel efficiency ({n} trials of 0.5 s CPU, 2 workers)", v, ".3f", ">= 0.9"
            )
            for n, v in effs.items()
        ],
        [
            "`ray.init()` of the local cluster, s (once per process, not in the above)",
            f"{ray_start:.1f}",
            "-",
            "-",
        ],
    ]
    body = "\n".join(
        [
            "## Sweep overhead (`benchmarks/overhead.py`)",
            "",
            f"Command: `.venv/bin/python benchmarks/overhead.py --trials {args.trials} "
            f"--cpu-trials {' '.join(map(str, args.cpu_trials))} --tune-trials {args.tune_trials} "
            f"--repeats {args.repeats}`; "
            f"machine: {machine()}.",
            "Wall time of `hpo.run` includes creating the experiment and parent run, starting the "
            "worker actors, every child run with its curve PNG artifact, and the sweep's closing "
            "artifacts; the Ray cluster is started once beforehand. hpo switches a sqlite store "
            "to write-ahead logging (WAL) before its first write; the floor is measured twice, "
            "on a store left in sqlite's default rollback-journal mode (the protocol's floor, "
            "which the target is against) and on one switched to WAL like hpo's, so the second "
            "ratio is hpo's own overhead over the same store. The peers run the same "
            "no-op objective (10 reports) in this run, each on its own sqlite store, after all "
            "of hpo's repeats. Per trial, Optuna's callback logs the params and the final value "
            "only; Ray Tune's logs the params and every report with Tune's own fields (10 "
            "metrics a report), no figure. Their cost per trial is wall / trials. A peer missing "
            "here was left out by an option or not installed (`make bench` installs "
            "optuna-integration).",
            "",
            table(rows),
        ]
    )
    print(body)
    if not args.no_write:
        write_section("overhead", body)


if __name__ == "__main__":
    main()
