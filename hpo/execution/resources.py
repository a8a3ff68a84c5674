"""What one trial asks of the cluster: CPUs, GPUs, memory and custom resources.

`TrialResources` is checked when a sweep is configured, becomes the Ray options of each
worker actor (Ray then gives a GPU trial its devices in ``CUDA_VISIBLE_DEVICES``), tells
how many trials fit the cluster at once, and refuses a request no node can ever meet
(Ray would keep such an actor pending forever).

>>> r = TrialResources.parse("cpu=4,gpu=0.5")
>>> r.ray_options(), r.threads
({'num_cpus': 4.0, 'num_gpus': 0.5}, 4)
>>> r.fits({"CPU": 8.0, "GPU": 2.0})
4
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KEYS = ("cpu", "gpu", "memory", "custom")
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
# Ray's own resources of a node that are not requests a trial makes.
_NOT_ASKED = ("CPU", "GPU", "memory", "object_store_memory")


def _amount(name: str, value: Any) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"resources: {name} must be a number > 0, got {value!r}")
    if math.isinf(value):
        raise ValueError(f"resources: {name} must be finite, got {value!r}")
    return float(value)


def _memory(value: Any) -> int:
    """Bytes, from a number of bytes or a size such as "8GB" or "512MiB"."""
    if isinstance(value, str):
        match = _MEMORY.match(value)
        unit = match and match.group(2).upper()
        if not match or unit not in _UNITS:
            raise ValueError(
                f"resources: memory must be bytes or a size such as '8GB' or '512MiB' "
                f"(units {', '.join(u for u in _UNITS if u)}), got {value!r}"
            )
        value = float(match.group(1)) * _UNITS[unit]
    return int(_amount("memory", value))


@dataclass(frozen=True)
class TrialResources:
    """One trial's share of the cluster (one worker actor's Ray resources)."""

    cpu: float = 1.0
    gpu: float = 0.0
    memory: int | None = None  # bytes
    custom: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> TrialResources:
        """From None (one CPU), a dict such as ``{"cpu": 4, "gpu": 0.5, "memory": "8GB",
        "custom": {"tpu": 1}}`` or the command line's ``"cpu=4,gpu=0.5,custom.tpu=1"``."""
        if value is None:
            return cls()
        if isinstance(value, TrialResources):
            return value
        if isinstance(value, str):
            value = _from_text(value)
        if not isinstance(value, Mapping):
            raise ValueError(
                f"resources must be a dict such as {{'cpu': 4, 'gpu': 0.5}}, got {value!r}"
            )
        unknown = sorted(set(value) - set(KEYS))
        if unknown:
            raise ValueError(
                f"resources: unknown key {unknown[0]!r} (known: {', '.join(KEYS)}; other "
                f"resources go in custom={{name: amount}}), got {dict(value)!r}"
            )
        gpu = _amount("gpu", value["gpu"]) if "gpu" in value else 0.0
        if gpu > 1 and not gpu.is_integer():
            raise ValueError(
                "resources: gpu above 1 must be a whole number of devices (a fraction shares "
                f"one device), got {value['gpu']!r}"
            )
        custom = value.get("custom") or {}
        if not isinstance(custom, Mapping):
            raise ValueError(f"resources: custom must be a dict of name: amount, got {custom!r}")
        for name in custom:
            if not isinstance(name, str) or not name or name in _NOT_ASKED:
                raise ValueError(
                    f"resources: a custom resource's name must be a string other than Ray's "
                    f"own ({', '.join(_NOT_ASKED)}), got {name!r}"
                )
        return cls(
            cpu=_amount("cpu", value["cpu"]) if "cpu" in value else 1.0,
            gpu=gpu,
            memory=_memory(value["memory"]) if "memory" in value else None,
            custom={name: _amount(name, amount) for name, amount in sorted(custom.items())},
        )

    @property
    def threads(self) -> int:
        """BLAS and OpenMP threads inside the trial: its CPUs (at least one)."""
        return max(1, int(self.cpu))

    def asked(self) -> dict[str, float]:
        """The request in Ray's resource names."""
        asked = {"CPU": self.cpu, "GPU": self.gpu, "memory": self.memory, **self.custom}
        return {name: float(v) for name, v in asked.items() if v}

    def ray_options(self) -> dict[str, Any]:
        """The options of `ray.remote` for one worker."""
        options: dict[str, Any] = {"num_cpus": self.cpu}
        if self.gpu:
            options["num_gpus"] = self.gpu
        if self.memory:
            options["memory"] = self.memory
        if self.custom:
            options["resources"] = dict(self.custom)
        return options

    def fits(self, node: Mapping[str, float]) -> int:
        """How many such trials a node with these resources (Ray's names) runs at once.
        Ray packs fractional GPUs per device (two gpu=0.5 trials share one device, a
        trial never spans two): count devices, not their sum."""
        counts = []
        for name, amount in self.asked().items():
            have = float(node.get(name, 0.0))
            if name == "GPU" and amount < 1:
                counts.append(math.floor(1 / amount + 1e-9) * math.floor(have + 1e-9))
            else:
                counts.append(math.floor(have / amount + 1e-9))
        return min(counts)

    def recipe(self) -> dict[str, Any]:
        """As given back to `parse` (the sweep's recipe, the trial's tag)."""
        recipe: dict[str, Any] = {"cpu": self.cpu}
        if self.gpu:
            recipe["gpu"] = self.gpu
        if self.memory:
            recipe["memory"] = self.memory
        if self.custom:
            recipe["custom"] = dict(self.custom)
        return recipe

    def __str__(self) -> str:
        return describe(self.asked())


