"""Param, Command, StreamSpec and Contract: one definition for driver, server, describe, docs.

A :class:`Param` knows its type, SI unit, range or choices, default and documentation, and
validates a value (converting :class:`qnhw.Quantity` values with SI prefixes to its unit). The
same definitions validate in the driver before sending and again in the server, and serialize
into the ``describe`` reply (docs/protocol.md, "describe").

A :class:`Field` describes a value going the other way -- a command's result, a stream's
payload, a capability -- and *checks* it (:meth:`Field.check` returns a list of problems) rather
than converting it. A :class:`Contract` carries the capability schema and the optional features
a device may offer; :meth:`Contract.bind_domain` pins its timestamp parameters to the device's
clock domain so that a timestamp from another domain is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    ``dtype``: for arrays, allowed numpy kinds such as "iu" or "f". ``nullable``: ``None`` is
    accepted (it usually means "leave unchanged" or "not given"). ``items``: for lists, the
    definition every element is validated against. ``domain``: for timestamps, the clock domain
    a :class:`qnhw.Timestamp` must carry (plain int picoseconds are taken as in that domain).
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
    nullable: bool = False
    items: Param | None = None
    domain: str | None = None

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
        if value is None and self.nullable:
            return None
        if isinstance(value, Quantity):
            if self.type not in ("int", "float", "timestamp"):
                raise self._bad("does not take a quantity with a unit", value)
            try:
                value = convert_unit(value.value, value.unit, self.unit)
            except BadParams as exc:
                raise self._bad(exc.message, value) from None
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
            if self.items is not None:
                value = [self._item(i, v) for i, v in enumerate(value)]
        elif t == "dict":
            if not isinstance(value, dict):
                raise self._bad(f"expected map, got {type(value).__name__}", value)
        elif t == "timestamp":
            if isinstance(value, Timestamp):
                if self.domain is not None and value.domain != self.domain:
                    raise self._bad(f"timestamp in clock domain {value.domain!r}; this device "
                                    f"uses {self.domain!r}", value)
                value = value.ps
            if not _is_int(value):
                raise self._bad("expected a Timestamp or int picoseconds", value)
            value = int(value)
            self._check_range(value, value)
        if self.choices is not None and value not in self.choices:
            raise self._bad(f"must be one of {list(self.choices)}", value)
        return value

    def _item(self, index: int, value: Any) -> Any:
        assert self.items is not None
        try:
            return self.items.validate(value)
        except BadParams as exc:
            raise BadParams(f"parameter {self.name!r}[{index}]: {exc.message}",
                            {"param": self.name, "index": index,
                             "value": repr(value)[:200]}) from None

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
        if self.nullable:
            d["nullable"] = True
        if self.items is not None:
            d["items"] = self.items.describe()
        if self.domain is not None:
            d["domain"] = self.domain
        return d


@dataclass(frozen=True, slots=True)
class Field:
    """The schema of one value a device produces: a result key, a payload key, a capability.

    ``type`` as for :class:`Param`; ``unit``: SI unit string of the value ("" when
    dimensionless). ``required``: the key must be present. ``nullable``: ``None`` is allowed.
    ``dtype``: for arrays, the exact numpy dtype name (e.g. "int64"). ``items``: for lists, the
    schema of every element. ``fields``: for maps, the schema of known keys (other keys are
    allowed, so a minor version may add some). ``choices``: the allowed values. ``domain``: for
    timestamps, "device" when a :class:`qnhw.Timestamp` must be in the device's clock domain
    (int picoseconds count as in it), ``None`` when it may be in another (a peer's).
    """

    name: str
    type: ParamType
    doc: str = ""
    unit: str = ""
    required: bool = True
    nullable: bool = False
    dtype: str | None = None
    items: Field | None = None
    fields: tuple[Field, ...] = ()
    choices: tuple[Any, ...] | None = None
    domain: str | None = "device"

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"field {self.name!r}: unknown type {self.type!r}")

    def check(self, value: Any, where: str = "", device_domain: str | None = None,
              ) -> list[str]:
        """Problems with ``value`` (empty when it conforms); ``where`` prefixes each message.

        ``device_domain``: when given, timestamps of fields whose ``domain`` is "device" must
        be in it.
        """
        path = where or self.name
        if value is None:
            return [] if self.nullable else [f"{path}: is None"]
        t = self.type
        problems: list[str] = []
        if t == "int" or t == "timestamp":
            if t == "timestamp" and isinstance(value, Timestamp):
                if (device_domain is not None and self.domain == "device"
                        and value.domain != device_domain):
                    problems.append(f"{path}: timestamp in domain {value.domain!r}, expected "
                                    f"the device domain {device_domain!r}")
            elif not _is_int(value):
                problems.append(f"{path}: expected {t}, got {type(value).__name__}")
        elif t == "float":
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                problems.append(f"{path}: expected float, got {type(value).__name__}")
        elif t == "bool":
            if not isinstance(value, bool | np.bool_):
                problems.append(f"{path}: expected bool, got {type(value).__name__}")
        elif t == "str":
            if not isinstance(value, str):
                problems.append(f"{path}: expected str, got {type(value).__name__}")
        elif t == "bytes":
            if not isinstance(value, bytes | bytearray):
                problems.append(f"{path}: expected bytes, got {type(value).__name__}")
        elif t == "array":
            if not isinstance(value, np.ndarray):
                problems.append(f"{path}: expected a numpy array, got {type(value).__name__}")
            elif self.dtype is not None and value.dtype != np.dtype(self.dtype):
                problems.append(f"{path}: array dtype {value.dtype}, expected {self.dtype}")
        elif t == "list":
            if not isinstance(value, list | tuple):
                problems.append(f"{path}: expected list, got {type(value).__name__}")
            elif self.items is not None:
                for i, v in enumerate(value):
                    problems.extend(self.items.check(v, f"{path}[{i}]", device_domain))
        elif t == "dict":
            if not isinstance(value, dict):
                problems.append(f"{path}: expected map, got {type(value).__name__}")
            elif self.fields:
                problems.extend(check_fields(self.fields, value, path, device_domain))
        if not problems and self.choices is not None and value not in self.choices:
            problems.append(f"{path}: {value!r} is not one of {list(self.choices)}")
        return problems

    def describe(self) -> dict[str, Any]:
        """The field as it appears in ``describe`` replies and the generated docs."""
        d: dict[str, Any] = {"name": self.name, "type": self.type, "unit": self.unit,
                             "doc": self.doc, "required": self.required}
        if self.nullable:
            d["nullable"] = True
        if self.dtype is not None:
            d["dtype"] = self.dtype
        if self.items is not None:
            d["items"] = self.items.describe()
        if self.fields:
            d["fields"] = [f.describe() for f in self.fields]
        if self.choices is not None:
            d["choices"] = list(self.choices)
        if self.type == "timestamp" and self.domain != "device":
            d["domain"] = self.domain
        return d


def check_fields(fields: Sequence[Field], value: Any, where: str = "",
                 device_domain: str | None = None) -> list[str]:
    """Problems with the map ``value`` against ``fields`` (extra keys are allowed)."""
    if not isinstance(value, Mapping):
        return [f"{where or 'value'}: expected map, got {type(value).__name__}"]
    problems: list[str] = []
    for f in fields:
        path = f"{where}.{f.name}" if where else f.name
        if f.name not in value:
            if f.required:
                problems.append(f"{path}: missing")
            continue
        problems.extend(f.check(value[f.name], path, device_domain))
    return problems


@dataclass(frozen=True, slots=True)
class Command:
    """A command: its name, parameters, documentation and a description of its result."""

    name: str
    params: tuple[Param, ...] = ()
    doc: str = ""
    returns: str = ""
    feature: str | None = None  # optional feature that gates this command, if any
    result: tuple[Field, ...] = ()  # keys of the result map; () with returns "" means None
    _names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"command {self.name!r} has duplicate parameters")
        object.__setattr__(self, "_names", frozenset(names))

    def check_result(self, value: Any, device_domain: str | None = None) -> list[str]:
        """Problems with a handler's result against :attr:`result` (empty when it conforms)."""
        if self.result:
            return check_fields(self.result, value, "result", device_domain)
        if not self.returns and value is not None:
            return [f"result: expected None, got {type(value).__name__}"]
        return []

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``params`` against the definition; fill defaults. Raises :class:`BadParams`."""
        out: dict[str, Any] = {}
        if not self._names.issuperset(params):
            key = next(k for k in params if k not in self._names)
            raise BadParams(f"{self.name}: unknown parameter {key!r}",
                            {"param": key, "known": sorted(self._names)})
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
        if self.result:
            d["result"] = [f.describe() for f in self.result]
        return d


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream: name, clock domain of its timestamps, payload description, documentation.

    ``clock_domain`` "device" means the device's own domain (the ``clock_domain`` of its
    ``describe`` reply). ``fields``: the schema of the payload map, when it is one.
    """

    name: str
    doc: str = ""
    payload: str = ""
    clock_domain: str = "device"
    fields: tuple[Field, ...] = ()

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "doc": self.doc, "payload": self.payload,
                             "clock_domain": self.clock_domain}
        if self.fields:
            d["fields"] = [f.describe() for f in self.fields]
        return d

    def check_payload(self, value: Any, device_domain: str | None = None) -> list[str]:
        """Problems with one event payload against :attr:`fields` (empty when it conforms)."""
        return check_fields(self.fields, value, "payload", device_domain) if self.fields else []


