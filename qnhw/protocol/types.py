"""Value types that travel as msgpack extension types (besides numpy arrays and complex)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timestamp:
    """An instant as integer picoseconds in a named clock domain (ext type 4).

    ``ps`` counts picoseconds since the domain's epoch; two timestamps are comparable only when
    their ``domain`` is the same.
    """

    ps: int
    domain: str

    def __post_init__(self) -> None:
        if not isinstance(self.ps, int) or isinstance(self.ps, bool):
            raise TypeError(f"Timestamp.ps must be int picoseconds, got {type(self.ps).__name__}")
        if not isinstance(self.domain, str) or not self.domain:
            raise TypeError("Timestamp.domain must be a non-empty str")

    @property
    def seconds(self) -> float:
        """The instant in seconds (float; loses resolution beyond ~104 days)."""
        return self.ps * 1e-12


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number with an explicit SI unit string, e.g. ``Quantity(5, "us")`` (ext type 5).

    Contracts convert a quantity to the parameter's unit (SI prefixes only) and reject a unit of
    another dimension with :class:`qnhw.errors.BadParams`.
    """

    value: float | int
    unit: str

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise TypeError(f"Quantity.value must be int or float, got {type(self.value).__name__}")
        if not isinstance(self.unit, str):
            raise TypeError("Quantity.unit must be str")
