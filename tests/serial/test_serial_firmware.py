"""The real C firmware (firmware_stubs, host build on a pty) driven by the Python client.

Handshake, describe against the TriggerGenerator 1.0 contract written down here, calls and
typed errors, the trigger stream, line noise both ways, oversized frames, and unplug/replug
(process killed and restarted) and MCU reset (firmware state lost, port kept).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from typing import Any

import msgpack
import pytest
from serial_fw_support import Firmware, RawPort

from qnhw import (
    BadParams,
    Busy,
    ConnectionLost,
    DeadlineExceeded,
    DeviceFault,
    MessageTooLarge,
    NoSession,
    Quantity,
    Timestamp,
    UnknownCommand,
)
from qnhw.bridge import command_from_describe
from qnhw.devices import TriggerGenerator
from qnhw.errors import ErrorCode, QnhwError
from qnhw.runtime import Client, ConnectionState
from qnhw.transport.serial_framing import encode_frame
from qnhw.transport.serial_link import SerialLink

CONTRACT = {"name": "TriggerGenerator", "version": "1.0"}
DOMAIN = "tgen0"

# TriggerGenerator 1.0 as the firmware must describe it:
# command -> [(param, type, unit, required, min, max, choices, default)]
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "configure_channel": [
        ("channel", "int", "", True, 0, 3, None, None),
        ("delay", "int", "ps", False, 0, 10_000_000_000, None, None),
        ("width", "int", "ps", False, 1000, 1_000_000_000, None, None),
        ("polarity", "str", "", False, None, None, ["positive", "negative"], None),
        ("enabled", "bool", "", False, None, None, None, None),
    ],
    "get_channel": [("channel", "int", "", True, 0, 3, None, None)],
    "set_source": [("source", "str", "", True, None, None,
                    ["internal", "external", "software"], None)],
    "set_rate": [("rate", "float", "Hz", True, 0.1, 1000.0, None, None)],
    "arm": [("count", "int", "", False, 0, 1_000_000, None, 0)],
    "disarm": [],
    "fire": [],
    "schedule": [("at", "timestamp", "ps", True, 0, None, None, None)],
    "status": [],
}


async def wait_connected(client: Client, timeout: float = 10.0) -> None:
    await client.wait_for_state(ConnectionState.CONNECTED, timeout=timeout)


def link_of(client: Client) -> SerialLink:
    link = client._link
    assert isinstance(link, SerialLink)
    return link


# --- raw protocol -------------------------------------------------------------------------


def test_raw_session_rules(bare_firmware: Firmware) -> None:
    """NO_SESSION before hello, VERSION for another major, PROTOCOL for junk, then welcome."""
    port = RawPort(bare_firmware.pty)
    try:
        port.send({"k": "req", "id": 7, "m": "status", "p": {}, "dl": None})
        [err] = port.read_messages()
        assert (err["k"], err["id"], err["code"]) == ("err", 7, ErrorCode.NO_SESSION)
        port.send({"k": "hb", "n": 3})
        [err] = port.read_messages()
        assert (err["id"], err["code"]) == (None, ErrorCode.NO_SESSION)
        port.send({"k": "hello", "pv": [2, 0], "feat": [], "client": "future"})
        [err] = port.read_messages()
        assert err["code"] == ErrorCode.VERSION and err["det"] == {"peer": [2, 0],
                                                                    "local": [1, 0]}
        port.write(encode_frame(b"\x93\x01\x02\x03"))  # valid frame, not a map
        [err] = port.read_messages()
        assert err["code"] == ErrorCode.PROTOCOL
        port.write(encode_frame(msgpack.packb({"k": "req", "id": 1, "m": "x", "p": {}}) + b"\0"))
        [err] = port.read_messages()
        assert err["code"] == ErrorCode.PROTOCOL  # extra bytes after the message
        port.send({"k": "hello", "pv": [1, 0], "feat": ["heartbeat"], "client": "raw",
                   "contract": None})
        [welcome] = port.read_messages()
        assert welcome["k"] == "welcome" and welcome["pv"] == [1, 0]
        assert welcome["contract"] == CONTRACT and welcome["pub"] is None
        assert welcome["limits"] == {"max_message": 512, "max_frames": 1}
        port.send({"k": "hb", "n": 99})
        assert port.read_messages() == [{"k": "hb", "n": 99}]
        port.send({"k": "bye", "why": "done"})
        port.send({"k": "req", "id": 8, "m": "status", "p": {}})
        [err] = port.read_messages()
        assert (err["id"], err["code"]) == (8, ErrorCode.NO_SESSION)
    finally:
        port.close()


# --- through the client -------------------------------------------------------------------


async def test_handshake_and_describe(bare_firmware: Firmware) -> None:
    async with Client(f"serial://{bare_firmware.pty}?baudrate=115200", timeout=2,
                      contract=CONTRACT) as client:
        w = client.welcome
        assert w is not None
        assert (w.device, w.version, w.contract, w.pub) == ("tgen0", (1, 0), CONTRACT, None)
        assert w.limits["max_message"] == 512
        d = await client.describe()
        assert d["device"] == "tgen0" and d["protocol"] == [1, 0]
        assert d["contract"] == CONTRACT and d["clock_domain"] == DOMAIN
        assert d["capabilities"] == {"channels": 4, "delay_resolution": 10,
                                     "max_rate": 1000.0, "schedule_depth": 8, "features": []}
        assert [c["name"] for c in d["commands"]] == list(EXPECTED)
        for cmd in d["commands"]:
            got = [(p["name"], p["type"], p["unit"], p["required"], p.get("min"),
                    p.get("max"), p.get("choices"), p.get("default"))
                   for p in cmd["params"]]
            assert got == EXPECTED[cmd["name"]], cmd["name"]
            assert cmd["doc"] and cmd["returns"] and cmd["result"]
            # every entry is a valid qnhw contract definition, and describes identically
            spec = command_from_describe(cmd)
            for p, mine in zip(cmd["params"], spec.params, strict=True):
                assert mine.describe() == p
        [stream] = d["streams"]
        # "device": the device's clock_domain, as every stream of the C core
        assert (stream["name"], stream["clock_domain"]) == ("triggers", "device")
        assert [f["name"] for f in stream["fields"]] == ["count", "source", "mask"]
        ping = await client.ping()
        assert ping["domain"] == DOMAIN and ping["time_ps"] > 0


async def test_calls_and_typed_errors(bare_firmware: Firmware) -> None:
    async with Client(f"serial://{bare_firmware.pty}", timeout=2) as c:
        ch = await c.call("configure_channel", channel=1, delay=Quantity(5.004, "ns"),
                          width=Quantity(2, "us"), polarity="negative", enabled=False)
        assert ch == {"channel": 1, "delay": 5000, "width": 2_000_000, "polarity": "negative",
                      "enabled": False}
        # nil (and omitted) nullable parameters leave settings unchanged
        ch = await c.call("configure_channel", channel=1, delay=None, enabled=True)
        assert ch == {**ch, "delay": 5000, "width": 2_000_000, "enabled": True}
        assert await c.call("get_channel", channel=1) == ch
        assert await c.call("set_rate", rate=Quantity(0.25, "kHz")) == {
            "rate": 250.0, "period": 4_000_000_000}

        bad: list[tuple[str, dict[str, Any], str]] = [
            ("get_channel", {"channel": 4}, "above maximum 3"),
            ("get_channel", {"channel": -1}, "below minimum 0"),
            ("get_channel", {"channel": "1"}, "expected int, got str"),
            ("get_channel", {"channel": 1.0}, "expected int, got float"),
            ("get_channel", {"channel": True}, "expected int, got bool"),
            ("get_channel", {"channel": None}, "expected int, got NoneType"),
            ("get_channel", {}, "missing required parameter 'channel'"),
            ("get_channel", {"channel": 1, "chanel": 1}, "unknown parameter 'chanel'"),
            ("configure_channel", {"channel": 0, "polarity": "up"}, "must be one of"),
            ("configure_channel", {"channel": 0, "delay": Quantity(1, "V")},
             "cannot be converted"),
            ("configure_channel", {"channel": 0, "delay": Quantity(1.5, "ps")},
             "not a whole number"),
            ("configure_channel", {"channel": 0, "width": 1}, "below minimum 1000 ps"),
            ("set_rate", {"rate": 5000.0}, "above maximum 1000 Hz"),
            ("set_rate", {"rate": float("nan")}, "must be finite"),
            ("set_rate", {"rate": [1.0]}, "expected float, got list"),
            ("set_source", {"source": "laser"}, "must be one of"),
            ("schedule", {"at": Timestamp(10, "host")}, "clock domain 'host'"),
        ]
        for method, params, text in bad:
            with pytest.raises(BadParams) as info:
                await c.call(method, **params)
            assert text in info.value.message, (method, params, info.value.message)
            assert "param" in info.value.details
        with pytest.raises(UnknownCommand) as unknown:
            await c.call("launch_missiles")
        assert unknown.value.details == {"command": "launch_missiles"}
        with pytest.raises(UnknownCommand):
            await c.call("qnhw.reboot")

        with pytest.raises(Busy, match="not armed"):
            await c.call("fire")
        assert (await c.call("set_source", source="external")) == {"source": "external"}
        with pytest.raises(DeviceFault, match="external trigger input"):
            await c.call("arm")
        await c.call("set_source", source="software")
        armed = await c.call("arm", count=3)
        assert armed["armed"] is True
        with pytest.raises(Busy, match="already armed"):
            await c.call("arm")
        with pytest.raises(Busy, match="disarm before"):
            await c.call("set_source", source="internal")
        now = (await c.ping())["time_ps"]
        with pytest.raises(BadParams, match="in the past"):
            await c.call("schedule", at=now - 1)
        assert await c.call("schedule", at=Timestamp(now + 10**15, DOMAIN)) == {"pending": 1}
        fired = [await c.call("fire") for _ in range(3)]
        assert [f["count"] for f in fired] == [1, 2, 3]
        status = await c.call("status")
        assert status["armed"] is False and status["fired"] == 3 and status["pending"] == 0
        # a request too large for the device's 512-byte frames fails here, typed
        with pytest.raises(MessageTooLarge):
            await c.call("set_source", source="x" * 600)
        assert (await c.call("status"))["source"] == "software"


async def test_trigger_stream_timestamps(bare_firmware: Firmware) -> None:
    async with Client(f"serial://{bare_firmware.pty}", timeout=2) as c:
        await c.call("set_rate", rate=500.0)
        async with c.subscribe("triggers") as sub:
            start = (await c.call("arm"))["start"]
            events = []
            async with asyncio.timeout(5):
                async for ev in sub:
                    events.append(ev)
                    if len(events) == 20:
                        break
            fired = await c.call("fire")
            async with asyncio.timeout(5):
                async for ev in sub:
                    if ev.payload["source"] == "software":
                        soft = ev
                        break
        await c.call("disarm")
    assert [e.seq for e in events] == list(range(20))
    assert all(e.gap == 0 and not e.reset and e.domain == DOMAIN for e in events)
    assert [e.ts_ps for e in events] == [start + (i + 1) * 2_000_000_000 for i in range(20)]
    assert [e.payload for e in events] == [
        {"count": i + 1, "source": "internal", "mask": 15} for i in range(20)]
    assert events[0].timestamp == Timestamp(start + 2_000_000_000, DOMAIN)
    assert soft.ts_ps == fired["time"] and soft.payload["count"] == fired["count"]


async def test_typed_driver(bare_firmware: Firmware) -> None:
    """The TriggerGenerator driver on the serial line: its int-picosecond result times become
    Timestamps in the device's domain, like the event timestamps."""
    async with TriggerGenerator.connect(f"serial://{bare_firmware.pty}?baudrate=115200",
                                        timeout=2) as tg:
        assert (tg.device, tg.clock_domain) == ("tgen0", DOMAIN)
        assert tg.capabilities["delay_resolution"] == 10
        assert (await tg.configure_channel(3, delay=Quantity(1.234, "us")))["delay"] == 1_234_000
        await tg.set_source("software")
        async with tg.triggers(mode="lossless") as sub:
            armed = await tg.arm(count=2)
            fired = await tg.fire()
            at = fired["time"].ps + 20 * 10**9  # 20 ms: far beyond a pty round trip
            await tg.schedule(Timestamp(at, DOMAIN))
            events = [await asyncio.wait_for(anext(sub), 5) for _ in range(2)]
        assert armed["start"].domain == fired["time"].domain == DOMAIN
        assert armed["start"].ps <= fired["time"].ps
        assert [e.timestamp for e in events] == [fired["time"], Timestamp(at, DOMAIN)]
        assert (await tg.status())["armed"] is False  # count reached


