"""Memories: T1/T2 storage (DESIGN.md: F = (1 + exp(-t/T1) + 2 exp(-t/T2)) / 4), Gaussian
T2*, readout errors, ensemble retrieval efficiency. The Monte Carlo samples the
underlying noise processes (jump times, random phase flips, quasi-static detunings)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulators.physics import memory, profile, states
from emulators.physics.errors import PhysicsError


@pytest.mark.parametrize("t", [0.0, 0.2, 1.0, 3.0])
def test_stored_bell_pair_fidelity(t: float) -> None:
    t1, t2 = 2.0, 1.5
    closed = (1 + math.exp(-t / t1) + 2 * math.exp(-t / t2)) / 4
    assert memory.stored_bell_fidelity(t, t1, t2) == pytest.approx(closed)
    for which in ("phi+", "psi+"):
        rho = states.ket_to_density(states.bell_ket(which))
        out = memory.decay(rho, t, t1, t2, qubits=[1])
        assert states.bell_fidelity(out, which) == pytest.approx(closed)
    # Bell-diagonal fast path: the Pauli twirl keeps the fidelity exact
    fast = memory.decay_bell_diagonal([1.0, 0, 0, 0], t, t1, t2)
    assert fast[0] == pytest.approx(closed)


def test_nv_profile_pair_decays_as_the_anchor() -> None:
    nv = profile("nv-delft")
    t = 0.5
    expected = (1 + math.exp(-t / nv["t1_s"]) + 2 * math.exp(-t / nv["t2_s"])) / 4
    assert memory.MemoryModel(nv["t1_s"], nv["t2_s"]).stored_bell_fidelity(t) == pytest.approx(
        expected
    )


def test_t1_and_exponential_t2_from_sampled_noise_processes(stat: object) -> None:
    rng = np.random.default_rng(71)
    n, t, t1, t2 = 200_000, 0.7, 1.0, 0.8
    # T1: exponential decay times of |1>
    survived = rng.exponential(t1, n) > t
    stat.binomial(int(survived.sum()), n, math.exp(-t / t1))  # type: ignore[attr-defined]
    # T2 (Markovian): pure dephasing = Poissonian phase flips at rate gamma with
    # exp(-2 gamma t) = exp(-t/T2 + t/(2 T1)); coherence of a surviving qubit is the parity
    gamma = (1 / t2 - 1 / (2 * t1)) / 2
    flips = rng.poisson(gamma * t, n)
    coherence = np.where(flips % 2 == 0, 1.0, -1.0) * math.exp(-t / (2 * t1))
    stat.mean(coherence, memory.MemoryModel(t1, t2).coherence(t))  # type: ignore[attr-defined]


def test_gaussian_t2_star_from_quasi_static_detuning(stat: object) -> None:
    rng = np.random.default_rng(72)
    nv = profile("nv-delft")
    t2s = nv["t2_star_s"]
    sigma = math.sqrt(2) / t2s  # detuning spread (rad/s) giving T2*
    n = 200_000
    for t in (0.5 * t2s, t2s, 2 * t2s):
        phase = rng.normal(0.0, sigma, n) * t
        model = memory.MemoryModel(math.inf, t2s, "gaussian")
        stat.mean(np.cos(phase), model.coherence(t))  # type: ignore[attr-defined]
        assert model.coherence(t) == pytest.approx(math.exp(-((t / t2s) ** 2)))


def test_readout_error(stat: object) -> None:
    nv = profile("nv-delft")
    e0, e1 = 1 - nv["readout_fidelity_0"], 1 - nv["readout_fidelity_1"]
    rng = np.random.default_rng(73)
    n = 200_000
    zeros = memory.sample_readout(rng, np.zeros(n, dtype=int), e0, e1)
    ones = memory.sample_readout(rng, np.ones(n, dtype=int), e0, e1)
    stat.binomial(int(zeros.sum()), n, e0)  # type: ignore[attr-defined]
    stat.binomial(int(n - ones.sum()), n, e1)  # type: ignore[attr-defined]


@pytest.mark.parametrize("shape", ["exponential", "gaussian"])
def test_ensemble_retrieval_efficiency_versus_time(shape: str, stat: object) -> None:
    rb = profile("ensemble-rb")
    eta0, tau = rb["retrieval_efficiency"], rb["lifetime_s"]
    rng = np.random.default_rng(74)
    n = 100_000
    for t in (0.0, tau / 2, tau):
        expected = eta0 * (
            math.exp(-t / tau) if shape == "exponential" else math.exp(-((t / tau) ** 2))
        )
        assert memory.ensemble_efficiency(t, eta0, tau, shape) == pytest.approx(expected)
        got = memory.sample_retrieval(rng, np.full(n, t), eta0, tau, shape)
        stat.binomial(int(got.sum()), n, expected)  # type: ignore[attr-defined]


def test_bad_input() -> None:
    with pytest.raises(PhysicsError):
        memory.MemoryModel(1.0, 3.0)  # T2 > 2 T1
    with pytest.raises(PhysicsError):
        memory.MemoryModel(readout_error_0=1.2)
    with pytest.raises(PhysicsError):
        memory.ensemble_efficiency(-1.0, 0.5, 1.0)
    with pytest.raises(PhysicsError):
        memory.sample_readout(np.random.default_rng(0), [0, 2], 0.1, 0.1)
