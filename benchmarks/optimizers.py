"""Optimiser quality (Bayesmark-style normalised score) and ask latency.

Protocol (shared/docs/benchmarks.md): per task and optimiser, R seeds; per run the best-so-far
curve, clipped at the median of random search's first evaluation, normalised so 0 is the
task's optimum and 1 the clip, averaged over runs and tasks and divided by random search's
figure (random scores about 1, a perfect optimiser 0). A model task's optimum is unknown: the
best value any optimiser found on it in the run stands in for it, as in Bayesmark. Budgets 16,
32, 64; sequential asks and batches of 4. Runs are spread over two processes (one BLAS thread
each); nothing in a run depends on time. Ask latency: ``ask()`` alone after 10, 100, 300, 1000
observations in 2, 6, 9 dimensions, one BLAS thread, median and p95, measured before the
runs with nothing else running (``--latency-only`` measures it alone and rewrites its part).

Optuna's GPSampler needs PyTorch, installed for the benchmark only (``make bench`` does it);
without it that peer is left out and the tables say so.

    .venv/bin/python benchmarks/optimizers.py [--seeds 10] [--tasks NAME ...] [--optimisers ...]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_report", HERE / "_report.py")
_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_report)

import hpo  # noqa: E402
from hpo.space import Choice, Float, Int  # noqa: E402
from hpo.strategies.optuna_sampler import TPE_SETTINGS  # noqa: E402

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


# -- scikit-learn model tasks: 3-fold cross-validated error on a bundled dataset -------------
@functools.cache
def _dataset(name: str):
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")(return_X_y=True)


def _cv_error(estimator, dataset: str) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _dataset(dataset)
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # short MLP fits, on purpose
        scores = cross_val_score(make_pipeline(StandardScaler(), estimator), X, y, cv=folds)
    return 1.0 - float(np.mean(scores))


def mlp_breast_cancer(p):
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=(p["units"],),
        alpha=p["alpha"],
        learning_rate_init=p["learning_rate_init"],
        max_iter=40,
        random_state=0,
    )
    return _cv_error(model, "breast_cancer")


def svm_breast_cancer(p):
    from sklearn.svm import SVC

    return _cv_error(SVC(C=p["C"], gamma=p["gamma"]), "breast_cancer")


def forest_wine(p):
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(
        n_estimators=10,
        max_depth=p["max_depth"],
        min_samples_split=p["min_samples_split"],
        min_samples_leaf=p["min_samples_leaf"],
        max_features=p["max_features"],
        random_state=0,
    )
    return _cv_error(model, "wine")


def knn_wine(p):
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(n_neighbors=p["n_neighbors"], weights=p["weights"], p=p["p"])
    return _cv_error(model, "wine")


# name -> (space, objective, optimum or None if unknown, group)
CONTINUOUS, MIXED, MODELS = "continuous", "mixed categorical/integer", "scikit-learn models"
TASKS = {
    "Branin": ({"x": Float(-5.0, 10.0), "y": Float(0.0, 15.0)}, branin, 0.397887, CONTINUOUS),
    "Hartmann6": (
        {f"x{i}": Float(0.0, 1.0) for i in range(6)},
        hartmann6,
        -3.32237,
        CONTINUOUS,
    ),
    "Rosenbrock (log box)": (
        {f"x{i}": Float(1e-2, 10.0, log=True) for i in range(4)},
        rosenbrock,
        0.0,
        CONTINUOUS,
    ),
    "mixed": (
        {
            "n": Int(1, 20),
            "kind": Choice(["a", "b", "c"]),
            "x": Float(0.0, 1.0),
            "m": Int(1, 1000, log=True),
        },
        mixed,
        0.0,
        MIXED,
    ),
    "MLP (breast_cancer)": (
        {
            "units": Int(2, 128, log=True),
            "alpha": Float(1e-6, 1.0, log=True),
            "learning_rate_init": Float(1e-4, 1e-1, log=True),
        },
        mlp_breast_cancer,
        None,
        MODELS,
    ),
    "SVM (breast_cancer)": (
        {"C": Float(1e-2, 1e3, log=True), "gamma": Float(1e-5, 1.0, log=True)},
        svm_breast_cancer,
        None,
        MODELS,
    ),
    "random forest (wine)": (
        {
            "max_depth": Int(1, 12),
            "min_samples_split": Int(2, 20),
            "min_samples_leaf": Int(1, 10),
            "max_features": Float(0.1, 1.0),
        },
        forest_wine,
        None,
        MODELS,
    ),
    "k-NN (wine)": (
        {
            "n_neighbors": Int(1, 40),
            "weights": Choice(["uniform", "distance"]),
            "p": Choice([1, 2]),
        },
        knn_wine,
        None,
        MODELS,
    ),
}


# -- optimisers: each returns the objective values in evaluation order ----------------------
def run_ours(name, space, fn, seed, budget, batch, direction="minimize"):
    s = hpo.make_strategy(name, space, direction=direction, seed=seed)
    values = []
    while len(values) < budget:
        trials = s.ask(min(batch, budget - len(values)))
        for t in trials:  # a batch is asked together, then told (parallel workers)
            values.append(fn(t.params))
        for t, v in zip(trials, values[-len(trials) :], strict=True):
            s.tell(t, v)
    return values


def run_optuna_native(sampler_name, space, fn, seed, budget, batch, direction="minimize"):
    """An Optuna sampler as an Optuna user writes it, with its defaults (a list of
    directions: its multi-objective study)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    sampler = getattr(optuna.samplers, sampler_name)(seed=seed)
    directions = [direction] if isinstance(direction, str) else list(direction)
    study = optuna.create_study(directions=directions, sampler=sampler)
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


