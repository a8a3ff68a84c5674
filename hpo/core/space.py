"""Search spaces: nested dicts and lists whose leaves are `Float`, `Int`, `Choice` or constants.

A space is written the way the objective wants its ``params``::

    from hpo.core.space import Choice, Float, Int

    space = {
        "learning_rate": Float(1e-4, 1e-1, log=True),
        "batch_size": Int(16, 512, log=True),
        "layers": Choice([
            {"units": [Int(50, 1000)]},                  # one hidden layer
            {"units": [Int(50, 1000), Int(50, 1000)]},   # two, each with its own units
        ]),
        "epochs": 50,                                    # a constant
    }

`Space` compiles the tree once. Strategies work on *assignments*: a flat dict from each
active parameter's unique ``key`` to its value (a `Choice` is assigned its option index).
`Space.build` turns an assignment back into the nested ``params`` the objective receives,
and `Space.flat` into the dotted names logged to MLflow (``layers.units.0``). Keys differ
from names only inside conditional branches, where the option index is part of the key
(``layers[1].units.0``) so that the same name in two exclusive branches stays two
parameters.

Importing this module is cheap: it needs only NumPy.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Constant = None | bool | int | float | str
_CONSTANT_TYPES = (type(None), bool, int, float, str, np.integer, np.floating, np.bool_)


def _fmt(x: float) -> str:
    return format(x, "g") if isinstance(x, float) else repr(x)


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)


class Dimension:
    """A leaf that a strategy chooses a value for."""

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def grid_values(self) -> list[Any]:
        raise NotImplementedError

    def _check_grid(
        self, grid: Any, cast: type, accepts: Callable[[Any], bool], rule: str
    ) -> int | tuple[Any, ...] | None:
        """A grid given as a count (>= 1) or as explicit points that ``accepts`` admits."""
        kind = type(self).__name__
        if grid is None:
            return None
        if isinstance(grid, numbers.Integral) and not isinstance(grid, bool):
            if grid < 1:
                raise ValueError(f"{kind} grid count must be >= 1, got {grid!r}")
            return int(grid)
        if isinstance(grid, Sequence) and not isinstance(grid, str) and len(grid) > 0:
            bad = [g for g in grid if not accepts(g)]
            if bad:
                raise ValueError(f"{kind} grid points must {rule}, got {bad[0]!r}")
            return tuple(cast(g) for g in grid)
        raise TypeError(
            f"{kind} grid must be a count (int) or a non-empty list of points, got {grid!r}"
        )


class Float(Dimension):
    """A real number in ``[low, high]``, uniform or log-uniform.

    Parameters
    ----------
    low, high : float
        Bounds, ``low <= high``; both must be positive when ``log`` is true.
    log : bool
        Sample ``log(x)`` uniformly.
    grid : int or sequence of float, optional
        For grid search: a number of points (evenly spaced, geometrically when ``log``)
        or the explicit points. A `Float` without it cannot be enumerated.

    Examples
    --------
    >>> Float(1e-5, 10.0, log=True, grid=7).grid_values()[:2]
    [1e-05, 0.0001]
    """

    def __init__(
        self,
        low: float,
        high: float,
        log: bool = False,
        *,
        grid: int | Sequence[float] | None = None,
    ) -> None:
        for label, v in (("low", low), ("high", high)):
            if not _is_real(v) or not math.isfinite(v):
                raise TypeError(f"Float {label} must be a finite real number, got {v!r}")
        if not low <= high:
            raise ValueError(f"Float needs low <= high, but got (low={low!r}, high={high!r})")
        if log and low <= 0:
            raise ValueError(
                f"Float with log=True needs low > 0, but got (low={low!r}, high={high!r})"
            )
        self.low, self.high, self.log = float(low), float(high), bool(log)
        self.grid = self._check_grid(
            grid,
            float,
            lambda g: _is_real(g) and self.low <= g <= self.high,
            f"lie in [{_fmt(self.low)}, {_fmt(self.high)}]",
        )

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        return _is_real(value) and self.low <= value <= self.high

    def grid_values(self) -> list[float]:
        if self.grid is None:
            raise ValueError(
                f"{self!r} has no grid: give grid=COUNT or grid=[points] to use it in grid search"
            )
        if isinstance(self.grid, tuple):
            return list(self.grid)
        if self.grid == 1:
            return [self.low]
        spaced = np.geomspace if self.log else np.linspace
        # Round away float noise so logspace(-5, 1, 7) gives exactly 1e-05, ..., 10.0.
        return [float(f"{v:.12g}") for v in spaced(self.low, self.high, self.grid)]

    def __repr__(self) -> str:
        extra = ", log=True" if self.log else ""
        if self.grid is not None:
            extra += f", grid={self.grid!r}"
        return f"Float({_fmt(self.low)}, {_fmt(self.high)}{extra})"


class Int(Dimension):
    """An integer in ``[low, high]`` on a ``step`` lattice, uniform or log-uniform.

    Parameters
    ----------
    low, high : int
        Inclusive bounds, ``low <= high``, ``high - low`` a multiple of ``step``.
    log : bool
        Sample log-uniformly (needs ``low > 0`` and ``step == 1``).
    step : int
        Spacing of the allowed values, ``>= 1``.
    grid : int or sequence of int, optional
        For grid search: a number of points spread over the range, or explicit values.
        Without it the grid is every allowed value.

    Examples
    --------
    >>> Int(0, 10, step=5).grid_values()
    [0, 5, 10]
    """

    def __init__(
        self,
        low: int,
        high: int,
        log: bool = False,
        step: int = 1,
        *,
        grid: int | Sequence[int] | None = None,
    ) -> None:
        for label, v in (("low", low), ("high", high), ("step", step)):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool | np.bool_):
                raise TypeError(f"Int {label} must be an int, got {v!r} ({type(v).__name__})")
        if not low <= high:
            raise ValueError(f"Int needs low <= high, but got (low={low!r}, high={high!r})")
        if step < 1:
            raise ValueError(f"Int needs step >= 1, but got step={step!r}")
        if (high - low) % step:
            raise ValueError(
                f"Int needs high - low to be a multiple of step, but got "
                f"(low={low!r}, high={high!r}, step={step!r})"
            )
        if log and low <= 0:
            raise ValueError(
                f"Int with log=True needs low > 0, but got (low={low!r}, high={high!r})"
            )
        if log and step != 1:
            raise ValueError(f"Int with log=True needs step == 1, but got step={step!r}")
        self.low, self.high, self.log, self.step = int(low), int(high), bool(log), int(step)
        self.grid: int | tuple[int, ...] | None = None  # repr of self, below, reads it
        self.grid = self._check_grid(grid, int, self.contains, f"be allowed values of {self!r}")

    @property
    def n_values(self) -> int:
        return (self.high - self.low) // self.step + 1

    def _snap(self, x: float) -> int:
        k = round((x - self.low) / self.step)
        return int(self.low + min(max(k, 0), self.n_values - 1) * self.step)

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            # Widen by half a unit so the end values get their fair share after rounding.
            lo, hi = (
                math.log(self.low - 0.5 if self.low > 0.5 else self.low),
                math.log(self.high + 0.5),
            )
            return self._snap(math.exp(rng.uniform(lo, hi)))
        return self.low + int(rng.integers(self.n_values)) * self.step

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, numbers.Integral)
            and not isinstance(value, bool | np.bool_)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def grid_values(self) -> list[int]:
        if isinstance(self.grid, tuple):
            return list(self.grid)
        if self.grid is None or self.grid >= self.n_values:
            return list(range(self.low, self.high + 1, self.step))
        spaced = np.geomspace if self.log else np.linspace
        return sorted({self._snap(float(v)) for v in spaced(self.low, self.high, self.grid)})

    def __repr__(self) -> str:
        extra = ", log=True" if self.log else ""
        extra += f", step={self.step}" if self.step != 1 else ""
        extra += f", grid={self.grid!r}" if self.grid is not None else ""
        return f"Int({self.low}, {self.high}{extra})"


class Choice(Dimension):
    """One of ``options``; an option may be a constant or a sub-space (dict, list, leaf).

    A strategy assigns a `Choice` its option index. An option that is a sub-space makes
    the parameters inside it conditional: they exist only when that option is chosen.

    Examples
    --------
    >>> Choice(["relu", "tanh"]).grid_values()
    [0, 1]
    """

    def __init__(self, options: Sequence[Any]) -> None:
        if isinstance(options, str | bytes | Mapping) or not isinstance(options, Sequence):
            raise TypeError(
                f"Choice options must be a list or tuple, got {type(options).__name__}: {options!r}"
            )
        if len(options) == 0:
            raise ValueError("Choice needs at least one option, got an empty list")
        self.options = list(options)

    @property
    def is_conditional(self) -> bool:
        """True when some option is a sub-space rather than a constant."""
        return any(not isinstance(o, _CONSTANT_TYPES) for o in self.options)

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(len(self.options)))

    def contains(self, value: Any) -> bool:
        return isinstance(value, numbers.Integral) and 0 <= value < len(self.options)

    def grid_values(self) -> list[int]:
        return list(range(len(self.options)))

    def __repr__(self) -> str:
        return f"Choice({_tree_repr(self.options)})"


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a compiled space.

    ``key`` is unique in the space; ``name`` is the dotted path logged to MLflow;
    ``condition`` lists the ``(choice key, option index)`` pairs that make it active.
    """

    key: str
    name: str
    dim: Dimension
    condition: tuple[tuple[str, int], ...] = ()


