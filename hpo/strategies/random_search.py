"""Random search: independent draws from the space."""

from __future__ import annotations

from typing import Any

from hpo.strategies.base import Strategy


class RandomSearch(Strategy):
    """Each trial is an independent draw from the space (the baseline to beat).

    Examples
    --------
    >>> from hpo.core.space import Float
    >>> s = RandomSearch({"x": Float(0.0, 1.0)}, seed=0)
    >>> [t] = s.ask()
    >>> s.tell(t, t.params["x"] ** 2)
    """

    name = "random"
    multi_objective = True

    def _suggest(self, n: int) -> list[dict[str, Any]]:
        return [self.space.sample(self.rng) for _ in range(n)]
