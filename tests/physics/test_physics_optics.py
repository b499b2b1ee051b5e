"""Beam splitter and two-photon interference: HOM coincidence (1 - V)/2, visibility of
Lorentzian photons versus detuning and delay, linear-optics BSM at most 1/2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulators.physics import optics, profile
from emulators.physics.errors import PhysicsError


@pytest.mark.parametrize("overlap", [0.0, 0.5, 0.9, 1.0])
def test_hom_coincidence_is_one_minus_v_over_two(overlap: float, stat: object) -> None:
    rng = np.random.default_rng(31)
    n = 100_000
    out = optics.sample_hom(rng, n, overlap)
    coinc = int(np.sum(out[:, 0] == 1))
    p_c, p_c2, _ = optics.hom_probabilities(overlap)
    assert p_c == pytest.approx((1 - overlap) / 2)
    stat.binomial(coinc, n, p_c)  # type: ignore[attr-defined]
    stat.binomial(int(np.sum(out[:, 0] == 2)), n, p_c2)  # type: ignore[attr-defined]


def test_unbalanced_splitter(stat: object) -> None:
    rng = np.random.default_rng(32)
    r, m, n = 0.3, 0.8, 100_000
    out = optics.sample_hom(rng, n, m, reflectivity=r)
    stat.binomial(int(np.sum(out[:, 0] == 1)), n, r * r + (1 - r) ** 2 - 2 * r * (1 - r) * m)  # type: ignore[attr-defined]
    u = optics.beam_splitter_unitary(r)
    assert np.allclose(u @ u.T, np.eye(2))


def _numeric_overlap(tau_a: float, tau_b: float, detuning_hz: float, delay_s: float) -> float:
    """|<a|b>|^2 of exponential wavepackets by direct numerical integration."""
    t = np.linspace(min(0.0, delay_s), 40 * max(tau_a, tau_b) + abs(delay_s), 400_001)
    a = np.where(t >= 0, np.sqrt(1 / tau_a) * np.exp(-t / (2 * tau_a)), 0.0)
    tb = t - delay_s
    b = np.where(tb >= 0, np.sqrt(1 / tau_b) * np.exp(-tb / (2 * tau_b)), 0.0)
    b = b * np.exp(-2j * math.pi * detuning_hz * t)
    return float(abs(np.trapezoid(a * b, t)) ** 2)


@pytest.mark.parametrize(
    ("detuning_mhz", "delay_ns", "tau_b_ns"),
    [(0, 0, 12), (10, 0, 12), (0, 5, 12), (13.3, -4, 12), (5, 3, 6)],
)
def test_lorentzian_visibility_versus_detuning_and_delay(
    detuning_mhz: float, delay_ns: float, tau_b_ns: float
) -> None:
    tau = profile("nv-delft")["optical_lifetime_s"]  # 12 ns NV excited state
    v = optics.lorentzian_overlap(tau, tau_b_ns * 1e-9, detuning_mhz * 1e6, delay_ns * 1e-9)
    assert v == pytest.approx(
        _numeric_overlap(tau, tau_b_ns * 1e-9, detuning_mhz * 1e6, delay_ns * 1e-9), rel=1e-3
    )
    if tau_b_ns * 1e-9 == tau:
        closed = math.exp(-abs(delay_ns) * 1e-9 / tau) / (
            1 + (2 * math.pi * detuning_mhz * 1e6 * tau) ** 2
        )
        assert v == pytest.approx(closed)


def test_hom_dip_sampled_versus_delay(stat: object) -> None:
    rng = np.random.default_rng(33)
    tau = profile("nv-delft")["optical_lifetime_s"]
    n = 50_000
    for delay in (0.0, 6e-9, 24e-9):
        v = optics.lorentzian_overlap(tau, delay_s=delay)
        coinc = int(np.sum(optics.sample_hom(rng, n, v)[:, 0] == 1))
        stat.binomial(coinc, n, (1 - v) / 2)  # type: ignore[attr-defined]


def test_linear_optics_bsm_succeeds_at_most_half(stat: object) -> None:
    rng = np.random.default_rng(34)
    n = 200_000
    eta = 0.8
    bell = rng.integers(0, 4, size=n)
    out = optics.sample_linear_optics_bsm(rng, bell, overlap=1.0, efficiency=eta)
    ok = out != optics.BSM_FAILED
    stat.binomial(int(ok.sum()), n, eta**2 / 2)  # type: ignore[attr-defined]
    assert np.all(out[ok] == bell[ok])  # ideal photons: never misidentified
    perfect = optics.sample_linear_optics_bsm(rng, bell, 1.0, 1.0)
    stat.binomial(int(np.sum(perfect != -1)), n, 0.5)  # type: ignore[attr-defined]
    # partial distinguishability: Psi- is misread as Psi+ with probability (1 - V)/2
    v = 0.8
    psi_minus = optics.sample_linear_optics_bsm(rng, np.full(n, 3), v, 1.0)
    stat.binomial(int(np.sum(psi_minus == 2)), n, (1 - v) / 2)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "call",
    [
        lambda: optics.hom_probabilities(1.5),
        lambda: optics.beam_splitter_unitary(-0.1),
        lambda: optics.lorentzian_overlap(0.0),
        lambda: optics.sample_linear_optics_bsm(np.random.default_rng(0), [4]),
    ],
)
def test_bad_input(call: object) -> None:
    with pytest.raises(PhysicsError):
        call()  # type: ignore[operator]
