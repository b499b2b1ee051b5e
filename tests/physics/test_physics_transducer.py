"""Microwave-optical transducer: conversion probability eta and added noise N_add referred
to the input (Sahu et al., Nat. Commun. 2022: eta = 0.087, N_add = 0.16)."""

from __future__ import annotations

import numpy as np
import pytest

from emulators.physics import Transducer, profile
from emulators.physics.errors import PhysicsError


def _sahu() -> Transducer:
    p = profile("transducer-2022")
    return Transducer(p["efficiency"], p["added_noise"], p["bandwidth_hz"])


def test_sahu_parameters() -> None:
    t = _sahu()
    assert t.efficiency == 0.087 and t.added_noise == 0.16
    assert t.output_noise_photons() == pytest.approx(0.087 * 0.16)


def test_conversion_and_noise_statistics(stat: object) -> None:
    t = _sahu()
    rng = np.random.default_rng(81)
    n = 1_000_000
    signal, noise = t.sample(rng, np.ones(n, dtype=int))
    stat.binomial(int(signal.sum()), n, t.efficiency)  # type: ignore[attr-defined]
    nbar = t.efficiency * t.added_noise
    stat.mean(noise, nbar)  # type: ignore[attr-defined]
    # thermal output noise: P(>= 1 photon) = nbar / (1 + nbar)
    stat.binomial(int(np.sum(noise > 0)), n, nbar / (1 + nbar))  # type: ignore[attr-defined]
    assert int(signal.max()) <= 1


def test_bandwidth_and_duty_cycle(stat: object) -> None:
    t = Transducer(0.5, 0.1, bandwidth_hz=10e6, duty_cycle=0.25)
    assert t.conversion_efficiency(5e6) == pytest.approx(0.25)  # half maximum at B/2
    rng = np.random.default_rng(82)
    n = 400_000
    signal, _ = t.sample(rng, np.ones(n, dtype=int), synchronized=False)
    stat.binomial(int(signal.sum()), n, 0.5 * 0.25)  # type: ignore[attr-defined]


def test_bad_input() -> None:
    with pytest.raises(PhysicsError):
        Transducer(1.1)
    with pytest.raises(PhysicsError):
        Transducer(0.1, -0.5)
    with pytest.raises(PhysicsError):
        _sahu().sample(np.random.default_rng(0), [-1])
