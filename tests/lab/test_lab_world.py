"""The lab world against closed forms: qubit decay, heralded links (single click and
Barrett-Kok), optical paths through fibers and switches. Monte-Carlo tolerances come from the
sample size (``Z`` standard errors)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from emulators.lab import Lab
from emulators.lab.quantum import QubitRegistry
from emulators.lab.time import PS_PER_S, to_ps
from emulators.lab.world import PortRef
from emulators.physics.heralding import barrett_kok_probability, single_click_probability
from emulators.physics.memory import MemoryModel, stored_bell_fidelity
from emulators.physics.states import bell_fidelity, bell_ket, ket_to_density

Z = 5.0


def _link_lab(scheme_eta: dict[str, Any] | None = None, *, length: float = 0.0,
              collection: float = 0.5, efficiency: float = 0.8, visibility: float = 1.0,
              dark: float = 0.0, t2: float = 1.58) -> dict[str, Any]:
    mem = {"kind": "memory", "collection_efficiency": collection, "t2": t2}
    return {
        "lab": {"seed": 5, "admin": False, "idle_advance": 0},
        "nodes": {
            "a": {"devices": {"mem": dict(mem)}},
            "b": {"devices": {"mem": dict(mem)}},
            "h": {"devices": {"bsm": {"kind": "heralding", "detection_efficiency": efficiency,
                                      "dark_count_rate": dark, "visibility": visibility,
                                      "phase_noise": 0.0, **(scheme_eta or {})}}},
        },
        "fibers": [{"a": "a.mem:optical", "b": "h.bsm:0", "length": length},
                   {"a": "b.mem:optical", "b": "h.bsm:1", "length": length}],
    }


async def _batches(lab: Lab, n: int, alpha: float, attempts: int = 10**6,
                   ) -> list[tuple[Any, Any]]:
    world, clock = lab.world, lab.clock
    qa = lab.emulator("a.mem").qubits[0]
    qb = lab.emulator("b.mem").qubits[0]

    async def side(dev: str, q: Any, remote: str) -> Any:
        with clock.request():
            return await world.entangle(dev, q, remote, attempts, 1e-6, clock.now_ps(), alpha)

    out = []
    for _ in range(n):
        out.append(tuple(await asyncio.gather(side("a.mem", qa, "b"), side("b.mem", qb, "a"))))
    return out


def test_registry_stored_pair_decays_as_the_closed_form() -> None:
    for dephasing, t1, t2 in (("exponential", 2.0, 0.7), ("gaussian", 5.0, 0.3)):
        reg = QubitRegistry()
        a = reg.add("a", MemoryModel(t1, t2, dephasing))
        b = reg.add("b", MemoryModel())
        phi = ket_to_density(bell_ket("phi+"))
        reg.set_joint([a, b], phi, 0)
        for t in (0.1, 0.25, 0.5, 1.0):  # lazy decay in steps equals the closed form at t
            rho = reg.density([a, b], to_ps(t))
            assert bell_fidelity(rho, "phi+") == pytest.approx(
                stored_bell_fidelity(t, t1, t2, dephasing), abs=1e-12)


def test_registry_measurement_statistics_match_the_state() -> None:
    reg = QubitRegistry()
    rng = np.random.default_rng(1)
    m = MemoryModel(10.0, 1.0)
    n, t = 2000, 0.3
    parity = {"x": 0, "z": 0}
    for i in range(n):
        a = reg.add(f"a{i}", m)
        b = reg.add(f"b{i}", m)
        reg.set_joint([a, b], ket_to_density(bell_ket("psi+")), 0)
        basis = "x" if i % 2 else "z"
        pa = reg.measure(a, basis, to_ps(t), rng)
        pb = reg.measure(b, basis, to_ps(t), rng)
        parity[basis] += 1 - 2 * (pa ^ pb)
    # psi+ with both halves decayed for t: <XX> = c^2 (coherence c = exp(-t/T2) each);
    # <ZZ> = -1 + 2 P(00) with P(00) = g = 1 - exp(-t/T1) (the one excitation decayed)
    g = 1 - math.exp(-t / 10.0)
    expected = {"x": math.exp(-t / 1.0) ** 2, "z": -1 + 2 * g}
    for basis, value in parity.items():
        k = n // 2
        mean = value / k
        se = math.sqrt(max(1 - expected[basis] ** 2, 1e-3) / k)
        assert abs(mean - expected[basis]) < Z * se, (basis, mean, expected[basis])


async def test_single_click_rate_and_state_match_closed_forms() -> None:
    alpha = 0.1
    lab = Lab.from_dict(_link_lab())
    params = lab.link_parameters("a.mem", "b.mem")
    assert params is not None
    eta = 0.5 * 0.8
    assert params.eta_a == pytest.approx(eta) and params.scheme == "single_click"
    lab.emulator("h.bsm").locked = True  # as after lock_phase: no phase noise configured
    results = await _batches(lab, 1500, alpha)
    assert all(r[0].success and r[1].success for r in results)
    attempts = sum(r[0].attempts for r in results)
    p = single_click_probability(alpha, eta)
    p_hat = len(results) / attempts
    assert abs(p_hat - p) < Z * p * math.sqrt((1 - p) / len(results)), (p_hat, p)
    # the last pair lives in the registry: its fidelity is the closed form
    reg = lab.world.registry
    qa, qb = lab.emulator("a.mem").qubits[0], lab.emulator("b.mem").qubits[0]
    rho = reg.density([qa, qb], lab.clock.now_ps())
    bell = results[-1][0].bell_state
    assert bell in ("psi+", "psi-") and bell == results[-1][1].bell_state
    f_closed = (1 - alpha) / (1 - alpha * eta / 2)
    assert bell_fidelity(rho, bell) == pytest.approx(f_closed, abs=2e-4)  # decay over ~us
    plus = sum(r[0].bell_state == "psi+" for r in results)
    assert abs(plus / len(results) - 0.5) < Z * math.sqrt(0.25 / len(results))


async def test_barrett_kok_rate_and_fidelity() -> None:
    lab = Lab.from_dict(_link_lab({"scheme": "barrett_kok"}, visibility=0.8))
    results = await _batches(lab, 1000, 0.5)
    eta = 0.4
    p = barrett_kok_probability(eta)
    attempts = sum(r[0].attempts for r in results)
    p_hat = len(results) / attempts
    assert abs(p_hat - p) < Z * p * math.sqrt((1 - p) / len(results))
    qa, qb = lab.emulator("a.mem").qubits[0], lab.emulator("b.mem").qubits[0]
    rho = lab.world.registry.density([qa, qb], lab.clock.now_ps())
    assert bell_fidelity(rho, results[-1][0].bell_state) == pytest.approx((1 + 0.8) / 2,
                                                                         abs=1e-3)


async def test_a_lone_side_fails_after_its_batch_and_unlinked_nodes_never_herald() -> None:
    lab = Lab.from_dict(_link_lab())
    world, clock = lab.world, lab.clock
    q = lab.emulator("a.mem").qubits[0]
    with clock.request():
        task = asyncio.get_running_loop().create_task(
            world.entangle("a.mem", q, "b", 1000, 1e-6, 0, 0.1))
        await asyncio.sleep(0.01)
        assert not task.done()  # waits for its partner (no lab time passes)
        await clock.spend(1e-3 + 1e-6)
    result = await task
    assert not result.success and result.attempts == 1000
    assert lab.emulator("h.bsm").attempts == 1000


def test_fiber_paths_loss_and_delay() -> None:
    lab = Lab.from_dict(_link_lab(length=1000.0))
    path = lab.world.trace(PortRef("a.mem", "optical"))
    assert path.end == PortRef("h.bsm", "0")
    assert path.transmission == pytest.approx(10 ** (-0.2 * 1.0 / 10))
    assert path.delay_ps == round(1.468 * 1000 / 299_792_458.0 * PS_PER_S)
    assert lab.world.neighbours("a.mem") == ["b"]


async def test_switch_routes_decide_the_optical_path() -> None:
    cfg = _link_lab()
    cfg["nodes"]["x"] = {"devices": {"sw": {"kind": "switch", "inputs": 2, "outputs": 2,
                                            "insertion_loss": 1.0, "switching_time": 1e-3}}}
    cfg["fibers"] = [{"a": "a.mem:optical", "b": "x.sw:in1", "length": 0.0},
                     {"a": "x.sw:out2", "b": "h.bsm:0", "length": 0.0},
                     {"a": "b.mem:optical", "b": "h.bsm:1", "length": 0.0}]
    lab = Lab.from_dict(cfg)
    assert lab.world.trace(PortRef("a.mem", "optical")).end is None  # not routed yet
    assert lab.link_parameters("a.mem", "b.mem") is None
    assert lab.world.neighbours("a.mem") == ["b"]  # reachable under some route
    sw = lab.emulator("x.sw")
    with lab.clock.request():
        await sw.set_route(1, 2)
    path = lab.world.trace(PortRef("a.mem", "optical"))
    assert path.end == PortRef("h.bsm", "0") and path.via == ("x.sw",)
    assert path.transmission == pytest.approx(10 ** -0.1)
    params = lab.link_parameters("a.mem", "b.mem")
    assert params is not None and params.eta_a == pytest.approx(0.4 * 10 ** -0.1)


async def test_emitted_photons_meeting_at_the_station_herald_at_the_closed_form_rate() -> None:
    alpha, eta, n = 0.3, 0.4, 600
    lab = Lab.from_dict(_link_lab())
    lab.emulator("h.bsm").locked = True
    a, b = lab.emulator("a.mem"), lab.emulator("b.mem")
    heralds = 0
    for _ in range(n):
        before = lab.emulator("h.bsm").heralds.copy()
        with lab.clock.request():
            await asyncio.gather(a.emit(0, alpha), b.emit(0, alpha))
        after = lab.emulator("h.bsm").heralds
        if sum(after.values()) > sum(before.values()):
            heralds += 1
            if heralds == 1:  # the heralded state is the single-click state
                rho = lab.world.registry.density([a.qubits[0], b.qubits[0]],
                                                 lab.clock.now_ps())
                outcome = "psi+" if after["psi+"] > before["psi+"] else "psi-"
                f = (1 - alpha) / (1 - alpha * eta / 2)
                assert bell_fidelity(rho, outcome) == pytest.approx(f, abs=1e-6)
    p = single_click_probability(alpha, eta)
    assert abs(heralds / n - p) < Z * math.sqrt(p * (1 - p) / n), (heralds / n, p)
    assert lab.emulator("h.bsm").attempts == n
