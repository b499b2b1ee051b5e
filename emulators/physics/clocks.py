"""Oscillators and time transfer: phase-noise models, Allan deviation, two-way transfer.

Time error ``x(t)`` (seconds) of a clock against ideal time, sampled at ``t_k = k tau0``:

* offset ``x0``, fractional frequency offset ``y0``, linear frequency drift ``D`` (1/s):
  ``x = x0 + y0 t + D t^2 / 2``;
* white PM: i.i.d. ``N(0, sigma_x^2)`` added to ``x``; ``ADEV(tau) = sqrt(3) sigma_x / tau``;
* white FM: ``x`` a Wiener process with ``Var[x(t+tau) - x(t)] = a^2 tau``;
  ``ADEV(tau) = a / sqrt(tau)`` (``a`` = ADEV at 1 s);
* random-walk FM: ``y`` a Wiener process, ``Var[y(t+tau) - y(t)] = 3 b^2 tau``;
  ``ADEV(tau) = b sqrt(tau)`` (``b`` = ADEV at 1 s); ``(x, y)`` integrated exactly;
* linear drift contributes ``ADEV(tau) = D tau / sqrt(2)``.

The overlapping Allan deviation of phase data (NIST SP 1065, Riley 2008, Eq. 14):
``sigma_y^2(tau) = sum_i (x_{i+2m} - 2 x_{i+m} + x_i)^2 / (2 tau^2 (N - 2m))``, ``tau = m tau0``.

Two-way time transfer (PTP, IEEE 1588): master sends at ``t1`` (master clock), slave
receives at ``t2`` (slave clock), slave sends at ``t3``, master receives at ``t4``;
``offset = ((t2 - t1) - (t4 - t3)) / 2``; a path asymmetry ``D = d_ms - d_sm`` biases it by
``D / 2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._types import FloatArray
from .errors import ParameterError

__all__ = [
    "OscillatorModel",
    "TwoWayExchange",
    "allan_deviation",
    "sample_time_error",
    "two_way_offset",
    "two_way_time_transfer",
]


@dataclass(frozen=True)
class OscillatorModel:
    """Noise of a free-running oscillator (all fractional frequencies dimensionless)."""

    offset_s: float = 0.0
    frequency_offset: float = 0.0
    drift_per_s: float = 0.0
    white_pm_s: float = 0.0
    white_fm_adev_1s: float = 0.0
    random_walk_fm_adev_1s: float = 0.0

    def __post_init__(self) -> None:
        v.finite("offset_s", self.offset_s)
        v.finite("frequency_offset", self.frequency_offset)
        v.finite("drift_per_s", self.drift_per_s)
        v.nonnegative("white_pm_s", self.white_pm_s)
        v.nonnegative("white_fm_adev_1s", self.white_fm_adev_1s)
        v.nonnegative("random_walk_fm_adev_1s", self.random_walk_fm_adev_1s)

    def allan_deviation(self, tau_s: float | ArrayLike) -> FloatArray:
        """Closed-form ADEV at averaging times ``tau_s`` (the noises add in variance)."""
        tau = v.float_array("tau_s", tau_s)
        if tau.size and tau.min() <= 0:
            raise ParameterError("tau_s must be > 0")
        var = (
            3.0 * self.white_pm_s**2 / tau**2
            + self.white_fm_adev_1s**2 / tau
            + self.random_walk_fm_adev_1s**2 * tau
            + (self.drift_per_s * tau) ** 2 / 2.0
        )
        return np.asarray(np.sqrt(var))


def sample_time_error(
    rng: np.random.Generator, model: OscillatorModel, n_samples: int, tau0_s: float
) -> FloatArray:
    """Time error ``x(t_k)`` in seconds at ``t_k = k tau0``, ``k = 0 .. n_samples - 1``."""
    rng = v.generator(rng)
    n = v.count("n_samples", n_samples, minimum=1)
    tau0 = v.positive("tau0_s", tau0_s)
    t = np.arange(n) * tau0
    x = model.offset_s + model.frequency_offset * t + model.drift_per_s * t**2 / 2.0
    if model.white_fm_adev_1s > 0.0:
        steps = rng.normal(0.0, model.white_fm_adev_1s * math.sqrt(tau0), size=n - 1)
        x = x + np.concatenate([[0.0], np.cumsum(steps)])
    if model.random_walk_fm_adev_1s > 0.0:
        c = 3.0 * model.random_walk_fm_adev_1s**2  # Var[dy] per second
        cov = c * np.array([[tau0**3 / 3.0, tau0**2 / 2.0], [tau0**2 / 2.0, tau0]])
        w = rng.multivariate_normal([0.0, 0.0], cov, size=n - 1, method="cholesky")
        y = np.concatenate([[0.0], np.cumsum(w[:, 1])])  # y at t_k
        dx = y[:-1] * tau0 + w[:, 0]  # integral of y over [t_k, t_k+1]
        x = x + np.concatenate([[0.0], np.cumsum(dx)])
    if model.white_pm_s > 0.0:
        x = x + rng.normal(0.0, model.white_pm_s, size=n)
    return np.asarray(x)


def allan_deviation(x: ArrayLike, tau0_s: float, m: int | ArrayLike) -> FloatArray:
    """Overlapping Allan deviation of phase data ``x`` (s) at ``tau = m tau0`` (NIST SP 1065)."""
    xs = v.float_array("x", x, ndim=1)
    tau0 = v.positive("tau0_s", tau0_s)
    ms = np.atleast_1d(np.asarray(m, dtype=np.int64))
    out = np.empty(ms.size)
    for i, mi in enumerate(ms):  # one vectorized pass per averaging factor
        if mi < 1 or xs.size < 2 * mi + 1:
            raise ParameterError(f"m = {mi} needs at least 2m + 1 = {2 * mi + 1} phase samples")
        d2 = xs[2 * mi :] - 2.0 * xs[mi:-mi] + xs[: -2 * mi]
        out[i] = math.sqrt(float(np.mean(d2**2)) / (2.0 * (mi * tau0) ** 2))
    return out


@dataclass(frozen=True)
class TwoWayExchange:
    """Time stamps of two-way exchanges (``t1``, ``t4``: master clock; ``t2``, ``t3``: slave)."""

    t1: FloatArray
    t2: FloatArray
    t3: FloatArray
    t4: FloatArray

    @property
    def offset(self) -> FloatArray:
        """Estimated slave-minus-master offset of each exchange."""
        return two_way_offset(self.t1, self.t2, self.t3, self.t4)


def two_way_offset(t1: ArrayLike, t2: ArrayLike, t3: ArrayLike, t4: ArrayLike) -> FloatArray:
    """``((t2 - t1) - (t4 - t3)) / 2``."""
    a = [np.asarray(t, dtype=np.float64) for t in (t1, t2, t3, t4)]
    return np.asarray(((a[1] - a[0]) - (a[3] - a[2])) / 2.0)


def two_way_time_transfer(
    rng: np.random.Generator,
    n_exchanges: int,
    offset_s: float,
    delay_ms_s: float,
    delay_sm_s: float,
    timestamp_jitter_s: float = 0.0,
    interval_s: float = 1.0,
    turnaround_s: float = 1e-3,
) -> TwoWayExchange:
    """Simulate ``n`` two-way exchanges with a constant slave-minus-master ``offset_s``.

    ``delay_ms_s``/``delay_sm_s``: one-way path delays; each time stamp carries Gaussian
    jitter of rms ``timestamp_jitter_s``.
    """
    rng = v.generator(rng)
    n = v.count("n_exchanges", n_exchanges, minimum=1)
    theta = v.finite("offset_s", offset_s)
    d_ms = v.nonnegative("delay_ms_s", delay_ms_s)
    d_sm = v.nonnegative("delay_sm_s", delay_sm_s)
    j = v.nonnegative("timestamp_jitter_s", timestamp_jitter_s)
    t1 = np.arange(n) * v.positive("interval_s", interval_s)
    t2 = t1 + d_ms + theta
    t3 = t2 + v.nonnegative("turnaround_s", turnaround_s)
    t4 = t3 - theta + d_sm
    noise = rng.normal(0.0, j, size=(4, n)) if j > 0 else np.zeros((4, n))
    return TwoWayExchange(t1 + noise[0], t2 + noise[1], t3 + noise[2], t4 + noise[3])
