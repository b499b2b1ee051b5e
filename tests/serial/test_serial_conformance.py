"""The whole conformance kit against the C firmware: TriggerGenerator 1.0.

The contract and its driver are ``qnhw.devices.trigger_generator``: the kit checks that the
firmware's handshake and ``describe`` reply match it exactly, its capabilities fit the schema,
every bad parameter derivable from the contract gets BAD_PARAMS naming the parameter, unknown
commands get UNKNOWN_COMMAND, the scenario runs through the typed driver with conforming
results, and the ``triggers`` stream delivers conforming events -- directly on the serial line
(a single-session endpoint: the kit observes the stream through the scenario's subscriptions,
lossless and fan-out) and through the ZeroMQ bridge, in-process (``SerialBridge``) and as the
``qnhw bridge`` command on tcp (the kit's own lossless and fan-out subscribers).
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time

import pytest
from serial_fw_support import ROOT, Firmware

from qnhw.bridge import SerialBridge
from qnhw.devices import TriggerGenerator
from qnhw.testing import conformance

CASES = conformance.cases(TriggerGenerator)


def test_every_check_is_run() -> None:
    assert [c.name for c in CASES] == list(conformance.CHECKS)
    assert CASES[0].required_streams == ("triggers",)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_firmware_conforms(case: conformance.Case, bare_firmware: Firmware) -> None:
    address = f"serial://{bare_firmware.pty}?baudrate=115200"
    assert conformance.single_session(address)
    await case.run(address, timeout=3.0)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bridged_firmware_conforms(case: conformance.Case,
                                         bare_firmware: Firmware) -> None:
    async with SerialBridge(bare_firmware.pty, "tcp://127.0.0.1:0", timeout=3) as bridge:
        assert not conformance.single_session(bridge.address)
        await case.run(bridge.address, timeout=3.0)


async def test_run_suite_reports_every_check(bare_firmware: Firmware) -> None:
    report = await conformance.run_suite(f"serial://{bare_firmware.pty}?baudrate=115200",
                                         TriggerGenerator, timeout=3.0)
    assert report == dict.fromkeys(conformance.CHECKS)


def _bridge_address(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The ZeroMQ address from the ``bridging ... at ADDRESS, streams at ...`` line."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    line = buf.decode()
    assert line.startswith("bridging serial://") and " streams at tcp://" in line, line
    return line.split(" at ")[1].split(",")[0]


async def test_cli_bridged_firmware_conforms(bare_firmware: Firmware) -> None:
    """Every check through ``qnhw bridge`` (a separate process) on tcp, fan-out on PUB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qnhw.cli", "bridge", bare_firmware.pty, "--bind",
         "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0", "--timeout", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        address = await asyncio.to_thread(_bridge_address, proc, 20.0)
        report = await conformance.run_suite(address, TriggerGenerator, timeout=3.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert report == dict.fromkeys(conformance.CHECKS)
    assert code == 0
