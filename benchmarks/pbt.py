"""Population-based training against Ray Tune's, on a task where a schedule helps.

The task: our `MLPClassifier` (64 hidden units) on the multi-fidelity benchmark's
synthetic task (``make_classification``, 6000 samples, 40 features, 6 classes, 5% of the
labels flipped; `benchmarks/multifidelity.py`), trained 40 epochs by plain SGD whose
learning rate is what is searched (log-uniform in [0.01, 1]). A schedule helps there: a
high rate learns fast and then rattles and overfits, a low one is slow. The script shows it
first (`schedule_probe`: a few constant rates against a high rate for 20 epochs then a
tenth of it, the validation loss at epoch 40, one fit each).

Methods, each a sweep on a local Ray cluster of 2 CPUs (2 trials at once), 8 members:

- hpo-pbt: ``strategy="pbt"`` (population 8, interval 4 epochs, quantile 0.25, factors 0.8
  and 1.2, resample probability 0.25);
- tune-pbt: Ray Tune's `PopulationBasedTraining` with the same settings (perturbation
  interval 4 training iterations, one per epoch; the same mutations);
- hpo-random: 8 random constant rates trained fully (no schedule): the baseline a
  schedule must beat.

Both PBTs checkpoint at the end of each interval only (the same training state, pickled)
and rank members by the validation log loss. Every epoch trained is counted (a line in a
file, written by the objective), so the table compares at the epochs actually spent: the
best validation loss of a member trained to its 40th epoch, at the end, with the epochs and
the wall time it took. Each (method, seed) runs in a fresh process.

    .venv/bin/python benchmarks/pbt.py [--seeds 0 1 ...] [--methods ...]

Target (issue 32): hpo's PBT is ahead of Ray Tune's at equal epochs on this task.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import machine, table, write_section  # noqa: E402

EPOCHS = 40
POPULATION = 8
INTERVAL = 4
LOW, HIGH = 0.01, 1.0
METHODS = ("hpo-pbt", "tune-pbt", "hpo-random")


def load_data():
    from multifidelity import load_task

    return load_task("synthetic")


def _model(learning_rate, callback):
    from models import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(64,),
        solver="sgd",
        momentum=0.0,
        learning_rate_init=learning_rate,
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,
        random_state=0,
        epoch_callback=callback,
    )


PROBE_CONSTANT = (0.1, 0.2, 0.3, 0.5, 1.0)
PROBE_STEPPED = ((0.3, 0.03), (0.5, 0.05), (1.0, 0.1))


def schedule_probe() -> list[list[str]]:
    """The validation loss at epoch 40 of constant rates and of stepped ones (the first
    rate for 20 epochs, then the second, going on from the 20th epoch's state)."""
    X_train, X_val, y_train, y_val = load_data()

    def final(schedule):
        state, last = None, {}
        for until, rate in schedule:

            def on_epoch(epoch, metrics, until=until):
                last["loss"] = metrics["val_loss"]
                last["state"] = last["model"].training_state()
                return epoch >= until

            last["model"] = _model(rate, on_epoch)
            last["model"].fit(X_train, y_train, eval_set=(X_val, y_val), resume_from=state)
            state = last["state"]
        return last["loss"]

    rows = [["learning rate", "validation loss at epoch 40"]]
    rows += [[f"{r:g}", f"{final([(EPOCHS, r)]):.4f}"] for r in PROBE_CONSTANT]
    rows += [
        [f"{a:g} then {b:g} from epoch 21", f"{final([(20, a), (EPOCHS, b)]):.4f}"]
        for a, b in PROBE_STEPPED
    ]
    return rows


def _count(log, epoch, val_loss):
    with open(log, "a") as f:
        f.write(f"{time.time()} {epoch} {val_loss}\n")


def hpo_objective(params, report, data):
    """Epochs reported 0..39; a checkpoint at the end of each interval (epochs 3, 7, ...)."""
    X_train, X_val, y_train, y_val = data["split"]
    last = {}

    def on_epoch(epoch, metrics):
        step = epoch - 1
        _count(data["log"], step, metrics["val_loss"])
        last.update(metrics)
        report(step, val_loss=metrics["val_loss"])
        if step % INTERVAL == INTERVAL - 1:
            report.checkpoint((model.training_state(), dict(last)))

    model = _model(params["learning_rate"], on_epoch)
    restored = report.restore()
    state = None
    if restored is not None:
        state, metrics = restored[0]
        last.update(metrics)
    model.fit(X_train, y_train, eval_set=(X_val, y_val), resume_from=state)
    return last["val_loss"]


def tune_trainable(config, data):
    import pickle

    from ray import tune

    X_train, X_val, y_train, y_val = data["split"]
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = pickle.loads(Path(folder, "state.pkl").read_bytes())

    def on_epoch(epoch, metrics):
        step = epoch - 1
        _count(data["log"], step, metrics["val_loss"])
        if step % INTERVAL == INTERVAL - 1:
            with tempfile.TemporaryDirectory() as folder:
                Path(folder, "state.pkl").write_bytes(pickle.dumps(model.training_state()))
                tune.report(
                    {"val_loss": metrics["val_loss"]},
                    checkpoint=tune.Checkpoint.from_directory(folder),
                )
        else:
            tune.report({"val_loss": metrics["val_loss"]})

    model = _model(config["learning_rate"], on_epoch)
    model.fit(X_train, y_train, eval_set=(X_val, y_val), resume_from=state)


def run_hpo(method: str, seed: int, data: dict, folder: Path) -> None:
    import hpo
    from hpo.space import Float

    space = {"learning_rate": Float(LOW, HIGH, log=True)}
    if method == "hpo-pbt":
        strategy = hpo.make_strategy(
            "pbt", space, seed=seed, population=POPULATION, interval=INTERVAL, quantile=0.25
        )
    else:
        strategy = hpo.make_strategy("random", space, seed=seed)
    hpo.run(
        space,
        hpo_objective,
        strategy=strategy,
        n_trials=POPULATION,
        workers=2,
        data=data,
        tracking_uri=f"sqlite:///{folder}/mlflow.db",
        experiment_name=method,
        prune_metric="val_loss",
        progress=False,
    )


def run_tune(seed: int, data: dict, folder: Path) -> None:
    import random

    import numpy as np
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    random.seed(seed)  # Ray's PBT draws its perturbations from Python's generator
    np.random.seed(seed)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=INTERVAL,
        hyperparam_mutations={"learning_rate": tune.loguniform(LOW, HIGH)},
        quantile_fraction=0.25,
        resample_probability=0.25,
        perturbation_factors=(1.2, 0.8),
    )
    tuner = tune.Tuner(
        tune.with_parameters(tune_trainable, data=data),
        param_space={"learning_rate": tune.loguniform(LOW, HIGH)},
        tune_config=tune.TuneConfig(
            scheduler=scheduler, metric="val_loss", mode="min", num_samples=POPULATION
        ),
        run_config=tune.RunConfig(
            stop={"training_iteration": EPOCHS},
            storage_path=str(folder / "tune"),
            verbose=0,
        ),
    )
    tuner.fit()
    ray.shutdown()


