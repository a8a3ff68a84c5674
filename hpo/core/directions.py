"""Which way each objective goes: `Directions`, one "minimize" or "maximize" per objective.

Inside hpo a sweep's directions are this type; the text form ("minimize" or
"minimize,maximize") exists only at the edges: the ``hpo.direction`` tag, the command line
and experiment files.
"""

from __future__ import annotations

from typing import Any

MINIMIZE, MAXIMIZE = "minimize", "maximize"
DIRECTIONS = (MINIMIZE, MAXIMIZE)


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    return direction


class Directions(tuple[str, ...]):
    """One direction per objective, in the objectives' order.

    >>> d = Directions.parse("minimize, maximize")
    >>> d.several, str(d), d[1]
    (True, 'minimize,maximize', 'maximize')
    >>> Directions.parse("maximize").single
    'maximize'
    """

    __slots__ = ()

    @classmethod
    def parse(cls, direction: Any) -> Directions:
        """From "minimize", a list such as ["minimize", "maximize"], or the same list written
        "minimize,maximize" (the command line, the ``hpo.direction`` tag); ValueError with the
        rule otherwise."""
        if isinstance(direction, Directions):
            return direction
        if isinstance(direction, str):
            parts = [p.strip() for p in direction.split(",")] if "," in direction else [direction]
        elif isinstance(direction, list | tuple) and direction:
            parts = list(direction)
        else:
            raise ValueError(
                "direction must be 'minimize', 'maximize' or a non-empty list of them (one per "
                f"objective), got {direction!r}"
            )
        for part in parts:
            if part not in DIRECTIONS:
                raise ValueError(
                    f"each direction must be 'minimize' or 'maximize', got {part!r} in "
                    f"{direction!r}"
                )
        return cls(parts)

    @property
    def several(self) -> bool:
        """Whether there are several objectives (a Pareto front, no one best value)."""
        return len(self) > 1

    @property
    def single(self) -> str:
        """The direction of a sweep of one objective; ValueError with several."""
        if self.several:
            raise ValueError(
                f"a sweep with several objectives ({self}) has no single best trial; its "
                "Pareto front is (result.best_trials)"
            )
        return self[0]

    def __str__(self) -> str:
        return ",".join(self)

    def __repr__(self) -> str:
        return f"Directions({list(self)!r})"


def better(a: float, b: float, direction: str) -> bool:
    """Whether ``a`` is strictly better than ``b`` in ``direction`` (one objective's)."""
    return a < b if check_direction(direction) == MINIMIZE else a > b


def loss_sign(direction: str) -> float:
    """1 for "minimize", -1 for "maximize": the sign that makes lower values better."""
    return 1.0 if check_direction(direction) == MINIMIZE else -1.0
