"""Fiber phase drift on single-click links: the arms' phase difference diffuses (Wiener,
``Var = 2 (D_a + D_b) tau`` since the last stabilization) and the heralded coherence drops by
``exp(-sigma^2 / 2)``. Fidelities are measured through the drivers (X, Y, Z correlations of
heralded pairs, seeded, virtual time) and compared with the physics core's closed form within
``Z`` standard errors of the sample; ``phase_diffusion = 0`` changes nothing."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from emulators.lab import Lab
from emulators.lab.world import residual_phase_sigma
from emulators.physics.fiber import delay_ps
from emulators.physics.heralding import drifted_phase_sigma, single_click
from emulators.physics.states import bell_fidelity

Z = 4.0
ALPHA = 0.1
ETA = 0.5 * 0.8  # collection x detector (fiber loss of 100 m is added from the link)
PERIOD = 1e-6
WAIT = 5e-3  # lab seconds between the lock and the batch start
LENGTH = 100.0
BASES = ("x", "y", "z")


def _lab(diffusion: tuple[float, float] | None, *, interval: float = math.inf,
         phase_noise: float = 0.0, scheme: str = "single_click") -> dict[str, Any]:
    mem = {"kind": "memory", "collection_efficiency": 0.5, "t1": 1e6, "t2": 1e6,
           "readout_error_0": 0.0, "readout_error_1": 0.0}
    fibers: list[dict[str, Any]] = [
        {"a": "a.mem:optical", "b": "h.bsm:0", "length": LENGTH},
        {"a": "b.mem:optical", "b": "h.bsm:1", "length": LENGTH}]
    if diffusion is not None:
        for f, d in zip(fibers, diffusion, strict=True):
            f["phase_diffusion"] = d
    return {
        "lab": {"seed": 11, "admin": False, "idle_advance": 0},
        "nodes": {
            "a": {"devices": {"mem": dict(mem)}},
            "b": {"devices": {"mem": dict(mem)}},
            "h": {"devices": {"bsm": {"kind": "heralding", "detection_efficiency": 0.8,
                                      "dark_count_rate": 0.0, "visibility": 1.0,
                                      "phase_noise": phase_noise, "scheme": scheme,
                                      "phase_stabilization_interval": interval}}},
        },
        "fibers": fibers,
    }


async def _experiment(cfg: dict[str, Any], pairs: int) -> list[tuple[str, str, int, int, int]]:
    """Through drivers: lock, wait ``WAIT``, entangle, measure both in X, Y, Z in turn.
    Returns ``(basis, bell, outcome_a, outcome_b, attempts)`` per pair."""
    out = []
    lab = Lab.from_dict(cfg, transport="inproc")
    async with lab, lab.driver("a.mem") as ma, lab.driver("b.mem") as mb, \
            lab.driver("h.bsm") as bsm:
        while len(out) < pairs:
            await bsm.lock_phase(0.0)
            start = (await ma.ping())["time_ps"] + round(WAIT * 1e12)
            ra, rb = await asyncio.gather(
                ma.entangle(0, "b", 100_000, PERIOD, start=start, alpha=ALPHA),
                mb.entangle(0, "a", 100_000, PERIOD, start=start, alpha=ALPHA))
            if not ra["success"]:
                continue
            assert ra["bell_state"] == rb["bell_state"]
            basis = BASES[len(out) % 3]
            oa, ob = await asyncio.gather(ma.measure(0, basis), mb.measure(0, basis))
            out.append((basis, ra["bell_state"], oa["outcome"], ob["outcome"], ra["attempts"]))
    return out


def _fidelity(data: list[tuple[str, str, int, int, int]]) -> tuple[float, float]:
    """``F = (1 + <XX> + <YY> - <ZZ>) / 4`` (Psi- corrected) and its standard error."""
    f, var = 0.25, 0.0
    for basis, weight in (("x", 1), ("y", 1), ("z", -1)):
        v = np.array([(1 - 2 * (a ^ b)) * (-1 if bell == "psi-" and basis != "z" else 1)
                      for bs, bell, a, b, _ in data if bs == basis], dtype=float)
        f += weight * v.mean() / 4
        var += (1 - v.mean() ** 2) / v.size / 16
    return f, math.sqrt(var)


def _eta() -> float:
    return ETA * 10 ** (-0.2 * LENGTH / 1e3 / 10)


def _closed_form(sigma2: float) -> float:
    return single_click(ALPHA, _eta(), phase_sigma=math.sqrt(sigma2)).fidelity


def test_drift_formula_and_stabilization_schedule() -> None:
    assert drifted_phase_sigma(0.1, 0.0, 5.0) == 0.1
    assert drifted_phase_sigma(0.1, 3.0, 0.5) == pytest.approx(math.sqrt(0.01 + 3.0))
    # stabilized at 1 s and then every 0.2 s: 1.75 s is 0.15 s after the last one
    assert residual_phase_sigma(0.0, 2.0, 1.75, 1.0, 0.2) == pytest.approx(math.sqrt(0.6))
    assert residual_phase_sigma(0.0, 2.0, 1.75, 1.0, math.inf) == pytest.approx(math.sqrt(3.0))
    assert residual_phase_sigma(0.3, 2.0, 1.75, None, 0.2) == 0.3  # unlocked: random already
    # the closed form: coherence x exp(-sigma^2/2)
    c0 = single_click(ALPHA, 0.4).states[0][2, 1]
    c1 = single_click(ALPHA, 0.4, phase_sigma=math.sqrt(1.3)).states[0][2, 1]
    assert abs(c1) == pytest.approx(abs(c0) * math.exp(-1.3 / 2), rel=1e-12)


async def test_link_sums_the_arms_and_the_heralded_state_follows_the_closed_form() -> None:
    lab = Lab.from_dict(_lab((30.0, 20.0), interval=2e-3, phase_noise=0.1),
                        transport="inproc")
    params = lab.link_parameters("a.mem", "b.mem")
    assert params is not None
    assert params.phase_diffusion == pytest.approx(50.0) and params.stabilized_at is None
    async with lab, lab.driver("h.bsm") as bsm, lab.driver("a.mem") as ma, \
                lab.driver("b.mem") as mb:
        await bsm.lock_phase(0.0)
        t_lock = lab.clock.now_ps()
        link = lab.link_parameters("a.mem", "b.mem")
        assert link is not None and link.stabilized_at == pytest.approx(t_lock / 1e12)
        assert link.phase_stabilization_interval == 2e-3
        start = t_lock + round(3.5e-3 * 1e12)
        ra, _ = await asyncio.gather(
            ma.entangle(0, "b", 100_000, PERIOD, start=start, alpha=ALPHA),
            mb.entangle(0, "a", 100_000, PERIOD, start=start, alpha=ALPHA))
        assert ra["success"]
        # photons meet at the station (k-1) periods and one fiber delay after the start
        t_meet = start + (ra["attempts"] - 1) * round(PERIOD * 1e12) + delay_ps(LENGTH)
        tau = math.fmod((t_meet - t_lock) / 1e12, 2e-3)  # since the last stabilization
        sigma2 = 0.1**2 + 2 * 50.0 * tau
        emu_a, emu_b = lab.emulator("a.mem"), lab.emulator("b.mem")
        rho = lab.world.registry.density([emu_a.qubits[0], emu_b.qubits[0]],
                                         lab.clock.now_ps())
        expected = single_click(ALPHA, _eta(), phase_sigma=math.sqrt(sigma2))
        j = expected.labels.index("+" if ra["bell_state"] == "psi+" else "-")
        assert bell_fidelity(rho, ra["bell_state"]) == pytest.approx(
            bell_fidelity(expected.states[j], ra["bell_state"]), abs=1e-6)


async def test_barrett_kok_is_insensitive_to_the_drift() -> None:
    lab = Lab.from_dict(_lab((500.0, 500.0), scheme="barrett_kok"), transport="inproc")
    async with lab, lab.driver("h.bsm") as bsm, lab.driver("a.mem") as ma, \
                lab.driver("b.mem") as mb:
        await bsm.lock_phase(0.0)
        start = lab.clock.now_ps() + round(WAIT * 1e12)
        ra, _ = await asyncio.gather(ma.entangle(0, "b", 100_000, PERIOD, start=start),
                                     mb.entangle(0, "a", 100_000, PERIOD, start=start))
        assert ra["success"]
        rho = lab.world.registry.density(
            [lab.emulator("a.mem").qubits[0], lab.emulator("b.mem").qubits[0]],
            lab.clock.now_ps())
        assert bell_fidelity(rho, ra["bell_state"]) == pytest.approx(1.0, abs=1e-6)


async def test_zero_diffusion_changes_nothing() -> None:
    without = await _experiment(_lab(None), 60)
    zero = await _experiment(_lab((0.0, 0.0), interval=1e-4), 60)
    assert without == zero


async def test_measured_fidelity_drops_as_the_closed_form() -> None:
    # 2 (D_a + D_b) WAIT = 1 rad^2 at the batch start, plus the attempts until the herald
    d_a, d_b = 60.0, 40.0
    pairs = 600
    ref = await _experiment(_lab(None), pairs)
    drift = await _experiment(_lab((d_a, d_b)), pairs)
    f0, se0 = _fidelity(ref)
    f1, se1 = _fidelity(drift)
    assert abs(f0 - _closed_form(0.0)) < Z * se0, (f0, se0, _closed_form(0.0))
    # per pair: tau = WAIT + (k - 1) PERIOD + fiber delay since the lock
    d = delay_ps(LENGTH) * 1e-12
    predicted = float(np.mean([_closed_form(2 * (d_a + d_b) * (WAIT + (k - 1) * PERIOD + d))
                               for *_, k in drift]))
    assert predicted < _closed_form(0.0) - 8 * se1  # the test can tell the two apart
    assert abs(f1 - predicted) < Z * se1, (f1, se1, predicted)
