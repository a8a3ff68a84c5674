"""How the suite runs in parallel (pytest-xdist, ``-n 3 --dist loadgroup``, as `make test`
runs it): the tests that share a machine-wide resource run as one group, one after another,
on one worker; the other groups and the unit tests run beside them on the other workers.
A module goes whole into one group, so its module-scoped fixtures are made once."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

# Each of these modules owns a resource for its whole run: the namespace hosts and their
# addresses, a Ray head on this machine's ports, a PostgreSQL cluster and MLflow server.
OWN_GROUP = {
    "test_deployment_hosts.py": "hosts",
    "test_cluster_address.py": "ray-head",
    "test_tracking_outage.py": "tracking-server",
}


# Groups by how long they take (the hosts: about 11 min beside the others; local Ray about
# 7; the rest less). `make test` keeps this order (--no-loadscope-reorder).
FIRST = {"hosts": 0, "local-ray": 1, "tracking-server": 2, "ray-head": 3}

# The GP's fits and scikit-learn's training checks of the Perceptron take seconds a case:
# slow (`make test` runs them; `make test-fast` leaves them out).
SLOW_CASES = (
    ("test_strategy_conformance.py::", "[gp"),
    ("test_sklearn_compliance.py::", "Perceptron"),
)


# First: pytest-xdist reads the groups in its own hook of this name.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    modules: dict[Path, list[pytest.Item]] = defaultdict(list)
    for item in items:
        if any(where in item.nodeid and case in item.nodeid for where, case in SLOW_CASES):
            item.add_marker(pytest.mark.slow)
        modules[Path(str(item.fspath))].append(item)
    for path, module_items in modules.items():
        group = OWN_GROUP.get(path.name)
        if group is None and any("ray_cluster" in i.fixturenames for i in module_items):
            group = "local-ray"  # the session's one local Ray cluster, per worker
        if group is not None:
            for item in module_items:
                item.add_marker(pytest.mark.xdist_group(group))
    # The longest groups first, then the other integration tests, the short ones last: so
    # that neither worker starts a long piece of work when the other is almost done.
    items.sort(
        key=lambda item: (
            FIRST.get(_group(item), len(FIRST)),
            item.get_closest_marker("integration") is None,
        )
    )


def _group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return None if mark is None else mark.args[0]
