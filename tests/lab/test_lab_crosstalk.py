"""Switch crosstalk on heralded links: in-band light on the *other* inputs of a switch an arm
crosses (the switch's ``input_power``) leaks into the arm's output by ``10^(crosstalk/10)``
and reaches the station like dark counts: ``n`` photons per window (both arms), each detector
clicks with ``q = 1 - exp(-n eta_det / 2)``, ``p_dark' = 1 - (1 - p_dark)(1 - q)``, which goes
into the physics core's ``dark_count_probability``. Negligible crosstalk (or no light on the
other inputs) changes nothing, to the bit; strong crosstalk raises the herald rate and lowers
the heralded fidelity as the closed form says (seeded, virtual time, tolerance ``Z`` standard
errors of the sample)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from emulators.lab import Lab
from emulators.lab.world import crosstalk_click_probability
from emulators.physics.heralding import single_click
from emulators.physics.states import bell_fidelity

Z = 5.0
ALPHA = 0.1
PERIOD = 1e-6
WINDOW = 25e-9
DET = 0.8
IL_DB = 1.0
ETA = 0.5 * 10 ** (-IL_DB / 10) * DET  # collection x switch route x detector (0 m fibers)
WAVELENGTH = 637e-9  # the memories' photons; leaked light is taken in band
H, C = 6.62607015e-34, 299_792_458.0


def _lab(crosstalk_db: float, input_power: float) -> dict[str, Any]:
    """Two memories through routes in1->out1, in2->out2 of a 3x3 switch to a station; input 3
    carries only the switch's ``input_power`` (light of another route)."""
    mem = {"kind": "memory", "collection_efficiency": 0.5, "t1": 1e6, "t2": 1e6,
           "readout_error_0": 0.0, "readout_error_1": 0.0}
    return {
        "lab": {"seed": 5, "admin": False, "idle_advance": 0},
        "nodes": {
            "a": {"devices": {"mem": dict(mem)}},
            "b": {"devices": {"mem": dict(mem)}},
            "x": {"devices": {"sw": {"kind": "switch", "inputs": 3, "outputs": 3,
                                     "insertion_loss": IL_DB, "crosstalk": crosstalk_db,
                                     "switching_time": 1e-3, "input_power": input_power}}},
            "h": {"devices": {"bsm": {"kind": "heralding", "detection_efficiency": DET,
                                      "dark_count_rate": 0.0, "visibility": 1.0,
                                      "phase_noise": 0.0, "window": WINDOW}}},
        },
        "fibers": [{"a": "a.mem:optical", "b": "x.sw:in1", "length": 0.0},
                   {"a": "b.mem:optical", "b": "x.sw:in2", "length": 0.0},
                   {"a": "x.sw:out1", "b": "h.bsm:0", "length": 0.0},
                   {"a": "x.sw:out2", "b": "h.bsm:1", "length": 0.0}],
    }


def _closed_form_q(crosstalk_db: float, input_power: float) -> float:
    """Per-detector click probability of the leaked light: input 3 leaks into both arms."""
    per_arm = input_power * 10 ** (crosstalk_db / 10) * WINDOW * WAVELENGTH / (H * C)
    return -math.expm1(-2 * per_arm * DET / 2)


async def _run(cfg: dict[str, Any], pairs: int, *, routes: list[list[int]] | None = None
               ) -> tuple[list[tuple[int, str, int, int]], Any, Lab]:
    """Lock, route, then ``pairs`` heralded pairs through drivers, each measured in Z.
    Returns ``(attempts, bell, outcome_a, outcome_b)`` per pair, the last pair's density
    matrix right after its herald, and the lab."""
    out: list[tuple[int, str, int, int]] = []
    rho = None
    lab = Lab.from_dict(cfg, transport="inproc")
    async with lab, lab.driver("a.mem") as ma, lab.driver("b.mem") as mb, \
            lab.driver("h.bsm") as bsm, lab.driver("x.sw") as sw:
        await sw.set_routes(routes or [[1, 1], [2, 2]])
        await bsm.lock_phase(0.0)
        while len(out) < pairs:
            ra, rb = await asyncio.gather(
                ma.entangle(0, "b", 100_000, PERIOD, alpha=ALPHA),
                mb.entangle(0, "a", 100_000, PERIOD, alpha=ALPHA))
            assert ra["success"] and ra["bell_state"] == rb["bell_state"]
            qa, qb = lab.emulator("a.mem").qubits[0], lab.emulator("b.mem").qubits[0]
            rho = lab.world.registry.density([qa, qb], lab.clock.now_ps())
            oa, ob = await asyncio.gather(ma.measure(0, "z"), mb.measure(0, "z"))
            out.append((ra["attempts"], ra["bell_state"], oa["outcome"], ob["outcome"]))
    return out, rho, lab


