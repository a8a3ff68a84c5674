"""Scale on the multi-machine form: trials per second and tracking lag with 2, 8 and 32
workers, hpo against Optuna + its MLflowCallback and Ray Tune + its MLflowLoggerCallback.

Protocol: docker-compose.yml's topology on namespace hosts (`tests/integration/compose_cluster.py`:
PostgreSQL, an S3 stand-in, the MLflow server on PostgreSQL, a Ray head, two Ray worker
hosts, and a driver host), the worker hosts counting 16 CPUs each as Ray sees them so that
32 cheap trials run at once on this 2-core machine. Each system runs from the driver host
as the compose file's `sweep` service runs things, records into the same MLflow server, and
runs the same cheap trial (`benchmarks/cluster_noop.py`: ten reported steps, the last with
the wall-clock time the trial ended, `t_end`).

- Trials per second: n / (the last run FINISHED in the store - the first trial's t_end),
  the rate trials are run and recorded once the sweep runs (start-up left out, the same for
  every system; a sweep that runs trials faster than it records them is held to the rate
  it records them at).
- Tracking lag: from a trial's t_end to its run being FINISHED in the store, seen by polling
  PostgreSQL itself every 0.1 s (no load on the MLflow server): median, 95th percentile, max.
  And its first part: to the end time the run records (hpo's: when the driver learnt that
  the trial ended; the rest is the writer's; a peer's callback stamps it as it writes).

hpo runs `hpo run` with the random strategy and W workers. Optuna runs its RandomSampler
with n_jobs=W threads in one process (its parallelism on one machine) and logs each trial
when it ends (params, value, t_end as a tag; not the steps). Ray Tune runs W concurrent
trials on the cluster (one CPU each), its callback logging each reported result.

    sudo .venv/bin/python benchmarks/cluster.py [--workers 2 8 32] [--trials 400]
        [--tune-trials 64] [--no-write]

Needs root (namespace hosts), Debian's PostgreSQL, moto's server (dev extra), and for the
Optuna peer optuna-integration (`make bench` installs it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

NOOP = "benchmarks/cluster_noop.py"


def optuna_peer(workers: int, trials: int, experiment: str) -> None:
    import optuna
    from optuna_integration.mlflow import MLflowCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(10):
            trial.report(x / (step + 1), step)
        trial.set_user_attr("t_end", time.time())
        return x

    callback = MLflowCallback(tracking_uri=os.environ["MLFLOW_TRACKING_URI"], metric_name="value")
    study = optuna.create_study(study_name=experiment, sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=trials, n_jobs=workers, callbacks=[callback])


def tune_trial(config):
    from ray import tune

    for step in range(9):
        tune.report({"loss": config["x"] / (step + 1)})
    tune.report({"loss": config["x"] / 10, "t_end": time.time()})


def tune_peer(workers: int, trials: int, experiment: str) -> None:
    import ray
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    ray.init(address=os.environ["RAY_ADDRESS"], logging_level="ERROR")
    logger = MLflowLoggerCallback(
        tracking_uri=os.environ["MLFLOW_TRACKING_URI"], experiment_name=experiment
    )
    tuner = tune.Tuner(
        tune.with_resources(tune_trial, {"cpu": 1}),
        param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=workers),
        run_config=tune.RunConfig(
            storage_path=tempfile.mkdtemp(prefix="tune-"), callbacks=[logger], verbose=0
        ),
    )
    tuner.fit()


class StoreWatch:
    """When each run of an experiment became FINISHED in PostgreSQL, polled every 0.1 s."""

    def __init__(self, dsn: str) -> None:
        import psycopg2

        self.db = psycopg2.connect(dsn)
        self.db.autocommit = True
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        with self.db.cursor() as cursor:
            while not self.stop.wait(0.1):
                cursor.execute("SELECT run_uuid FROM runs WHERE status = 'FINISHED'")
                now = time.time()
                for (run,) in cursor.fetchall():
                    self.seen.setdefault(run, now)

    def ends(self, experiment: str) -> dict[str, float]:
        """Each trial run's t_end (a metric, or a tag for Optuna's callback)."""
        query = """
            SELECT r.run_uuid, m.value::text FROM runs r
              JOIN experiments e ON e.experiment_id = r.experiment_id
              JOIN latest_metrics m ON m.run_uuid = r.run_uuid AND m.key = 't_end'
             WHERE e.name = %(name)s
            UNION ALL
            SELECT r.run_uuid, t.value FROM runs r
              JOIN experiments e ON e.experiment_id = r.experiment_id
              JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 't_end'
             WHERE e.name = %(name)s
        """
        with self.db.cursor() as cursor:
            cursor.execute(query, {"name": experiment})
            return {run: float(value) for run, value in cursor.fetchall()}

    def end_times(self, experiment: str) -> dict[str, float]:
        """Each run's end time as its writer gave it (the driver's clock, when it learnt
        that the trial ended)."""
        query = """
            SELECT r.run_uuid, r.end_time FROM runs r
              JOIN experiments e ON e.experiment_id = r.experiment_id
             WHERE e.name = %(name)s AND r.end_time IS NOT NULL
        """
        with self.db.cursor() as cursor:
            cursor.execute(query, {"name": experiment})
            return {run: end / 1000 for run, end in cursor.fetchall()}

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.db.close()


def measure(cluster, watch: StoreWatch, system: str, workers: int, trials: int) -> dict:
    experiment = f"{system}-{workers}"
    if system == "hpo":
        argv = ["hpo", "run", NOOP, "--workers", str(workers), "--trials", str(trials)]
        argv += ["--experiment-name", experiment, "--seed", "0", "--no-progress"]
    else:
        argv = ["python", "benchmarks/cluster.py", "--peer", system, "--workers", str(workers)]
        argv += ["--trials", str(trials), "--experiment", experiment]
    cluster.sweep(argv, timeout=1800)
    deadline = time.monotonic() + 30
    ends = watch.ends(experiment)
    while not set(ends) <= set(watch.seen) and time.monotonic() < deadline:
        time.sleep(0.2)  # the last writes are in; the poll may not have seen them yet
    ends = watch.ends(experiment)
    assert len(ends) == trials, f"{system}: {len(ends)} of {trials} trials in the store"
    lags = sorted(watch.seen[run] - t for run, t in ends.items())
    span = max(watch.seen[run] for run in ends) - min(ends.values())
    end_times = watch.end_times(experiment)
    # The lag's first part: from the trial's end on its worker to its end time in the record.
    to_end = statistics.median(end_times[run] - t for run, t in ends.items() if run in end_times)
    return {
        "rate": trials / span,
        "median": statistics.median(lags),
        "p95": lags[int(0.95 * (len(lags) - 1))],
        "max": lags[-1],
        "to_end": to_end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--trials", type=int, default=400, help="trials of hpo and Optuna")
    parser.add_argument("--tune-trials", type=int, default=64, help="trials of Ray Tune")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md")
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=["hpo", "optuna", "tune"],
        default=["hpo", "optuna", "tune"],
        help="the systems to run (the table is written only when all three ran)",
    )
    parser.add_argument("--peer", choices=["optuna", "tune"], help=argparse.SUPPRESS)
    parser.add_argument("--experiment", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:  # run on the driver host by the benchmark itself
        peer = optuna_peer if args.peer == "optuna" else tune_peer
        peer(args.workers[0], args.trials, args.experiment)
        return

    from _report import machine, table, write_section
    from compose_cluster import VALUES, Cluster

    cluster = Cluster(worker_cpus=16)
    results: dict[tuple[str, int], dict] = {}
    try:
        address = cluster.hosts.address["postgres"]
        watch = StoreWatch(
            f"host={address} dbname=mlflow user={VALUES['POSTGRES_USER']} "
            f"password={VALUES['POSTGRES_PASSWORD']}"
        )
        for workers in args.workers:
            for system in args.systems:
                trials = args.tune_trials if system == "tune" else args.trials
                results[system, workers] = r = measure(cluster, watch, system, workers, trials)
                print(
                    f"{system:6} {workers:2} workers: {r['rate']:6.1f} trials/s, lag median "
                    f"{r['median']:.2f} s (to end time {r['to_end']:.2f} s), p95 {r['p95']:.2f} s, "
                    f"max {r['max']:.2f} s",
                    flush=True,
                )
        watch.close()
    finally:
        cluster.close()
    if len(args.systems) < 3:
        return

    names = {"hpo": "hpo", "optuna": "Optuna + MLflowCallback", "tune": "Ray Tune + MLflowLogger"}
    rows = [["workers", "system", "trials", "trials/s", "lag median (s)", "lag p95 (s)", "max"]]
    rows[0].append("to the recorded end time, median (s)")
    for workers in args.workers:
        for system in names:
            r = results[system, workers]
            trials = args.tune_trials if system == "tune" else args.trials
            rows.append(
                [str(workers), names[system], str(trials), f"{r['rate']:.1f}"]
                + [f"{r[k]:.2f}" for k in ("median", "p95", "max", "to_end")]
            )
    ratios = [["workers", "hpo trials/s over the better peer (target at least 3)"]]
    for workers in args.workers:
        better = max(results["optuna", workers]["rate"], results["tune", workers]["rate"])
        ratios.append([str(workers), f"{results['hpo', workers]['rate'] / better:.1f}x"])
    body = (
        "## Scale on the multi-machine form (`benchmarks/cluster.py`)\n\n"
        f"{machine()}. `sudo .venv/bin/python benchmarks/cluster.py --workers "
        f"{' '.join(map(str, args.workers))} --trials {args.trials} --tune-trials "
        f"{args.tune_trials}`: docker-compose.yml's services on namespace hosts, the MLflow "
        "server on PostgreSQL, the worker hosts counting 16 CPUs each; the protocol is in the "
        "script's docstring. Targets: hpo's tracking lag under 2 s at 32 workers; hpo at "
        "least 3 times the trials per second of the better peer.\n\n"
        f"{table(rows)}\n\n{table(ratios)}\n"
    )
    print(body)
    if not args.no_write:
        write_section("cluster", body)


if __name__ == "__main__":
    main()
