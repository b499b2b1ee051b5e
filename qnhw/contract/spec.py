"""Param, Command, StreamSpec and Contract: one definition for driver, server, describe, docs.

A :class:`Param` knows its type, SI unit, range or choices, default and documentation, and
validates a value (converting :class:`qnhw.Quantity` values with SI prefixes to its unit). The
same definitions validate in the driver before sending and again in the server, and serialize
into the ``describe`` reply (docs/protocol.md, "describe").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from qnhw.contract.units import convert_unit
from qnhw.errors import BadParams, ContractMismatch
from qnhw.protocol.types import Quantity, Timestamp


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Marks a parameter without a default.
REQUIRED: Final[Any] = _Required()

ParamType = Literal["int", "float", "bool", "str", "bytes", "array", "list", "dict", "timestamp",
                    "any"]
_TYPES: frozenset[str] = frozenset(ParamType.__args__)  # type: ignore[attr-defined]


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


@dataclass(frozen=True, slots=True)
class Param:
    """One command parameter.

    ``type``: one of int, float, bool, str, bytes, array (numpy), list, dict, timestamp
    (:class:`qnhw.Timestamp` or int picoseconds), any. ``unit``: SI unit string of the value the
    handler receives ("" when dimensionless). ``min``/``max``: inclusive bounds (numbers) or
    bounds on the length (str, bytes, list, array size). ``choices``: the allowed values.
    ``dtype``: for arrays, allowed numpy kinds such as "iu" or "f".
    """

    name: str
    type: ParamType
    doc: str = ""
    unit: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    default: Any = REQUIRED
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"param {self.name!r}: unknown type {self.type!r}")
        if not self.name.isidentifier():
            raise ValueError(f"param name {self.name!r} must be a Python identifier")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def _bad(self, why: str, value: Any) -> BadParams:
        return BadParams(f"parameter {self.name!r}: {why}",
                         {"param": self.name, "value": repr(value)[:200]})

    def validate(self, value: Any) -> Any:
        """Return ``value`` checked and converted to this parameter's type and unit.

        Raises :class:`BadParams` with the parameter name for wrong type, unit, range or choice.
        """
        if isinstance(value, Quantity):
            if self.type not in ("int", "float", "timestamp"):
                raise self._bad("does not take a quantity with a unit", value)
            value = convert_unit(value.value, value.unit, self.unit)
            if self.type in ("int", "timestamp"):
                rounded = round(value)
                if not math.isclose(value, rounded, rel_tol=1e-9, abs_tol=1e-9):
                    raise self._bad(f"{value} {self.unit} is not a whole number", value)
                value = rounded
        t = self.type
        if t == "int":
            if not _is_int(value):
                raise self._bad(f"expected int, got {type(value).__name__}", value)
            value = int(value)
            self._check_range(value, value)
        elif t == "float":
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise self._bad(f"expected float, got {type(value).__name__}", value)
            value = float(value)
            if not math.isfinite(value):
                raise self._bad("must be finite", value)
            self._check_range(value, value)
        elif t == "bool":
            if not isinstance(value, bool | np.bool_):
                raise self._bad(f"expected bool, got {type(value).__name__}", value)
            value = bool(value)
        elif t == "str":
            if not isinstance(value, str):
                raise self._bad(f"expected str, got {type(value).__name__}", value)
            self._check_range(len(value), value)
        elif t == "bytes":
            if not isinstance(value, bytes | bytearray):
                raise self._bad(f"expected bytes, got {type(value).__name__}", value)
            self._check_range(len(value), value)
        elif t == "array":
            if isinstance(value, list):
                try:
                    value = np.asarray(value)
                except (ValueError, TypeError) as exc:
                    raise self._bad(f"not an array: {exc}", value) from None
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "biufc":
                raise self._bad("expected a numeric numpy array", value)
            if self.dtype is not None and value.dtype.kind not in self.dtype:
                raise self._bad(f"array dtype {value.dtype} not of kind {self.dtype!r}", value)
            self._check_range(value.size, value)
        elif t == "list":
            if not isinstance(value, list | tuple):
                raise self._bad(f"expected list, got {type(value).__name__}", value)
            value = list(value)
            self._check_range(len(value), value)
        elif t == "dict":
            if not isinstance(value, dict):
                raise self._bad(f"expected map, got {type(value).__name__}", value)
        elif t == "timestamp":
            if isinstance(value, Timestamp):
                value = value.ps
            if not _is_int(value):
                raise self._bad("expected a Timestamp or int picoseconds", value)
            value = int(value)
            self._check_range(value, value)
        if self.choices is not None and value not in self.choices:
            raise self._bad(f"must be one of {list(self.choices)}", value)
        return value

    def _check_range(self, x: float, value: Any) -> None:
        sized = self.type in ("str", "bytes", "list", "array")
        what = "length" if sized else "value"
        unit = "" if sized or not self.unit else f" {self.unit}"
        if self.min is not None and x < self.min:
            raise self._bad(f"{what} {x}{unit} below minimum {self.min}{unit}", value)
        if self.max is not None and x > self.max:
            raise self._bad(f"{what} {x}{unit} above maximum {self.max}{unit}", value)

    def describe(self) -> dict[str, Any]:
        """The parameter as it appears in the ``describe`` reply."""
        d: dict[str, Any] = {"name": self.name, "type": self.type, "unit": self.unit,
                             "doc": self.doc, "required": self.required}
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        if self.choices is not None:
            d["choices"] = list(self.choices)
        if not self.required:
            d["default"] = self.default
        if self.dtype is not None:
            d["dtype"] = self.dtype
        return d


@dataclass(frozen=True, slots=True)
class Command:
    """A command: its name, parameters, documentation and a description of its result."""

    name: str
    params: tuple[Param, ...] = ()
    doc: str = ""
    returns: str = ""
    feature: str | None = None  # optional feature that gates this command, if any

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"command {self.name!r} has duplicate parameters")

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``params`` against the definition; fill defaults. Raises :class:`BadParams`."""
        out: dict[str, Any] = {}
        known = {p.name: p for p in self.params}
        for key in params:
            if key not in known:
                raise BadParams(f"{self.name}: unknown parameter {key!r}",
                                {"param": key, "known": sorted(known)})
        for p in self.params:
            if p.name in params:
                out[p.name] = p.validate(params[p.name])
            elif p.required:
                raise BadParams(f"{self.name}: missing required parameter {p.name!r}",
                                {"param": p.name})
            else:
                out[p.name] = p.default
        return out

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "doc": self.doc, "returns": self.returns,
                             "params": [p.describe() for p in self.params]}
        if self.feature is not None:
            d["feature"] = self.feature
        return d


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream: name, clock domain of its timestamps, payload description, documentation."""

    name: str
    doc: str = ""
    payload: str = ""
    clock_domain: str = "device"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "doc": self.doc, "payload": self.payload,
                "clock_domain": self.clock_domain}


@dataclass(frozen=True, slots=True)
class Contract:
    """A device contract: named, versioned ("MAJOR.MINOR") set of commands and streams."""

    name: str
    version: str
    commands: tuple[Command, ...] = ()
    streams: tuple[StreamSpec, ...] = ()
    doc: str = ""
    features: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        _parse_version(self.version)

    def command(self, name: str) -> Command:
        for c in self.commands:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def ref(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


def _parse_version(version: str) -> tuple[int, int]:
    try:
        major, minor = version.split(".")
        return int(major), int(minor)
    except ValueError:
        raise ValueError(f"contract version must be 'MAJOR.MINOR', got {version!r}") from None


def check_contract_compatible(expected: Mapping[str, str], offered: Mapping[str, str] | None,
                              ) -> None:
    """Raise :class:`ContractMismatch` unless ``offered`` can serve a client of ``expected``.

    Compatible means: same name, same major version, offered minor >= expected minor.
    """
    if offered is None:
        raise ContractMismatch(f"device declares no contract; expected {expected['name']} "
                               f"{expected['version']}", {"expected": dict(expected)})
    if offered.get("name") != expected["name"]:
        raise ContractMismatch(f"device implements {offered.get('name')!r}, expected "
                               f"{expected['name']!r}",
                               {"expected": dict(expected), "offered": dict(offered)})
    try:
        e_major, e_minor = _parse_version(expected["version"])
        o_major, o_minor = _parse_version(offered["version"])
    except ValueError as exc:
        raise ContractMismatch(str(exc)) from None
    if o_major != e_major or o_minor < e_minor:
        raise ContractMismatch(
            f"{expected['name']} version {offered['version']} cannot serve a client of "
            f"{expected['version']} (needs major {e_major}, minor >= {e_minor})",
            {"expected": dict(expected), "offered": dict(offered)})


def describe_commands(commands: Sequence[Command]) -> list[dict[str, Any]]:
    """``describe`` entries for ``commands``."""
    return [c.describe() for c in commands]