async def test_lossless_stream_with_credit(bare_firmware: Firmware) -> None:
    async with Client(f"serial://{bare_firmware.pty}", timeout=2) as c:
        await c.call("set_rate", rate=1000.0)
        async with c.subscribe("triggers", mode="lossless", credit=4) as sub:
            await c.call("arm", count=40)
            seqs = []
            async with asyncio.timeout(5):
                async for ev in sub:
                    seqs.append(ev.seq)
                    if len(seqs) == 40:
                        break
        assert seqs == list(range(40))
        assert (await c.call("status"))["dropped"] == 0


async def test_line_noise_both_ways(bare_firmware: Firmware) -> None:
    rnd = random.Random(6)
    async with Client(f"serial://{bare_firmware.pty}", timeout=2) as c:
        raw = RawPort(bare_firmware.pty)
        try:
            for i in range(30):
                kind = i % 5
                if kind == 0:  # random bytes, zeros included
                    raw.write(rnd.randbytes(rnd.randint(1, 300)))
                elif kind == 1:  # a frame with a wrong checksum
                    frame = bytearray(encode_frame(msgpack.packb({"k": "hb", "n": 1})))
                    frame[3] ^= 0x40
                    raw.write(bytes(frame))
                elif kind == 2:  # a frame cut short
                    raw.write(encode_frame(msgpack.packb({"k": "hb", "n": 2}))[:5])
                elif kind == 3:  # an oversized frame: the device answers TOO_LARGE, keeps going
                    raw.write(encode_frame(rnd.randbytes(2000)))
                else:  # noise towards the host: random bytes and a cut frame from the device
                    bare_firmware.signal(signal.SIGUSR1)
                ch = await c.call("get_channel", channel=i % 4)
                assert ch["channel"] == i % 4
        finally:
            raw.close()
        assert link_of(c).stats.dropped >= 6  # the device's noise reached us and was dropped
        assert c.reconnects == 0
    assert bare_firmware.alive()


