"""Loading an experiment file: a Python module defining ``space`` and ``objective``."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpo.core.space import Space, as_space
from hpo.sweep.config import SweepConfig

MODULE_PREFIX = "hpo_experiment_"


@dataclass
class Experiment:
    """What an experiment file defines.

    Required: ``space`` and ``objective``. Optional: ``load_data()`` (called once per
    sweep; its result is the objective's ``data``), ``constraints(params) -> bool``, and
    any setting of `SweepConfig.file_settings` under its name (``direction``,
    ``objective_names``, ``strategy``, ``strategy_options``, ``n_trials``, ``pruner``,
    ``prune_metric``, ``repeats``, ``register_model``, ``enqueue``, ``stop_at``,
    ``patience``, ``warm_start``, ``resources``, ``max_trials_per_worker``): defaults the
    command line overrides. ``settings`` holds
    those the file defines, ``config`` the sweep configuration they make (checked when the
    file is loaded).
    """

    name: str
    path: Path
    space: Space
    objective: Callable[..., Any]
    load_data: Callable[[], Any] | None = None
    constraints: Callable[[dict[str, Any]], bool] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> SweepConfig:
        return SweepConfig(experiment_name=self.name, **self.settings)


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
    settings = {
        name: getattr(module, name)
        for name in SweepConfig.file_settings()
        if getattr(module, name, None) is not None
    }
    experiment = Experiment(
        name=path.stem,
        path=path,
        space=as_space(module.space),
        objective=module.objective,
        load_data=load_data,
        constraints=getattr(module, "constraints", None),
        settings=settings,
    )
    try:
        experiment.config  # noqa: B018 - checked now, before anything is created
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{path}: {exc}") from None
    return experiment