def has_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


OPTIMISERS = {
    "hpo gp": functools.partial(run_ours, "gp"),
    "hpo tpe": functools.partial(run_ours, "tpe"),
    "Optuna TPE (native)": functools.partial(run_optuna_native, "TPESampler"),
    "Optuna GPSampler (native)": functools.partial(run_optuna_native, "GPSampler"),
    "hyperopt TPE": functools.partial(run_ours, "hyperopt-tpe"),
    "random": functools.partial(run_ours, "random"),
}


def _run_job(job: tuple[str, str, int, int]) -> tuple[tuple[str, str, int, int], list[float]]:
    task, name, seed, batch = job
    space, fn, _, _ = TASKS[task]
    with threadpool_limits(limits=1):
        return job, OPTIMISERS[name](space, fn, seed, max(BUDGETS), batch)


def normalised_scores(curves, clip, optimum):
    """Mean normalised best-so-far at each budget for one task and optimiser."""
    return {
        b: float(np.mean([normalised(min(values[:b]), clip, optimum) for values in curves]))
        for b in BUDGETS
    }


def normalised(best: float, clip: float, optimum: float) -> float:
    """0 at the optimum, 1 at the clip (and beyond)."""
    span = clip - optimum
    return min(max((best - optimum) / span, 0.0), 1.0) if span > 0 else 0.0


def run_all(tasks, optimisers, seeds, batches, processes):
    """Every (task, optimiser, seed, batch) run, over a pool of processes."""
    jobs = [(t, o, s, b) for b in batches for t in tasks for o in optimisers for s in range(seeds)]
    curves: dict[tuple[str, str, int], list[list[float]]] = {}
    done = 0
    with ProcessPoolExecutor(processes) as pool:
        for (task, name, _, batch), values in pool.map(_run_job, jobs):
            curves.setdefault((task, name, batch), []).append(values)
            done += 1
            if done % 50 == 0 or done == len(jobs):
                print(f"  {done}/{len(jobs)} runs", flush=True)
    return curves