async def test_unplug_and_replug(firmware: Firmware) -> None:
    """Kill the firmware (the pty vanishes), start it again at the same symlink."""
    async with Client(firmware.address(), timeout=1, heartbeat=0.2) as c:
        await c.call("set_rate", rate=200.0)
        await c.call("arm")
        epoch = c.welcome.epoch if c.welcome else None
        async with c.subscribe("triggers") as sub:
            async with asyncio.timeout(5):
                first = await anext(sub)
            assert first.seq >= 0
            firmware.kill()
            with pytest.raises((ConnectionLost, DeadlineExceeded)):
                for _ in range(20):  # bounded: the loss is seen within a few calls
                    await c.call("status", timeout=0.5)
            async with asyncio.timeout(2):  # the loss is reported right after
                while c.state is ConnectionState.CONNECTED:
                    await asyncio.sleep(0.01)
            firmware.start()
            await wait_connected(c)
            assert c.reconnects >= 1 and c.welcome is not None and c.welcome.epoch != epoch
            assert (await c.call("status"))["armed"] is False  # a fresh device
            await c.call("set_rate", rate=200.0)
            await c.call("arm")
            async with asyncio.timeout(5):
                again = await anext(sub)  # the subscription was restored by itself
            assert again.reset and again.seq == 0
        await c.call("disarm")


