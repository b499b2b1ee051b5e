"""Photon-pair sources (SPDC, SFWM): pair-number statistics, heralding, g2(0).

* Poissonian (many modes): ``P(n) = exp(-mu) mu^n / n!``; ``P(n>=2) = 1 - e^-mu (1 + mu)``.
* Thermal (one mode): ``P(n) = mu^n / (1 + mu)^(n+1)``; ``P(n>=2) = (mu / (1 + mu))^2``.
* Heralding with a threshold detector of efficiency ``eta_h`` selects ``n`` pairs with
  probability ``1 - (1 - eta_h)^n``. The heralded signal state has
  ``g2(0) = sum n(n-1) p_h(n) / (sum n p_h(n))^2`` (invariant under linear loss);
  for ``eta_h -> 0``: ``mu (mu + 2) / (1 + mu)^2 ~ 2 mu`` (Poisson) and
  ``mu (6 mu + 4) / (2 mu + 1)^2 ~ 4 mu`` (thermal).
* Heralding (Klyshko) efficiency: ``P(signal detected | herald)``; ``eta_s`` for single pairs.

References: Christ & Silberhorn, PRA 85, 023829 (2012); Klyshko, Sov. J. Quantum Electron.
10, 1112 (1980).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._sampling import success_indices
from ._types import FloatArray, IntArray
from .errors import ParameterError

__all__ = [
    "HeraldedPulses",
    "PairSource",
    "g2_from_distribution",
    "heralded_g2",
    "heralding_efficiency",
    "multi_pair_probability",
    "pair_number_distribution",
    "sample_pair_numbers",
]

_STATS = ("poisson", "thermal")


def _support(mu: float, statistics: str) -> int:
    # n_max such that the neglected tail is < 1e-16
    if statistics == "poisson":
        return int(mu + 12.0 * math.sqrt(mu) + 40)
    q = mu / (1.0 + mu)
    return 40 if q == 0 else int(40 + math.log(1e-17) / math.log(q))


def pair_number_distribution(
    mu: float, statistics: str = "poisson", n_max: int | None = None
) -> FloatArray:
    """``P(n)`` for ``n = 0..n_max`` of the pair number per pulse with mean ``mu``."""
    mu = v.nonnegative("mu", mu)
    stats = v.choice("statistics", statistics, _STATS)
    n_max = _support(mu, stats) if n_max is None else v.count("n_max", n_max)
    n = np.arange(n_max + 1, dtype=np.float64)
    if stats == "poisson":
        if mu == 0:
            return np.asarray((n == 0).astype(np.float64))
        logp = -mu + n * math.log(mu) - np.array([math.lgamma(k + 1.0) for k in n])
        return np.asarray(np.exp(logp))
    return np.asarray(mu**n / (1.0 + mu) ** (n + 1.0))


def multi_pair_probability(mu: float, statistics: str = "poisson") -> float:
    """Probability of two or more pairs in a pulse (closed forms above)."""
    mu = v.nonnegative("mu", mu)
    if v.choice("statistics", statistics, _STATS) == "poisson":
        return -math.expm1(-mu) - mu * math.exp(-mu)
    return (mu / (1.0 + mu)) ** 2


def g2_from_distribution(p: ArrayLike) -> float:
    """``g2(0) = <n(n-1)> / <n>^2`` of a photon-number distribution ``p[n]``."""
    p = v.probability_array("p", p)
    n = np.arange(p.size, dtype=np.float64)
    mean = float(np.sum(n * p))
    if mean == 0.0:
        raise ParameterError("g2(0) is undefined for the vacuum")
    return float(np.sum(n * (n - 1.0) * p) / mean**2)


def heralded_g2(mu: float, statistics: str = "poisson", herald_efficiency: float = 1.0) -> float:
    """``g2(0)`` of the signal arm conditioned on a threshold-detector herald."""
    eta_h = v.probability("herald_efficiency", herald_efficiency)
    p = pair_number_distribution(mu, statistics)
    n = np.arange(p.size)
    if eta_h == 0.0:  # limit eta_h -> 0: weight proportional to n
        ph = p * n
    else:
        ph = p * -np.expm1(n * math.log1p(-eta_h)) if eta_h < 1.0 else p * (n > 0)
    return g2_from_distribution(ph / ph.sum())


def heralding_efficiency(
    mu: float, herald_efficiency: float, signal_efficiency: float, statistics: str = "poisson"
) -> float:
    """``P(signal click | herald click)`` with threshold detectors on both arms."""
    eta_h = v.probability("herald_efficiency", herald_efficiency)
    eta_s = v.probability("signal_efficiency", signal_efficiency)
    p = pair_number_distribution(mu, statistics)
    n = np.arange(p.size)
    herald = 1.0 - (1.0 - eta_h) ** n
    signal = 1.0 - (1.0 - eta_s) ** n
    den = float(np.sum(p * herald))
    if den == 0.0:
        raise ParameterError("no heralds: mu or herald_efficiency is zero")
    return float(np.sum(p * herald * signal) / den)


def sample_pair_numbers(
    rng: np.random.Generator, mu: float, size: int, statistics: str = "poisson"
) -> IntArray:
    """Pair numbers of ``size`` pulses."""
    rng = v.generator(rng)
    mu = v.nonnegative("mu", mu)
    n = v.count("size", size)
    if v.choice("statistics", statistics, _STATS) == "poisson":
        return rng.poisson(mu, size=n).astype(np.int64)
    return (rng.geometric(1.0 / (1.0 + mu), size=n) - 1).astype(np.int64)


def _sample_nonzero(rng: np.random.Generator, mu: float, size: int, statistics: str) -> IntArray:
    """Pair numbers conditioned on at least one pair."""
    if statistics == "thermal":  # memoryless: n - 1 is again thermal
        return rng.geometric(1.0 / (1.0 + mu), size=size).astype(np.int64)
    p = pair_number_distribution(mu, statistics)[1:]
    return (rng.choice(p.size, size=size, p=p / p.sum()) + 1).astype(np.int64)


@dataclass(frozen=True)
class HeraldedPulses:
    """Result of :meth:`PairSource.sample_heralds`.

    ``pulse_indices``: pulses (0-based) with a herald click; ``pairs``: pairs emitted in
    each; ``signal_photons``: signal photons surviving to the signal detector (before
    its threshold).
    """

    pulse_indices: IntArray
    pairs: IntArray
    signal_photons: IntArray


@dataclass(frozen=True)
class PairSource:
    """A pulsed pair source: mean pairs per pulse ``mu``, statistics, arm efficiencies."""

    mu: float
    statistics: str = "poisson"
    herald_efficiency: float = 1.0
    signal_efficiency: float = 1.0
    repetition_rate_hz: float = 1e6

    def __post_init__(self) -> None:
        v.nonnegative("mu", self.mu)
        v.choice("statistics", self.statistics, _STATS)
        v.probability("herald_efficiency", self.herald_efficiency)
        v.probability("signal_efficiency", self.signal_efficiency)
        v.positive("repetition_rate_hz", self.repetition_rate_hz)

    @property
    def multi_pair_probability(self) -> float:
        """``P(n >= 2)`` per pulse."""
        return multi_pair_probability(self.mu, self.statistics)

    @property
    def heralded_g2(self) -> float:
        """``g2(0)`` of the heralded signal."""
        return heralded_g2(self.mu, self.statistics, self.herald_efficiency)

    def sample_heralds(self, rng: np.random.Generator, n_pulses: int) -> HeraldedPulses:
        """Heralded pulses among ``n_pulses``, sampled sparsely (cost ~ non-empty pulses)."""
        rng = v.generator(rng)
        p_nonempty = (
            -math.expm1(-self.mu) if self.statistics == "poisson" else self.mu / (1 + self.mu)
        )
        idx = success_indices(rng, n_pulses, p_nonempty)
        pairs = _sample_nonzero(rng, self.mu, idx.size, self.statistics)
        heralded = rng.binomial(pairs, self.herald_efficiency) > 0
        pairs = pairs[heralded]
        signal = rng.binomial(pairs, self.signal_efficiency).astype(np.int64)
        return HeraldedPulses(idx[heralded], pairs, signal)
