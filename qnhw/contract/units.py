"""SI unit strings with decimal prefixes: the only unit conversion the protocol performs."""

from __future__ import annotations

import math

from qnhw.errors import BadParams

_PREFIX = {
    "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "\u00b5": 1e-6, "m": 1e-3,
    "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
}
#: Base units that take SI prefixes. Other unit strings ("dB", "dB/km", "deg", "ppm") match
#: only exactly.
BASE_UNITS = frozenset({"s", "Hz", "m", "W", "V", "A", "K", "rad", "J", "T"})


def _split(unit: str) -> tuple[float, str]:
    if unit in BASE_UNITS or unit == "":
        return 1.0, unit
    for prefix in sorted(_PREFIX, key=len, reverse=True):
        if prefix and unit.startswith(prefix) and unit[len(prefix):] in BASE_UNITS:
            return _PREFIX[prefix], unit[len(prefix):]
    return 1.0, unit


def convert_unit(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` from ``from_unit`` to ``to_unit`` (e.g. 5 "us" -> 5e-6 "s").

    Raises :class:`BadParams` when the units are of different dimension or unknown.
    """
    if from_unit == to_unit:
        return value
    f_scale, f_base = _split(from_unit)
    t_scale, t_base = _split(to_unit)
    if f_base != t_base:
        raise BadParams(f"unit {from_unit!r} cannot be converted to {to_unit!r}",
                        {"unit": from_unit, "expected": to_unit})
    result = value * (f_scale / t_scale)
    if not math.isfinite(result):
        raise BadParams(f"{value} {from_unit} overflows in {to_unit}")
    return result