async def test_mcu_reset_behind_a_live_port(firmware: Firmware) -> None:
    """The firmware loses its state (new epoch, no session) while the port stays open."""
    async with Client(firmware.address(), timeout=1) as c:
        epoch = c.welcome.epoch if c.welcome else None
        firmware.signal(signal.SIGUSR2)
        errors: list[QnhwError] = []
        result = None
        for _ in range(30):  # bounded: NO_SESSION, reconnect, then calls work again
            try:
                result = await c.call("status", timeout=1)
                if c.welcome is not None and c.welcome.epoch != epoch:
                    break
            except (NoSession, ConnectionLost, DeadlineExceeded) as exc:
                errors.append(exc)
            await asyncio.sleep(0.05)
        assert result is not None and c.welcome is not None and c.welcome.epoch != epoch
        assert c.reconnects >= 1
        assert all(not isinstance(e, DeadlineExceeded) for e in errors[:1])


async def test_random_bytes_leave_everything_working(bare_firmware: Firmware) -> None:
    rnd = random.Random(1234)
    async with Client(f"serial://{bare_firmware.pty}", timeout=2) as c:
        raw = RawPort(bare_firmware.pty)
        try:
            for _ in range(20):
                raw.write(rnd.randbytes(rnd.randint(1, 4000)))
                bare_firmware.signal(signal.SIGUSR1)
            for i in range(10):
                assert (await c.call("get_channel", channel=i % 4))["channel"] == i % 4
        finally:
            raw.close()
    assert bare_firmware.alive()
    assert os.path.exists(bare_firmware.pty)
