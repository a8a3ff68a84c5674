"""Resources per trial, measured on a local Ray cluster of 4 logical CPUs.

1. Fresh worker processes: an objective that leaks 40 MB a trial (a module-level list, as
   a framework's caches do) runs 16 trials on 2 workers, with and without
   ``max_trials_per_worker=4``; each trial reports its worker's resident memory (VmRSS).
2. Mixed resources: 2-CPU trials on the 4-CPU cluster: how many run at once (from each
   trial's start and end) and how many BLAS threads each trial has.

    .venv/bin/python benchmarks/trial_resources.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _report
import numpy as np

import hpo
from hpo.space import Float

LEAK_MB = 40
KEPT: list[np.ndarray] = []  # per worker process: what the leaking objective holds on to


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def leaking(params, report):
    KEPT.append(np.ones(LEAK_MB * 2**20 // 8))  # touched: resident
    report(0, rss_mb=resident_mb(), held=len(KEPT))
    return params["x"]


def two_threads(params, report):
    from threadpoolctl import threadpool_info

    began = time.time()
    x = np.random.default_rng(0).standard_normal((600, 600))
    for _ in range(20):  # BLAS work for the threads to show in
        x = x @ x / np.linalg.norm(x)
    time.sleep(1.0)
    threads = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    report(0, began=began, ended=time.time(), blas_threads=threads)
    return params["x"]


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(b, 1) for b, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=4, include_dashboard=False, logging_level="ERROR")
    store = tempfile.mkdtemp(prefix="hpo-bench-resources-")
    common = {"tracking_uri": f"sqlite:///{store}/mlflow.db", "progress": False, "seed": 0}
    space = {"x": Float(0.0, 1.0)}

    memory = {}
    for label, every in (("never", None), ("every 4 trials", 4)):
        result = hpo.run(
            space,
            leaking,
            n_trials=args.trials,
            workers=2,
            max_trials_per_worker=every,
            experiment_name="leak",
            **common,
        )
        rss = [t.last("rss_mb") for t in result.trials]
        memory[label] = (max(rss), rss[-1], max(t.last("held") for t in result.trials))
        print(label, [round(r) for r in rss])

    result = hpo.run(
        space,
        two_threads,
        n_trials=6,
        resources={"cpu": 2},
        experiment_name="mixed",
        **common,
    )
    spans = [(t.last("began"), t.last("ended")) for t in result.trials]
    threads = sorted({int(t.last("blas_threads")) for t in result.trials})
    workers = result.settings.get("workers")
    print("at once", most_at_once(spans), "threads", threads, "workers", workers)
    ray.shutdown()

    rows = [["measure", "value"]]
    for label, (peak, last, held) in memory.items():
        rows.append(
            [
                f"worker resident memory, replaced {label}: peak / last trial, MB",
                f"{peak:.0f} / {last:.0f} (at most {held:.0f} leaks held)",
            ]
        )
    rows.append(["2-CPU trials on 4 CPUs: workers started", str(workers)])
    rows.append(["2-CPU trials on 4 CPUs: most running at once", str(most_at_once(spans))])
    rows.append(["2-CPU trials: BLAS threads inside each trial", ", ".join(map(str, threads))])
    body = (
        "## Resources per trial (`benchmarks/trial_resources.py`)\n\n"
        f"Command: `.venv/bin/python benchmarks/trial_resources.py --trials {args.trials}`; "
        f"machine: {_report.machine()}. A local Ray cluster of 4 logical CPUs. An objective "
        f"that leaks {LEAK_MB} MB a trial (a module-level list in its worker process) runs "
        f"{args.trials} trials on 2 workers; each trial reports its worker's VmRSS after "
        "leaking. Then 6 trials of `resources={'cpu': 2}` (BLAS products, then a 1 s "
        "sleep), their start and end times giving how many ran at once.\n\n" + _report.table(rows)
    )
    print(body)
    if not args.no_write:
        _report.write_section("trial-resources", body)


if __name__ == "__main__":
    main()
