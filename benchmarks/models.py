"""Training throughput of models.MLPClassifier against scikit-learn's MLPClassifier.

Protocol (shared/docs/benchmarks.md): same architecture, batch, optimiser (Adam, the same
learning rate) and dtype, one BLAS thread; ms per epoch and samples per second; achieved
GFLOP/s (6 x samples x sum of fan_in x fan_out per epoch) as a fraction of a large GEMM of
the same dtype measured in this run; digits accuracy of both.

    .venv/bin/python benchmarks/models.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

# This file is called models.py: its folder must not shadow the `models` package.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
_spec = importlib.util.spec_from_file_location("_report", HERE / "_report.py")
_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_report)
machine, table, write_section = _report.machine, _report.table, _report.write_section


def gemm_gflops(dtype: str, n: int = 2048, repeats: int = 7) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(n, n)).astype(dtype), rng.normal(size=(n, n)).astype(dtype)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def seconds_per_epoch(make, X, y, epochs: int) -> float:
    model = make(epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that max_iter was reached
        elapsed = _timed(lambda: model.fit(X, y))
    assert model.n_iter_ == epochs, (type(model).__module__, model.n_iter_)
    return elapsed / epochs


def same_settings(hidden, batch, epochs) -> dict:
    """What both implementations get: the comparison is only fair if this is shared."""
    return dict(
        hidden_layer_sizes=hidden,
        solver="adam",
        learning_rate_init=1e-3,
        batch_size=batch,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=0,
    )


def ours(hidden, batch, dtype):
    from models import MLPClassifier

    return lambda epochs: MLPClassifier(**same_settings(hidden, batch, epochs), dtype=dtype)


def sklearns(hidden, batch, dtype):
    # scikit-learn has no dtype parameter: it computes in the dtype of X.
    from sklearn.neural_network import MLPClassifier

    return lambda epochs: MLPClassifier(**same_settings(hidden, batch, epochs))


def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def mnist_shaped(n: int = 10_000):
    # Synthetic data of MNIST's shape: the cost per epoch depends on shapes, not on pixels.
    rng = np.random.default_rng(0)
    X = rng.random((n, 784))
    y = (X @ rng.normal(size=(784, 10))).argmax(axis=1)
    return X, y


def digits_accuracy() -> tuple[float, float]:
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP

    from models import MLPClassifier

    X, y = digits()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    config = dict(
        hidden_layer_sizes=(100,),
        solver="adam",
        learning_rate_init=1e-3,
        batch_size=200,
        max_iter=200,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkMLP(**config).fit(X_tr, y_tr).score(X_te, y_te)
    return MLPClassifier(**config).fit(X_tr, y_tr).score(X_te, y_te), sk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    shapes = [
        ("digits 64-100-10, batch 200", digits(), (100,), 200, 30),
        ("MNIST-shaped 784-500-300-10, batch 128, 10k samples", mnist_shaped(), (500, 300), 128, 2),
    ]
    rows = [
        [
            "shape",
            "dtype",
            "hpo models ms/epoch",
            "scikit-learn ms/epoch",
            "speed-up",
            "hpo samples/s",
            "hpo GFLOP/s",
            "large GEMM GFLOP/s",
            "fraction of GEMM",
        ]
    ]
    with threadpool_limits(limits=1):
        for label, (X, y), hidden, batch, epochs in shapes:
            layers = [X.shape[1], *hidden, len(np.unique(y))]
            flops = (
                6 * X.shape[0] * sum(a * b for a, b in zip(layers[:-1], layers[1:], strict=True))
            )
            for dtype in ("float64", "float32"):
                Xd = X.astype(dtype)
                before = gemm_gflops(dtype)
                makers = ours(hidden, batch, dtype), sklearns(hidden, batch, dtype)
                for make in makers:  # warm-up: a process's first fit pays one-off costs
                    seconds_per_epoch(make, Xd, y, 1)
                # Alternated, so that a slow spell of the shared machine falls on both.
                times = [
                    [seconds_per_epoch(make, Xd, y, epochs) for make in makers]
                    for _ in range(args.repeats)
                ]
                mine, theirs = (statistics.median(column) for column in zip(*times, strict=True))
                # The machine is shared: the best GEMM rate seen before or after is the peak.
                peak = max(before, gemm_gflops(dtype))
                achieved = flops / mine / 1e9
                rows.append(
                    [
                        label,
                        dtype,
                        f"{mine * 1e3:.1f}",
                        f"{theirs * 1e3:.1f}",
                        f"{theirs / mine:.2f}x",
                        f"{X.shape[0] / mine:,.0f}",
                        f"{achieved:.1f}",
                        f"{peak:.1f}",
                        f"{achieved / peak:.2f}",
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
        acc_ours, acc_sk = digits_accuracy()

    body = "\n".join(
        [
            "## Model throughput (`benchmarks/models.py`)",
            "",
            f"Command: `.venv/bin/python benchmarks/models.py --repeats {args.repeats}`; machine: "
            f"{machine()}. One BLAS thread (threadpoolctl); Adam, learning rate 1e-3, every epoch "
            "run (no early stop); after a warm-up fit of each, the repeats alternate hpo and "
            "scikit-learn; median of the repeats. scikit-learn computes in the dtype of X.",
            "Targets: speed-up >= 2.5x at float64 and >= 4x at float32; >= 0.5 of the large-GEMM "
            "GFLOP/s on the MNIST shape.",
            "",
            table(rows),
            "",
            f"Digits test accuracy (80/20 split, 64-100-10, Adam, batch 200, up to 200 epochs, "
            f"float64): hpo models {acc_ours:.4f}, scikit-learn {acc_sk:.4f}.",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("models", body)


if __name__ == "__main__":
    main()
