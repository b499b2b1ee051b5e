"""Fault injection through the admin channel and the config: drivers see typed errors and
recover."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from emulators.lab import Lab
from emulators.pytest_plugin import LabHandle
from qnhw.errors import BadParams, ConnectionLost, DeadlineExceeded, DeviceFault
from qnhw.runtime import ConnectionState

NV = str(Path(__file__).resolve().parents[2] / "examples" / "labs" / "nv_link.toml")


@pytest.mark.qnhw_lab(NV)
async def test_latency_and_jitter_slow_calls_then_clear(qnhw_lab: LabHandle) -> None:
    mem = await qnhw_lab.driver("alice.memory")
    fid = await qnhw_lab.inject("latency", "alice.memory", latency=0.15, jitter=0.01)
    with pytest.raises(DeadlineExceeded):
        await mem.status(timeout=0.05)
    t0 = time.perf_counter()
    await mem.status(timeout=2.0)
    assert time.perf_counter() - t0 >= 0.15
    await qnhw_lab.clear(fid)
    t0 = time.perf_counter()
    await mem.status(timeout=2.0)
    assert time.perf_counter() - t0 < 0.1
    bob = await qnhw_lab.driver("bob.memory")  # other devices were never affected
    await bob.status(timeout=0.5)


@pytest.mark.qnhw_lab(NV)
async def test_dropped_replies_time_out_and_the_connection_stays_usable(
        qnhw_lab: LabHandle) -> None:
    mem = await qnhw_lab.driver("alice.memory")
    fid = await qnhw_lab.inject("drop", "alice.memory", probability=1.0)
    with pytest.raises(DeadlineExceeded):
        await mem.initialize(0, timeout=0.1)  # it ran; its reply was lost
    await qnhw_lab.clear(fid)
    status = await mem.status(timeout=1.0)
    assert status["qubits"][0]["state"] == "initialized"
    assert mem.client.state is ConnectionState.CONNECTED


@pytest.mark.qnhw_lab(NV, transport="tcp", time="wall")
async def test_disconnect_and_restart_give_connection_lost_then_reconnect(
        qnhw_lab: LabHandle) -> None:
    mem = await qnhw_lab.driver("alice.memory", heartbeat=0.2)
    await mem.initialize(0)
    pending = asyncio.get_running_loop().create_task(
        mem.entangle(0, "bob", attempts=10**6, attempt_period=1e-5, timeout=30.0))
    await asyncio.sleep(0.05)  # waiting for bob (who never comes)
    address = qnhw_lab.address("alice.memory")
    fid = await qnhw_lab.inject("disconnect", "alice.memory", duration=0.3)
    with pytest.raises(ConnectionLost):
        await pending
    with pytest.raises((DeadlineExceeded, ConnectionLost)):
        await mem.status(timeout=0.05)  # still down
    await mem.client.wait_for_state(ConnectionState.CONNECTED, timeout=5.0)
    status = await mem.status()
    assert status["qubits"][0]["state"] in ("initialized", "busy")
    assert qnhw_lab.address("alice.memory") == address
    assert mem.client.reconnects >= 1
    lab = qnhw_lab.require_emulated()
    assert lab.entries["alice.memory"].up
    assert fid not in [f["id"] for f in lab.faults.describe()]


@pytest.mark.qnhw_lab(NV)
async def test_device_fault_until_cleared(qnhw_lab: LabHandle) -> None:
    bsm = await qnhw_lab.driver("mid.bsm")
    fid = await qnhw_lab.inject("device_fault", "mid.bsm", message="detector cryostat warm")
    with pytest.raises(DeviceFault, match="cryostat"):
        await bsm.lock_phase()
    await qnhw_lab.clear(fid)
    assert (await bsm.lock_phase())["locked"]


async def _entangle(a: Any, b: Any) -> dict[str, Any]:
    while True:
        ra, _ = await asyncio.gather(a.entangle(0, "bob", 10**6, 5e-6, timeout=30.0),
                                     b.entangle(0, "alice", 10**6, 5e-6, timeout=30.0))
        if ra["success"]:
            return ra


@pytest.mark.qnhw_lab(NV)
async def test_memory_losing_its_state_faults_until_initialized(qnhw_lab: LabHandle) -> None:
    lab = qnhw_lab.require_emulated()
    a = await qnhw_lab.driver("alice.memory")
    b = await qnhw_lab.driver("bob.memory")
    await (await qnhw_lab.driver("mid.bsm")).lock_phase()
    await _entangle(a, b)
    await qnhw_lab.inject("lose_state", "alice.memory", qubit=0)
    with pytest.raises(DeviceFault, match="lost its state"):
        await a.measure(0, "x")
    # the pair is gone: bob keeps only his half's reduced state, without coherence
    qb = lab.emulator("bob.memory").qubits[0]
    assert not lab.world.registry.entangled(qb)
    rho = lab.world.registry.density([qb], lab.clock.now_ps())
    assert abs(rho[0, 1]) < 1e-9
    await a.initialize(0)
    assert (await a.measure(0, "z"))["outcome"] in (0, 1)


@pytest.mark.qnhw_lab(NV)
async def test_clock_slip_moves_the_domain_and_bad_faults_are_refused(
        qnhw_lab: LabHandle) -> None:
    a = await qnhw_lab.driver("alice.memory")
    admin = await qnhw_lab.admin()
    before = (await admin.call("time"))["domains"]
    await qnhw_lab.inject("clock_slip", "alice", offset=1e-3)
    after = (await admin.call("time"))["domains"]
    assert after["alice"] - before["alice"] >= 10**9  # + 1 ms
    assert after["bob"] - before["bob"] < 10**9
    ping = await a.ping()
    assert ping["domain"] == "alice" and ping["time_ps"] >= after["alice"]
    with pytest.raises(BadParams, match="no device"):
        await qnhw_lab.inject("latch", "nowhere.tagger", channel=1)
    with pytest.raises(BadParams, match="needs a tagger"):
        await qnhw_lab.inject("latch", "alice.memory", channel=1)


@pytest.mark.qnhw_lab(NV)
async def test_phase_unlock_destroys_single_click_coherence(qnhw_lab: LabHandle) -> None:
    lab = qnhw_lab.require_emulated()
    a = await qnhw_lab.driver("alice.memory")
    b = await qnhw_lab.driver("bob.memory")
    await (await qnhw_lab.driver("mid.bsm")).lock_phase()
    qa, qb = lab.emulator("alice.memory").qubits[0], lab.emulator("bob.memory").qubits[0]
    await _entangle(a, b)
    locked = lab.world.registry.density([qa, qb], lab.clock.now_ps())
    await qnhw_lab.inject("phase_unlock", "mid.bsm")
    await _entangle(a, b)
    unlocked = lab.world.registry.density([qa, qb], lab.clock.now_ps())
    assert abs(locked[1, 2]) > 0.3 and abs(unlocked[1, 2]) < 1e-6


async def test_config_faults_fire_at_their_lab_time() -> None:
    cfg = {"lab": {"seed": 1},
           "nodes": {"a": {"devices": {"mem": {"kind": "memory"}}}},
           "faults": [{"kind": "device_fault", "target": "a.mem", "at": 0.5,
                       "message": "scheduled"},
                      {"kind": "latency", "target": "a.mem", "latency": 0.0}]}
    async with Lab.from_dict(cfg, transport="inproc") as lab, lab.driver("a.mem") as mem:
        await mem.initialize(0)
        admin_faults = lab.faults.describe()
        assert [f["kind"] for f in admin_faults] == ["latency"]
        await lab.clock.advance(1.0)  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)
        with pytest.raises(DeviceFault, match="scheduled"):
            await mem.initialize(0)
        await lab.faults.clear()
        await mem.initialize(0)
