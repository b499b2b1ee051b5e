"""Optical fiber: loss, delay, and slow phase / polarization drift.

* Transmission ``eta = 10^(-alpha L / 10)`` with ``alpha`` in dB/km and ``L`` in km.
* Delay ``t = n_g L / c`` (group index ``n_g``; 1.468 gives 4.9 us/km, about 5 us/km).
* Phase drift: a Wiener process, ``Var[phi(t) - phi(0)] = 2 D t`` (``D`` in rad^2/s);
  ``E[cos(phi(t) - phi(0))] = exp(-D t)``. A laser of Lorentzian linewidth ``dnu`` has
  ``D = pi dnu``.
* Polarization drift: rotational diffusion of the Stokes vector on the Poincare sphere.
  Each step rotates by a Gaussian rotation vector of per-axis variance ``2 D dt``, so
  ``E[s(t) . s(0)] = prod_k (1 + 2 (1 - s_k^2) exp(-s_k^2/2)) / 3``, ``s_k^2 = 2 D dt_k``,
  which tends to ``exp(-2 D t)`` for small steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._types import BoolArray, ComplexArray, FloatArray, IntArray
from .errors import ParameterError

__all__ = [
    "SPEED_OF_LIGHT",
    "Fiber",
    "delay",
    "delay_ps",
    "loss_db",
    "phase_diffusion_from_linewidth",
    "polarization_correlation",
    "sample_phase_drift",
    "sample_polarization_drift",
    "transmission",
]

SPEED_OF_LIGHT = 299_792_458.0
"""Speed of light in vacuum, m/s."""


def loss_db(length_m: float, loss_db_per_km: float) -> float:
    """Total loss in dB of ``length_m`` metres at ``loss_db_per_km``."""
    alpha = v.nonnegative("loss_db_per_km", loss_db_per_km)
    return alpha * v.nonnegative("length_m", length_m) / 1e3


def transmission(length_m: float, loss_db_per_km: float) -> float:
    """Power transmission ``10^(-alpha L / 10)`` of a fiber (dimensionless, in [0, 1])."""
    return math.pow(10.0, -loss_db(length_m, loss_db_per_km) / 10.0)


def delay(length_m: float, group_index: float = 1.468) -> float:
    """Propagation delay ``n_g L / c`` in seconds."""
    n_g = v.positive("group_index", group_index)
    if n_g < 1.0:
        raise ParameterError(f"group_index must be >= 1, got {n_g}")
    return n_g * v.nonnegative("length_m", length_m) / SPEED_OF_LIGHT


def delay_ps(length_m: float, group_index: float = 1.468) -> int:
    """Propagation delay rounded to integer picoseconds."""
    return round(delay(length_m, group_index) * 1e12)


def phase_diffusion_from_linewidth(linewidth_hz: float) -> float:
    """Phase diffusion ``D = pi dnu`` (rad^2/s) of a Lorentzian linewidth ``dnu`` (FWHM, Hz)."""
    return math.pi * v.nonnegative("linewidth_hz", linewidth_hz)


def _times(times_s: ArrayLike) -> FloatArray:
    t = v.float_array("times_s", times_s, ndim=1)
    if t.size and np.any(np.diff(t) < 0):
        raise ParameterError("times_s must be non-decreasing")
    return t


def sample_phase_drift(
    rng: np.random.Generator, times_s: ArrayLike, diffusion_rad2_per_s: float, phase0: float = 0.0
) -> FloatArray:
    """Phase (rad) of a Wiener process at ``times_s``; ``phi(times_s[0]) = phase0``."""
    rng = v.generator(rng)
    t = _times(times_s)
    d = v.nonnegative("diffusion_rad2_per_s", diffusion_rad2_per_s)
    if t.size == 0:
        return np.empty(0)
    steps = rng.normal(0.0, 1.0, size=t.size - 1) * np.sqrt(2.0 * d * np.diff(t))
    return np.asarray(v.finite("phase0", phase0) + np.concatenate([[0.0], np.cumsum(steps)]))


def _quat_mul(a: FloatArray, b: FloatArray) -> FloatArray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def sample_polarization_drift(
    rng: np.random.Generator, times_s: ArrayLike, diffusion_rad2_per_s: float
) -> ComplexArray:
    """Jones matrices ``U(t_k)`` (shape ``(N, 2, 2)``, SU(2)) of a drifting fiber; ``U(t_0) = I``.

    A polarization state ``|p>`` sent at ``t_k`` leaves as ``U(t_k) |p>``. Rotations on the
    Poincare sphere have Gaussian rotation vectors with per-axis variance ``2 D dt``; the
    cumulative product is a vectorized prefix scan (``log2 N`` passes).
    """
    rng = v.generator(rng)
    t = _times(times_s)
    d = v.nonnegative("diffusion_rad2_per_s", diffusion_rad2_per_s)
    n = t.size
    omega = (
        rng.normal(0.0, 1.0, size=(n, 3)) * np.sqrt(2.0 * d * np.diff(t, prepend=t[:1]))[:, None]
    )
    angle = np.linalg.norm(omega, axis=1)  # rotation angle on the Poincare sphere
    axis = np.divide(omega, angle[:, None], out=np.zeros_like(omega), where=angle[:, None] > 0)
    q = np.concatenate([np.cos(angle / 2)[:, None], np.sin(angle / 2)[:, None] * axis], axis=1)
    shift = 1
    while shift < n:  # Hillis-Steele scan: q[i] <- q[i] * q[i - shift]
        q = np.concatenate([q[:shift], _quat_mul(q[shift:], q[:-shift])])
        shift *= 2
    w, x, y, z = q.T
    # SU(2) element w I - i (x sx + y sy + z sz)
    return np.stack(
        [np.stack([w - 1j * z, -1j * x - y], -1), np.stack([-1j * x + y, w + 1j * z], -1)], axis=-2
    )


def polarization_correlation(times_s: ArrayLike, diffusion_rad2_per_s: float) -> FloatArray:
    """``E[s(t_k) . s(t_0)]`` of the Stokes vector for the drift model of
    :func:`sample_polarization_drift` (exact for its discretization)."""
    t = _times(times_s)
    d = v.nonnegative("diffusion_rad2_per_s", diffusion_rad2_per_s)
    s2 = 2.0 * d * np.diff(t, prepend=t[:1])
    step = (1.0 + 2.0 * (1.0 - s2) * np.exp(-s2 / 2.0)) / 3.0
    return np.asarray(np.cumprod(step))


@dataclass(frozen=True)
class Fiber:
    """A fiber span. Lengths in metres, loss in dB/km, diffusions in rad^2/s."""

    length_m: float
    loss_db_per_km: float = 0.2
    group_index: float = 1.468
    phase_diffusion_rad2_per_s: float = 0.0
    polarization_diffusion_rad2_per_s: float = 0.0

    def __post_init__(self) -> None:
        v.nonnegative("length_m", self.length_m)
        v.nonnegative("loss_db_per_km", self.loss_db_per_km)
        delay(0.0, self.group_index)
        v.nonnegative("phase_diffusion_rad2_per_s", self.phase_diffusion_rad2_per_s)
        v.nonnegative("polarization_diffusion_rad2_per_s", self.polarization_diffusion_rad2_per_s)

    @property
    def transmission(self) -> float:
        """Power transmission (dimensionless)."""
        return transmission(self.length_m, self.loss_db_per_km)

    @property
    def delay_s(self) -> float:
        """One-way delay in seconds."""
        return delay(self.length_m, self.group_index)

    @property
    def delay_ps(self) -> int:
        """One-way delay in integer picoseconds."""
        return delay_ps(self.length_m, self.group_index)

    def survivors(self, rng: np.random.Generator, n_photons: int) -> BoolArray:
        """Which of ``n_photons`` single photons survive the span (Bernoulli(eta) each)."""
        rng = v.generator(rng)
        return np.asarray(rng.random(v.count("n_photons", n_photons)) < self.transmission)

    def propagate_ps(self, rng: np.random.Generator, emission_times_ps: ArrayLike) -> IntArray:
        """Arrival times (int64 ps) of the surviving photons emitted at ``emission_times_ps``."""
        t = np.asarray(emission_times_ps, dtype=np.int64).reshape(-1)
        keep = self.survivors(rng, t.size)
        return np.asarray(t[keep] + self.delay_ps, dtype=np.int64)
