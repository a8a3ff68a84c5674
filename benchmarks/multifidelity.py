"""Multi-fidelity search: the best validation loss against the training epochs spent.

Real training, no surrogate: `models.MLPClassifier` (Adam, one hidden layer) for up to 100
epochs, its validation log loss reported after every epoch, on two tasks:

- digits: scikit-learn's digits (1797 images, 80/20 split);
- synthetic: ``make_classification`` (6000 samples, 40 features of which 20 informative,
  6 classes, 75/25 split), standardised: larger, noisier, slower to learn.

The space: learning rate log-uniform in [1e-4, 0.3], hidden units log-int in [16, 256],
batch size log-int in [16, 256], L2 penalty log-uniform in [1e-7, 0.1]. A trial's value is
its lowest validation loss over the epochs it trained; a sweep's best at E epochs is the
best value of the trials that trained the full 100 epochs within the first E epochs spent
(a configuration one has trained fully), the anytime curve read at 10, 30 and 100 full
trainings' epochs (1000, 3000, 10000).

Each method is driven in this process, one trial at a time, through the same objects
`hpo.run` uses (the strategy's ask/tell, the pruner's report/complete, each trial's curve
as the sweep's lifecycle keeps it), so the table compares the searches per epoch; the wall
time of a sweep at 2 workers is the other section's. Peers in the same run: Optuna's TPE
with its HyperbandPruner (defaults: min_resource 1, max_resource auto, factor 3); Ray
Tune's ASHAScheduler (grace period 1, factor 3) and HyperBandScheduler (factor 3) over its
random search, and its BOHB (TuneBOHB with HyperBandForBOHB, factor 3; needs `hpbandster`
and `ConfigSpace`, which `make bench` installs), on a Ray cluster of one CPU (one trial at a
time, as the others), with ``reuse_actors=True`` (without it each trial starts a process,
and a search of 200 epochs took 117 s instead of 10 s here), stopped once the budget's
epochs are spent (`tune-asha`, `tune-hyperband`, `tune-bohb`: not in the default methods,
`--methods ... tune-asha` adds them; their seconds include Tune's own cost per trial). The
trainable keeps no checkpoint, as in Tune's own examples of these schedulers: a trial that
Tune's HyperBand pauses and resumes trains again from its first epoch, and those epochs are
counted.

    .venv/bin/python benchmarks/multifidelity.py [--seeds 0 1 ...] [--tasks digits ...]
        [--methods ...] [--budget 100] [--save FILE] [--load FILE ...] [--section NAME]

Every search's curve is a short list of (epochs spent, best so far); ``--save`` writes them
to a JSON file, and ``--load`` makes a section from such files without training anything.
The curves behind the section "multifidelity-quantile" (ASHA's current rule, TPE's current
model) are kept in ``benchmarks/results/multifidelity-quantile.json``:

    .venv/bin/python benchmarks/multifidelity.py --load \
        benchmarks/results/multifidelity-quantile.json --section multifidelity-quantile \
        --title "ASHA's quantile rule" \
        --methods random asha asha:min1 hyperband hyperband:min1 gp+hyperband tpe+asha \
        tpe+asha:min1 bohb bohb:min1 optuna-tpe+hyperband tune-asha tune-hyperband

and those of the TPE methods with TPE's earlier model (trials pruned below the model's
budget left out of it) in ``benchmarks/results/multifidelity-observed-only.json``.

Targets (issue 32): our best multi-fidelity method reaches random search's final best (full
training, at 100 trainings' epochs) within a fifth of those epochs, and is ahead of Optuna's
TPE + Hyperband at equal epochs on both tasks.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import machine, table, write_section  # noqa: E402

EPOCHS = 100
CHECKPOINTS = (10, 30, 100)  # full trainings' epochs at which the curves are read

# Ours: (strategy, pruner); None is full training.
OURS = {
    "random": ("random", None),
    "asha": ("random", "asha"),
    "hyperband": ("random", "hyperband"),
    "bohb": ("bohb", "hyperband"),
    "gp+hyperband": ("gp", "hyperband"),
    "tpe+asha": ("tpe", "asha"),
    # The same pruners with rungs from the first epoch, as Ray Tune's ASHA (grace period 1)
    # has them; ours place them from the first completed trial by default (a ninth of it).
    "asha:min1": ("random", "asha:min_resource=1"),
    "hyperband:min1": ("random", "hyperband:min_resource=1"),
    "bohb:min1": ("bohb", "hyperband:min_resource=1"),
    "tpe+asha:min1": ("tpe", "asha:min_resource=1"),
}
PEERS = ("optuna-tpe+hyperband", "tune-asha", "tune-hyperband", "tune-bohb")
# The peers the target names: ours must be ahead of each at 10x, 30x and 100x.
TARGET_PEERS = {"optuna-tpe+hyperband": "Optuna's", "tune-bohb": "Ray Tune's BOHB"}


class Stop(Exception):
    """Raised in the epoch callback when the search stops the training."""


def space():
    from hpo.space import Float, Int

    return {
        "learning_rate": Float(1e-4, 0.3, log=True),
        "units": Int(16, 256, log=True),
        "batch_size": Int(16, 256, log=True),
        "alpha": Float(1e-7, 0.1, log=True),
    }


def load_task(name: str):
    from sklearn.datasets import load_digits, make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return train_test_split(X / 16.0, y, test_size=0.2, random_state=0, stratify=y)
    X, y = make_classification(
        n_samples=6000,
        n_features=40,
        n_informative=20,
        n_redundant=10,
        n_classes=6,
        class_sep=0.8,
        flip_y=0.05,
        random_state=0,
    )
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_val), y_train, y_val


def train(params, data, seed, on_epoch) -> tuple[str, int]:
    """Train for up to EPOCHS epochs, calling ``on_epoch(epoch, val_loss)`` after each; it
    returns False to stop. ("complete" | "stopped" | "failed", epochs trained)."""
    from models import MLPClassifier

    X_train, X_val, y_train, y_val = data
    trained = 0

    def callback(epoch, metrics):
        nonlocal trained
        trained = epoch + 1
        if not on_epoch(epoch, metrics["val_loss"]):
            raise Stop

    model = MLPClassifier(
        (params["units"],),
        learning_rate_init=params["learning_rate"],
        batch_size=params["batch_size"],
        alpha=params["alpha"],
        max_iter=EPOCHS,
        n_iter_no_change=EPOCHS,  # trains every epoch: the budget is the search's to cut
        random_state=seed,
        epoch_callback=callback,
    )
    try:
        model.fit(X_train, y_train, eval_set=(X_val, y_val))
    except Stop:
        return "stopped", trained
    except Exception:  # noqa: BLE001 - diverged: the epochs it trained were spent
        return "failed", trained
    return "complete", trained


def run_ours(method: str, data, seed: int, budget: int) -> list[tuple[int, float]]:
    """The anytime curve [(epochs spent, best so far)] of one of our searches."""
    import hpo
    from hpo.strategies.pruners import make_pruner

    strategy_name, pruner_name = OURS[method]
    strategy = hpo.make_strategy(strategy_name, space(), seed=seed)
    pruner = make_pruner(pruner_name)
    if pruner is not None:
        pruner.bind("minimize")
    spent, best, trace = 0, math.inf, []
    while spent < budget:
        [trial] = strategy.ask()
        values: list[float] = []
        decision: list[tuple[int, float]] = []

        def on_epoch(epoch, loss, trial=trial, values=values, decision=decision):
            nonlocal spent
            spent += 1
            values.append(loss)
            if pruner is None or not math.isfinite(loss):
                return True
            trial.curve[epoch] = loss  # as the sweep's lifecycle keeps it
            if pruner.report(trial.number, epoch, loss) is not None:
                decision.append((epoch, loss))
                return False
            return True

        state, _ = train(trial.params, data, seed, on_epoch)
        finite = [v for v in values if math.isfinite(v)]
        if state == "complete" and finite:
            strategy.tell(trial, min(finite))
            if pruner is not None:
                pruner.complete(trial.number)
            if min(finite) < best:
                best = min(finite)
                trace.append((spent, best))
        elif state == "stopped":
            strategy.tell(trial, pruned=True, intermediate=decision[0])
        else:
            strategy.tell(trial, failed=True, error="diverged")
    return trace


def optuna_params(trial) -> dict:
    """`space()` as an Optuna trial suggests it."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 0.3, log=True),
        "units": trial.suggest_int("units", 16, 256, log=True),
        "batch_size": trial.suggest_int("batch_size", 16, 256, log=True),
        "alpha": trial.suggest_float("alpha", 1e-7, 0.1, log=True),
    }


