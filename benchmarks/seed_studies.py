"""Run the source material's studies (the seven experiment files) and put what each run
produced into docs/seed_studies.md: the command, its figure, its numbers and the date.

Each study runs with `hpo run experiments/NAME.py --seed 0` into a fresh sqlite store; its
figure is copied from the sweep's parent run into docs/seed_studies/, its numbers are read
back with `hpo.load_sweep`. The source material's numbers and the sentences on where they
differ are written by hand in docs/seed_studies.md, outside the generated sections.
`mnist_mlp` runs only where HPO_MNIST names an MNIST file (nothing is downloaded).

    .venv/bin/python benchmarks/seed_studies.py [NAME ...] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import table, write_section  # noqa: E402

DOC = ROOT / "docs" / "seed_studies.md"
FIGURES = ROOT / "docs" / "seed_studies"


def _best(result, value: str, metric: str | None = None, label: str | None = None) -> list:
    """Rows for the best trial: its value (``value`` names it), one of its reported
    metrics (``label`` names it), and its parameters."""
    best = result.best_trial
    rows = [["", "our run"], [value, f"{best.value:.4f}"]]
    if metric is not None:
        rows.append([label, f"{best.last_metrics[metric][1]:.4f}"])
    params = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()
    )
    return [*rows, ["at", params]]


def _grid(result, client) -> list[list[str]]:
    diverged = sum(1 for t in result.trials if t.error and "diverged" in t.error)
    rows = _best(result, "best validation accuracy", "train_accuracy", "its training accuracy")
    return [*rows, ["cells that diverged (FAILED)", str(diverged)]]


def _hidden_units(result, client) -> list[list[str]]:
    tried = sorted(t.params["hidden_units"] for t in result.trials if t.value is not None)
    rows = _best(result, "best validation cross-entropy")
    return [*rows, ["widths tried", ", ".join(map(str, tried))]]


def _seeds(result, client) -> list[list[str]]:
    """Per configuration: every seed's score and the share of seeds that learnt XOR."""
    folder = tempfile.mkdtemp(prefix="studies-")
    path = client.download_artifacts(result.sweep_id, "best_configurations.csv", folder)
    rows = [["configuration", "scores of the 8 seeds", "seeds that learnt XOR"]]
    found = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    found.sort(key=lambda r: (r["activation"], int(r["hidden_units"])))
    for row in found:
        values = [float(v) for v in row["values"].split()]
        rows.append(
            [
                f"{row['hidden_units']} units, {row['activation']}",
                " ".join(f"{v:g}" for v in values),
                f"{sum(v == 1.0 for v in values)}/{len(values)}",
            ]
        )
    return rows


# name -> (the parent run's figure to show, the table of numbers read from the sweep)
STUDIES: dict[str, tuple[str, Callable]] = {
    "digits_grid": ("heatmap.png", _grid),
    "digits_grid_sklearn": ("heatmap.png", _grid),
    "hidden_units_gp": ("gp_posterior.png", _hidden_units),
    "digits_tpe": (
        "optimization_history.png",
        lambda result, client: _best(
            result, "best validation cross-entropy", "val_accuracy", "its validation accuracy"
        ),
    ),
    "seed_variance": ("repeats.png", _seeds),
    "diabetes_regression": (
        "optimization_history.png",
        lambda result, client: _best(result, "best validation RMSLE", "r2", "its R²"),
    ),
    "mnist_mlp": (
        "optimization_history.png",
        lambda result, client: _best(
            result, "best validation accuracy", "test_accuracy", "its test accuracy"
        ),
    ),
}


def run_study(name: str, workers: int, store: Path) -> str:
    """Run one study with the CLI; return its generated section."""
    from mlflow.tracking import MlflowClient

    import hpo

    uri = f"sqlite:///{store / 'mlflow.db'}"
    command = ["hpo", "run", f"experiments/{name}.py", "--seed", "0"]
    tools = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the venv's hpo
    started = time.monotonic()
    done = subprocess.run(
        [*command, "--workers", str(workers), "--tracking-uri", uri, "--no-progress"],
        cwd=ROOT,
        env={**os.environ, "PATH": tools},
        capture_output=True,
        text=True,
        check=False,
    )
    minutes = (time.monotonic() - started) / 60
    if done.returncode != 0:
        raise SystemExit(f"{name}: hpo run failed:\n{done.stderr}")
    sweep_id = re.search(r"hpo show (\w+)", done.stdout).group(1)
    result = hpo.load_sweep(sweep_id, tracking_uri=uri)
    client = MlflowClient(uri)
    figure, numbers = STUDIES[name]
    FIGURES.mkdir(parents=True, exist_ok=True)
    fetched = Path(client.download_artifacts(sweep_id, figure, tempfile.mkdtemp()))
    shown = FIGURES / f"{name}_{figure}"
    shown.write_bytes(fetched.read_bytes())
    counts = f"{result.n_complete} complete, {result.n_failed} failed, {result.n_pruned} pruned"
    return (
        f"`{' '.join(command)}`, run {date.today()} with {workers} workers in "
        f"{minutes:.1f} min: {counts}.\n\n"
        f"{table(numbers(result, client))}\n\n"
        f"![{name}: {figure}](seed_studies/{shown.name})\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(STUDIES)}")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in STUDIES]
    if unknown:
        parser.error(f"unknown studies {unknown}; choose among {', '.join(STUDIES)}")
    for name in args.names or list(STUDIES):
        if name == "mnist_mlp" and not os.environ.get("HPO_MNIST"):
            print(f"{name}: skipped, HPO_MNIST names no MNIST file here", flush=True)
            continue
        with tempfile.TemporaryDirectory(prefix="studies-") as store:
            body = run_study(name, args.workers, Path(store))
        write_section(f"study-{name}", body, doc=DOC)
        print(f"{name}: written\n{body}", flush=True)


if __name__ == "__main__":
    main()
