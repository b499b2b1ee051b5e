"""Single-photon detectors and time taggers (SNSPD, SPAD).

Model (Hadfield, Nat. Photon. 3, 696, 2009; Mueller, Nucl. Instrum. Methods 112, 47, 1973):

* efficiency ``eta``: each photon clicks with probability ``eta`` (binomial thinning);
* dark counts: a Poisson process of rate ``R``; probability of at least one in a window
  ``dt`` is ``1 - exp(-R dt)``;
* timing jitter: Gaussian, ``sigma = FWHM / (2 sqrt(2 ln 2)) = FWHM / 2.355``;
* dead time ``tau``: non-paralyzable (an event during the dead time is lost and does not
  extend it), measured rate ``m = n / (1 + n tau)``; paralyzable (every event restarts the
  dead time), ``m = n exp(-n tau)``, for a Poisson input of rate ``n``;
* afterpulsing: each registered click triggers, with probability ``p_ap``, one extra click
  a time ``tau + Exp(tau_ap)`` later (one generation: afterpulses do not themselves
  afterpulse); the dead time is then applied again to the merged stream.

Output: :class:`TimeTags`, int64 picosecond time stamps sorted in time, with int32
channel ids. Everything is vectorized: the non-paralyzable dead time follows the chain
of kept events by pointer doubling (``O(n log n)`` array work, no Python loop per event).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._types import BoolArray, IntArray
from .errors import ParameterError, ShapeError

__all__ = [
    "DetectorModel",
    "TimeTags",
    "dark_count_probability",
    "dead_time_mask",
    "detect",
    "jitter_sigma",
    "nonparalyzable_rate",
    "paralyzable_rate",
]

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
"""FWHM of a Gaussian in units of its standard deviation (2.3548...)."""


def dark_count_probability(rate_hz: float, window_s: float) -> float:
    """Probability ``1 - exp(-R dt)`` of at least one dark count in a window."""
    r = v.nonnegative("rate_hz", rate_hz)
    dt = v.nonnegative("window_s", window_s)
    return -math.expm1(-r * dt)


def jitter_sigma(fwhm_s: float) -> float:
    """Standard deviation of Gaussian jitter from its FWHM: ``FWHM / 2.355``."""
    return v.nonnegative("fwhm_s", fwhm_s) / FWHM_PER_SIGMA


def nonparalyzable_rate(true_rate_hz: float, dead_time_s: float) -> float:
    """Measured rate ``n / (1 + n tau)`` of a non-paralyzable detector."""
    n = v.nonnegative("true_rate_hz", true_rate_hz)
    return n / (1.0 + n * v.nonnegative("dead_time_s", dead_time_s))


def paralyzable_rate(true_rate_hz: float, dead_time_s: float) -> float:
    """Measured rate ``n exp(-n tau)`` of a paralyzable detector."""
    n = v.nonnegative("true_rate_hz", true_rate_hz)
    return n * math.exp(-n * v.nonnegative("dead_time_s", dead_time_s))


@dataclass(frozen=True)
class TimeTags:
    """Time tags: sorted int64 picosecond stamps and the int32 channel of each."""

    times_ps: IntArray
    channels: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        if self.times_ps.dtype != np.int64 or self.times_ps.ndim != 1:
            raise ShapeError("times_ps must be a 1-D int64 array")
        if self.channels.shape != self.times_ps.shape or self.channels.dtype != np.int32:
            raise ShapeError("channels must be an int32 array of the same shape as times_ps")

    def __len__(self) -> int:
        return int(self.times_ps.size)

    @staticmethod
    def merge(*streams: TimeTags) -> TimeTags:
        """Merge several tag streams into one, sorted by time (stable)."""
        if not streams:
            return TimeTags(np.empty(0, np.int64), np.empty(0, np.int32))
        t = np.concatenate([s.times_ps for s in streams])
        c = np.concatenate([s.channels for s in streams])
        order = np.argsort(t, kind="stable")
        return TimeTags(t[order], c[order])

    def channel(self, channel_id: int) -> IntArray:
        """Time stamps of one channel."""
        return np.asarray(self.times_ps[self.channels == channel_id])


def dead_time_mask(times_ps: ArrayLike, dead_time_ps: int, paralyzable: bool = False) -> BoolArray:
    """Which events of a sorted int64 time stream a detector with dead time registers.

    Paralyzable: an event counts iff the previous *event* (counted or not) is at least
    ``tau`` earlier. Non-paralyzable: an event counts iff the previous *counted* event is
    at least ``tau`` earlier; the chain of counted events is followed by pointer doubling.
    """
    t = np.asarray(times_ps, dtype=np.int64)
    if t.ndim != 1:
        raise ShapeError("times_ps must be 1-D")
    n = t.size
    tau = int(v.nonnegative("dead_time_ps", dead_time_ps))
    if n == 0 or tau == 0:
        return np.ones(n, dtype=bool)
    if np.any(np.diff(t) < 0):
        raise ParameterError("times_ps must be sorted")
    if paralyzable:
        keep = np.ones(n, dtype=bool)
        keep[1:] = np.diff(t) >= tau
        return keep
    nxt = np.searchsorted(t, t + tau, side="left").astype(np.int64)  # next event allowed after i
    jump = np.concatenate([nxt, [n]])  # sentinel n maps to itself
    chain = np.zeros(1, dtype=np.int64)  # f^j(0) for j < len(chain), in order
    while chain[-1] != n:
        chain = np.concatenate([chain, jump[chain]])
        if chain[-1] == n:
            chain = chain[: int(np.searchsorted(chain, n))]
            break
        jump = jump[jump]
    keep = np.zeros(n, dtype=bool)
    keep[chain[chain < n]] = True
    return keep


@dataclass(frozen=True)
class DetectorModel:
    """Parameters of a threshold single-photon detector (SI units: s, Hz)."""

    efficiency: float
    dark_count_rate_hz: float = 0.0
    dead_time_s: float = 0.0
    paralyzable: bool = False
    jitter_fwhm_s: float = 0.0
    afterpulse_probability: float = 0.0
    afterpulse_time_constant_s: float = 0.0

    def __post_init__(self) -> None:
        v.probability("efficiency", self.efficiency)
        v.nonnegative("dark_count_rate_hz", self.dark_count_rate_hz)
        v.nonnegative("dead_time_s", self.dead_time_s)
        v.nonnegative("jitter_fwhm_s", self.jitter_fwhm_s)
        v.probability("afterpulse_probability", self.afterpulse_probability)
        v.nonnegative("afterpulse_time_constant_s", self.afterpulse_time_constant_s)

    def dark_count_probability(self, window_s: float) -> float:
        """Probability of at least one dark count in a window of ``window_s`` seconds."""
        return dark_count_probability(self.dark_count_rate_hz, window_s)


def detect(
    rng: np.random.Generator,
    photon_times_ps: ArrayLike,
    model: DetectorModel,
    start_ps: int,
    stop_ps: int,
    channel: int = 0,
) -> TimeTags:
    """Time tags a detector registers in ``[start_ps, stop_ps)`` from photons arriving at
    ``photon_times_ps`` (int64 ps, any order).

    Steps: efficiency thinning, Poissonian dark counts, Gaussian jitter (rounded to ps),
    dead time, afterpulses, dead time again on the merged stream.
    """
    rng = v.generator(rng)
    t0, t1 = int(start_ps), int(stop_ps)
    if t1 < t0:
        raise ParameterError("stop_ps must be >= start_ps")
    photons = np.asarray(photon_times_ps, dtype=np.int64).reshape(-1)
    clicked = photons[rng.random(photons.size) < model.efficiency]
    n_dark = rng.poisson(model.dark_count_rate_hz * (t1 - t0) * 1e-12)
    dark = rng.integers(t0, t1, size=n_dark, dtype=np.int64) if t1 > t0 else np.empty(0, np.int64)
    events = np.concatenate([clicked, dark])
    sigma_ps = jitter_sigma(model.jitter_fwhm_s) * 1e12
    if sigma_ps > 0.0:
        events = events + np.rint(rng.normal(0.0, sigma_ps, size=events.size)).astype(np.int64)
    events.sort()
    tau_ps = round(model.dead_time_s * 1e12)
    events = events[dead_time_mask(events, tau_ps, model.paralyzable)]
    if model.afterpulse_probability > 0.0 and events.size:
        parents = events[rng.random(events.size) < model.afterpulse_probability]
        delays = rng.exponential(model.afterpulse_time_constant_s * 1e12, size=parents.size)
        after = parents + tau_ps + np.rint(delays).astype(np.int64)
        events = np.sort(np.concatenate([events, after]))
        events = events[dead_time_mask(events, tau_ps, model.paralyzable)]
    events = events[(events >= t0) & (events < t1)]
    ch = v.count("channel", channel)
    return TimeTags(events, np.full(events.size, ch, dtype=np.int32))
