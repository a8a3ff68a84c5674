"""Objectives for the integration tests, shipped to Ray workers by value (see conftest)."""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path


def quadratic(params, report):
    for step in range(5):
        report(step, loss=(params["x"] - 0.2) ** 2 + 1.0 / (step + 1))
    return (params["x"] - 0.2) ** 2


def flaky(params, report):
    """Raises, returns NaN, inf or a string depending on the trial's `kind`."""
    report(0, loss=1.0)
    kind = params["kind"]
    if kind == "raise":
        raise RuntimeError("the objective failed on purpose")
    if kind == "nan":
        return math.nan
    if kind == "inf":
        return math.inf
    if kind == "text":
        return "0.5"
    return params["x"]


def diverging(params, report, data):
    from models import MLPClassifier

    X, y = data
    model = MLPClassifier(
        (4,),
        activation="identity",
        solver="sgd",
        learning_rate_init=params["lr"],
        max_iter=60,
        n_iter_no_change=60,
        divergence_factor=None,  # only the finiteness check: a curve of several epochs
        random_state=0,
        epoch_callback=lambda epoch, metrics: report(epoch, **metrics),
    )
    model.fit(X, y)
    return model.score(X, y)


def introspect(params, report, data):
    """Reports which process ran it, which data object it saw and its BLAS thread count."""
    from threadpoolctl import threadpool_info

    blas = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    report(
        0,
        pid=os.getpid(),
        data_id=id(data),
        blas_threads=max(blas, default=1),
        data_sum=float(data.sum()),
    )
    time.sleep(0.05)
    return params["x"]


def killed_once(params, report):
    """SIGKILLs its own worker process mid-trial the first time trial `victim` runs."""
    marker = Path(params["marker"])
    for step in range(6):
        report(step, loss=float(step))
        if step == 3 and params["victim"] and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    return params["x"]


def always_killed(params, report):
    report(0, loss=1.0)
    os.kill(os.getpid(), signal.SIGKILL)


def _missing_module():
    import importlib

    return importlib.import_module("hpo_test_module_that_does_not_exist")


class Unshippable:
    """Pickles in the driver but cannot be unpickled in a worker (its module is missing)."""

    def __call__(self, params, report):
        return 0.0

    def __reduce__(self):
        return (_missing_module, ())


def conditional(params, report):
    units = params["layers"]["units"]
    value = params["x"] ** 2 + sum((u - 0.5) ** 2 for u in units) + 0.1 * len(units)
    report(0, loss=value)
    return value


def hangs_when_told(params, report):
    """Never returns when params["hang"] is true (a deadlocked data loader, say)."""
    report(0, loss=params["x"])
    while params["hang"]:
        time.sleep(1.0)
    return params["x"]


def one_second(params, report):
    for step in range(10):
        report(step, loss=params["x"])
        time.sleep(0.1)
    return params["x"]


def one_second_unless_held(params, report, hold):
    """one_second, except that a trial with x above 0.1 waits after its first report while
    the file `hold` exists (60 s at most): a trial a sweep's timeout is sure to find running,
    however long the workers took to start."""
    deadline = time.monotonic() + 60
    held = params["x"] > 0.1
    for step in range(10):
        report(step, loss=params["x"])
        while held and Path(hold).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        held = False
        time.sleep(0.1)
    return params["x"]


def slow_curve(params, report):
    """20 steps of a loss that is worse for larger x; reports after each step's work."""
    for step in range(20):
        time.sleep(0.02)
        report(step, loss=params["x"] + 1.0 / (step + 1))
    return params["x"]


def slow_bad_curve(params, report):
    """`slow_curve`'s 20 steps, where the bad trials (x >= 0.5) take 0.25 s a step: a
    pruning decision has seconds to reach them before their curve ends, even on a loaded
    machine; the good ones take 0.02 s a step."""
    for step in range(20):
        time.sleep(0.25 if params["x"] >= 0.5 else 0.02)
        report(step, loss=params["x"] + 1.0 / (step + 1))
    return params["x"]


def silent(params, report):
    """A value and no curve: nothing for a pruner to judge."""
    return params["x"]


def long_curve(params, report):
    """27 steps of a loss that is worse for x far from 0.3; 0.02 s a step."""
    for step in range(27):
        time.sleep(0.02)
        report(step, loss=(params["x"] - 0.3) ** 2 + 1.0 / (step + 1))
    return (params["x"] - 0.3) ** 2


