"""Sweep overhead per trial against the MLflow floor, and parallel efficiency.

Protocol (shared/docs/benchmarks.md): a no-op objective reporting 10 steps, N trials on 2
workers with a sqlite store; overhead per trial = (wall - ideal) / N with ideal = sum of
objective times / workers. The MLflow floor is a minimal run (create_run, one log_batch of
2 params and 20 metric points, set_terminated) timed in this same process on its own sqlite
store. Parallel efficiency = ideal / wall for 0.5 s CPU-bound trials.

    .venv/bin/python benchmarks/overhead.py [--trials 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
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


def mlflow_floor(n: int, workdir: Path) -> float:
    """Seconds per minimal run on a fresh sqlite store (schema creation not timed)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'floor.db'}")
    exp = client.create_experiment("floor", artifact_location=(workdir / "floor-art").as_uri())
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
    ideal = sum(t.attrs["seconds"] for t in result.trials) / workers
    return wall, ideal


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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray_start = time.perf_counter() - t0

    floors, overheads = [], []
    effs: dict[int, list[float]] = {n: [] for n in args.cpu_trials}
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            floors.append(mlflow_floor(args.trials, work))
            wall, ideal = sweep(noop, args.trials, 2, work, f"noop{r}")
            overheads.append((wall - ideal) / args.trials)
            for n in args.cpu_trials:
                wall, ideal = sweep(cpu_bound, n, 2, work, f"cpu{n}-{r}")
                effs[n].append(ideal / wall)
        efficiencies = ", ".join(f"{v[-1]:.3f}" for v in effs.values())
        print(
            f"repeat {r}: floor {floors[-1] * 1e3:.1f} ms, overhead {overheads[-1] * 1e3:.1f} "
            f"ms/trial, efficiency {efficiencies}",
            flush=True,
        )
    ray.shutdown()

    floor, overhead = statistics.median(floors), statistics.median(overheads)
    rows = [
        ["measure", "median", "all repeats", "target"],
        [
            "MLflow floor (minimal run, sqlite), ms/run",
            f"{floor * 1e3:.1f}",
            ", ".join(f"{v * 1e3:.1f}" for v in floors),
            "-",
        ],
        [
            f"hpo overhead per trial ({args.trials} no-op trials, 10 reports, 2 workers), ms",
            f"{overhead * 1e3:.1f}",
            ", ".join(f"{v * 1e3:.1f}" for v in overheads),
            "-",
        ],
        [
            "overhead / MLflow floor",
            f"{overhead / floor:.2f}",
            ", ".join(f"{o / f:.2f}" for o, f in zip(overheads, floors, strict=True)),
            "<= 1.2",
        ],
        *[
            [
                f"parallel efficiency ({n} trials of 0.5 s CPU, 2 workers)",
                f"{statistics.median(v):.3f}",
                ", ".join(f"{x:.3f}" for x in v),
                ">= 0.9",
            ]
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
            f"--cpu-trials {' '.join(map(str, args.cpu_trials))} --repeats {args.repeats}`; "
            f"machine: {machine()}.",
            "Wall time of `hpo.run` includes creating the experiment and parent run, starting the "
            "worker actors, every child run with its curve PNG artifact, and the sweep's closing "
            "artifacts; the Ray cluster is started once beforehand. Reference figures for the "
            "peers on this class of machine (shared/docs/benchmarks.md, not re-measured here): "
            "Ray Tune with MLflowLoggerCallback about 3,060 ms per trial, Optuna with its "
            "MLflow callback about 96 ms per trial.",
            "",
            table(rows),
        ]
    )
    print(body)
    if not args.no_write:
        write_section("overhead", body)


if __name__ == "__main__":
    main()
