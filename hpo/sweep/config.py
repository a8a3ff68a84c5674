"""A sweep's settings: one validated, immutable `SweepConfig`.

`hpo.run`, `hpo.resume`, the command line and experiment files all build one, and the
sweep reads only it. Each setting is one field here, with its default and its check; a
field marked ``FILE`` may be set in an experiment file, and one marked ``RECIPE`` is
recorded on the parent run (the ``hpo.recipe`` tag), so `hpo resume` reads the same
configuration back (`SweepConfig.recipe` and `SweepConfig.from_recipe`).

What is code (the space, the objective, its data, ``constraints``) is not a setting: it
goes beside the configuration.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpo.core.checks import check_seconds, finite_real, int_at_least, positive_int
from hpo.core.directions import Directions
from hpo.execution.resources import TrialResources
from hpo.strategies.pruners import Pruner, make_pruner
from hpo.tracking.outage import OUTAGE_LIMIT_SECONDS
from hpo.tracking.schema import TAG_VALUE_LIMIT, SweepTag, check_name, encode_recipe
from hpo.tracking.store import resolve_tracking_uri

DEFAULT_TRIALS = 20  # the budget when none is given (a grid's is its size)
DEFAULT_MAX_RETRIES = 1

FILE, RECIPE = "file", "recipe"  # where a field may come from, or is kept


def _setting(default: Any, check: Callable[[str, Any], Any] | None, *where: str) -> Any:
    """A field with its default, its check (``check(name, value)`` returns the value as
    kept, or raises with the rule) and where it may appear (`FILE`, `RECIPE`)."""
    kind = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kind, metadata={"check": check, "where": where})


def _directions(name: str, value: Any) -> Directions:
    return Directions.parse("minimize" if value is None else value)


def _optional_name(name: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _non_empty_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _objective_names(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"objective_names must be a list of names, got {value!r}")
    for each in value:
        check_name("objective", each)
    if len(set(value)) != len(value):
        raise ValueError(f"objective_names must differ from each other, got {list(value)}")
    return tuple(value)


def _options(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of keyword arguments, got {value!r}")
    return dict(value)


def _pruner(name: str, value: Any) -> dict[str, Any] | None:
    """A pruner as its recipe (a name, "name:options", a `Pruner`, or a recipe dict)."""
    if isinstance(value, dict):
        value = make_pruner(**value)
    pruner = make_pruner(value)
    return None if pruner is None else pruner.recipe()


def _enqueue(name: str, value: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping) or not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(
            f"enqueue must be a list of configurations (dicts like params), got {value!r}"
        )
    queued = tuple(dict(c) if isinstance(c, Mapping) else c for c in value)
    if len(json.dumps(queued, default=str)) > TAG_VALUE_LIMIT // 2:
        raise ValueError(
            f"enqueue holds more than the sweep can record for a resume ({len(queued)} "
            f"configurations, over {TAG_VALUE_LIMIT // 2} characters as JSON); queue fewer"
        )
    return queued


def _sweep_ids(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not all(isinstance(s, str) for s in value):
        raise ValueError(f"{name} must be a list of sweep ids, got {value!r}")
    return tuple(dict.fromkeys(value))


def _tags(name: str, value: Any) -> dict[str, str]:
    return dict(value or {})


def _seed(name: str, value: Any) -> int | None:
    if value is not None and (not isinstance(value, numbers.Integral) or value < 0):
        raise ValueError(f"seed must be a non-negative int, got {value!r}")
    return None if value is None else int(value)


def _metric_name(name: str, value: Any) -> str | None:
    if value is not None:
        check_name(name, value)
    return value


def _seconds(name: str, value: Any) -> float | None:
    check_seconds(name, value)
    return value


def _patience_seconds(name: str, value: Any) -> float:
    check_seconds(name, value, optional=False)
    return value


def _resources(name: str, value: Any) -> TrialResources:
    return TrialResources.parse(value)


def _flag(name: str, value: Any) -> bool:
    return bool(value)


def _tracking_uri(name: str, value: Any) -> str:
    return resolve_tracking_uri(value)


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    """Every setting of a sweep, checked once when it is made (see `hpo.run` for what
    each means). Immutable: a resume or a command-line override makes a new one with
    `dataclasses.replace`, which checks again.

    >>> c = SweepConfig(direction="maximize", n_trials=30, pruner="asha")
    >>> c.direction, c.pruner["pruner"]
    (Directions(['maximize']), 'asha')
    >>> SweepConfig(n_trials=0)
    Traceback (most recent call last):
    ...
    ValueError: n_trials must be an int >= 1, got 0
    """

    # What is searched, and how.
    direction: Directions = _setting(None, _directions, FILE)
    objective_names: tuple[str, ...] | None = _setting(None, _objective_names, FILE)
    strategy: str = _setting("random", _non_empty_name, FILE)
    strategy_options: dict[str, Any] = _setting(dict, _options, FILE, RECIPE)
    seed: int | None = _setting(None, _seed)
    n_trials: int | None = _setting(None, positive_int, FILE, RECIPE)
    enqueue: tuple[dict[str, Any], ...] = _setting(tuple, _enqueue, FILE, RECIPE)
    warm_start: tuple[str, ...] = _setting(tuple, _sweep_ids, FILE, RECIPE)
    stop_at: float | None = _setting(None, finite_real, FILE, RECIPE)
    patience: int | None = _setting(None, positive_int, FILE, RECIPE)
    # How trials run.
    workers: int | None = _setting(None, positive_int)
    resources: TrialResources = _setting(None, _resources, FILE, RECIPE)
    max_trials_per_worker: int | None = _setting(None, positive_int, FILE, RECIPE)
    keep_workers: float | None = _setting(None, _seconds)
    max_retries: int = _setting(DEFAULT_MAX_RETRIES, lambda n, v: int_at_least(n, v, 0), RECIPE)
    timeout: float | None = _setting(None, _seconds, RECIPE)
    trial_timeout: float | None = _setting(None, _seconds, RECIPE)
    pruner: dict[str, Any] | None = _setting(None, _pruner, FILE, RECIPE)
    prune_metric: str | None = _setting(None, _metric_name, FILE, RECIPE)
    repeats: int = _setting(1, lambda n, v: positive_int(n, v) or 1, FILE, RECIPE)
    register_model: str | None = _setting(None, _optional_name, FILE, RECIPE)
    # Where it runs and is recorded.
    address: str | None = _setting(None, None)
    tracking_uri: str = _setting(None, _tracking_uri)
    experiment_name: str = _setting("hpo", _non_empty_name)
    run_name: str | None = _setting(None, _optional_name)
    sweep_tags: dict[str, str] = _setting(dict, _tags)
    tracking_patience: float = _setting(OUTAGE_LIMIT_SECONDS, _patience_seconds)
    progress: bool = _setting(True, _flag)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check = f.metadata["check"]
            if check is not None:
                object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))
        self._check_together()

    def _check_together(self) -> None:
        """The rules between settings."""
        if self.strategy == "bohb":  # BOHB is TPE with Hyperband: the preset sets the pruner
            if self.pruner is None:
                object.__setattr__(self, "pruner", make_pruner("hyperband").recipe())
            elif self.pruner["pruner"] != "hyperband":
                raise ValueError(
                    f"strategy 'bohb' is TPE with the hyperband pruner, got pruner="
                    f"{self.pruner['pruner']!r}; leave the pruner out (or give hyperband's "
                    f"options), or use strategy='tpe' with pruner={self.pruner['pruner']!r}"
                )
        if self.strategy in ("pbt", "pbt-replay"):
            together = {
                "pruner": None if self.pruner is None else self.pruner["pruner"],
                "repeats": None if self.repeats == 1 else self.repeats,
            }
            for name, value in together.items():
                if value is not None:
                    raise ValueError(
                        f"strategy 'pbt' decides itself which members train on, from one "
                        f"curve per member, so it takes no {name} (got {name}={value!r})"
                    )
            if self.direction.several:
                raise ValueError(
                    "strategy 'pbt' ranks members by one value, but the sweep has several "
                    f"directions {list(self.direction)}"
                )
            options = self.strategy_options
            if self.strategy == "pbt" and self.n_trials is not None and "population" not in options:
                # n_trials counts pbt's members: --trials N is a population of N
                object.__setattr__(
                    self, "strategy_options", {**options, "population": self.n_trials}
                )
        names, directions = self.objective_names, self.direction
        if names is not None and not directions.several:
            raise ValueError(
                f"objective_names names several objectives, but the sweep has one direction "
                f"({directions[0]!r}, whose metric is 'objective'); give direction=[...] with "
                f"one direction per name, got objective_names={list(names)!r}"
            )
        if names is not None and len(names) != len(directions):
            raise ValueError(
                f"objective_names must be a list of {len(directions)} names, one per "
                f"direction {list(directions)}, got {list(names)!r}"
            )
        if directions.several:
            ranked = {
                "pruner": None if self.pruner is None else self.pruner["pruner"],
                "stop_at": self.stop_at,
                "repeats": None if self.repeats == 1 else self.repeats,
                "register_model": self.register_model,
            }
            for name, value in ranked.items():
                if value is not None:
                    raise ValueError(
                        f"{name}={value!r} ranks trials by one value, but the sweep has "
                        "several objectives; leave it out (the sweep's result is its Pareto "
                        "front)"
                    )
        if self.pruner is not None and self.repeats > 1:
            raise ValueError(
                "a pruner judges one curve per trial, so it cannot be combined with repeats "
                f"> 1 (got pruner={self.pruner['pruner']!r}, repeats={self.repeats})"
            )

    def make_pruner(self) -> Pruner | None:
        """A new pruner of this configuration, bound to the sweep's direction."""
        if self.pruner is None:
            return None
        pruner = make_pruner(**self.pruner)
        pruner.bind(self.direction.single)
        return pruner

    # -- the recipe on the parent run ------------------------------------------------------
    def recipe(self) -> dict[str, Any]:
        """What `hpo resume` needs to make this sweep again (the ``hpo.recipe`` tag's
        JSON); the direction, seed and strategy have tags of their own."""
        kept = {f.name for f in dataclasses.fields(self) if RECIPE in f.metadata["where"]}
        recipe = {name: getattr(self, name) for name in sorted(kept)}
        # The names earlier sweeps were recorded with, so that they still resume.
        recipe["options"] = recipe.pop("strategy_options")
        recipe["strategy"] = self.strategy
        recipe["enqueue"] = list(self.enqueue)
        recipe["warm_start"] = list(self.warm_start) or None
        recipe["resources"] = self.resources.recipe()
        return recipe

    def tags(self) -> dict[str, str]:
        """The parent run's tags that hold this configuration (the strategy's own name,
        `SweepTag.STRATEGY`, is the strategy's to give)."""
        return {
            SweepTag.DIRECTION: str(self.direction),
            SweepTag.SEED: str(self.seed),
            SweepTag.RECIPE: encode_recipe(self.recipe()),
        }

    @classmethod
    def from_recipe(cls, tags: Mapping[str, str], **settings: Any) -> SweepConfig:
        """The configuration a sweep recorded in its parent run's ``tags``, with
        ``settings`` (this run's: tracking URI, workers, ...) on top."""
        recipe = json.loads(tags[SweepTag.RECIPE])
        kept = {f.name for f in dataclasses.fields(cls) if RECIPE in f.metadata["where"]}
        recorded = {k: v for k, v in recipe.items() if k in kept}
        recorded["strategy_options"] = recipe.get("options") or {}
        recorded["strategy"] = recipe.get("strategy") or tags.get(SweepTag.STRATEGY)
        if SweepTag.OBJECTIVES in tags:
            recorded["objective_names"] = json.loads(tags[SweepTag.OBJECTIVES])
        if recorded.get("prune_metric") is None and SweepTag.PRUNE_METRIC in tags:
            recorded["prune_metric"] = tags[SweepTag.PRUNE_METRIC]  # chosen by the first report
        return cls(
            direction=tags[SweepTag.DIRECTION],
            seed=int(tags[SweepTag.SEED]),
            **{**recorded, **settings},
        )

    # -- experiment files and the command line ---------------------------------------------
    @classmethod
    def file_settings(cls) -> tuple[str, ...]:
        """The settings an experiment file may define (by these names)."""
        return tuple(f.name for f in dataclasses.fields(cls) if FILE in f.metadata["where"])

    def replace(self, **changes: Any) -> SweepConfig:
        """A copy with ``changes`` (None values are left out: not given), checked again."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