def same_curve_any_pace(params, report):
    """The same loss per step for every trial; a step takes ``pause`` seconds."""
    for step in range(10):
        time.sleep(params["pause"])
        report(step, loss=1.0 / (step + 1))
    return 0.1


def model_curve(params, report, data):
    """A real model whose training is pruned mid-fit through its epoch callback."""
    from models import MLPClassifier

    X_train, X_val, y_train, y_val = data
    model = MLPClassifier(
        (16,),
        solver="sgd",
        learning_rate_init=params["lr"],
        max_iter=30,
        n_iter_no_change=30,
        random_state=0,
        epoch_callback=lambda epoch, metrics: report(epoch, **metrics),
    )
    model.fit(X_train, y_train, eval_set=(X_val, y_val))
    return model.score(X_val, y_val)


def seeded(params, report):
    """A noisy objective: the value depends on the seed the repeats pass in."""
    import numpy as np

    noise = np.random.default_rng(params["seed"]).normal(0.0, 0.1)
    report(0, loss=params["x"] + noise)
    return params["x"] + noise


def odd_metrics(params, report):
    """Reports a bool and a NaN metric (kept), then a metric MLflow would refuse."""
    report(0, converged=True, loss=math.nan)
    if params["bad"] == "name":
        report(1, **{"bad:name?": 1.0})
    if params["bad"] == "none":
        report(1, loss=None)
    return params["x"]


def chaotic(params, report, data):
    """Trial i: raises when i % 5 == 0 (20%), returns NaN when i == 7, diverges when i == 11."""
    i = params["i"]
    for step in range(3):
        report(step, loss=1.0 / (step + 1 + i))
    if i % 5 == 0:
        raise RuntimeError(f"trial {i} fails on purpose")
    if i == 7:
        return math.nan
    if i == 11:
        return diverging({"lr": 1e6}, report, data)
    return float(i)


def prunes_itself(params, report):
    """Stops its own trial, as user code may, by raising hpo.TrialPruned."""
    from hpo import TrialPruned

    report(0, loss=1.0)
    report(1, loss=0.9)
    if params["x"] > 0.5:
        raise TrialPruned("no progress")
    return params["x"]


class SlowToLoad:
    """Sweep data whose unpickling takes ``seconds``: a worker given it starts that late."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __setstate__(self, state: dict) -> None:
        time.sleep(state["seconds"])
        self.__dict__.update(state)


def quick_with_data(params, report, data):
    report(0, loss=params["x"])
    return params["x"]


def with_model(params, report, data):
    """Trains a small network and stores files, a folder and the model with its run."""
    import pathlib
    import tempfile

    from models import MLPClassifier

    X, y = data
    model = MLPClassifier((params["units"],), max_iter=30, random_state=0).fit(X, y)
    report(1, accuracy=model.score(X, y))
    report.artifact("notes/params.txt", f"units={params['units']}")
    report.artifact("weights.bin", model.coefs_[0].tobytes())
    with tempfile.TemporaryDirectory() as tmp:
        pathlib.Path(tmp, "a.txt").write_text("a")
        pathlib.Path(tmp, "sub").mkdir()
        pathlib.Path(tmp, "sub", "b.txt").write_text("b")
        report.artifact("folder", pathlib.Path(tmp))
    if params["units"] == 3:
        report.artifact("../outside.txt", "escape")  # refused: the trial fails with why
    report.model(model)
    return model.score(X, y)


def ticking(params, report):
    """A trial that runs about 10 s, reporting its loss every quarter of a second."""
    for step in range(40):
        time.sleep(0.25)
        report(step, loss=params["x"] + 1.0 / (step + 1))
    return params["x"]


def checkpointed(params, report, data):
    """20 epochs of a real model, checkpointed every `every` epochs; its worker SIGKILLs
    itself at each epoch in `kill_at` the first time it gets there (a marker file per kill),
    and every epoch trained is appended to the `log` file (to count the repeated ones)."""
    from models import MLPClassifier

    X_train, X_val, y_train, y_val = data
    log = Path(params["log"])

    def on_epoch(epoch, metrics):
        report(epoch, **metrics)
        with log.open("a") as f:
            f.write(f"{epoch}\n")
        if epoch % params["every"] == 0:
            report.checkpoint(model.training_state())
        # An epoch of a real training takes a while; a few milliseconds here would let a
        # kill come before the checkpoint just taken has left this process (it then goes
        # on from the one before: two intervals repeated, not one).
        time.sleep(0.05)
        marker = log.with_name(f"killed-at-{epoch}")
        if epoch in params["kill_at"] and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

    restored = report.restore()
    model = MLPClassifier(
        (32,),
        solver="adam",
        max_iter=20,
        n_iter_no_change=20,
        random_state=0,
        epoch_callback=on_epoch,
    )
    model.fit(X_train, y_train, eval_set=(X_val, y_val), resume_from=restored and restored[0])
    return model.score(X_val, y_val)


def error_and_size(params, report):
    """Two objectives in a trade-off, as a dict: a larger x costs size and buys error."""
    x, y = params["x"], params["y"]
    report(0, train_error=1.0 + y - math.sqrt(x))
    return {"error": 1.0 + y - math.sqrt(x), "size": 10.0 * x}


def curves_named_like_objectives(params, report):
    """error_and_size, but for x > 0.8 its curves take the objectives' own names."""
    x, y = params["x"], params["y"]
    names = ("error", "size") if x > 0.8 else ("error_curve", "size_curve")
    report(0, **dict(zip(names, (1.0 + y - math.sqrt(x), 10.0 * x), strict=True)))
    return {"error": 1.0 + y - math.sqrt(x), "size": 10.0 * x}


