"""Checks of user input and the few rules every module shares: which numbers are
acceptable, how an error is told in one line (directions: `hpo.core.directions`).

Each rule is written once here; its message states the rule and the value received.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np


def int_at_least(name: str, value: Any, low: int) -> int:
    """``value`` as an int, if it is an integer (not a bool) of at least ``low``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def positive_int(name: str, value: Any) -> int | None:
    """An int >= 1, or None when not given."""
    return None if value is None else int_at_least(name, value, 1)


def check_seconds(name: str, value: Any, *, optional: bool = True) -> None:
    """A positive, finite number of seconds (or None, when ``optional``)."""
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 < value < math.inf  # also refuses NaN
    ):
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")


def check_value(value: Any, which: str = "") -> float:
    """The objective value as a float; ValueError/TypeError if it is not a finite real.
    ``which`` says which of several values it is (" as 'error'", " as value 2 of 3")."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"the objective must return a real number{which}, got {type(value).__name__}: "
            f"{value!r:.200}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"the objective returned {value}{which}, which is not a finite number")
    return value


def _each(values: Any) -> tuple[float, ...]:
    """Several values by position, each checked and named by its place if it fails."""
    n = len(values)
    return tuple(check_value(v, f" as value {i + 1} of {n}") for i, v in enumerate(values))


def check_result(value: Any) -> float | tuple[float, ...] | dict[str, float]:
    """What an objective returned, checked where it ran: a real (one objective), or a
    tuple or list of reals, or a dict of them by name (several; matched to the sweep's
    directions and names by the driver)."""
    if isinstance(value, Mapping):
        return {str(k): check_value(v, f" as {str(k)!r}") for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return _each(value)
    return check_value(value)


def check_values(value: Any, n: int) -> tuple[float, ...]:
    """A multi-objective result (a tuple or list of ``n`` finite reals) as floats."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | np.ndarray):
        raise TypeError(
            f"the objective must return {n} values (a tuple, one per direction), got "
            f"{type(value).__name__}: {value!r:.200}"
        )
    if len(value) != n:
        raise ValueError(
            f"the objective returned {len(value)} values, the sweep has {n} directions: "
            f"{value!r:.200}"
        )
    return _each(value)


def finite_real(name: str, value: Any) -> float | None:
    """``value`` as a float (None stays None); ValueError naming ``name`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def first_line(exc: BaseException, most: int = 300) -> str:
    """``Type: first line of the message``, at most ``most`` characters of message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:most] if text else ''}".rstrip(": ")
