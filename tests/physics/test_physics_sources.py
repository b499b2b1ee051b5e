"""Pair sources: Poissonian and thermal statistics, multi-pair probability, heralded g2(0)
and heralding efficiency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulators.physics import sources
from emulators.physics.errors import PhysicsError


@pytest.mark.parametrize("statistics", ["poisson", "thermal"])
def test_pair_statistics(statistics: str, stat: object) -> None:
    mu, n = 0.2, 400_000
    rng = np.random.default_rng(41)
    pairs = sources.sample_pair_numbers(rng, mu, n, statistics)
    stat.mean(pairs, mu)  # type: ignore[attr-defined]
    closed = 1 - math.exp(-mu) * (1 + mu) if statistics == "poisson" else (mu / (1 + mu)) ** 2
    assert sources.multi_pair_probability(mu, statistics) == pytest.approx(closed)
    stat.binomial(int(np.sum(pairs >= 2)), n, closed)  # type: ignore[attr-defined]
    p = sources.pair_number_distribution(mu, statistics)
    assert p.sum() == pytest.approx(1.0)
    # unheralded g2(0): 1 for Poisson (many modes), 2 for thermal (one mode)
    assert sources.g2_from_distribution(p) == pytest.approx(1.0 if statistics == "poisson" else 2.0)


def test_heralded_g2_closed_forms_in_the_low_efficiency_limit() -> None:
    for mu in (0.01, 0.1, 0.5):
        assert sources.heralded_g2(mu, "poisson", 0.0) == pytest.approx(
            mu * (mu + 2) / (1 + mu) ** 2
        )
        assert sources.heralded_g2(mu, "thermal", 0.0) == pytest.approx(
            mu * (6 * mu + 4) / (2 * mu + 1) ** 2
        )
    # a small mu gives g2 ~ 2 mu (Poisson) and ~ 4 mu (thermal)
    assert sources.heralded_g2(1e-4, "poisson", 0.0) == pytest.approx(2e-4, rel=1e-3)
    assert sources.heralded_g2(1e-4, "thermal", 0.0) == pytest.approx(4e-4, rel=1e-3)


@pytest.mark.parametrize("statistics", ["poisson", "thermal"])
def test_sampled_heralds_match_g2_and_heralding_efficiency(statistics: str, stat: object) -> None:
    src = sources.PairSource(0.3, statistics, herald_efficiency=0.6, signal_efficiency=0.7)
    rng = np.random.default_rng(42)
    n_pulses = 3_000_000
    h = src.sample_heralds(rng, n_pulses)
    # herald probability per pulse from the exact distribution
    p = sources.pair_number_distribution(src.mu, statistics)
    k = np.arange(p.size)
    p_herald = float(np.sum(p * (1 - (1 - 0.6) ** k)))
    stat.binomial(h.pulse_indices.size, n_pulses, p_herald)  # type: ignore[attr-defined]
    assert np.all(np.diff(h.pulse_indices) > 0) and h.pulse_indices.max() < n_pulses
    eff = sources.heralding_efficiency(src.mu, 0.6, 0.7, statistics)
    stat.binomial(int(np.sum(h.signal_photons > 0)), h.pulse_indices.size, eff)  # type: ignore[attr-defined]
    # g2(0) of the heralded pair number (g2 is invariant under loss): delta-method error
    x = h.pairs.astype(float)
    m1, m2 = x.mean(), (x * (x - 1)).mean()
    g2 = m2 / m1**2
    grad = np.array([-2 * m2 / m1**3, 1 / m1**2])
    cov = np.cov(np.stack([x, x * (x - 1)])) / x.size
    se = math.sqrt(grad @ cov @ grad)
    assert abs(g2 - src.heralded_g2) <= 5 * se


def test_bad_input() -> None:
    with pytest.raises(PhysicsError):
        sources.PairSource(-0.1)
    with pytest.raises(PhysicsError):
        sources.pair_number_distribution(0.1, "laser")
    with pytest.raises(PhysicsError):
        sources.heralded_g2(0.1, "poisson", 1.5)
