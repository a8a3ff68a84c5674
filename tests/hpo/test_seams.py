"""The driver's seams: the real worker pool and tracker, and the tests' fakes, all have the
methods the Protocols of `hpo.sweep.seams` name, with the same signatures, so a fake
cannot drift from what it stands for. Runs without Ray (the pool's module imports it only
when a pool is made)."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest
from fakes import FakePool, FakeTracker

from hpo.execution.pool import WorkerPool
from hpo.sweep.seams import Pool, RunTracker
from hpo.tracking.writer import Tracker


def members(protocol: type) -> dict[str, object]:
    """The protocol's methods and properties (not its attributes, which instances set)."""
    own = {
        name: value
        for name, value in vars(protocol).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }
    assert own, f"{protocol.__name__} names no method"
    return own


def parameters(function: object) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each parameter: what a caller relies on."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def drift(protocol: type, cls: type) -> list[str]:
    """How ``cls`` differs from ``protocol``: a missing method, another signature."""
    found_wrong = []
    for name, wanted in members(protocol).items():
        found = getattr(cls, name, None)
        if found is None:
            found_wrong.append(f"{cls.__name__} has no {name} ({protocol.__name__})")
        elif isinstance(wanted, property) != isinstance(found, property):
            found_wrong.append(f"{cls.__name__}.{name}: a property in one, not the other")
        elif not isinstance(wanted, property) and parameters(found) != parameters(wanted):
            found_wrong.append(
                f"{cls.__name__}.{name}{inspect.signature(found)} differs from "
                f"{protocol.__name__}.{name}{inspect.signature(wanted)}"
            )
    return found_wrong


@pytest.mark.parametrize(
    ("protocol", "cls"),
    [(Pool, WorkerPool), (Pool, FakePool), (RunTracker, Tracker), (RunTracker, FakeTracker)],
    ids=["WorkerPool", "FakePool", "Tracker", "FakeTracker"],
)
def test_the_real_classes_and_the_fakes_have_the_methods_of_their_seam(protocol, cls):
    assert drift(protocol, cls) == []


def test_a_fake_that_drifted_is_caught():
    class Drifted(FakeTracker):
        publish = None  # a fake that never learnt of a new method

        def end_trial(self, number, state):  # ... or kept an old signature
            pass

    found = drift(RunTracker, Drifted)
    assert len(found) == 2
    assert any("no publish" in f for f in found) and any("end_trial" in f for f in found)


@pytest.mark.slow
def test_the_seams_the_reader_and_the_outage_logic_are_tested_without_ray():
    """These tests, this one aside, in a process where ``import ray`` fails."""
    import subprocess

    here = Path(__file__).parent
    files = [str(here / f) for f in ("test_seams.py", "test_outage.py", "test_reader.py")]
    code = (
        "import sys; sys.modules['ray'] = None\n"  # any `import ray` now fails
        "try:\n    import ray\nexcept ImportError:\n    pass\nelse:\n    sys.exit(3)\n"
        "import pytest\n"
        f"sys.exit(pytest.main({files!r} + ['-q', '-p', 'no:cacheprovider', '-k', "
        "'not without_ray']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=here
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    passed = re.search(r"(\d+) passed", out.stdout)
    assert passed and int(passed.group(1)) >= 20, out.stdout[-2000:]  # all of them ran
