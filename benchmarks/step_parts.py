"""Where a digits epoch goes: each call of a training step of models.MLPClassifier, timed
on its own, against the speed-up targets of the models benchmark.

The step is the model's own for 64-100-10 (relu, softmax, Adam, batch 200, one BLAS thread):
the same helpers on the same arrays. Each call is repeated on warm arrays and its fastest
round kept, so the sum of the calls per epoch is a floor that no arrangement of them (nor
any saving of the Python between them) goes below. It is set against scikit-learn's epoch
divided by the target speed-up (2.5 at float64, 4 at float32), measured in this run.

    .venv/bin/python benchmarks/step_parts.py [--no-write]
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

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # not the models package


# The models benchmark's helpers (and the report writers it imports): its file name would
# shadow the models package, so it is loaded from its path.
_spec = importlib.util.spec_from_file_location("_models_benchmark", HERE / "models.py")
_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_models)
TARGETS = {"float64": 2.5, "float32": 4.0}
BATCH = 200


def fastest_us(call, repeats: int = 400, rounds: int = 5) -> float:
    """Microseconds of one call: the fastest of ``rounds`` rounds of ``repeats`` calls."""
    call()
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e6


def output_error(z: np.ndarray, Y: np.ndarray) -> None:
    """d loss / d z of softmax and cross-entropy, from the probabilities in z (in place)."""
    z -= Y
    z *= 1.0 / len(z)


def step_calls(X: np.ndarray, y: np.ndarray, dtype: str) -> tuple[dict[str, float], float]:
    """Microseconds of each call of one training step, and of one epoch's shuffle."""
    from models import MLPClassifier
    from models._activations import ACTIVATIONS
    from models._base import _softmax_cross_entropy, with_ones
    from models._blas import add_scaled, matmul_rows, matmul_summed

    model = MLPClassifier((100,), batch_size=BATCH, max_iter=1, dtype=dtype, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        model.fit(X, y)
    # Training's inputs carry a column of ones, and each layer's weights and bias are one
    # matrix [W; b]: a product adds the bias, a weight gradient yields the bias's.
    Xp, Y = with_ones(model._prepare_X(X, reset=False)), model._encode(y)
    ws = model._workspace(BATCH)
    params, grads = [model._packed_parameters()], [ws.grads]
    (W1, W2), (L1, L2) = model.coefs_, model._layer_weights()
    (g1, g2), (lg1, lg2) = ws.coef_grads, ws.layer_grads
    Xb, Yb, z1, z2, d1 = Xp[:BATCH], Y[:BATCH], ws.z[0], ws.z[1], ws.delta[0]
    relu = ACTIVATIONS["relu"]
    matmul_rows(Xb, L1, out=z1[:, :-1])  # real values in every array the calls read
    matmul_rows(relu.forward(z1, 0.0), L2, out=z2)
    calls = {
        "hidden layer product with bias (200x65 @ 65x100)": lambda: matmul_rows(
            Xb, L1, out=z1[:, :-1]
        ),
        "relu": lambda: relu.forward(z1, 0.0),
        "output layer product with bias (200x101 @ 101x10)": lambda: matmul_rows(z1, L2, out=z2),
        "softmax and cross-entropy": lambda: _softmax_cross_entropy(z2, Yb, BATCH),
        "output error (minus targets, over the batch)": lambda: output_error(z2, Yb),
        "output weight and bias gradient (101x200 @ 200x10)": lambda: matmul_summed(
            z1, z2, out=lg2, scratch=ws.scratch[1]
        ),
        "error back to the hidden layer (200x10 @ 10x101)": lambda: matmul_rows(z2, L2.T, out=d1),
        "relu derivative": lambda: relu.derivative(None, z1, 0.0, ws.derivative[0]),
        "error times derivative": lambda: np.multiply(d1, ws.derivative[0], out=d1),
        "hidden weight and bias gradient (65x200 @ 200x100)": lambda: matmul_summed(
            Xb, d1[:, :-1], out=lg1, scratch=ws.scratch[0]
        ),
        "L2 penalty's gradient (both layers)": lambda: [
            add_scaled(g, W, model.alpha / BATCH) for g, W in ((g1, W1), (g2, W2))
        ],
        "Adam step (7,510 parameters)": lambda: model._optimizer.step(params, grads, 1e-12),
    }
    rng = np.random.default_rng(0)
    costs = {name: fastest_us(call) for name, call in calls.items()}
    kept = np.empty_like(Xp), np.empty_like(Y)

    def shuffle_once() -> None:  # the model's: a permutation, gathered into kept arrays
        order = rng.permutation(len(Xp))
        np.take(Xp, order, axis=0, out=kept[0], mode="clip")
        np.take(Y, order, axis=0, out=kept[1], mode="clip")

    shuffle = fastest_us(shuffle_once, 50)
    return costs, shuffle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="whole-epoch timings of each")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    X, y = _models.digits()
    batches = X.shape[0] / BATCH  # the last, smaller batch counted by its share of rows
    per_call: dict[str, dict[str, float]] = {}
    summary = [["measure", "float64", "float32"]]
    rows: dict[str, list[str]] = {}
    with threadpool_limits(limits=1):
        for dtype in TARGETS:
            Xd = X.astype(dtype)
            costs, shuffle = step_calls(Xd, y, dtype)
            for name, us in costs.items():
                per_call.setdefault(name, {})[dtype] = us
            products = sum(us for name, us in costs.items() if "@" in name)
            floor = (sum(costs.values()) * batches + shuffle) / 1e3
            makers = _models.ours((100,), BATCH, dtype), _models.sklearns((100,), BATCH, dtype)
            for make in makers:  # warm-up, as in the models benchmark
                _models.seconds_per_epoch(make, Xd, y, 1)
            times = [
                [_models.seconds_per_epoch(make, Xd, y, 30) * 1e3 for make in makers]
                for _ in range(args.repeats)
            ]
            ours, theirs = (statistics.median(column) for column in zip(*times, strict=True))
            target = theirs / TARGETS[dtype]
            for label, value in [
                ("the five matrix products, us per batch", f"{products:.1f}"),
                ("every call of a step, us per batch", f"{sum(costs.values()):.1f}"),
                ("shuffle (permutation and gather), us per epoch", f"{shuffle:.1f}"),
                ("floor: the calls' sum per epoch, ms", f"{floor:.2f}"),
                ("models.MLPClassifier epoch, ms", f"{ours:.2f}"),
                ("scikit-learn epoch, ms", f"{theirs:.2f}"),
                (
                    "target epoch (scikit-learn's / 2.5 at float64, / 4 at float32), ms",
                    f"{target:.2f}",
                ),
                ("floor / target", f"{floor / target:.2f}"),
            ]:
                rows.setdefault(label, [label]).append(value)
            print(dtype, f"floor {floor:.2f} ms, ours {ours:.2f}, target {target:.2f}", flush=True)
    summary += list(rows.values())
    calls = [["call (one batch of 200)", "float64 us", "float32 us"]] + [
        [name, f"{c['float64']:.1f}", f"{c['float32']:.1f}"] for name, c in per_call.items()
    ]
    body = "\n".join(
        [
            "## Where a digits epoch goes (`benchmarks/step_parts.py`)",
            "",
            f"Command: `.venv/bin/python benchmarks/step_parts.py --repeats {args.repeats}`; "
            f"machine: {_models.machine()}. The calls of one training step of "
            "models.MLPClassifier (64-100-10, relu, softmax, Adam, batch 200, one BLAS thread), "
            "each timed alone on warm arrays (fastest of 5 rounds of 400 calls); per epoch, "
            f"{batches:.3f} batches and one shuffle. Epochs timed as in the models benchmark "
            f"(30 epochs, median of {args.repeats}).",
            "",
            _models.table(summary),
            "",
            _models.table(calls),
        ]
    )
    print(body)
    if not args.no_write:
        _models.write_section("step_parts", body)


if __name__ == "__main__":
    main()
