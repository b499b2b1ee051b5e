"""Devices of the other emulator family in the lab world: timing cards discipline node
domains, QPUs linked through transducers, a switch and a station (the IBM-Cisco shape), and
a three-node repeater chain."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emulators.lab import Lab
from emulators.lab.timeservice import LabTime, wait_for_trigger
from emulators.physics.repeater import werner_swap_fidelity
from emulators.physics.states import bell_fidelity
from qnhw.devices import two_way_offset

LABS = Path(__file__).resolve().parents[2] / "examples" / "labs"
Z = 5.0

TIMED: dict[str, Any] = {
    "lab": {"seed": 1},
    "nodes": {"a": {"devices": {"card": {"kind": "timing", "offset": 3e-6},
                                "mem": {"kind": "memory"}}},
              "b": {"devices": {"card": {"kind": "timing", "offset": 1e-6,
                                         "frequency_offset": 1e-8},
                                "mem": {"kind": "memory"}}}},
    "fibers": [{"a": "a.card:link", "b": "b.card:link", "length": 1000.0}],
}


async def test_timing_cards_discipline_their_nodes_domains() -> None:
    async with Lab.from_dict(TIMED, transport="inproc") as lab, \
            lab.driver("a.card") as ca, lab.driver("b.card") as cb, \
            lab.driver("a.mem") as ma, lab.driver("b.mem") as mb:
        assert "b" in ca.capabilities["peers"] and "a" in cb.capabilities["peers"]
        # every device of a node stamps in its card's domain
        assert (await ma.ping())["time_ps"] == (await ca.get_time())["time"].ps
        offset, delay = two_way_offset(await cb.sync_exchange("a"))
        assert abs(offset - 2e-6) < 1e-9 and abs(delay - 1000 * 1.468 / 299_792_458) < 1e-9
        await cb.set_mode("slave", "a")  # b's node now follows a
        ta, tb = (await ca.get_time())["time"].ps, (await mb.ping())["time_ps"]
        assert abs(ta - tb) < 10
        # waiting portably: a trigger on the card; the lab jumps to it in virtual time
        stamp = await wait_for_trigger(ca, ta + 10**12)
        assert stamp == ta + 10**12 and lab.clock.now() >= 1.0
        async with LabTime(lab.admin_address) as t:
            before = await t.now()
            await t.sleep(2.0)
            assert await t.now() - before >= 2.0
        assert abs((await mb.ping())["time_ps"] - (await ca.get_time())["time"].ps) < 10**3
        assert (await cb.sync_status())["locked"]


async def _prepare_qnu(lab: Lab, drivers: dict[str, Any]) -> None:
    await drivers["cisco.switch"].set_routes([[1, 1], [2, 2]])
    for name in ("ibm_a.qnu", "ibm_b.qnu"):
        t = drivers[name]
        caps = t.capabilities
        await t.configure_pump(caps["max_pump_power"] / 2, 0.0, pulse_width=1e-6,
                               repetition_rate=0.05 / 1e-6)
        await t.enable()
    await drivers["cisco.bsm"].configure("single_click", window=25e-9, attempt_period=1e-6)
    await drivers["cisco.bsm"].lock_phase()


async def test_qpus_share_heralded_pairs_through_transducers_and_a_switch() -> None:
    names = ("ibm_a.qpu", "ibm_b.qpu", "ibm_a.qnu", "ibm_b.qnu", "cisco.switch", "cisco.bsm")
    async with Lab.from_file(LABS / "qpu_link.toml", transport="inproc") as lab:
        drivers = {n: await lab.driver(n) for n in names}
        try:
            bsm = drivers["cisco.bsm"]
            async with bsm.heralds(mode="lossless") as sub:  # unrouted: the QNUs are dark
                assert lab.world.qnu_link("cisco.bsm") is None
            await _prepare_qnu(lab, drivers)
            link = lab.world.qnu_link("cisco.bsm")
            assert link is not None and link.eta_a > 0.05
            outcomes = link.outcomes(0.3, 0.3)
            qa = lab.emulator("ibm_a.qpu").live.qubits[0]
            qb = lab.emulator("ibm_b.qpu").live.qubits[0]
            circuit = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[1];\n'
                       'measure q[0] -> c[0];\n')
            zz, n = 0.0, 120
            for i in range(n):
                async with bsm.heralds(mode="lossless") as sub:
                    await bsm.arm(attempts=None)
                    ev = await asyncio.wait_for(anext(sub), 10)
                assert not (await bsm.get_config())["armed"]  # disarmed after the herald
                if i == 0:
                    rho = lab.world.registry.density([qa, qb], lab.clock.now_ps())
                    k = 0 if ev.payload["outcome"] == "psi+" else 1
                    expected = bell_fidelity(outcomes.states[k], ev.payload["outcome"])
                    assert bell_fidelity(rho, ev.payload["outcome"]) == \
                        pytest.approx(expected, abs=0.01)
                ra, rb = await asyncio.gather(
                    drivers["ibm_a.qpu"].run(circuit, shots=1, initial_state="live"),
                    drivers["ibm_b.qpu"].run(circuit, shots=1, initial_state="live"))
                a, b = int(next(iter(ra.counts))), int(next(iter(rb.counts)))
                zz += (1 - 2 * a) * (1 - 2 * b)
            # <ZZ> of the heralded state, through symmetric readout errors e: (1 - 2e)^2 <ZZ>
            z_op = np.diag([1.0, -1.0, -1.0, 1.0])
            w = outcomes.probabilities / outcomes.success_probability
            true_zz = float(sum(wk * np.real(np.trace(z_op @ s))
                                for wk, s in zip(w, outcomes.states, strict=True)))
            e = 1.5e-2
            expected_zz = (1 - 2 * e) ** 2 * true_zz
            se = math.sqrt(max(1 - expected_zz**2, 1e-3) / n)
            assert abs(zz / n - expected_zz) < Z * se, (zz / n, expected_zz)
        finally:
            for d in drivers.values():
                await d.close()


async def _entangle(x: Any, qx: int, rx: str, y: Any, qy: int, ry: str) -> None:
    for _ in range(1000):
        a, _ = await asyncio.gather(x.entangle(qx, rx, 10**6, 5e-6),
                                    y.entangle(qy, ry, 10**6, 5e-6))
        if a["success"]:
            return
    raise AssertionError("no herald")


async def test_repeater_chain_swaps_entanglement_to_the_end_nodes() -> None:
    async with Lab.from_file(LABS / "repeater_chain.toml", transport="inproc") as lab, \
            lab.driver("alice.memory") as a, lab.driver("bob.memory") as b, \
            lab.driver("carol.memory") as c, lab.driver("s1.bsm") as s1, \
            lab.driver("s2.bsm") as s2:
        assert b.capabilities["neighbours"] == ["alice", "carol"]
        await s1.lock_phase()
        await s2.lock_phase()
        link = lab.link_parameters("alice.memory", "bob.memory", 0, 0)
        assert link is not None
        f_link = link.outcomes(0.1, 0.1).fidelity
        qa = lab.emulator("alice.memory").qubits[0]
        qc = lab.emulator("carol.memory").qubits[0]
        fids = []
        for _ in range(12):
            await _entangle(a, 0, "bob", b, 0, "alice")
            await _entangle(b, 1, "carol", c, 0, "bob")
            await b.gate("cx", [0, 1])
            await b.gate("h", [0])
            await b.measure(0)
            await b.measure(1)
            rho = lab.world.registry.density([qa, qc], lab.clock.now_ps())
            fids.append(max(bell_fidelity(rho, s) for s in ("phi+", "phi-", "psi+", "psi-")))
        # Werner-swap estimate from the link fidelity; gate and readout errors at bob and the
        # non-Bell-diagonal part of single-click states make it approximate
        assert abs(float(np.mean(fids)) - werner_swap_fidelity(f_link, f_link)) < 0.05
        assert min(fids) > 0.5  # entangled


def test_qpu_link_lab_config_names_its_qnus() -> None:
    lab = Lab.from_file(LABS / "qpu_link.toml")
    assert set(lab.world.emitters) == {"ibm_a.qnu", "ibm_b.qnu"}
    emitter = lab.world.emitters["ibm_a.qnu"]
    assert emitter.qubit == 0 and emitter.emitter_model().collection_efficiency == 0.0
    assert dataclasses.is_dataclass(emitter.emitter_model())