def run_optuna(data, seed: int, budget: int) -> list[tuple[int, float]]:
    """Optuna's TPE with its HyperbandPruner, as its users write it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(),
    )
    spent, best, trace = 0, math.inf, []
    while spent < budget:
        trial = study.ask()
        params = optuna_params(trial)
        values: list[float] = []

        def on_epoch(epoch, loss, trial=trial, values=values):
            nonlocal spent
            spent += 1
            values.append(loss)
            if not math.isfinite(loss):
                return True
            trial.report(loss, epoch)
            return not trial.should_prune()

        state, _ = train(params, data, seed, on_epoch)
        finite = [v for v in values if math.isfinite(v)]
        if state == "complete" and finite:
            study.tell(trial, min(finite))
            if min(finite) < best:
                best = min(finite)
                trace.append((spent, best))
        elif state == "stopped":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return trace


def tune_trainable(config, data, seed, log):
    """A Ray Tune trial: trains as `train` does, reporting each epoch's validation loss to
    Tune (whose scheduler stops it) and appending it to ``log``, in the order trained."""
    from ray import tune

    trial = tune.get_context().get_trial_id()

    def on_epoch(epoch, loss):
        with open(log, "a") as f:
            f.write(f"{trial} {epoch} {loss}\n")
        tune.report({"val_loss": loss if math.isfinite(loss) else 1e9})
        return True

    _, trained = train(config, data, seed, on_epoch)
    if trained == 0:  # diverged before its first epoch ended: Tune needs the metric once
        tune.report({"val_loss": 1e9})


def run_tune(method: str, data, seed: int, budget: int) -> list[tuple[int, float]]:
    """Ray Tune's ASHA or (synchronous) HyperBand over random search, as its users write
    them, one trial at a time (a cluster of one CPU), stopped once ``budget`` epochs are
    spent; the anytime curve is read back from the epochs each trial logged."""
    import tempfile

    import numpy as np
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, HyperBandForBOHB, HyperBandScheduler

    class Budget(tune.Stopper):
        def __init__(self):
            self.spent = 0

        def __call__(self, trial_id, result):
            self.spent += 1
            return False

        def stop_all(self):
            return self.spent >= budget

    np.random.seed(seed)  # Tune's random search draws from NumPy's global generator
    search = None
    if method == "tune-asha":
        scheduler = ASHAScheduler(max_t=EPOCHS, grace_period=1, reduction_factor=3)
    elif method == "tune-hyperband":
        scheduler = HyperBandScheduler(max_t=EPOCHS, reduction_factor=3)
    else:  # BOHB as Tune's docs pair them: its HyperBand and HpBandSter's TPE-like model
        from ray.tune.search.bohb import TuneBOHB

        scheduler = HyperBandForBOHB(max_t=EPOCHS, reduction_factor=3)
        search = TuneBOHB(seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        log = f"{folder}/epochs.log"
        ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR")
        try:
            tune.Tuner(
                tune.with_parameters(tune_trainable, data=data, seed=seed, log=log),
                param_space={
                    "learning_rate": tune.loguniform(1e-4, 0.3),
                    "units": tune.lograndint(16, 257),
                    "batch_size": tune.lograndint(16, 257),
                    "alpha": tune.loguniform(1e-7, 0.1),
                },
                tune_config=tune.TuneConfig(
                    scheduler=scheduler,
                    search_alg=search,
                    metric="val_loss",
                    mode="min",
                    num_samples=budget,
                    # Its own fix for short trials: a trial's process serves the next one
                    # (a process start per trial otherwise, most of the time at 1-epoch rungs).
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(stop=Budget(), storage_path=folder, verbose=0),
            ).fit()
        finally:
            ray.shutdown()
        lines = [line.split() for line in open(log).read().splitlines()]
    losses: dict[str, list[float]] = {}
    spent, best, trace = 0, math.inf, []
    for trial, _, loss in lines[:budget]:
        spent += 1
        losses.setdefault(trial, []).append(float(loss))
        finite = [v for v in losses[trial] if math.isfinite(v)]
        if len(losses[trial]) == EPOCHS and finite and min(finite) < best:  # trained fully
            best = min(finite)
            trace.append((spent, best))
    return trace


def best_at(trace: list[tuple[int, float]], epochs: int) -> float:
    kept = [best for spent, best in trace if spent <= epochs]
    return kept[-1] if kept else math.inf


def epochs_to_reach(trace: list[tuple[int, float]], target: float) -> float:
    reached = [spent for spent, best in trace if best <= target]
    return reached[0] if reached else math.inf


def _job(job: tuple[str, str, int, int]) -> tuple[tuple[str, str, int, int], list, float]:
    task, method, seed, budget = job
    import threadpoolctl

    data = load_task(task)
    start = time.perf_counter()
    with threadpoolctl.threadpool_limits(1):  # one core per search: two run at once
        if method in OURS:
            trace = run_ours(method, data, seed, budget)
        elif method.startswith("tune-"):
            trace = run_tune(method, data, seed, budget)
        else:
            trace = run_optuna(data, seed, budget)
    return job, trace, time.perf_counter() - start


def _cell(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values):
        return f"{len(values) - len(finite)} of {len(values)} none"
    spread = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return f"{statistics.mean(finite):.4f} ± {spread:.4f}"


def section(tasks, methods, seeds, traces, seconds) -> str:
    full = CHECKPOINTS[-1] * EPOCHS
    parts = [
        f"`benchmarks/multifidelity.py --seeds {' '.join(map(str, seeds))} --tasks "
        f"{' '.join(tasks)}` on {machine()}. Mean ± standard deviation over "
        f"{len(seeds)} seeds of the best validation loss of a fully trained configuration "
        f"after 10, 30 and 100 full trainings' epochs ({EPOCHS} epochs each); 'to random's "
        "final best': the epochs a method took to reach random search's best at "
        f"{full} epochs (median over seeds, as a fraction of {full}; 'never' when not within "
        "the budget), and on how many seeds within a fifth of it. One trial at a time in one "
        "process per search (two searches at once on the 2 cores), so these compare searches "
        "per epoch, not wall time."
    ]
    verdicts: dict[str, list[str]] = {}
    passed: dict[str, list[bool]] = {}
    for task in tasks:
        # A peer may have been run on some tasks only (Ray Tune's searches take long).
        ran = [m for m in methods if all((task, m, s) in traces for s in seeds)]
        rows = [
            [
                "method",
                "best at 10x",
                "best at 30x",
                "best at 100x",
                "to random's final best",
                "seeds within a fifth",
                "seconds per search",
            ]
        ]
        random_final = (
            {s: best_at(traces[(task, "random", s)], full) for s in seeds}
            if "random" in methods
            else {}
        )
        reach: dict[str, float] = {}
        for method in ran:
            row = [method]
            for k in CHECKPOINTS:
                row.append(_cell([best_at(traces[(task, method, s)], k * EPOCHS) for s in seeds]))
            if random_final:
                spent = [epochs_to_reach(traces[(task, method, s)], random_final[s]) for s in seeds]
                reach[method] = statistics.median(spent)
                row.append("never" if math.isinf(reach[method]) else f"{reach[method] / full:.2f}")
                row.append(f"{sum(e <= full / 5 for e in spent)} of {len(seeds)}")
            else:
                row += ["", ""]
            row.append(f"{statistics.mean(seconds[(task, method, s)] for s in seeds):.0f}")
            rows.append(row)
        parts.append(f"**{task}**\n\n{table(rows)}")
        ours = [m for m in ran if m in OURS and OURS[m][1] is not None]
        for m in ours:  # each of our multi-fidelity methods on its own: no picking per column
            if reach:
                met = reach[m] <= full / 5
                took = (
                    "not within the budget"
                    if math.isinf(reach[m])
                    else f"in {reach[m] / full:.2f} of the budget"
                )
                verdicts.setdefault(m, []).append(
                    f"{task}: to random's final best {took} "
                    f"({'within' if met else 'not within'} 0.20)"
                )
                passed.setdefault(m, []).append(met)
            for rival, whose in TARGET_PEERS.items():
                if rival not in ran:
                    continue
                for k in CHECKPOINTS:
                    mine, peer = (
                        statistics.mean(best_at(traces[(task, x, s)], k * EPOCHS) for s in seeds)
                        for x in (m, rival)
                    )
                    verdicts.setdefault(m, []).append(
                        f"{task} at {k}x: {mine:.4f} against {whose} {peer:.4f} "
                        f"({'ahead' if mine < peer else 'not ahead'})"
                    )
                    passed.setdefault(m, []).append(mine < peer)
    listed = "\n".join(
        f"- {m}: {'met' if all(passed[m]) else 'not met'}: " + "; ".join(said)
        for m, said in verdicts.items()
    )
    parts.append(
        "Targets per method (one method must reach random's final best within 0.20 of the "
        "budget and be ahead of Optuna's TPE + Hyperband and Ray Tune's BOHB at 10x, 30x and "
        "100x, on every task; "
        "'ahead' compares means, whatever the spread), as the script reads its own table:"
        f"\n\n{listed}"
    )
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--tasks", nargs="+", default=["digits", "synthetic"])
    parser.add_argument("--methods", nargs="+", default=[*OURS, PEERS[0]])
    parser.add_argument("--budget", type=int, default=CHECKPOINTS[-1], help="full trainings")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs")
    parser.add_argument("--save", help="write every search's curve to this JSON file")
    parser.add_argument(
        "--load", nargs="+", help="make the section from --save files, running nothing"
    )
    parser.add_argument(
        "--section",
        default="multifidelity",
        help="the docs/benchmarks.md section to write (another for a subset of methods/seeds)",
    )
    parser.add_argument("--title", help="the section's heading (with --section)")
    args = parser.parse_args()
    unknown = set(args.methods) - set(OURS) - set(PEERS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {[*OURS, *PEERS]}")
    jobs = [
        (task, method, seed, args.budget * EPOCHS)
        for task in args.tasks
        for seed in args.seeds
        for method in args.methods
    ]
    traces, seconds = {}, {}
    if args.load:
        for saved in args.load:
            for task, method, seed, trace, took in json.loads(Path(saved).read_text()):
                traces[(task, method, seed)], seconds[(task, method, seed)] = trace, took
    else:
        with ProcessPoolExecutor(args.processes) as pool:
            for (task, method, seed, _), trace, took in pool.map(_job, jobs):
                key = (task, method, seed)
                traces[key], seconds[key] = trace, took
                final = trace[-1][1] if trace else math.nan
                print(f"{task} {method} seed {seed}: best {final:.4f} in {took:.0f} s", flush=True)
    if args.save:
        rows = [[*key, traces[key], seconds[key]] for key in traces]
        Path(args.save).write_text(json.dumps(rows))
    body = section(args.tasks, args.methods, args.seeds, traces, seconds)
    print(body)
    if not args.no_write:
        title = "## Multi-fidelity search"
        if args.section != "multifidelity":  # a part of it: under the main table
            title = f"### {args.title or ', '.join(args.tasks)}, {len(args.seeds)} seeds"
        write_section(args.section, f"{title}\n\n" + body)


if __name__ == "__main__":
    main()