# Compiled tree nodes. Kept private: users write plain dicts and lists.
@dataclass(frozen=True)
class _Const:
    value: Any


@dataclass(frozen=True)
class _Leaf:
    param: Param


@dataclass(frozen=True)
class _Branch:
    param: Param
    options: tuple[Any, ...]


@dataclass(frozen=True)
class _Dict:
    items: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class _List:
    items: tuple[Any, ...]


def _join(prefix: str, part: str) -> str:
    return f"{prefix}.{part}" if prefix else part


def _tree_repr(tree: Any) -> str:
    if isinstance(tree, Mapping):
        return "{" + ", ".join(f"{k!r}: {_tree_repr(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, list | tuple):
        return "[" + ", ".join(_tree_repr(v) for v in tree) + "]"
    return repr(tree)


class Space:
    """A compiled search space.

    Parameters
    ----------
    tree : dict
        Nested dicts and lists; leaves are `Float`, `Int`, `Choice` or constants
        (None, bool, int, float, str).

    Examples
    --------
    >>> import numpy as np
    >>> s = Space({"lr": Float(1e-3, 1.0, log=True), "act": Choice(["relu", "tanh"])})
    >>> a = s.sample(np.random.default_rng(0))
    >>> sorted(s.build(a))
    ['act', 'lr']
    """

    def __init__(self, tree: Mapping[str, Any]) -> None:
        if not isinstance(tree, Mapping):
            raise TypeError(f"a search space must be a dict, got {type(tree).__name__}: {tree!r}")
        self.tree = tree
        self.params: list[Param] = []
        # (flat name, condition) of every value that ends up in `flat`, to find duplicates.
        self._names: list[tuple[str, tuple[tuple[str, int], ...]]] = []
        self._root = self._compile(tree, "", "", ())
        self._check_duplicates()
        self._by_key = {p.key: p for p in self.params}

    # -- compilation ---------------------------------------------------------------------
    def _compile(self, node: Any, key: str, name: str, cond: tuple[tuple[str, int], ...]) -> Any:
        where = name or "<root>"
        if isinstance(node, Mapping):
            items = []
            for k, v in node.items():
                if not isinstance(k, str) or not k:
                    raise TypeError(f"space keys must be non-empty strings, got {k!r} at '{where}'")
                items.append((k, self._compile(v, _join(key, k), _join(name, k), cond)))
            return _Dict(tuple(items))
        if isinstance(node, list | tuple):
            return _List(
                tuple(
                    self._compile(v, _join(key, str(i)), _join(name, str(i)), cond)
                    for i, v in enumerate(node)
                )
            )
        if isinstance(node, Choice):
            param = Param(key, name, node, cond)
            self.params.append(param)
            options = [
                self._compile(option, f"{key}[{i}]", name, (*cond, (key, i)))
                for i, option in enumerate(node.options)
            ]
            if node.is_conditional:
                self._names.append((name, cond))
            return _Branch(param, tuple(options))
        if isinstance(node, Float | Int):
            param = Param(key, name, node, cond)
            self.params.append(param)
            self._names.append((name, cond))
            return _Leaf(param)
        if isinstance(node, _CONSTANT_TYPES):
            if isinstance(node, float) and not math.isfinite(node):
                raise ValueError(f"constants must be finite, got {node!r} at '{where}'")
            self._names.append((name, cond))
            return _Const(node.item() if isinstance(node, np.generic) else node)
        raise TypeError(
            f"unsupported value at '{where}': {node!r} ({type(node).__name__}); leaves must be "
            "Float, Int, Choice or a constant (None, bool, int, float, str)"
        )

    def _check_duplicates(self) -> None:
        by_name: dict[str, list[tuple[tuple[str, int], ...]]] = {}
        for name, cond in self._names:
            by_name.setdefault(name, []).append(cond)
        for name, conds in by_name.items():
            # A structured choice's own name and a constant option's name coincide by design;
            # two entries clash only when both can be active at once.
            for a, b in itertools.combinations(conds, 2):
                if a != b and (a[: len(b)] == b or b[: len(a)] == a):
                    continue
                if _compatible(a, b):
                    raise ValueError(
                        f"duplicate parameter name '{name}': two entries of the space flatten to "
                        "the same dotted name (a key containing '.' clashes with a nested key)"
                    )

    # -- queries -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.params)

    def __repr__(self) -> str:
        return f"Space({_tree_repr(self.tree)})"

    def param(self, key: str) -> Param:
        return self._by_key[key]

    def is_active(self, param: Param, assignment: Mapping[str, Any]) -> bool:
        return all(assignment.get(k) == i for k, i in param.condition)

    # -- sampling and enumeration --------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw an assignment (active parameters only) with the given generator."""
        assignment: dict[str, Any] = {}
        for p in self.params:
            if self.is_active(p, assignment):
                assignment[p.key] = p.dim.sample(rng)
        return assignment

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every assignment of the grid, in a fixed order (the last parameter varies fastest)."""
        yield from _grid(self._root)

    def grid_size(self) -> int:
        return _grid_size(self._root)

    def validate(self, assignment: Mapping[str, Any]) -> None:
        """Raise ValueError unless ``assignment`` gives every active parameter a valid value."""
        for p in self.params:
            active = self.is_active(p, assignment)
            if active and p.key not in assignment:
                raise ValueError(f"assignment misses active parameter '{p.key}'")
            if active and not p.dim.contains(assignment[p.key]):
                raise ValueError(f"value {assignment[p.key]!r} is not in {p.dim!r} for '{p.key}'")
            if not active and p.key in assignment:
                raise ValueError(f"assignment sets inactive parameter '{p.key}'")

    # -- conversions ---------------------------------------------------------------------
    def assignment_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The assignment of nested ``params`` shaped like the objective's (the inverse of
        `build`). Parameters left out stay out (`complete` fills them); a value outside its
        range, a key the space does not have, or a branch no option matches raise ValueError
        naming the parameter. A branch is the first option the given values fit.

        >>> s = Space({"lr": Float(1e-3, 1.0, log=True), "act": Choice(["relu", "tanh"])})
        >>> s.assignment_of({"act": "tanh"})
        {'act': 1}
        """
        if not isinstance(params, Mapping):
            raise ValueError(f"a configuration must be a dict like params, got {params!r}")
        out: dict[str, Any] = {}
        _parse(self._root, params, out, "")
        return out

    def complete(self, partial: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """``partial`` with every active parameter it leaves out drawn from its range."""
        assignment: dict[str, Any] = {}
        for p in self.params:
            if self.is_active(p, assignment):
                known = p.key in partial
                assignment[p.key] = partial[p.key] if known else p.dim.sample(rng)
        return assignment

    def build(self, assignment: Mapping[str, Any]) -> dict[str, Any]:
        """The nested ``params`` the objective receives."""
        return _build(self._root, assignment)

    def flat(self, assignment: Mapping[str, Any]) -> dict[str, Any]:
        """Dotted name -> value of every active entry, constants included (for MLflow)."""
        out: dict[str, Any] = {}
        _flatten(self._root, assignment, out)
        return out


def _compatible(a: tuple[tuple[str, int], ...], b: tuple[tuple[str, int], ...]) -> bool:
    da, db = dict(a), dict(b)
    return all(da[k] == db[k] for k in da.keys() & db.keys())


def _value(param: Param, raw: Any) -> Any:
    if isinstance(param.dim, Int):
        return int(raw)
    if isinstance(param.dim, Float):
        return float(raw)
    return raw


def _lookup(assignment: Mapping[str, Any], param: Param) -> Any:
    try:
        return assignment[param.key]
    except KeyError:
        raise KeyError(f"assignment has no value for active parameter '{param.key}'") from None


def _build(node: Any, a: Mapping[str, Any]) -> Any:
    if isinstance(node, _Const):
        return node.value
    if isinstance(node, _Leaf):
        return _value(node.param, _lookup(a, node.param))
    if isinstance(node, _Branch):
        return _build(node.options[int(_lookup(a, node.param))], a)
    if isinstance(node, _Dict):
        return {k: _build(v, a) for k, v in node.items}
    return [_build(v, a) for v in node.items]


def _flatten(node: Any, a: Mapping[str, Any], out: dict[str, Any], name: str = "") -> None:
    if isinstance(node, _Const):
        out[name] = node.value
    elif isinstance(node, _Leaf):
        out[node.param.name] = _value(node.param, _lookup(a, node.param))
    elif isinstance(node, _Branch):
        index = int(_lookup(a, node.param))
        chosen = node.options[index]
        if not isinstance(chosen, _Const | _Leaf):
            out[node.param.name] = index  # which branch, so runs can be filtered by it
        _flatten(chosen, a, out, node.param.name)
    elif isinstance(node, _Dict):
        for k, v in node.items:
            _flatten(v, a, out, _join(name, k))
    else:
        for i, v in enumerate(node.items):
            _flatten(v, a, out, _join(name, str(i)))


_MISSING = object()


def _parse(node: Any, value: Any, out: dict[str, Any], where: str) -> None:
    """Put the assignment of ``value`` (the nested form of ``node``) into ``out``."""
    shown = where or "<root>"
    if value is _MISSING:
        return  # left to `Space.complete`
    if isinstance(node, _Const):
        if value != node.value or isinstance(value, bool) != isinstance(node.value, bool):
            raise ValueError(f"'{shown}' is the constant {node.value!r} here, got {value!r}")
    elif isinstance(node, _Leaf):
        if isinstance(value, bool) or not node.param.dim.contains(value):
            raise ValueError(f"'{shown}' must be in {node.param.dim!r}, got {value!r}")
        out[node.param.key] = value
    elif isinstance(node, _Branch):
        errors = []
        for index, option in enumerate(node.options):
            fitted: dict[str, Any] = {}
            try:
                _parse(option, value, fitted, where)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            out.update(fitted, **{node.param.key: index})
            return
        options = node.param.dim.options
        if not node.param.dim.is_conditional:
            raise ValueError(f"'{shown}' must be one of {options!r}, got {value!r}")
        raise ValueError(f"no option of '{shown}' fits {value!r} ({'; '.join(errors)})")
    elif isinstance(node, _Dict):
        if not isinstance(value, Mapping):
            raise ValueError(f"'{shown}' must be a dict, got {value!r}")
        known = dict(node.items)
        unknown = [k for k in value if k not in known]
        if unknown:
            raise ValueError(f"the space has no parameter '{_join(where, str(unknown[0]))}'")
        for k, child in node.items:
            _parse(child, value.get(k, _MISSING), out, _join(where, k))
    else:
        if not isinstance(value, list | tuple) or len(value) != len(node.items):
            raise ValueError(f"'{shown}' must be a list of {len(node.items)}, got {value!r}")
        for i, child in enumerate(node.items):
            _parse(child, value[i], out, _join(where, str(i)))


def _grid(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, _Const):
        yield {}
    elif isinstance(node, _Leaf):
        for v in node.param.dim.grid_values():
            yield {node.param.key: v}
    elif isinstance(node, _Branch):
        for i, option in enumerate(node.options):
            for sub in _grid(option):
                yield {node.param.key: i, **sub}
    else:
        children = [list(_grid(c)) for c in _children(node)]
        for combo in itertools.product(*children):
            merged: dict[str, Any] = {}
            for part in combo:
                merged.update(part)
            yield merged


def _grid_size(node: Any) -> int:
    if isinstance(node, _Const):
        return 1
    if isinstance(node, _Leaf):
        return len(node.param.dim.grid_values())
    if isinstance(node, _Branch):
        return sum(_grid_size(o) for o in node.options)
    return math.prod(_grid_size(c) for c in _children(node))


def _children(node: _Dict | _List) -> tuple[Any, ...]:
    return tuple(v for _, v in node.items) if isinstance(node, _Dict) else node.items


def as_space(space: Space | Mapping[str, Any]) -> Space:
    """Accept a compiled `Space` or the plain tree a user writes."""
    return space if isinstance(space, Space) else Space(space)


__all__ = ["Choice", "Dimension", "Float", "Int", "Param", "Space", "as_space"]
