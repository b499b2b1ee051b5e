"""Small builders shared by the contract definitions (not public API)."""

from __future__ import annotations

from typing import Any

from qnhw.contract.spec import Field, Param
from qnhw.protocol.types import Quantity, Timestamp
from qnhw.runtime.streams import StreamMode

#: A value in SI units: a plain number in the parameter's unit, or a :class:`qnhw.Quantity`
#: with any SI prefix of it (``Quantity(20, "ns")`` for a parameter in "s").
Number = float | Quantity
#: An instant: a :class:`qnhw.Timestamp` in the device's clock domain, or int picoseconds.
Instant = Timestamp | int
#: How a stream subscription receives events.
Mode = StreamMode | str

FANOUT = "fanout"

#: Most-used capability key documenting the reserved "features" list.
FEATURES_FIELD = Field("features", "list", "optional contract features this device offers",
                       items=Field("feature", "str"))


def ts_param(name: str, doc: str, **kw: Any) -> Param:
    """A timestamp parameter (int picoseconds, or a Timestamp in the device domain)."""
    return Param(name, "timestamp", doc, unit="ps", min=0, max=2**63 - 1, **kw)


def ts_field(name: str, doc: str, **kw: Any) -> Field:
    """A timestamp result/payload field."""
    return Field(name, "timestamp", doc, unit="ps", **kw)


def int_list(name: str, doc: str, *, item: str = "index", minimum: int = 0,
             **kw: Any) -> Param:
    """A list-of-ints parameter whose elements are at least ``minimum``."""
    return Param(name, "list", doc, items=Param(item, "int", min=minimum), **kw)


def float_pair(name: str, doc: str, unit: str, **kw: Any) -> Field:
    """A ``[min, max]`` capability range."""
    return Field(name, "list", doc, unit=unit, items=Field("bound", "float", unit=unit), **kw)