@dataclass(frozen=True, slots=True)
class Contract:
    """A device contract: named, versioned ("MAJOR.MINOR") set of commands and streams."""

    name: str
    version: str
    commands: tuple[Command, ...] = ()
    streams: tuple[StreamSpec, ...] = ()
    doc: str = ""
    features: tuple[str, ...] = field(default=())
    capabilities: tuple[Field, ...] = ()
    feature_docs: tuple[tuple[str, str], ...] = ()  # (feature, what it adds)

    def __post_init__(self) -> None:
        _parse_version(self.version)
        for c in self.commands:
            if c.feature is not None and c.feature not in self.features:
                raise ValueError(f"command {c.name!r} needs undeclared feature {c.feature!r}")

    def command(self, name: str) -> Command:
        for c in self.commands:
            if c.name == name:
                return c
        raise KeyError(name)

    def stream(self, name: str) -> StreamSpec:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def ref(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}

    def commands_for(self, features: Iterable[str]) -> tuple[Command, ...]:
        """The commands a device offering the optional ``features`` must implement."""
        have = set(features)
        return tuple(c for c in self.commands if c.feature is None or c.feature in have)

    def check_capabilities(self, capabilities: Any) -> list[str]:
        """Problems with a device's capability map against :attr:`capabilities`.

        The reserved key ``features`` (the optional features the device offers) must list
        only features this contract declares.
        """
        problems = check_fields(self.capabilities, capabilities, "capabilities")
        if isinstance(capabilities, Mapping):
            offered = capabilities.get("features", [])
            if not isinstance(offered, list | tuple) or not all(
                    isinstance(f, str) for f in offered):
                problems.append("capabilities.features: expected a list of str")
            else:
                problems.extend(f"capabilities.features: {f!r} is not a feature of {self.name}"
                                for f in offered if f not in self.features)
        return problems

    def bind_domain(self, domain: str) -> Contract:
        """A copy whose timestamp parameters require ``domain`` (see :attr:`Param.domain`)."""

        def bind(p: Param) -> Param:
            items = bind(p.items) if p.items is not None else None
            if p.type == "timestamp":
                return replace(p, domain=domain, items=items)
            return replace(p, items=items) if items is not p.items else p

        commands = tuple(replace(c, params=tuple(bind(p) for p in c.params))
                         for c in self.commands)
        return replace(self, commands=commands)

    def describe(self) -> dict[str, Any]:
        """The whole contract as plain data (docs, ``qnhw describe --json``)."""
        return {
            "name": self.name, "version": self.version, "doc": self.doc,
            "features": [{"name": f, "doc": dict(self.feature_docs).get(f, "")}
                         for f in self.features],
            "commands": [c.describe() for c in self.commands],
            "streams": [s.describe() for s in self.streams],
            "capabilities": [f.describe() for f in self.capabilities],
        }


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