def per_task_scores(curves, tasks, optimisers, batch):
    """{task: {optimiser: {budget: normalised score}}} for one batch size."""
    per_task: dict[str, dict[str, dict[int, float]]] = {}
    for task in tasks:
        _, _, optimum, _ = TASKS[task]
        if optimum is None:  # a model task: the best any optimiser found, in either mode
            optimum = min(min(c) for (t, _, _), cs in curves.items() if t == task for c in cs)
        clip = statistics.median(c[0] for c in curves[(task, "random", batch)])
        per_task[task] = {
            name: normalised_scores(curves[(task, name, batch)], clip, optimum)
            for name in optimisers
        }
    return per_task


def relative_to_random(per_task, groups, optimisers):
    """{group: {optimiser: {budget: mean score over the group / random's}}}."""
    out = {}
    for group, members in groups.items():
        out[group] = {}
        for name in optimisers:
            mean = {b: np.mean([per_task[t][name][b] for t in members]) for b in BUDGETS}
            rnd = {b: np.mean([per_task[t]["random"][b] for t in members]) for b in BUDGETS}
            out[group][name] = {
                b: mean[b] / rnd[b] if rnd[b] > 0 else float("nan") for b in BUDGETS
            }
    return out


def _cell(score: float) -> str:
    return f"{score:.3f}" if math.isfinite(score) else "n/a"  # random search found the best too


def score_rows(tables, optimisers):
    """Rows of optimiser, mode, then one "16 / 32 / 64" cell per column of ``tables``."""
    columns = list(tables[1])
    rows = [["optimiser", "mode", *(f"{c} (16 / 32 / 64)" for c in columns)]]
    for batch, table in tables.items():
        for name in optimisers:
            rows.append(
                [
                    name,
                    "sequential" if batch == 1 else f"batches of {batch}",
                    *(" / ".join(_cell(table[c][name][b]) for b in BUDGETS) for c in columns),
                ]
            )
    return rows


# -- ask latency ----------------------------------------------------------------------------
def latency(name: str, dims: int, n_obs: int, asks: int = 7) -> tuple[float, float]:
    """``ask()`` of one of our strategies after ``n_obs`` random observations."""
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


def optuna_latency(sampler_name: str, dims: int, n_obs: int, asks: int = 7):
    """An Optuna sampler's ask plus suggestions (where it samples) after ``n_obs`` trials.

    TPE is configured as our ``tpe`` configures it and gets its history the way ``latency``
    gives ours (asked from the sampler, told the same random values), so the two sample the
    same points and the ratio is what our adapter adds. The GP sampler gets random points.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    space = {f"x{i}": Float(0.0, 1.0) for i in range(dims)}
    rng = np.random.default_rng(0)
    if sampler_name == "TPESampler":
        sampler = optuna.samplers.TPESampler(seed=0, **TPE_SETTINGS)
        study = optuna.create_study(sampler=sampler)
        for _ in range(n_obs):
            trial = study.ask()
            _suggest_all(trial, space)
            study.tell(trial, float(rng.random()))
    else:
        dists = {k: optuna.distributions.FloatDistribution(0.0, 1.0) for k in space}
        study = optuna.create_study(sampler=getattr(optuna.samplers, sampler_name)(seed=0))
        study.add_trials(
            [
                optuna.trial.create_trial(
                    params={k: float(rng.random()) for k in space},
                    distributions=dists,
                    value=float(rng.random()),
                )
                for _ in range(n_obs)
            ]
        )
    times = []
    for _ in range(asks):
        start = time.perf_counter()
        trial = study.ask()
        _suggest_all(trial, space)
        times.append(time.perf_counter() - start)
        study.tell(trial, float(rng.random()))
    return float(np.median(times)), float(np.percentile(times, 95))


LATENCY_ROUNDS = 3


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}" if seconds < 0.01 else f"{seconds * 1e3:.0f}"


# TPE asks cost milliseconds: more of them steady the median that the 10% target is judged on.
LATENCY = {
    "hpo gp": functools.partial(latency, "gp"),
    "hpo tpe": functools.partial(latency, "tpe", asks=21),
    "Optuna TPE (native)": functools.partial(optuna_latency, "TPESampler", asks=21),
    "Optuna GPSampler (native)": functools.partial(optuna_latency, "GPSampler"),
    "hyperopt TPE": functools.partial(latency, "hyperopt-tpe"),
}


# -- report ---------------------------------------------------------------------------------
def verdicts(seq: dict) -> list[str]:
    """The quality targets, judged on this run's figures."""
    lines = []
    cont = seq.get(CONTINUOUS)
    if cont and "hpo gp" in cont:
        for b in (16, 32):
            rivals = {n: v[b] for n, v in cont.items() if n != "hpo gp"}
            leader = min(rivals, key=rivals.get)
            ok = cont["hpo gp"][b] < rivals[leader]
            lines.append(
                f"- gp lowest on the continuous tasks at budget {b} (sequential): "
                f"{'yes' if ok else 'no'} (gp {cont['hpo gp'][b]:.3f}, best other "
                f"{leader} {rivals[leader]:.3f})"
            )
        if "Optuna TPE (native)" in cont:
            g, o = cont["hpo gp"][64], cont["Optuna TPE (native)"][64]
            lines.append(
                f"- gp not worse than Optuna TPE at 64 (continuous): "
                f"{'yes' if g <= o else 'no'} ({g:.3f} against {o:.3f})"
            )
    return lines


