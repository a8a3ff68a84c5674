"""A small declared-constraint check for estimator parameters, run at the start of `fit`."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

Rule = tuple[Callable[[Any], bool], str]


def is_int(low: int | None = None) -> Callable[[Any], bool]:
    return lambda v: (
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and (low is None or v >= low)
    )


def is_real(
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            return False
        if low is not None and (v <= low if open_low else v < low):
            return False
        return not (high is not None and (v >= high if open_high else v > high))

    return check


def one_of(*options: Any) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in options


def check_params(estimator: Any, rules: dict[str, Rule]) -> None:
    """Raise ValueError naming the rule and the value for the first parameter that breaks one."""
    for name, (ok, rule) in rules.items():
        value = getattr(estimator, name)
        if not ok(value):
            raise ValueError(f"{type(estimator).__name__}: {name} must be {rule}, got {value!r}")
