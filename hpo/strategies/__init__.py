"""Search strategies behind one ask/tell interface, and `make_strategy` to pick one by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpo.core.space import Space
from hpo.strategies.base import Strategy, Trial, TrialState
from hpo.strategies.gp import GPEI
from hpo.strategies.grid import GridSearch
from hpo.strategies.hyperopt_tpe import HyperoptTPE
from hpo.strategies.optuna_sampler import BOHB, TPE, OptunaSampler
from hpo.strategies.pbt import PBT, ScheduleReplay
from hpo.strategies.random_search import RandomSearch

STRATEGIES: dict[str, type[Strategy]] = {
    GridSearch.name: GridSearch,
    RandomSearch.name: RandomSearch,
    TPE.name: TPE,
    GPEI.name: GPEI,
    HyperoptTPE.name: HyperoptTPE,
    BOHB.name: BOHB,
    PBT.name: PBT,
    ScheduleReplay.name: ScheduleReplay,
}
OPTUNA_PREFIX = "optuna:"


def make_strategy(
    name: str,
    space: Space | Mapping[str, Any],
    *,
    direction: str = "minimize",
    seed: int | None = None,
    **options: Any,
) -> Strategy:
    """The strategy called ``name`` over ``space``, ready for ask/tell.

    Examples
    --------
    >>> from hpo.core.space import Float
    >>> s = make_strategy("random", {"x": Float(-1.0, 1.0)}, seed=1)
    >>> trials = s.ask(2)
    >>> for t in trials:
    ...     s.tell(t, t.params["x"] ** 2)
    """
    if isinstance(name, str) and name.startswith(OPTUNA_PREFIX):
        sampler = name[len(OPTUNA_PREFIX) :]
        return OptunaSampler(space, direction=direction, seed=seed, sampler=sampler, **options)
    try:
        cls = STRATEGIES[name]
    except (KeyError, TypeError):
        known = ", ".join([*sorted(STRATEGIES), f"{OPTUNA_PREFIX}NAME"])
        raise ValueError(f"unknown strategy {name!r}; choose one of: {known}") from None
    try:
        strategy = cls(space, direction=direction, seed=seed, **options)
    except TypeError as exc:  # an option the strategy does not take
        raise ValueError(f"strategy {name!r}: {exc}") from None
    strategy.recipe = {"strategy": name, "options": dict(options)}
    return strategy


__all__ = [
    "BOHB",
    "GPEI",
    "STRATEGIES",
    "TPE",
    "GridSearch",
    "HyperoptTPE",
    "OptunaSampler",
    "PBT",
    "RandomSearch",
    "ScheduleReplay",
    "Strategy",
    "Trial",
    "TrialState",
    "make_strategy",
]
