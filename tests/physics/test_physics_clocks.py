"""Oscillator noise and Allan deviation (NIST SP 1065): slopes tau^-1 (white PM), tau^-1/2
(white FM), tau^+1/2 (random-walk FM); two-way time transfer and its asymmetry bias D/2.

Tolerances use the equivalent degrees of freedom of the overlapping Allan variance from
NIST SP 1065 (Riley 2008, Table 5); the relative standard deviation of ADEV is
1 / sqrt(2 edf)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulators.physics import clocks, profile
from emulators.physics.errors import PhysicsError


def _edf(kind: str, n: int, m: int) -> float:
    if kind == "wpm":
        return (n + 1) * (n - 2 * m) / (2 * (n - m))
    if kind == "wfm":
        return (3 * (n - 1) / (2 * m) - 2 * (n - 2) / n) * 4 * m * m / (4 * m * m + 5)
    return (n - 2) / m * ((n - 1) ** 2 - 3 * m * (n - 1) + 4 * m * m) / (n - 3) ** 2


CASES = {
    # kind: (model, expected slope); values from the oscillator profiles
    "wfm": (clocks.OscillatorModel(white_fm_adev_1s=profile("rubidium")["white_fm_adev_1s"]), -0.5),
    "wpm": (clocks.OscillatorModel(white_pm_s=profile("ocxo")["white_pm_s"]), -1.0),
    "rwfm": (
        clocks.OscillatorModel(random_walk_fm_adev_1s=profile("ocxo")["random_walk_fm_adev_1s"]),
        0.5,
    ),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_allan_deviation_values_and_slopes(kind: str) -> None:
    model, slope = CASES[kind]
    n, tau0 = 200_000, 0.01
    x = clocks.sample_time_error(np.random.default_rng(91), model, n, tau0)
    ms = np.array([1, 4, 16, 64, 256])
    adev = clocks.allan_deviation(x, tau0, ms)
    expected = model.allan_deviation(ms * tau0)
    rel_sd = np.array([1 / math.sqrt(2 * _edf(kind, n, int(m))) for m in ms])
    assert np.all(np.abs(adev / expected - 1) <= 5 * rel_sd)
    # least-squares slope; error bounded assuming fully correlated points (worst case)
    lx = np.log(ms * tau0)
    w = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    fitted = float(np.sum(w * np.log(adev)))
    assert abs(fitted - slope) <= 5 * float(np.sum(np.abs(w) * rel_sd))


def test_linear_drift_adev_is_d_tau_over_root_two() -> None:
    d = profile("rubidium")["drift_per_s"]
    model = clocks.OscillatorModel(drift_per_s=d)
    x = clocks.sample_time_error(np.random.default_rng(92), model, 1000, 1.0)
    assert clocks.allan_deviation(x, 1.0, [10])[0] == pytest.approx(d * 10 / math.sqrt(2))
    model = clocks.OscillatorModel(offset_s=1e-3, frequency_offset=1e-9)
    x = clocks.sample_time_error(np.random.default_rng(92), model, 11, 1.0)
    assert x[10] == pytest.approx(1e-3 + 1e-8)  # offset and frequency offset are exact


def test_two_way_time_transfer_offset_and_asymmetry(stat: object) -> None:
    rng = np.random.default_rng(93)
    theta, jitter, n = 3.2e-6, 50e-12, 20_000
    sym = clocks.two_way_time_transfer(rng, n, theta, 25e-6, 25e-6, jitter)
    # each estimate: theta + noise of variance 4 j^2 / 4
    stat.mean(sym.offset, theta)  # type: ignore[attr-defined]
    assert sym.offset.std(ddof=1) == pytest.approx(jitter, rel=5 / math.sqrt(2 * (n - 1)))
    asym = 2e-9  # 2 ns more delay master -> slave, e.g. 40 cm of extra fiber
    biased = clocks.two_way_time_transfer(rng, n, theta, 25e-6 + asym, 25e-6, jitter)
    stat.mean(biased.offset, theta + asym / 2)  # type: ignore[attr-defined]
    t = clocks.two_way_time_transfer(rng, 1, theta, 1e-6, 1e-6)
    assert clocks.two_way_offset(t.t1, t.t2, t.t3, t.t4)[0] == pytest.approx(theta)


def test_same_seed_same_clock() -> None:
    model = clocks.OscillatorModel(
        white_fm_adev_1s=1e-11, random_walk_fm_adev_1s=1e-13, white_pm_s=1e-10
    )
    a = clocks.sample_time_error(np.random.default_rng(4), model, 100, 0.1)
    b = clocks.sample_time_error(np.random.default_rng(4), model, 100, 0.1)
    assert np.array_equal(a, b)


def test_bad_input() -> None:
    with pytest.raises(PhysicsError):
        clocks.OscillatorModel(white_pm_s=-1.0)
    with pytest.raises(PhysicsError):
        clocks.allan_deviation(np.zeros(10), 1.0, [5])
    with pytest.raises(PhysicsError):
        clocks.sample_time_error(np.random.default_rng(0), clocks.OscillatorModel(), 0, 1.0)
    with pytest.raises(PhysicsError):
        clocks.two_way_time_transfer(np.random.default_rng(0), 1, 0.0, -1e-6, 1e-6)
