"""The parameter checks every emulator constructor uses (emulators/devices/common.py)."""

from __future__ import annotations

import math

import pytest

from emulators.devices.common import count, fraction, nonnegative, number, positive, probability


@pytest.mark.parametrize("value", [True, "1", None, [1.0], math.nan, math.inf, -math.inf,
                                   10**400])
def test_number_refuses_non_numbers_and_non_finite_values(value: object) -> None:
    with pytest.raises(ValueError, match="speed"):
        number("speed", value)


def test_number_allows_infinity_only_when_asked() -> None:
    assert number("crosstalk", -math.inf, allow_inf=True) == -math.inf
    assert number("n", 3) == 3.0 and type(number("n", 3)) is float
    with pytest.raises(ValueError, match="crosstalk"):
        number("crosstalk", math.nan, allow_inf=True)


@pytest.mark.parametrize("check, good, bad", [
    (positive, [1e-30, 5], [0, -1, math.inf]),
    (nonnegative, [0, 2.5], [-1e-30, math.inf]),
    (probability, [0, 0.5, 1], [-0.1, 1.0000001]),
    (fraction, [1e-9, 1], [0, 1.5]),
])
def test_range_checks(check: object, good: list[float], bad: list[float]) -> None:
    assert callable(check)
    for value in good:
        assert check("p", value) == value
    for value in bad:
        with pytest.raises(ValueError, match="p must"):
            check("p", value)


def test_positive_infinity_when_allowed_and_count_bounds() -> None:
    assert positive("t1", math.inf, allow_inf=True) == math.inf
    assert count("shots", 5, 1, 10) == 5
    for value in (0, 11, 2.0, True):
        with pytest.raises(ValueError, match="shots"):
            count("shots", value, 1, 10)
