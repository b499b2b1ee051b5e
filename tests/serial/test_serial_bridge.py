"""The serial bridge: the C firmware served on ZeroMQ, reached like any other endpoint."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from serial_fw_support import ROOT, Firmware

from qnhw import (
    BadParams,
    Busy,
    ConnectionLost,
    DeviceFault,
    Quantity,
    Timestamp,
    UnknownCommand,
)
from qnhw.bridge import SerialBridge, serial_address
from qnhw.runtime import Client, ConnectionState

CONTRACT = {"name": "TriggerGenerator", "version": "1.0"}


def test_serial_address_forms() -> None:
    assert serial_address("/dev/ttyUSB0") == "serial:///dev/ttyUSB0"
    assert serial_address("loop://") == "serial:loop://"
    assert serial_address("serial:///dev/x?baudrate=9600") == "serial:///dev/x?baudrate=9600"


async def test_bridge_serves_the_firmware(firmware: Firmware) -> None:
    async with Client(firmware.address(), timeout=2) as direct:
        device_describe = await direct.describe()
    async with SerialBridge(firmware.address(), "tcp://127.0.0.1:0", timeout=2) as bridge:
        with pytest.raises(ConnectionLost, match="lock"):  # one user of the port at a time
            await Client(firmware.address(), timeout=2).connect()
        assert bridge.client is not None
        device_ping = await bridge.client.ping()
        async with Client(bridge.address, timeout=3, contract=CONTRACT) as c:
            assert c.welcome is not None
            assert (c.welcome.device, c.welcome.contract) == ("tgen0", CONTRACT)
            assert c.welcome.pub == bridge.pub_address is not None
            d = await c.describe()
            assert d["contract"] == CONTRACT and d["clock_domain"] == "tgen0"
            assert d["capabilities"] == device_describe["capabilities"]
            assert d["commands"] == device_describe["commands"]
            assert [s["name"] for s in d["streams"]] == ["triggers"]
            ping = await c.ping()
            assert ping["domain"] == "tgen0"
            assert abs(ping["time_ps"] - device_ping["time_ps"]) < 5 * 10**12  # same clock

            assert await c.call("configure_channel", channel=2, delay=Quantity(1, "ns")) == {
                "channel": 2, "delay": 1000, "width": 100000, "polarity": "positive",
                "enabled": True}
            with pytest.raises(BadParams, match="above maximum"):
                await c.call("get_channel", channel=9)
            with pytest.raises(UnknownCommand):
                await c.call("warp_drive")
            with pytest.raises(Busy, match="not armed"):
                await c.call("fire")  # the device's own error, code and message intact
            await c.call("set_source", source="external")
            with pytest.raises(DeviceFault, match="external trigger input"):
                await c.call("arm")
            await c.call("set_source", source="internal")
            with pytest.raises(BadParams, match="clock domain"):
                await c.call("schedule", at=Timestamp(0, "host"))

            await c.call("set_rate", rate=500.0)
            async with c.subscribe("triggers") as sub:  # ZeroMQ fan-out (PUB/SUB)
                await asyncio.sleep(0.1)  # let the SUB socket connect
                start = (await c.call("arm"))["start"]
                events = []
                async with asyncio.timeout(5):
                    async for ev in sub:
                        events.append(ev)
                        if len(events) == 10:
                            break
            await c.call("disarm")
    first = events[0]
    # the device's sequence numbers and timestamps, not the bridge's
    assert [e.seq for e in events] == list(range(first.seq, first.seq + 10))
    assert all(e.domain == "tgen0" and e.gap == 0 for e in events)
    assert [e.ts_ps for e in events] == [start + (first.seq + i + 1) * 2_000_000_000
                                         for i in range(10)]


async def test_bridge_survives_firmware_restart(firmware: Firmware) -> None:
    async with (SerialBridge(firmware.address(), timeout=1, heartbeat=0.2) as bridge,
                Client(bridge.address, timeout=2) as c):
        assert (await c.call("status"))["armed"] is False
        firmware.kill()
        firmware.start()
        for _ in range(40):  # bounded: the serial side reconnects within a few tries
            try:
                status = await c.call("status", timeout=1)
                break
            except (ConnectionError, TimeoutError):
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the bridge did not recover")
        assert status["armed"] is False
        assert c.state is ConnectionState.CONNECTED and c.reconnects == 0
        assert bridge.client is not None and bridge.client.reconnects >= 1


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
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
    return buf.decode()


async def test_cli_bridge(firmware: Firmware, unused_tcp_address: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qnhw.cli", "bridge", firmware.path, "--bind", unused_tcp_address,
         "--pub", "none"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = await asyncio.to_thread(_read_line, proc, 20.0)
        assert line.startswith("bridging serial://"), (line, proc.stderr)
        assert "TriggerGenerator 1.0" in line and unused_tcp_address in line
        async with Client(unused_tcp_address, timeout=3) as c:
            assert (await c.describe())["device"] == "tgen0"
            assert (await c.call("get_channel", channel=0))["channel"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert code == 0


async def test_cli_bridge_without_device(tmp_path: Any) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "qnhw.cli", "bridge", str(tmp_path / "none"),
                         "--connect-timeout", "0.5", "--bind", "tcp://127.0.0.1:0"],
        capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 1
    assert "cannot bridge" in proc.stderr


@pytest.fixture
def unused_tcp_address() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"