def latency_verdicts(lat: dict) -> list[str]:
    """The latency targets, judged on this run's figures."""
    lines = []
    if ("hpo gp", 6, 100) in lat:
        peer = "Optuna GPSampler (native)"
        for n, limit in ((100, 0.1), (300, 1.0), (1000, 2.0)):
            med = lat[("hpo gp", 6, n)][0]
            lines.append(
                f"- gp ask after {n} observations in 6 dimensions <= {limit * 1e3:.0f} ms: "
                f"{'yes' if med <= limit else 'no'} ({med * 1e3:.0f} ms"
                + (f"; {peer} {lat[(peer, 6, n)][0] * 1e3:.0f} ms)" if (peer, 6, n) in lat else ")")
            )
        if (peer, 6, 300) in lat:
            ours, theirs = lat[("hpo gp", 6, 300)][0], lat[(peer, 6, 300)][0]
            lines.append(
                f"- gp ask after 300 observations (6 dimensions) no slower than {peer}: "
                f"{'yes' if ours <= theirs else 'no'} ({ours * 1e3:.0f} against "
                f"{theirs * 1e3:.0f} ms)"
            )
    ratios = [
        lat[("hpo tpe", d, n)][0] / lat[("Optuna TPE (native)", d, n)][0]
        for d in (2, 6, 9)
        for n in (10, 100, 300)
        if ("hpo tpe", d, n) in lat and ("Optuna TPE (native)", d, n) in lat
    ]
    if ratios:
        lines.append(
            f"- our tpe's ask within 10% of Optuna's own: {'yes' if max(ratios) <= 1.1 else 'no'}"
            f" (ratio {min(ratios):.2f} to {max(ratios):.2f} over the nine cells to 300)"
        )
    return lines


# -- warm start -----------------------------------------------------------------------------
WARM_SOURCE, WARM_BUDGET = 32, 16


def _warm_job(job: tuple[str, str, int]) -> tuple[tuple[str, str, int], dict[str, float]]:
    """One seed of the warm-start comparison: the best value of a cold 16-trial sweep and of
    one warm-started from a 32-trial sweep of the same task (another seed), each counting
    its own trials only; and random search's first value, the clip of the normalisation."""
    task, name, seed = job
    space, fn, _, _ = TASKS[task]
    with threadpool_limits(limits=1):
        source = hpo.make_strategy(name, space, seed=10_000 + seed)
        history = []
        for _ in range(WARM_SOURCE):
            [t] = source.ask()
            value = fn(t.params)
            source.tell(t, value)
            history.append((t.assignment, t.state, value))
        out = {"first random": run_ours("random", space, fn, seed, 1, 1)[0]}
        for mode in ("cold", "warm"):
            s = hpo.make_strategy(name, space, seed=seed)
            if mode == "warm":
                s.warm_start(history)
            values = []
            for _ in range(WARM_BUDGET):
                [t] = s.ask()
                values.append(fn(t.params))
                s.tell(t, values[-1])
            out[mode] = min(values)
    return job, out


