"""The driver's seams: the real worker pool and tracker, and the tests' fakes, all have the
methods the Protocols of `hpo.sweep.seams` name, with the same signatures, so a fake
cannot drift from what it stands for. Runs without Ray (the pool's module imports it only
when a pool is made)."""

from __future__ import annotations

import inspect
import sys

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


def test_the_seams_the_reader_and_the_outage_logic_import_without_ray(tmp_path):
    import subprocess

    code = (
        "import sys; sys.modules['ray'] = None\n"  # any `import ray` now fails
        "import hpo.sweep.seams, hpo.tracking.reader, hpo.tracking.outage, hpo.tracking.writer\n"
        "import hpo.execution.pool, hpo.sweep.loop\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
