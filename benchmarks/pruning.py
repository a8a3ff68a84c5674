"""Pruning: compute saved and best value kept, on experiments/digits_tpe.py.

The same experiment, strategy (TPE) and number of trials, with each pruner and without one,
for several seeds. Compute = the sum of the trials' objective seconds (pruned and failed
trials included: their time was spent). Best = the best validation cross-entropy found.
Each pruner watches the experiment's per-epoch ``val_loss``. A pruner is a name or
"NAME:option=value,..." (``asha:min_resource=1``).

    .venv/bin/python benchmarks/pruning.py [--trials N] [--seeds 0 1 2] [--pruners ...]

The number of trials defaults to the experiment's own budget. The target (issue 5) is at least
2 times less compute with a best value within noise of the unpruned one; "within noise" is
taken here as: the pruned sweeps' mean best is no worse than the unpruned sweeps' mean best
plus one standard deviation of the unpruned bests across seeds.
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

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "digits_tpe.py"


def make(spec: str):
    """A pruner from "NAME" or "NAME:option=value,..." (e.g. "asha:resource=seconds")."""
    from hpo.strategies.pruners import make_pruner

    return make_pruner(spec)


def sweep(pruner: str, seed: int, trials: int, workdir: Path) -> dict[str, float]:
    import hpo
    from hpo.sweep.experiment_file import load_experiment

    exp = load_experiment(EXPERIMENT)
    start = time.perf_counter()
    result = hpo.run(
        exp.space,
        exp.objective,
        direction=exp.config.direction[0],  # the file's, checked, with its default
        strategy="tpe",
        n_trials=trials,
        seed=seed,
        data=exp.load_data(),
        tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}",
        experiment_name=f"pruning-{pruner}-{seed}",
        progress=False,
        pruner=make(pruner),
        prune_metric="val_loss",
    )
    return {
        "compute": sum((t.seconds or 0.0) for t in result.trials),
        "wall": time.perf_counter() - start,
        "best": result.best_value,
        "pruned": result.n_pruned,
        "failed": result.n_failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="default: the experiment's")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--pruners", nargs="+", default=["none", "median", "asha", "asha:min_resource=1"]
    )
    args = parser.parse_args()
    from hpo.sweep.experiment_file import load_experiment

    experiment = load_experiment(EXPERIMENT)
    direction = experiment.config.direction[0]
    args.trials = args.trials or experiment.config.n_trials

    results: dict[str, list[dict[str, float]]] = {p: [] for p in args.pruners}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-pruning-") as tmp:
        for seed in args.seeds:
            for pruner in args.pruners:
                r = sweep(pruner, seed, args.trials, Path(tmp))
                results[pruner].append(r)
                print(
                    f"seed {seed} {pruner:>6}: " + ", ".join(f"{k} {v:.4g}" for k, v in r.items())
                )

    base = results.get("none")
    base_compute = statistics.mean(r["compute"] for r in base) if base else None
    base_bests = [r["best"] for r in base] if base else []
    # The noise allowance: one standard deviation of the unpruned bests across seeds.
    allowance = statistics.stdev(base_bests) if len(base_bests) > 1 else 0.0
    rows = [
        [
            "pruner",
            "compute s (mean)",
            "compute s per seed",
            "compute saved",
            "best val_loss per seed",
            "best (mean ± sd)",
            "pruned",
            "failed",
            "wall s (mean)",
            "target met",
        ]
    ]
    for pruner, runs in results.items():
        compute = statistics.mean(r["compute"] for r in runs)
        bests = [r["best"] for r in runs]
        spread = statistics.stdev(bests) if len(bests) > 1 else 0.0
        saved, verdict = "", ""
        if base and pruner != "none":
            factor = base_compute / compute
            saved = f"{factor:.2f}x less"
            sign = 1 if direction == "minimize" else -1
            within = sign * (statistics.mean(bests) - statistics.mean(base_bests)) <= allowance
            misses = [
                *([] if factor >= 2 else ["less than 2x saved"]),
                *([] if within else ["best not within noise"]),
            ]
            verdict = "no: " + "; ".join(misses) if misses else "yes"
        rows.append(
            [
                pruner,
                f"{compute:.0f}",
                " / ".join(f"{r['compute']:.0f}" for r in runs),
                saved,
                " / ".join(f"{b:.4f}" for b in bests),
                f"{statistics.mean(bests):.4f} ± {spread:.4f}",
                f"{statistics.mean(r['pruned'] for r in runs):.1f}",
                f"{statistics.mean(r['failed'] for r in runs):.1f}",
                f"{statistics.mean(r['wall'] for r in runs):.0f}",
                verdict,
            ]
        )
    settings = "; ".join(
        f"`{spec}`: "
        + ", ".join(
            f"{k.removeprefix('pruner.')} {v}"
            for k, v in make(spec).settings().items()
            if k != "pruner"
        )
        for spec in args.pruners
        if spec != "none"
    )
    body = (
        "## Pruning on digits_tpe\n\n"
        f"`benchmarks/pruning.py --trials {args.trials} --seeds {' '.join(map(str, args.seeds))}"
        f" --pruners {' '.join(args.pruners)}` on {machine()}: TPE, {args.trials} trials per "
        f"sweep, 2 workers; compute is the sum of trial seconds. Pruner settings: {settings}. "
        "ASHA's automatic minimum resource is a ninth of the first completed trial's epochs "
        "(of its seconds with resource seconds). "
        "Target: at least 2x less compute with the mean best no worse than the unpruned mean "
        f"best plus one standard deviation of the unpruned bests ({allowance:.4f}).\n\n"
        + table(rows)
    )
    write_section("pruning", body)
    print(body)


if __name__ == "__main__":
    main()