def warm_start_section(seeds: int, processes: int) -> str:
    """Cold against warm-started sweeps of GP and TPE on the continuous tasks."""
    tasks = [t for t, spec in TASKS.items() if spec[3] == CONTINUOUS]
    jobs = [(t, n, seed) for t in tasks for n in ("gp", "tpe") for seed in range(seeds)]
    with ProcessPoolExecutor(processes) as pool:
        results = dict(pool.map(_warm_job, jobs))
    rows = [["strategy", *tasks, "mean"]]
    for name in ("gp", "tpe"):
        for mode in ("cold", "warm"):
            cells = []
            for task in tasks:
                runs = [results[(task, name, seed)] for seed in range(seeds)]
                clip = float(np.median([r["first random"] for r in runs]))
                cells.append(np.mean([normalised(r[mode], clip, TASKS[task][2]) for r in runs]))
            label = f"hpo {name}, {'warm-started from 32 trials' if mode == 'warm' else 'cold'}"
            rows.append([label, *(f"{c:.3f}" for c in cells), f"{np.mean(cells):.3f}"])
    return "\n".join(
        [
            "## Warm starts (`benchmarks/optimizers.py --warm-start`)",
            "",
            f"Command: `.venv/bin/python benchmarks/optimizers.py --warm-start --seeds {seeds}`;"
            f" machine: {_report.machine()}. On each continuous task and seed, a {WARM_BUDGET}-"
            f"trial sweep cold, and one warm-started from a {WARM_SOURCE}-trial sweep of the "
            "same task by the same strategy with another seed (`Strategy.warm_start`, what "
            "`--warm-start` gives the strategy). The score is each sweep's own best value "
            "(its 16 trials, not the history's), normalised as a run is in the quality table "
            "(before the division by random search's score): 0 the optimum, 1 the median "
            f"first value of random search; mean over {seeds} seeds, lower is better. "
            "Rosenbrock's log box puts that median so far above the optimum that every "
            "sweep scores 0.000 there.",
            "",
            _report.table(rows),
        ]
    )


# -- several objectives: hypervolume ---------------------------------------------------------
MO_BUDGETS = (32, 64)
ZDT1_DIMS = 6


def zdt1(p):
    """ZDT1 (Zitzler, Deb and Thiele, 2000) in ZDT1_DIMS variables: a convex front,
    f2 = 1 - sqrt(f1), where x1..x5 are 0."""
    x = np.array([p[f"x{i}"] for i in range(ZDT1_DIMS)])
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return (float(x[0]), g * (1.0 - math.sqrt(x[0] / g)))