def _from_text(text: str) -> dict[str, Any]:
    """``"cpu=4,gpu=0.5,memory=8GB,custom.tpu=1"`` as `TrialResources.parse` takes it."""
    parsed: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, raw = item.partition("=")
        if not sep or not name.strip() or not raw.strip():
            raise ValueError(
                f"resources are NAME=AMOUNT pairs such as 'cpu=4,gpu=0.5,custom.tpu=1', "
                f"got {text!r}"
            )
        name, raw = name.strip(), raw.strip()
        if name == "memory":
            parsed[name] = raw
            continue
        try:
            amount = float(raw)
        except ValueError:
            raise ValueError(f"resources: {name} must be a number, got {raw!r}") from None
        if name.startswith("custom."):
            parsed.setdefault("custom", {})[name.removeprefix("custom.")] = amount
        else:
            parsed[name] = amount
    return parsed


def describe(resources: Mapping[str, float]) -> str:
    """Ray's resources as people read them: ``cpu=4, gpu=0.5, memory=8.0GB, tpu=1``."""
    parts = []
    for name, amount in resources.items():
        if name == "memory":
            parts.append(f"memory={amount / 1e9:.1f}GB")
        elif name in ("CPU", "GPU"):
            parts.append(f"{name.lower()}={amount:g}")
        elif name not in _NOT_ASKED and not name.startswith(("node:", "accelerator_type:")):
            parts.append(f"{name}={amount:g}")
    return ", ".join(parts)


def capacity(resources: TrialResources, nodes: Sequence[Mapping[str, float]]) -> int:
    """How many trials of ``resources`` the cluster of ``nodes`` (each node's total
    resources) runs at once. Raises when no node can ever run one."""
    if not nodes:
        raise ValueError("the Ray cluster has no live node")
    fit = sum(resources.fits(node) for node in nodes)
    if fit == 0:
        largest = max(nodes, key=lambda n: (n.get("CPU", 0.0), n.get("GPU", 0.0)))
        shown = {"CPU": largest.get("CPU", 0.0), "GPU": largest.get("GPU", 0.0), **largest}
        raise ValueError(
            f"resources={{{resources}}} per trial fits no node of the Ray cluster (the largest "
            f"has {describe(shown)}): ask for less, or add a node that has it"
        )
    return fit
