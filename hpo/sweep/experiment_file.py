"""Loading an experiment file: a Python module defining ``space`` and ``objective``."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo.core.checks import check_directions
from hpo.core.space import Space, as_space

MODULE_PREFIX = "hpo_experiment_"


@dataclass
class Experiment:
    """What an experiment file defines.

    Required: ``space`` and ``objective``. Optional: ``direction`` (default "minimize"; a
    list of them, one per objective, for several, with ``objective_names``),
    ``load_data()`` (called once per sweep; its result is the objective's ``data``),
    ``strategy``, ``strategy_options`` (keyword arguments of that strategy), ``n_trials``,
    ``pruner`` (a name or a `hpo.strategies.pruners.Pruner`), ``prune_metric``, ``repeats`` and
    ``register_model``, ``enqueue`` (configurations to run first), ``stop_at`` and
    ``patience`` (stopping rules), ``warm_start`` (sweep ids) (defaults the command line
    overrides), and ``constraints(params) -> bool``.
    """

    name: str
    path: Path
    space: Space
    objective: Callable[..., Any]
    direction: str | list[str] = "minimize"
    objective_names: list[str] | None = None
    load_data: Callable[[], Any] | None = None
    strategy: str | None = None
    strategy_options: dict[str, Any] | None = None
    n_trials: int | None = None
    pruner: Any = None
    prune_metric: str | None = None
    repeats: int | None = None
    register_model: str | None = None
    enqueue: list[dict[str, Any]] | None = None
    stop_at: float | None = None
    patience: int | None = None
    warm_start: list[str] | None = None
    constraints: Callable[[dict[str, Any]], bool] | None = None


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment file not found: {str(path)!r}")
    if path.suffix != ".py":
        raise ValueError(f"an experiment file must be a .py module, got {str(path)!r}")
    module_name = MODULE_PREFIX + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # In sys.modules so that the worker pool can have it pickled by value: Ray workers may
    # not have this file (a remote cluster), so the objective travels with its code.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)

    missing = [n for n in ("space", "objective") if not hasattr(module, n)]
    if missing:
        raise ValueError(f"{path} must define {' and '.join(missing)} (see the README)")
    if not isinstance(module.space, Space | Mapping):
        raise TypeError(f"{path}: space must be a dict, got {type(module.space).__name__}")
    load_data = getattr(module, "load_data", None)
    if load_data is not None and not callable(load_data):
        raise TypeError(f"{path}: load_data must be a function, got {type(load_data).__name__}")
    return Experiment(
        name=path.stem,
        path=path,
        space=as_space(module.space),
        objective=module.objective,
        direction=_direction(getattr(module, "direction", "minimize")),
        objective_names=getattr(module, "objective_names", None),
        load_data=load_data,
        strategy=getattr(module, "strategy", None),
        strategy_options=getattr(module, "strategy_options", None),
        n_trials=getattr(module, "n_trials", None),
        pruner=getattr(module, "pruner", None),
        prune_metric=getattr(module, "prune_metric", None),
        repeats=getattr(module, "repeats", None),
        register_model=getattr(module, "register_model", None),
        enqueue=getattr(module, "enqueue", None),
        stop_at=getattr(module, "stop_at", None),
        patience=getattr(module, "patience", None),
        warm_start=getattr(module, "warm_start", None),
        constraints=getattr(module, "constraints", None),
    )


def _direction(direction: Any) -> str | list[str]:
    """The file's direction, checked: one, or a list of one per objective."""
    directions = check_directions(direction)
    return directions[0] if len(directions) == 1 else list(directions)