def where_it_runs(params, report):
    """Writes what the trial sees (its devices, threads, process, when it ran) to a JSON
    file in ``params["out"]``, holding its worker ``params["hold"]`` seconds."""
    import json

    from threadpoolctl import threadpool_info

    began = time.time()
    time.sleep(params["hold"])
    seen = {
        "devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "blas": sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}),
        "pid": os.getpid(),
        "began": began,
        "ended": time.time(),
    }
    Path(params["out"], f"{params['x']}.json").write_text(json.dumps(seen))
    report(0, loss=params["x"])
    return params["x"]


class KilledOnce:
    """``objective`` with its worker SIGKILLed at its first report of step ``at``, the first
    time (a marker file says it happened); every step reported is appended to ``log``."""

    def __init__(self, objective, at, log):
        self.objective, self.at, self.log = objective, at, Path(log)

    def __call__(self, params, report, data):
        def reporting(step, **metrics):
            report(step, **metrics)
            with self.log.open("a") as f:
                f.write(f"{step}\n")
            marker = self.log.with_name("killed")
            if step == self.at and not marker.exists():
                marker.write_text(str(os.getpid()))
                time.sleep(0.05)  # the reports so far leave this process first
                os.kill(os.getpid(), signal.SIGKILL)

        reporting.checkpoint, reporting.restore = report.checkpoint, report.restore
        return self.objective(params, reporting, data)


PBT_STEPS = 12


def weight_training(params, report, data):
    """A training run whose state is one weight: gradient steps on (w - 3)^2 at the rate
    ``params["lr"]``, reported and checkpointed each step; its loss at a step is fixed by
    the rates of the steps before, so a run's numbers show which state it went on from.
    ``data``: {"log": a file each trained step is appended to, "kill_at": a step where its
    worker SIGKILLs itself the first time one gets there (before its checkpoint), "sleep":
    seconds per step (0.02)}."""
    log = Path(data["log"])
    restored = report.restore()
    w, start = (0.0, 0) if restored is None else (restored[0], restored[1] + 1)
    for step in range(start, PBT_STEPS):
        w -= params["lr"] * 2 * (w - 3.0)
        time.sleep(data.get("sleep", 0.02))
        with log.open("a") as f:
            f.write(f"{step}\n")
        report(step, loss=(w - 3.0) ** 2)
        if step == data["kill_at"]:
            try:  # made once, by whichever worker gets there first
                with log.with_name("killed").open("x") as marker:
                    marker.write(str(os.getpid()))
            except FileExistsError:
                pass
            else:
                time.sleep(0.2)  # the checkpoint before leaves this process first
                os.kill(os.getpid(), signal.SIGKILL)
        report.checkpoint(w)
    return (w - 3.0) ** 2


def pid_and_data(params, report, data):
    """Reports the worker's process id; returns the sweep's ``data["value"]`` (which sweep's
    data a kept worker holds)."""
    time.sleep(params["hold"])
    report(0, pid=os.getpid())
    return data["value"]
