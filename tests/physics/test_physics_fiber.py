"""Fiber loss, delay and drift (DESIGN.md section 6: 0.2 dB/km at 1550 nm, ~8 dB/km at
637 nm, delay ~5 us/km)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulators.physics import fiber, profile
from emulators.physics.errors import PhysicsError


def test_transmission_closed_form() -> None:
    # eta = 10^(-alpha L / 10): 25 km at 0.2 dB/km is 5 dB
    assert fiber.transmission(25e3, 0.2) == pytest.approx(10 ** (-0.5))
    # visible light: 1 km at 8 dB/km loses 84 %
    assert fiber.transmission(1e3, profile("fiber-637")["loss_db_per_km"]) == pytest.approx(
        10 ** (-0.8)
    )
    assert fiber.loss_db(100e3, 0.2) == pytest.approx(20.0)


def test_delay_is_about_five_microseconds_per_km() -> None:
    per_km = fiber.delay(1e3, profile("smf28-1550")["group_index"])
    assert per_km == pytest.approx(1.4682e3 / 299_792_458.0)
    assert 4.8e-6 < per_km < 5.0e-6
    assert fiber.delay_ps(1e3, 1.4682) == round(per_km * 1e12)


def test_survivors_are_binomial(stat: object) -> None:
    f = fiber.Fiber(50e3, 0.2)
    rng = np.random.default_rng(11)
    n = 200_000
    k = int(f.survivors(rng, n).sum())
    stat.binomial(k, n, f.transmission)  # type: ignore[attr-defined]
    arrivals = f.propagate_ps(np.random.default_rng(11), np.arange(n) * 1000)
    assert arrivals.dtype == np.int64 and arrivals.size == k
    assert arrivals[0] >= f.delay_ps


def test_phase_drift_decoheres_as_exp_minus_d_t(stat: object) -> None:
    rng = np.random.default_rng(12)
    d, times = 3.0, np.array([0.0, 0.05, 0.2])
    phases = np.stack([fiber.sample_phase_drift(rng, times, d) for _ in range(4000)])
    for j, t in enumerate(times[1:], start=1):
        stat.mean(np.cos(phases[:, j]), math.exp(-d * t))  # type: ignore[attr-defined]
    assert fiber.phase_diffusion_from_linewidth(1e3) == pytest.approx(math.pi * 1e3)


def test_polarization_drift_correlation(stat: object) -> None:
    rng = np.random.default_rng(13)
    d = 0.5
    times = np.linspace(0.0, 1.0, 65)
    h = np.array([1.0, 0.0])
    s1 = []
    for _ in range(3000):
        u = fiber.sample_polarization_drift(rng, times, d)
        out = u @ h
        s1.append(np.abs(out[:, 0]) ** 2 - np.abs(out[:, 1]) ** 2)  # Stokes s1 of |H>
    s1 = np.array(s1)
    model = fiber.polarization_correlation(times, d)
    for j in (16, 64):
        stat.mean(s1[:, j], model[j])  # type: ignore[attr-defined]
    # fine steps converge to rotational diffusion, exp(-2 D t)
    assert model[-1] == pytest.approx(math.exp(-2 * d), rel=2e-3)
    u = fiber.sample_polarization_drift(rng, times, d)
    assert np.allclose(u @ u.conj().transpose(0, 2, 1), np.eye(2))


def test_same_seed_same_drift() -> None:
    t = np.linspace(0, 1, 10)
    a = fiber.sample_phase_drift(np.random.default_rng(5), t, 1.0)
    b = fiber.sample_phase_drift(np.random.default_rng(5), t, 1.0)
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "call",
    [
        lambda: fiber.transmission(-1.0, 0.2),
        lambda: fiber.transmission(1.0, -0.2),
        lambda: fiber.delay(1.0, 0.9),
        lambda: fiber.Fiber(1e3, float("nan")),
        lambda: fiber.sample_phase_drift(np.random.default_rng(0), [1.0, 0.0], 1.0),
        lambda: fiber.sample_phase_drift(42, [0.0, 1.0], 1.0),
    ],
)
def test_bad_input(call: object) -> None:
    with pytest.raises(PhysicsError):
        call()  # type: ignore[operator]