def one(method: str, seed: int) -> dict:
    """One search in this (fresh) process: its epochs, its best fully trained loss, its time."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray import cloudpickle

    # The objectives go to Ray's workers by value: they cannot import this script.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = {"split": load_data(), "log": str(folder / "epochs.log")}
        started = time.perf_counter()
        if method == "tune-pbt":
            run_tune(seed, data, folder)
        else:
            run_hpo(method, seed, data, folder)
        seconds = time.perf_counter() - started
        lines = [line.split() for line in Path(data["log"]).read_text().splitlines()]
    rows = sorted((float(t), int(e), float(v)) for t, e, v in lines)
    finals = [v for _, e, v in rows if e == EPOCHS - 1]
    return {
        "method": method,
        "seed": seed,
        "epochs": len(rows),
        "best": min(finals) if finals else float("nan"),
        "members_done": len(finals),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--save", type=Path, help="write every run's figures as JSON")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md")
    parser.add_argument("--load", type=Path, help="make the section from a --save file")
    args = parser.parse_args()
    probe = schedule_probe()
    print(table(probe), flush=True)
    context = multiprocessing.get_context("spawn")
    results = json.loads(args.load.read_text()) if args.load else []
    for seed in [] if args.load else args.seeds:
        for method in args.methods:
            pool = context.Pool(1)  # a fresh process: one Ray cluster per search
            try:
                result = pool.apply(one, (method, seed))
            finally:  # let it end by itself (terminating it interrupts Ray's shutdown)
                pool.close()
                pool.join()
            results.append(result)
            print(json.dumps(result), flush=True)
    if args.save:
        args.save.write_text(json.dumps(results, indent=1))
    body = report(results, args.seeds, probe)
    print(body)
    if not args.no_write:
        write_section("pbt", body)


def report(results: list[dict], seeds: list[int], probe: list[list[str]]) -> str:
    by = {(r["method"], r["seed"]): r for r in results}
    methods = [m for m in METHODS if any(r["method"] == m for r in results)]
    rows = [
        [
            "method",
            "best val loss (mean)",
            "median",
            "epochs (mean)",
            "trainings to epoch 40",
            "wall s (mean)",
        ]
    ]
    for m in methods:
        runs = [by[(m, s)] for s in seeds if (m, s) in by]
        rows.append(
            [
                m,
                f"{statistics.mean(r['best'] for r in runs):.4f}",
                f"{statistics.median(r['best'] for r in runs):.4f}",
                f"{statistics.mean(r['epochs'] for r in runs):.0f}",
                f"{statistics.mean(r['members_done'] for r in runs):.1f}",
                f"{statistics.mean(r['seconds'] for r in runs):.1f}",
            ]
        )
    lines = [
        "## Population-based training",
        "",
        f"`benchmarks/pbt.py`, {len(seeds)} seeds, {machine()}. " + __doc__.split("\n\n")[1],
        "",
        table(probe),
        "",
        "\n\n".join(__doc__.split("\n\n")[2:5]),
        "",
        table(rows),
    ]
    pairs = [s for s in seeds if ("hpo-pbt", s) in by and ("tune-pbt", s) in by]
    if pairs:
        wins = sum(by[("hpo-pbt", s)]["best"] < by[("tune-pbt", s)]["best"] for s in pairs)
        ratio = statistics.mean(
            by[("hpo-pbt", s)]["epochs"] / by[("tune-pbt", s)]["epochs"] for s in pairs
        )
        ours = statistics.mean(by[("hpo-pbt", s)]["best"] for s in pairs)
        theirs = statistics.mean(by[("tune-pbt", s)]["best"] for s in pairs)
        met = ours < theirs and ratio <= 1.0
        lines += [
            "",
            f"hpo-pbt has the lower best loss on {wins} of {len(pairs)} seeds, spending "
            f"{ratio:.2f} times Ray Tune's epochs; target (ahead at equal epochs): "
            f"{'met' if met else 'NOT met'}.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
