"""Statistical helpers for the physics tests.

Every Monte-Carlo assertion compares an estimate with a closed form within ``Z`` standard
errors, the standard error being computed from the sample size (never a constant copied
from the code's own output). Seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

Z = 5.0
"""Number of standard errors allowed in Monte-Carlo comparisons."""


class Stat:
    """Assertions with tolerances derived from the number of samples."""

    z = Z

    @staticmethod
    def binomial(k: int, n: int, p: float, z: float = Z) -> None:
        """``k`` successes in ``n`` trials agree with probability ``p``."""
        se = math.sqrt(max(p * (1 - p), 1e-300) / n)
        assert abs(k / n - p) <= z * se + 1e-12, (
            f"{k}/{n} = {k / n:.6g}, expected {p:.6g} +- {z * se:.2g}"
        )

    @staticmethod
    def mean(samples: np.ndarray, expected: float, z: float = Z) -> None:
        """Sample mean agrees with ``expected`` within ``z`` standard errors of the mean."""
        x = np.asarray(samples, dtype=float)
        se = x.std(ddof=1) / math.sqrt(x.size)
        assert abs(x.mean() - expected) <= z * se + 1e-12, (
            f"mean {x.mean():.6g}, expected {expected:.6g} +- {z * se:.2g}"
        )

    @staticmethod
    def poisson(k: int, expected: float, z: float = Z) -> None:
        """A count agrees with a Poisson mean."""
        assert abs(k - expected) <= z * math.sqrt(max(expected, 1.0)), f"{k} vs {expected:.6g}"


@pytest.fixture
def stat() -> type[Stat]:
    return Stat


@pytest.fixture
def rng_factory() -> Callable[[int], np.random.Generator]:
    return np.random.default_rng