def test_link_parameters_carry_the_leaked_light_as_dark_counts() -> None:
    assert crosstalk_click_probability(0.0, DET) == 0.0
    assert crosstalk_click_probability(0.05, 0.8) == pytest.approx(1 - math.exp(-0.02))
    for xt, power in ((-20.0, 1.5e-11), (-35.0, 2e-9)):
        lab = Lab.from_dict(_lab(xt, power), transport="inproc")
        sw = lab.emulator("x.sw")
        sw.routes = {1: 1, 2: 2}  # white box: settled routes without spending switch time
        link = lab.link_parameters("a.mem", "b.mem")
        assert link is not None and link.eta_a == pytest.approx(ETA)
        q = _closed_form_q(xt, power)
        assert link.crosstalk_probability == pytest.approx(q, rel=1e-9)
        assert link.dark_count_probability == pytest.approx(q, rel=1e-9)  # no dark counts
        # only the *other* inputs leak: light on the arms' own inputs does not count
        sw.set_input_power(1, 1.0)
        sw.set_input_power(2, 1.0)
        again = lab.link_parameters("a.mem", "b.mem")
        assert again is not None and again.crosstalk_probability == link.crosstalk_probability
        sw.set_input_power(3, 0.0)  # no light on the other input: no crosstalk clicks
        dark = lab.link_parameters("a.mem", "b.mem")
        assert dark is not None and dark.crosstalk_probability == 0.0
        assert dark.dark_count_probability == 0.0


async def test_negligible_crosstalk_changes_nothing_bit_for_bit() -> None:
    base, rho0, _ = await _run(_lab(-50.0, 0.0), 12)  # no light on the other inputs
    faint, rho1, lab = await _run(_lab(-300.0, 1e-3), 12)  # 1 mW at -300 dB: 1e-22 photons
    link = lab.link_parameters("a.mem", "b.mem")
    assert link is not None and link.crosstalk_probability < 1e-20
    assert link.dark_count_probability == 0.0
    assert faint == base
    assert np.array_equal(rho0, rho1)


async def test_strong_crosstalk_raises_the_herald_rate_and_lowers_fidelity() -> None:
    xt, power, n = -20.0, 4.5e-11, 1000
    q = _closed_form_q(xt, power)  # about 0.035 per detector per window
    clean = single_click(ALPHA, ETA, visibility=1.0)
    noisy = single_click(ALPHA, ETA, visibility=1.0, dark_count_probability=q)
    p0, p1 = clean.success_probability, noisy.success_probability
    assert p1 > 1.4 * p0

    data, rho, _ = await _run(_lab(xt, power), n)
    attempts = np.array([k for k, *_ in data], dtype=float)
    # attempts to the first herald are geometric(p): mean 1/p, variance (1-p)/p^2
    mean, expected = attempts.mean(), 1 / p1
    tol = Z * math.sqrt((1 - p1) / p1**2 / n)
    assert abs(mean - expected) < tol, (mean, expected, tol)
    # the test tells the two apart: the closed forms lie more than two tolerances apart
    assert abs(1 / p0 - expected) > 2 * tol
    assert abs(mean - 1 / p0) > tol

    # the last heralded state is the physics core's state with the extra dark counts
    bell = data[-1][1]
    j = noisy.labels.index("+" if bell == "psi+" else "-")
    assert bell_fidelity(rho, bell) == pytest.approx(bell_fidelity(noisy.states[j], bell),
                                                     abs=1e-9)
    assert bell_fidelity(noisy.states[j], bell) < bell_fidelity(clean.states[j], bell) - 0.01
