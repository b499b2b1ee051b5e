"""Argument checks. Each returns the validated value or raises a typed error."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._types import FloatArray
from .errors import ParameterError, ShapeError


def _as_float(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a real number, got {value!r}") from exc
    if math.isnan(v):
        raise ParameterError(f"{name} must not be NaN")
    return v


def probability(name: str, value: Any) -> float:
    """A probability (or efficiency, transmission) in [0, 1]."""
    v = _as_float(name, value)
    if not 0.0 <= v <= 1.0:
        raise ParameterError(f"{name} must lie in [0, 1], got {value!r}")
    return v


def nonnegative(name: str, value: Any) -> float:
    """A finite real number >= 0 (a rate, a duration, a length)."""
    v = _as_float(name, value)
    if not (0.0 <= v < math.inf):
        raise ParameterError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def positive(name: str, value: Any, *, allow_inf: bool = False) -> float:
    """A real number > 0 (a lifetime, a bandwidth); ``inf`` only if allowed."""
    v = _as_float(name, value)
    if not v > 0.0 or (v == math.inf and not allow_inf):
        raise ParameterError(
            f"{name} must be > 0{'' if allow_inf else ' and finite'}, got {value!r}"
        )
    return v


def finite(name: str, value: Any) -> float:
    """Any finite real number."""
    v = _as_float(name, value)
    if not math.isfinite(v):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return v


def count(name: str, value: Any, *, minimum: int = 0) -> int:
    """An integer >= ``minimum`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {v}")
    return v


def generator(rng: Any) -> np.random.Generator:
    """The caller's ``numpy.random.Generator`` (every random draw comes from it)."""
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(
            f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def float_array(name: str, values: ArrayLike, *, ndim: int | None = None) -> FloatArray:
    """A finite float64 array, optionally of a given number of dimensions."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} must be a real array") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ShapeError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} must contain only finite values")
    return arr


def probability_array(name: str, values: ArrayLike) -> FloatArray:
    """A float64 array whose entries all lie in [0, 1]."""
    arr = float_array(name, values)
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ParameterError(f"{name} must have all entries in [0, 1]")
    return arr


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """One of a fixed set of strings."""
    if value not in allowed:
        raise ParameterError(f"{name} must be one of {allowed}, got {value!r}")
    return str(value)
