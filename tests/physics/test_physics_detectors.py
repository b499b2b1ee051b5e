"""Detector model against closed forms (DESIGN.md section 6): dead time (non-paralyzable
m = n/(1 + n tau), paralyzable m = n exp(-n tau)), dark counts 1 - exp(-R dt), Gaussian
jitter sigma = FWHM/2.355, efficiency and afterpulsing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulators.physics import detectors as det
from emulators.physics import profile
from emulators.physics.errors import PhysicsError

PS = 10**12


def _poisson_stream(rng: np.random.Generator, rate_hz: float, duration_s: float) -> np.ndarray:
    n = rng.poisson(rate_hz * duration_s)
    return np.sort(rng.integers(0, int(duration_s * PS), size=n, dtype=np.int64))


@pytest.mark.parametrize("paralyzable", [False, True])
def test_dead_time_rate(paralyzable: bool) -> None:
    # SPAD dead time 22 ns, input 10 Mcps: n tau = 0.22
    rng = np.random.default_rng(21)
    n_rate, tau, duration = 1e7, profile("spad")["dead_time_s"], 0.05
    model = det.DetectorModel(efficiency=1.0, dead_time_s=tau, paralyzable=paralyzable)
    tags = det.detect(rng, _poisson_stream(rng, n_rate, duration), model, 0, int(duration * PS))
    m = len(tags) / duration
    if paralyzable:
        expected = det.paralyzable_rate(n_rate, tau)
        assert expected == pytest.approx(n_rate * math.exp(-n_rate * tau))
        # renewal process: interval mean e^{n tau}/n, variance (e^{2 n tau} - 2 n tau e^{n tau})/n^2
        mu = math.exp(n_rate * tau) / n_rate
        var = (math.exp(2 * n_rate * tau) - 2 * n_rate * tau * math.exp(n_rate * tau)) / n_rate**2
    else:
        expected = det.nonparalyzable_rate(n_rate, tau)
        assert expected == pytest.approx(n_rate / (1 + n_rate * tau))
        mu, var = tau + 1 / n_rate, 1 / n_rate**2
    count_sd = math.sqrt(duration * var / mu**3)  # renewal-theory variance of the count
    assert abs(len(tags) - expected * duration) <= 5 * count_sd
    assert abs(m - expected) / expected < 0.01


def test_dead_time_mask_matches_event_by_event_rule() -> None:
    rng = np.random.default_rng(22)
    for _ in range(200):
        t = np.sort(rng.integers(0, 1000, size=int(rng.integers(1, 80)))).astype(np.int64)
        tau = int(rng.integers(1, 120))
        last, expected = None, []
        for x in t:  # reference: the definition, one event at a time
            ok = last is None or x - last >= tau
            expected.append(ok)
            last = x if ok else last
        assert np.array_equal(det.dead_time_mask(t, tau), expected)
        expected_par = np.concatenate([[True], np.diff(t) >= tau])
        assert np.array_equal(det.dead_time_mask(t, tau, paralyzable=True), expected_par)


def test_dark_count_probability_per_window(stat: object) -> None:
    rng = np.random.default_rng(23)
    rate, window, duration = 2e4, 10e-6, 20.0  # 20 kcps dark counts, 10 us windows
    model = det.DetectorModel(efficiency=1.0, dark_count_rate_hz=rate)
    tags = det.detect(rng, [], model, 0, int(duration * PS))
    n_windows = int(duration / window)
    hit = np.zeros(n_windows, dtype=bool)
    hit[tags.times_ps // int(window * PS)] = True
    p = det.dark_count_probability(rate, window)
    assert p == pytest.approx(1 - math.exp(-rate * window))
    stat.binomial(int(hit.sum()), n_windows, p)  # type: ignore[attr-defined]


def test_jitter_is_gaussian_with_sigma_fwhm_over_2355() -> None:
    rng = np.random.default_rng(24)
    fwhm = profile("spad")["jitter_fwhm_s"]
    n = 100_000
    true = np.arange(n, dtype=np.int64) * 1_000_000  # 1 us apart, no dead-time overlap
    tags = det.detect(rng, true, det.DetectorModel(1.0, jitter_fwhm_s=fwhm), -PS, 2 * PS)
    err = (tags.times_ps - true).astype(float)
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2))) * 1e12
    assert det.jitter_sigma(fwhm) * 1e12 == pytest.approx(sigma)
    assert det.jitter_sigma(2.355) == pytest.approx(1.0, rel=1e-4)
    var = sigma**2 + 1 / 12  # rounding to integer ps adds a uniform error
    # sample variance of n Gaussian draws: standard error var * sqrt(2/(n-1))
    assert abs(err.var(ddof=1) - var) <= 5 * var * math.sqrt(2 / (n - 1))
    assert abs(err.mean()) <= 5 * sigma / math.sqrt(n)


def test_efficiency_thinning_and_tag_format(stat: object) -> None:
    rng = np.random.default_rng(25)
    eff = profile("snspd")["efficiency"]
    n = 100_000
    photons = rng.permutation(np.arange(n, dtype=np.int64) * 10**6)
    tags = det.detect(rng, photons, det.DetectorModel(eff), 0, PS, channel=3)
    stat.binomial(len(tags), n, eff)  # type: ignore[attr-defined]
    assert tags.times_ps.dtype == np.int64 and tags.channels.dtype == np.int32
    assert np.all(np.diff(tags.times_ps) >= 0) and np.all(tags.channels == 3)
    merged = det.TimeTags.merge(tags, det.detect(rng, photons, det.DetectorModel(eff), 0, PS, 4))
    assert np.all(np.diff(merged.times_ps) >= 0)
    assert merged.channel(3).size == len(tags)


def test_afterpulsing_adds_the_expected_fraction(stat: object) -> None:
    rng = np.random.default_rng(26)
    spad = profile("spad")
    p_ap = 0.05  # exaggerated to make the test sensitive; SPCM-AQRH is 0.5 %
    model = det.DetectorModel(
        1.0,
        dead_time_s=spad["dead_time_s"],
        afterpulse_probability=p_ap,
        afterpulse_time_constant_s=spad["afterpulse_time_constant_s"],
    )
    n = 200_000
    photons = np.arange(n, dtype=np.int64) * 10**7  # 10 us apart: afterpulses never collide
    tags = det.detect(rng, photons, model, 0, 10 * PS)
    stat.binomial(len(tags) - n, n, p_ap)  # type: ignore[attr-defined]
    extra = np.setdiff1d(tags.times_ps, photons)
    delay = (extra - photons[np.searchsorted(photons, extra) - 1]).astype(float) * 1e-12
    assert delay.min() >= spad["dead_time_s"] - 1e-12


def test_same_seed_same_tags() -> None:
    model = det.DetectorModel(0.7, dark_count_rate_hz=1e3, jitter_fwhm_s=50e-12, dead_time_s=1e-8)
    photons = np.arange(1000, dtype=np.int64) * 10**6
    a = det.detect(np.random.default_rng(7), photons, model, 0, PS)
    b = det.detect(np.random.default_rng(7), photons, model, 0, PS)
    assert np.array_equal(a.times_ps, b.times_ps)


@pytest.mark.parametrize(
    "call",
    [
        lambda: det.DetectorModel(1.2),
        lambda: det.DetectorModel(-0.1),
        lambda: det.DetectorModel(0.5, dark_count_rate_hz=-1),
        lambda: det.DetectorModel(0.5, afterpulse_probability=2),
        lambda: det.dark_count_probability(10, -1),
        lambda: det.dead_time_mask(np.array([5, 1], dtype=np.int64), 2),
        lambda: det.detect(np.random.default_rng(0), [], det.DetectorModel(0.5), 10, 0),
    ],
)
def test_bad_input(call: object) -> None:
    with pytest.raises(PhysicsError):
        call()  # type: ignore[operator]
