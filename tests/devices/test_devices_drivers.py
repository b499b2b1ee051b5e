"""Drivers against the reference devices: typed calls, validation on both sides, features,
contract versions, streams."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import pytest

from qnhw import (
    BadParams,
    Busy,
    ContractMismatch,
    DeviceFault,
    ErrorCode,
    QnhwError,
    Quantity,
    Timestamp,
    UnknownCommand,
)
from qnhw.contract import Contract
from qnhw.devices import (
    QPU,
    HeraldingStation,
    OpticalSwitch,
    PhotonSource,
    QuantumMemory,
    TimeTagger,
    TimingCard,
    Transducer,
    TriggerGenerator,
    two_way_offset,
)
from qnhw.devices import memory as memory_mod
from qnhw.runtime import Client
from qnhw.testing.reference import reference_of, reference_server

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0], q[1];
measure q -> c;
"""


async def _forbid_calls(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the driver sent a request it should have refused locally")


async def test_lab_script_reads_like_the_issue() -> None:
    async with reference_server("QuantumMemory") as server:
        async with QuantumMemory.connect(server.address) as mem:
            caps = mem.capabilities
            assert caps["qubits"] == 4 and caps["communication_qubits"] == [0]
            await mem.initialize(qubit=0)
            await mem.gate("x", [0])
            assert (await mem.measure(0))["outcome"] == 1
            result = await mem.emit(0)
            assert isinstance(result["time"], Timestamp)
            assert result["time"].domain == mem.clock_domain == "host"
            stored = await mem.store(1, slot=0)
            back = await mem.retrieve(0, 1)
            assert back["stored_for"] == pytest.approx(
                (back["time"].ps - stored["time"].ps) * 1e-12)
            status = await mem.status()
            assert status["qubits"][0]["state"] == "emitted"
        assert mem.client.state.value == "closed"
        mem2 = await QuantumMemory.connect(server.address)
        try:
            assert mem2.device == "ref-quantummemory"
            assert mem2.offered_contract == {"name": "QuantumMemory", "version": "1.0"}
        finally:
            await mem2.close()


async def test_validation_in_driver_and_server_keeps_connection() -> None:
    async with reference_server("QuantumMemory") as server, \
            QuantumMemory.connect(server.address) as mem:
        real_call = mem.client.call
        mem.client.call = _forbid_calls  # type: ignore[method-assign]
        for bad in (lambda: mem.initialize(-1), lambda: mem.initialize("0"),  # type: ignore
                    lambda: mem.measure(0, "w"), lambda: mem.gate("h", [0, 1, 2]),
                    lambda: mem.entangle(0, "neighbour", 10, Quantity(1, "V"))):
            with pytest.raises(BadParams):
                await bad()
        mem.client.call = real_call  # type: ignore[method-assign]
        # the server validates again: a client bypassing the driver gets typed errors
        raw = mem.client
        for params in ({"qubit": -1}, {"qubit": "zero"}, {"qubit": 0, "x": 1}, {}):
            with pytest.raises(BadParams) as err:
                await raw.call("initialize", **params)
            assert err.value.code == ErrorCode.BAD_PARAMS
        with pytest.raises(BadParams, match="cannot be converted"):
            await raw.call("entangle", qubit=0, remote="neighbour", attempts=1,
                           attempt_period=Quantity(1, "V"))
        with pytest.raises(UnknownCommand):
            await raw.call("initialise", qubit=0)
        with pytest.raises(BadParams, match="does not exist"):  # beyond this device's size
            await mem.initialize(7)
        # quantities with prefixes are converted before sending
        res = await mem.entangle(0, "neighbour", 5, attempt_period=Quantity(2, "us"))
        assert res["attempts"] <= 5
        await mem.initialize(0)  # the connection still works


class _Memory11(QuantumMemory):
    CONTRACT: ClassVar[Contract] = replace(memory_mod.CONTRACT, version="1.1")


class _Memory20(QuantumMemory):
    CONTRACT: ClassVar[Contract] = replace(memory_mod.CONTRACT, version="2.0")


async def test_incompatible_contracts_refused_at_connect() -> None:
    async with reference_server("QuantumMemory") as server:
        for driver in (_Memory11, _Memory20, QPU):
            with pytest.raises(ContractMismatch) as err:
                await driver.connect(server.address)
            assert err.value.code == ErrorCode.CONTRACT
        with pytest.raises(TypeError, match="contract="):
            await QuantumMemory.connect(server.address, contract={"name": "x"})
        async with Client(server.address) as client:  # a plain client: the server serves on
            drv = await QuantumMemory.attach(client)
            assert drv.has_feature("emit")
            await drv.initialize(0)


async def test_optional_features_discovered_not_assumed() -> None:
    async with reference_server("QuantumMemory", features=["storage"]) as server, \
            QuantumMemory.connect(server.address) as mem:
        assert mem.has_feature("storage") and not mem.has_feature("emit")
        assert mem.has_feature("lossless-streams")  # protocol features of the handshake
        mem.client.call = _forbid_calls  # type: ignore[method-assign]
        with pytest.raises(UnknownCommand, match="optional feature 'emit'"):
            await mem.emit(0)
        del mem.client.call  # type: ignore[method-assign]
        with pytest.raises(UnknownCommand):
            await mem.client.call("emit", qubit=0)
        await mem.store(0, 0)


async def test_timestamps_in_a_foreign_domain_refused_on_both_sides() -> None:
    async with reference_server("TimingCard", name="wr-a") as server, \
            TimingCard.connect(server.address) as card:
        assert card.clock_domain == "wr-a"
        now = (await card.get_time())["time"]
        assert now.domain == "wr-a"
        with pytest.raises(BadParams, match="domain 'wr-b'"):
            await card.schedule_trigger(Timestamp(now.ps + 10**12, "wr-b"), 0)
        with pytest.raises(BadParams, match="domain 'wr-b'"):
            await card.client.call("schedule_trigger", at=Timestamp(now.ps + 10**12, "wr-b"),
                                   channel=0)
        with pytest.raises(BadParams, match="not in the future"):
            await card.schedule_trigger(now, 0)
        tid = await card.schedule_trigger(Timestamp(now.ps + 10**13, "wr-a"), 1,
                                          width=Quantity(10, "ns"))
        listed = (await card.list_triggers())["triggers"]
        assert [t["trigger_id"] for t in listed] == [tid["trigger_id"]]
        assert listed[0]["width"] == pytest.approx(1e-8)
        await card.cancel_trigger(tid["trigger_id"])
        with pytest.raises(BadParams):
            await card.cancel_trigger(tid["trigger_id"])


async def test_timing_card_sync_and_streams() -> None:
    peers = {"master": (3e-6, 4e-6)}
    async with reference_server("TimingCard", device_options={"peers": peers}) as server, \
            TimingCard.connect(server.address) as card:
        offset, delay = two_way_offset(await card.sync_exchange("master"))
        assert offset == pytest.approx(3e-6) and delay == pytest.approx(4e-6)
        await card.set_mode("slave", peer="master")
        status = await card.sync_status()
        assert status["locked"] and status["peer"] == "master"
        offset, _ = two_way_offset(await card.sync_exchange("master"))
        assert offset == pytest.approx(0.0, abs=1e-12)  # locked onto its master
        with pytest.raises(Busy):
            await card.set_time(0)
        await card.set_mode("free_running")
        now = (await card.get_time())["time"].ps
        await card.configure_input(2, True)
        async with card.pps(mode="lossless") as pps, card.tags(mode="lossless") as tags:
            await card.set_time((now // 10**12 + 5) * 10**12 - 10**10)  # 10 ms before a second
            ev = await asyncio.wait_for(anext(pps), 5)
            assert ev.payload["second"] * 10**12 == ev.ts_ps and ev.domain == "timing"
            at = (await card.get_time())["time"].ps + 2 * 10**9
            await card.schedule_trigger(at, 2, period=Quantity(1, "ms"), count=2)
            ticks = [await asyncio.wait_for(anext(tags), 5) for _ in range(2)]
        assert [int(t.payload["time_ps"][0]) for t in ticks] == [at, at + 10**9]


async def test_qpu_counts_memory_and_errors() -> None:
    async with reference_server("QPU", seed=3) as server, QPU.connect(server.address) as qpu:
        caps = qpu.capabilities
        assert caps["communication_qubits"] == [0]
        assert caps["target"]["qubits"][0]["role"] == "communication"
        res = await qpu.run(BELL, shots=400, memory=True)
        assert set(res.counts) <= {"00", "11"} and sum(res.counts.values()) == 400
        assert res.memory is not None and res.memory.shape == (400, 2)
        assert res.memory.dtype == np.uint8
        bits = res.bitstrings()
        assert {b: bits.count(b) for b in set(bits)} == res.counts
        assert 120 < res.counts.get("00", 0) < 280
        with pytest.raises(BadParams) as err:
            await qpu.run(BELL.replace("cx q[0], q[1];", "cx q[0], q[2];"))
        assert err.value.details == {"param": "circuit", "line": 6, "column": 12}
        # mid-circuit measurement and reset run shot by shot
        mid = BELL.replace("measure q -> c;", "measure q[0] -> c[0];\nreset q[0];\n"
                           "measure q[0] -> c[1];")
        assert set((await qpu.run(mid, shots=50)).counts) <= {"00", "01"}
        # the live register keeps state between calls
        await qpu.reset()
        await qpu.run('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nx q[0];\n',
                      shots=1, initial_state="live")
        assert (await qpu.measure([0, 1]))["outcomes"] == [1, 0]
        with pytest.raises(BadParams, match="exactly one shot"):
            await qpu.run(BELL, shots=2, initial_state="live")
        cal = await qpu.calibration()
        assert cal["num_qubits"] == 5 and cal["time"].domain == "host"


async def test_tagger_streams_counters_coincidences() -> None:
    async with reference_server("TimeTagger", seed=2) as server, \
            TimeTagger.connect(server.address) as tt:
        cfg = await tt.configure_channel(1, threshold=Quantity(80, "mV"),
                                         dead_time=Quantity(50, "ns"), delay=Quantity(1, "ns"))
        assert cfg["threshold"] == pytest.approx(0.08) and cfg["dead_time"] == pytest.approx(5e-8)
        assert (await tt.get_channel(1)) == cfg
        with pytest.raises(BadParams, match="dead_time outside"):
            await tt.configure_channel(1, dead_time=Quantity(1, "ns"))
        await tt.set_test_signal([1, 2], True)
        virtual = (await tt.add_coincidence([1, 2], Quantity(5, "ns")))["channel"]
        async with tt.tags(mode="lossless") as sub:
            await tt.start([1, 2, virtual])
            batches = [await asyncio.wait_for(anext(sub), 5) for _ in range(3)]
            stopped = await tt.stop()
        for ev in batches:
            assert ev.payload["channel"].dtype == np.int32
            assert ev.payload["time_ps"].dtype == np.int64
            assert np.all(np.diff(ev.payload["time_ps"]) >= 0)
            assert set(ev.payload["channel"].tolist()) <= {1, 2, virtual}
        assert [b.seq for b in batches] == [0, 1, 2] and stopped["tags"] > 0
        counts = await tt.count([1, 3], Quantity(20, "ms"))
        assert counts["counts"][0] > 100 and counts["counts"][1] < 20
        hist = await tt.histogram(1, 2, 1e-9, 16, 0.01)
        assert hist["counts"].dtype == np.int64 and hist["counts"].shape == (16,)
        await tt.remove_coincidence(virtual)
        with pytest.raises(BadParams):
            await tt.remove_coincidence(virtual)


async def test_source_heralding_switch_transducer() -> None:
    async with reference_server("PhotonSource") as s1, PhotonSource.connect(s1.address) as src:
        await src.configure(repetition_rate=Quantity(100, "kHz"))
        with pytest.raises(Busy):
            await src.fire(3)
        await src.arm("triggered")
        with pytest.raises(Busy):
            await src.configure(mean_photon_number=0.2)
        async with src.emissions(mode="lossless") as sub:
            fired = await src.fire(3)
            ev = await asyncio.wait_for(anext(sub), 5)
        assert ev.payload["pulse"].tolist() == [0, 1, 2]
        assert np.diff(ev.payload["time_ps"]).tolist() == [10**7, 10**7]
        assert ev.payload["time_ps"][0] == fired["start"].ps
        assert (await src.disarm())["pulses"] == 3

    async with reference_server("HeraldingStation", seed=5) as s2, \
            HeraldingStation.connect(s2.address) as bsm:
        await bsm.configure("barrett_kok", window=Quantity(5, "ns"))
        async with bsm.heralds(mode="lossless") as sub:
            await bsm.arm(attempts=2000)
            heralds = [await asyncio.wait_for(anext(sub), 5) for _ in range(5)]
            await bsm.disarm()
        assert all(h.payload["outcome"] in ("psi+", "psi-") for h in heralds)
        assert [h.payload["attempt"] for h in heralds] == sorted(
            h.payload["attempt"] for h in heralds)
        assert (await bsm.statistics())["heralds"] >= 5

    async with reference_server("OpticalSwitch") as s3, OpticalSwitch.connect(s3.address) as sw:
        async with sw.route_changes(mode="lossless") as sub:
            await sw.set_route(1, 5)
            await sw.set_route(2, 5)  # takes output 5 from input 1
            first, second = [await asyncio.wait_for(anext(sub), 5) for _ in range(2)]
        assert first.payload["added"] == [[1, 5]]
        assert second.payload == {"routes": [[2, 5]], "added": [[2, 5]], "removed": [[1, 5]]}
        with pytest.raises(BadParams, match="two routes"):
            await sw.set_routes([[1, 2], [3, 2]])
        with pytest.raises(BadParams, match="does not exist"):
            await sw.set_route(9, 1)
        assert (await sw.port_power(5))["power"] > (await sw.port_power(6))["power"]
        assert reference_of(s3).routes == {2: 5}  # type: ignore[attr-defined]

    async with reference_server("Transducer") as s4, Transducer.connect(s4.address) as qnu:
        status = await qnu.configure_pump(Quantity(0.5, "mW"), pulse_width=Quantity(1, "us"),
                                          repetition_rate=Quantity(50, "kHz"))
        assert status["duty_cycle"] == pytest.approx(0.05)
        assert 0 < status["efficiency"] <= qnu.capabilities["efficiency"]
        await qnu.enable()
        with pytest.raises(Busy):
            await qnu.set_direction("optical_to_microwave")
        with pytest.raises(BadParams, match="duty cycle"):
            await qnu.configure_pump(1e-4)
        cal = await qnu.calibrate(0.01)
        assert cal["efficiency"] > 0
        await qnu.disable()


async def test_trigger_generator_behaves_like_the_firmware() -> None:
    """The reference TriggerGenerator: its own clock domain, 10 ps delay steps, the three
    trigger sources, the count limit, scheduled one-shots and the same typed errors as the C
    firmware (tests/serial/test_serial_firmware.py)."""
    async with reference_server("TriggerGenerator") as server, \
            TriggerGenerator.connect(server.address) as tg:
        assert tg.clock_domain == "tgen"
        assert tg.capabilities == {"channels": 4, "delay_resolution": 10, "max_rate": 1000.0,
                                   "schedule_depth": 8, "features": []}
        ch = await tg.configure_channel(1, delay=Quantity(5.004, "ns"), width=Quantity(2, "us"),
                                        polarity="negative", enabled=False)
        assert ch == {"channel": 1, "delay": 5000, "width": 2_000_000,
                      "polarity": "negative", "enabled": False}
        assert (await tg.configure_channel(1, enabled=True))["delay"] == 5000  # None: unchanged
        assert await tg.get_channel(1) == {**ch, "enabled": True}
        with pytest.raises(BadParams, match="above maximum 3"):
            await tg.get_channel(4)
        with pytest.raises(BadParams, match="clock domain 'host'"):
            await tg.schedule(Timestamp(10, "host"))
        assert await tg.set_rate(Quantity(0.25, "kHz")) == {"rate": 250.0,
                                                            "period": 4_000_000_000}

        with pytest.raises(Busy, match="not armed"):
            await tg.fire()
        await tg.set_source("external")
        with pytest.raises(DeviceFault, match="external trigger input"):
            await tg.arm()
        await tg.set_source("software")
        async with tg.triggers(mode="lossless") as sub:
            armed = await tg.arm(count=3)
            assert armed["start"].domain == "tgen"
            with pytest.raises(Busy, match="already armed"):
                await tg.arm()
            with pytest.raises(Busy, match="disarm before"):
                await tg.set_source("internal")
            fired = await tg.fire()
            assert fired["count"] == 1 and fired["time"].domain == "tgen"
            with pytest.raises(BadParams, match="in the past"):
                await tg.schedule(armed["start"])
            at = fired["time"].ps + 2 * 10**9
            assert await tg.schedule(at + 10**9) == {"pending": 1}
            assert await tg.schedule(at) == {"pending": 2}
            events = [await asyncio.wait_for(anext(sub), 5) for _ in range(3)]
        assert [(e.payload["count"], e.payload["source"]) for e in events] == [
            (1, "software"), (2, "scheduled"), (3, "scheduled")]
        assert [e.ts_ps for e in events] == [fired["time"].ps, at, at + 10**9]
        assert {e.payload["mask"] for e in events} == {0b1111}
        status = await tg.status()  # the count limit disarmed it
        assert status["armed"] is False and status["fired"] == 3 and status["total"] == 3

        await tg.set_source("internal")
        await tg.set_rate(1000.0)
        await tg.configure_channel(0, enabled=False)
        async with tg.triggers(mode="lossless") as sub:
            start = (await tg.arm(count=5))["start"].ps
            ticks = [await asyncio.wait_for(anext(sub), 5) for _ in range(5)]
        assert [t.ts_ps - start for t in ticks] == [k * 10**9 for k in range(1, 6)]
        assert {t.payload["source"] for t in ticks} == {"internal"}
        assert ticks[0].payload["mask"] == 0b1110
        assert (await tg.disarm())["fired"] == 5


async def test_driver_errors_are_typed_and_remote_errors_keep_codes() -> None:
    async with reference_server("PhotonSource") as server, \
            PhotonSource.connect(server.address) as src:
        with pytest.raises(QnhwError) as err:
            await src.configure(repetition_rate=Quantity(5, "MHz"))
        assert err.value.code == ErrorCode.BAD_PARAMS
        assert err.value.details["param"] == "repetition_rate"
        assert (await src.get_config())["repetition_rate"] == 1e5
