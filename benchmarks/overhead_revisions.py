"""Sweep overhead of this checkout against another revision's, side by side.

Runs each checkout's own ``benchmarks/overhead.py`` (one repeat of the no-op sweep and of
the 0.5 s CPU-bound sweep, no peers) with that checkout's Python, alternating between the
two so that both see the same machine state, and tables the overhead per trial, its ratio
to the MLflow floor measured in the same process, and the parallel efficiency.

    .venv/bin/python benchmarks/overhead_revisions.py --other DIR [--other-python PY]
        [--rounds 3] [--trials 200]

``DIR`` is a checkout of the other revision (``git worktree add DIR REV``) with hpo
installed in ``PY`` (default: ``DIR/.venv/bin/python``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine, table, write_section  # noqa: E402

HERE = Path(__file__).resolve().parent.parent
LINE = re.compile(
    r"repeat 0: floor ([\d.]+) ms \(WAL ([\d.]+)\), overhead ([\d.]+) ms/trial, "
    r"efficiency ([\d.]+)"
)


def git_revision(checkout: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(checkout), "log", "-1", "--format=%h"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


def measure(python: str, checkout: Path, trials: int) -> dict[str, float]:
    """One repeat of ``checkout``'s overhead benchmark: floor, WAL floor, overhead (ms) and
    parallel efficiency."""
    command = [
        python,
        str(checkout / "benchmarks" / "overhead.py"),
        "--trials",
        str(trials),
        "--cpu-trials",
        "40",
        "--tune-trials",
        "0",
        "--no-optuna",
        "--repeats",
        "1",
        "--no-write",
    ]
    out = subprocess.run(command, cwd=checkout, capture_output=True, text=True, timeout=1800)
    found = LINE.search(out.stdout)
    if out.returncode != 0 or found is None:
        raise RuntimeError(f"{checkout}: the benchmark failed:\n{out.stdout}\n{out.stderr}")
    floor, wal, overhead, efficiency = map(float, found.groups())
    return {"floor": floor, "wal": wal, "overhead": overhead, "efficiency": efficiency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, required=True, help="checkout of the other revision")
    parser.add_argument("--other-python", help="its Python (default: DIR/.venv/bin/python)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    other = args.other.resolve()
    sides = {
        f"this checkout ({git_revision(HERE)})": (sys.executable, HERE),
        f"other ({git_revision(other)})": (
            args.other_python or str(other / ".venv" / "bin" / "python"),
            other,
        ),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))  # neither always first
        for name in order:
            results[name].append(measure(*sides[name], args.trials))
            m = results[name][-1]
            print(
                f"round {r}, {name}: overhead {m['overhead']:.1f} ms/trial, floor "
                f"{m['floor']:.1f} ms, efficiency {m['efficiency']:.3f}",
                flush=True,
            )

    def cells(name: str, key: str, fmt: str, per_floor: bool = False) -> str:
        values = [m[key] / m["floor"] if per_floor else m[key] for m in results[name]]
        shown = ", ".join(format(v, fmt) for v in values)
        return f"{format(statistics.median(values), fmt)} ({shown})"

    rows = [["measure: median (each round)", *sides]]
    rows.append(["hpo overhead per trial, ms", *[cells(n, "overhead", ".1f") for n in sides]])
    rows.append(["MLflow floor, ms/run", *[cells(n, "floor", ".1f") for n in sides]])
    rows.append(["overhead / floor", *[cells(n, "overhead", ".2f", per_floor=True) for n in sides]])
    rows.append(
        [
            "parallel efficiency (40 trials of 0.5 s CPU, 2 workers)",
            *[cells(n, "efficiency", ".3f") for n in sides],
        ]
    )
    body = "\n".join(
        [
            "## Sweep overhead against another revision (`benchmarks/overhead_revisions.py`)",
            "",
            f"Command: `.venv/bin/python benchmarks/overhead_revisions.py --other DIR --rounds "
            f"{args.rounds} --trials {args.trials}`; machine: {machine()}. Each round runs both "
            "checkouts' own `benchmarks/overhead.py` (one repeat, no peers), alternating which "
            "goes first; the ratio to the MLflow floor is each run's own.",
            "",
            table(rows),
        ]
    )
    print(body)
    if not args.no_write:
        write_section("overhead-revisions", body)


if __name__ == "__main__":
    main()