def forest_size_wine(p):
    """A random forest on wine: 3-fold cross-validated error against its size, log10 of
    the number of tree nodes (mean over the folds' fitted forests)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_validate

    X, y = _dataset("wine")
    model = RandomForestClassifier(
        n_estimators=p["n_estimators"],
        max_depth=p["max_depth"],
        min_samples_leaf=p["min_samples_leaf"],
        max_features=p["max_features"],
        random_state=0,
    )
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    out = cross_validate(model, X, y, cv=folds, return_estimator=True)
    nodes = np.mean([sum(t.tree_.node_count for t in f.estimators_) for f in out["estimator"]])
    return (1.0 - float(np.mean(out["test_score"])), math.log10(nodes))


# name -> (space, objective of params -> two values to minimise, reference point, best
# hypervolume known or None)
MO_TASKS = {
    f"ZDT1 ({ZDT1_DIMS}-d)": (
        {f"x{i}": Float(0.0, 1.0) for i in range(ZDT1_DIMS)},
        zdt1,
        (11.0, 11.0),  # as BoTorch's ZDT problems; the true front's hypervolume is 120 2/3
        121.0 - 1.0 / 3.0,
    ),
    "random forest (wine): error, log10 nodes": (
        {
            "n_estimators": Int(1, 64, log=True),
            "max_depth": Int(1, 12),
            "min_samples_leaf": Int(1, 10),
            "max_features": Float(0.1, 1.0),
        },
        forest_size_wine,
        (1.0, 4.5),  # error 1; 10^4.5 nodes, beyond any forest in the space
        None,
    ),
}


# Sequential asks, two objectives both minimised.
_MO = {"batch": 1, "direction": ["minimize", "minimize"]}
MO_OPTIMISERS = {
    "hpo gp (ParEGO)": functools.partial(run_ours, "gp", **_MO),
    "hpo tpe": functools.partial(run_ours, "tpe", **_MO),
    "Optuna NSGA-II (native)": functools.partial(run_optuna_native, "NSGAIISampler", **_MO),
    "Optuna TPE (native)": functools.partial(run_optuna_native, "TPESampler", **_MO),
    "random": functools.partial(run_ours, "random", **_MO),
}


def _mo_job(job: tuple[str, str, int]) -> tuple[tuple[str, str, int], dict[int, float]]:
    """One run: its hypervolume after each budget."""
    from hpo.core.pareto import hypervolume_2d

    task, name, seed = job
    space, fn, reference, _ = MO_TASKS[task]
    with threadpool_limits(limits=1):
        values = MO_OPTIMISERS[name](space, fn, seed, max(MO_BUDGETS))
    return job, {b: hypervolume_2d(np.array(values[:b]), reference) for b in MO_BUDGETS}


def multi_objective_section(seeds: int, processes: int) -> str:
    """Mean hypervolume of each optimiser's trials at budgets 32 and 64, and its target."""
    started = time.perf_counter()
    jobs = [(t, n, seed) for t in MO_TASKS for n in MO_OPTIMISERS for seed in range(seeds)]
    with ProcessPoolExecutor(processes) as pool:
        hv = dict(pool.map(_mo_job, jobs))
    minutes = (time.perf_counter() - started) / 60
    mean = {
        (t, n, b): statistics.mean(hv[(t, n, s)][b] for s in range(seeds))
        for t in MO_TASKS
        for n in MO_OPTIMISERS
        for b in MO_BUDGETS
    }
    rows = [["optimiser", *(f"{t}, {b} trials" for t in MO_TASKS for b in MO_BUDGETS)]]
    for n in MO_OPTIMISERS:
        cells = []
        for t in MO_TASKS:
            for b in MO_BUDGETS:
                values = [hv[(t, n, s)][b] for s in range(seeds)]
                error = statistics.stdev(values) / math.sqrt(seeds)
                cells.append(f"{mean[(t, n, b)]:.4g} ± {error:.2g}")
        rows.append([n, *cells])
    gp = "hpo gp (ParEGO)"
    verdict = []
    for t in MO_TASKS:
        for b in MO_BUDGETS:
            beaten = [
                n
                for n in ("Optuna NSGA-II (native)", "random")
                if mean[(t, gp, b)] > mean[(t, n, b)]
            ]
            verdict.append(
                f"- {t}, {b} trials: gp {mean[(t, gp, b)]:.4g} against NSGA-II "
                f"{mean[(t, 'Optuna NSGA-II (native)', b)]:.4g} and random "
                f"{mean[(t, 'random', b)]:.4g}: " + ("met" if len(beaten) == 2 else "**not met**")
            )
    known = [f"{t}: {spec[3]:.4g}" for t, spec in MO_TASKS.items() if spec[3] is not None]
    return "\n".join(
        [
            "## Several objectives: hypervolume (`benchmarks/optimizers.py --multi-objective`)",
            "",
            f"Command: `.venv/bin/python benchmarks/optimizers.py --multi-objective --seeds "
            f"{seeds}`; machine: {_report.machine()}; one BLAS thread per process, {processes} "
            f"processes ({minutes:.0f} min). Two objectives, both minimised, sequential asks; "
            "the hypervolume (the area the trials dominate up to a reference point, higher "
            f"is better) after 32 and 64 trials, mean ± standard error over {seeds} seeds. "
            f"ZDT1 in {ZDT1_DIMS} variables, reference point (11, 11) as BoTorch's; the "
            "random forest on wine trades its 3-fold cross-validated error against log10 of "
            "its node count (n_estimators 1-64 log, max_depth 1-12, min_samples_leaf 1-10, "
            "max_features 0.1-1), reference point (1, 4.5). The optimum's hypervolume, "
            f"where known: {'; '.join(known)}. Optuna's samplers run natively with their "
            "defaults (NSGA-II's population is 50: below 50 trials it is random sampling); "
            "`hpo tpe` is Optuna's TPE with our settings.",
            "",
            _report.table(rows),
            "",
            "Target (gp's mean hypervolume above NSGA-II's and random search's), judged on "
            "this run:",
            "",
            *verdict,
        ]
    )


