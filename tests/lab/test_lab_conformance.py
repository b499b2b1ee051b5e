"""Every emulator passes the conformance kit: inside a lab (virtual and wall time; inproc,
ipc and tcp) and standalone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulators.devices.env import standalone_env
from emulators.devices.heralding import HeraldingStationEmulator
from emulators.devices.memory import QuantumMemoryEmulator
from emulators.devices.source import PhotonSourceEmulator
from emulators.devices.timetagger import TimeTaggerEmulator
from emulators.lab import Lab
from qnhw.testing import conformance

LABS = Path(__file__).resolve().parents[2] / "examples" / "labs"

#: One device of every kind, coupled: memories through a station, a source into a tagger.
ALL_KINDS: dict[str, Any] = {
    "lab": {"seed": 3},
    "nodes": {
        "a": {"devices": {"mem": {"kind": "memory", "profile": "nv-delft"},
                          "card": {"kind": "timing"}, "src": {"kind": "source"},
                          "tagger": {"kind": "tagger", "profile": "snspd"},
                          "qpu": {"kind": "qpu"}, "qnu": {"kind": "transducer"}}},
        "b": {"devices": {"mem": {"kind": "memory"}}},
        "h": {"devices": {"bsm": {"kind": "heralding"},
                          "sw": {"kind": "switch", "inputs": 4, "outputs": 4}}},
    },
    "fibers": [{"a": "a.mem:optical", "b": "h.bsm:0", "length": 10.0},
               {"a": "b.mem:optical", "b": "h.bsm:1", "length": 10.0},
               {"a": "a.src:signal", "b": "a.tagger:1", "length": 10.0},
               {"a": "a.src:idler", "b": "a.tagger:2", "length": 10.0}],
}
DEVICES = ["a.mem", "a.card", "a.src", "a.tagger", "a.qpu", "a.qnu", "b.mem", "h.bsm", "h.sw"]


async def _suite(lab: Lab, name: str) -> None:
    entry = lab.entries[name]
    report = await conformance.run_suite(lab.address(name), entry.contract.name)
    problems = {k: v for k, v in report.items() if v is not None}
    assert not problems, f"{name} ({entry.contract.name}):\n" + "\n".join(
        f"{k}: {v}" for k, v in problems.items())


@pytest.mark.parametrize("name", DEVICES)
async def test_every_kind_conforms_in_a_virtual_time_lab(name: str) -> None:
    async with Lab.from_dict(ALL_KINDS, transport="inproc") as lab:
        await _suite(lab, name)


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
async def test_lab_endpoints_conform_over_ipc_and_tcp(transport: str) -> None:
    async with Lab.from_file(LABS / "nv_link.toml", transport=transport) as lab:
        assert all(a.startswith(f"{transport}://") for a in lab.addresses.values())
        await _suite(lab, "alice.memory")
        await _suite(lab, "mid.bsm")


async def test_lab_endpoints_conform_in_wall_time() -> None:
    async with Lab.from_file(LABS / "pair_source.toml", transport="inproc",
                             time="wall") as lab:
        await _suite(lab, "src.spdc")
        await _suite(lab, "det.tagger")


@pytest.mark.parametrize("cls, contract", [
    (QuantumMemoryEmulator, "QuantumMemory"), (HeraldingStationEmulator, "HeraldingStation"),
    (PhotonSourceEmulator, "PhotonSource"), (TimeTaggerEmulator, "TimeTagger")])
async def test_standalone_emulators_conform(cls: Any, contract: str) -> None:
    emu = cls(standalone_env(contract.lower(), seed=2))
    server = await emu.serve(f"inproc://standalone-{contract}")
    try:
        report = await conformance.run_suite(server.address, contract)
        assert all(v is None for v in report.values()), report
    finally:
        await emu.shutdown()