OBSERVATIONS = (10, 100, 300, 1000)
DIMS = (2, 6, 9)


def measure_latency(names: list[str]) -> dict[tuple[str, int, int], tuple[float, float]]:
    """(strategy, dims, observations) -> (median, p95) seconds of an ask, one BLAS thread."""
    lat: dict[tuple[str, int, int], tuple[float, float]] = {}
    with threadpool_limits(limits=1):
        # Cell by cell, so the strategies compared in a cell are timed close together; three
        # rounds in alternating order, keeping each strategy's quietest round (the machine
        # is shared: a burst of other work only ever adds time).
        for dims in DIMS:
            for n in OBSERVATIONS:
                for r in range(LATENCY_ROUNDS):
                    for name in names if r % 2 == 0 else names[::-1]:
                        measured = LATENCY[name](dims, n)
                        if (name, dims, n) not in lat or measured < lat[(name, dims, n)]:
                            lat[(name, dims, n)] = measured
            print(f"  latency {dims}-d done", flush=True)
    return lat


def latency_section(lat: dict, left_out: list[str]) -> str:
    """The latency table and its targets, a subsection of its own (``--latency-only``)."""
    rows = [["strategy", "dims", *(f"after {n} obs" for n in OBSERVATIONS)]]
    rows[0][2] += " (median / p95 ms)"
    for name in LATENCY:
        for dims in DIMS:
            if (name, dims, OBSERVATIONS[0]) in lat:
                cells = [" / ".join(_ms(v) for v in lat[(name, dims, n)]) for n in OBSERVATIONS]
                rows.append([name, str(dims), *cells])
    lines = [
        f"Ask latency (ms), measured {_report.machine()}: median / p95 of 21 asks for the "
        f"TPEs, 7 for the others, the quietest of {LATENCY_ROUNDS} rounds taken in alternating "
        "order. The history is random values: at points our strategies asked for (gp's from "
        "its initial design), at random points for Optuna's GPSampler, and for Optuna's TPE at "
        "points it asked for itself with our `tpe`'s settings, so both TPEs sample the same "
        "points and their ratio is what our adapter adds. An Optuna sampler's figure includes "
        "the suggest calls, where it samples. Past 100 observations our gp fits its kernel "
        "again only as the history grows by a tenth: the first of its 7 asks fits (the p95), "
        "the others reuse that fit (the median)."
        + (f" Left out: {', '.join(left_out)} (PyTorch not installed)." if left_out else ""),
        "",
        _report.table(rows),
        "",
        "Latency targets, judged on this run:",
        "",
        *latency_verdicts(lat),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--optimisers", nargs="+", default=list(OPTIMISERS), choices=OPTIMISERS)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument(
        "--latency-only", action="store_true", help="measure and rewrite the latency part only"
    )
    parser.add_argument(
        "--warm-start", action="store_true", help="run and write the warm-start comparison only"
    )
    parser.add_argument(
        "--multi-objective",
        action="store_true",
        help="run and write the hypervolume comparison (two objectives) only",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    # The comparisons that run alone, each rewriting its own section.
    alone = {"multi-objective": (args.multi_objective, multi_objective_section)}
    alone["warm-start"] = (args.warm_start, warm_start_section)
    for section, (asked, make) in alone.items():
        if asked:
            body = make(args.seeds, args.processes)
            print(body)
            if not args.no_write:
                _report.write_section(section, body)
            return
    optimisers = [o for o in args.optimisers if "GPSampler" not in o or has_torch()]
    if "random" not in optimisers:
        optimisers.append("random")  # the normalisation needs it
    left_out = [o for o in args.optimisers if o not in optimisers]
    latency_part = ""
    if not args.no_latency:
        lat = measure_latency([o for o in LATENCY if o in optimisers])
        latency_part = latency_section(lat, [o for o in left_out if o in LATENCY])
        print(latency_part)
    if args.latency_only:
        if not args.no_write:
            _report.write_section("optimizers-latency", latency_part)
        return

    started = time.perf_counter()
    curves = run_all(args.tasks, optimisers, args.seeds, (1, 4), args.processes)
    per_task = {b: per_task_scores(curves, args.tasks, optimisers, b) for b in (1, 4)}
    groups = {g: [t for t in args.tasks if TASKS[t][3] == g] for g in (CONTINUOUS, MIXED, MODELS)}
    groups = {g: ts for g, ts in groups.items() if ts}
    if len(groups) > 1:
        groups["all tasks"] = list(args.tasks)
    tables = {b: relative_to_random(per_task[b], groups, optimisers) for b in (1, 4)}
    task_tables = {
        b: relative_to_random(per_task[b], {t: [t] for t in args.tasks}, optimisers) for b in (1, 4)
    }
    minutes = (time.perf_counter() - started) / 60

    rows = score_rows(tables, optimisers)
    command = "benchmarks/optimizers.py --seeds " + str(args.seeds)
    if args.tasks != list(TASKS):
        command += " --tasks " + " ".join(f"'{t}'" for t in args.tasks)
    if args.optimisers != list(OPTIMISERS):
        command += " --optimisers " + " ".join(f"'{o}'" for o in args.optimisers)
    lines = [
        "## Optimiser quality and ask latency (`benchmarks/optimizers.py`)",
        "",
        f"Command: `.venv/bin/python {command}`; machine: {_report.machine()}; one BLAS thread "
        f"per process, {args.processes} processes for the runs ({minutes:.0f} min).",
        "Normalised score (lower is better; random = 1, optimum = 0), averaged over the tasks of "
        f"each group, {args.seeds} seeds each; cells are budgets 16 / 32 / 64. Groups: "
        + "; ".join(f"{g}: {', '.join(ts)}" for g, ts in groups.items() if g != "all tasks")
        + ". Model tasks score the 3-fold cross-validated error."
        + (
            f" Left out of this run: {', '.join(left_out)} (PyTorch not installed)."
            if left_out
            else ""
        ),
        "",
        _report.table(rows),
        "",
        "Per task (each task's score over random search's on it; n/a where random search"
        " found the best value too):",
        "",
        _report.table(score_rows(task_tables, optimisers)),
        "",
        "Quality targets, judged on this run:",
        "",
        *verdicts(tables[1]),
    ]
    if latency_part:  # its own markers, so that --latency-only can rewrite it alone
        lines += [
            "",
            "<!-- optimizers-latency:start -->",
            latency_part,
            "<!-- optimizers-latency:end -->",
        ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        _report.write_section("optimizers", body)


if __name__ == "__main__":
    sys.exit(main())
