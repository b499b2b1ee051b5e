"""The serial link on its own: addresses, ptys made here, pyserial's loop://, loss, limits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import tty
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from qnhw.errors import BadParams, Busy, ConnectionLost, MessageTooLarge, QnhwError
from qnhw.runtime import Client
from qnhw.transport.link import LinkOptions, open_link
from qnhw.transport.serial_framing import FrameDecoder, encode_frame
from qnhw.transport.serial_link import SerialLink, parse_serial_address


def test_parse_device_path() -> None:
    a = parse_serial_address("serial:///dev/ttyUSB0?baudrate=9600&parity=e&stopbits=2&rtscts=1")
    assert (a.port, a.is_url, a.baudrate, a.parity, a.stopbits, a.rtscts) == (
        "/dev/ttyUSB0", False, 9600, "E", 2.0, True)
    b = parse_serial_address("serial://COM3")
    assert (b.port, b.baudrate, b.exclusive) == ("COM3", 115200, True)


def test_parse_pyserial_url_keeps_its_own_options() -> None:
    a = parse_serial_address("serial:loop://?logging=debug&baudrate=57600&max_frame=256")
    assert (a.port, a.is_url, a.baudrate, a.max_frame) == (
        "loop://?logging=debug", True, 57600, 256)
    assert parse_serial_address("serial:socket://127.0.0.1:7777").port == (
        "socket://127.0.0.1:7777")


@pytest.mark.parametrize("bad", [
    "serial:", "serial://", "serial:/dev/ttyUSB0", "serial:///dev/x?baudrate=fast",
    "serial:///dev/x?bogus=1", "serial:///dev/x?parity=Q", "serial:///dev/x?bytesize=9",
    "serial:///dev/x?max_frame=1", "tcp://127.0.0.1:5"])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(BadParams):
        parse_serial_address(bad)


class Collector:
    """on_frames / on_lost callbacks that a test can await."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.lost: list[QnhwError] = []
        self.event = asyncio.Event()

    def on_frames(self, frames: list[Any]) -> None:
        self.frames.append(bytes(frames[0]))
        self.event.set()

    def on_lost(self, err: QnhwError) -> None:
        self.lost.append(err)
        self.event.set()

    async def wait(self, cond: Any, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while not cond():
                self.event.clear()
                await self.event.wait()


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """(master fd, slave path) of a raw pty made here; the test plays the device."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        yield master, path
    finally:
        with contextlib.suppress(OSError):
            os.close(master)


def read_master(master: int, timeout: float = 2.0) -> bytes:
    ready, _, _ = select.select([master], [], [], timeout)
    return os.read(master, 65536) if ready else b""


async def test_loop_url_echo_through_polling() -> None:
    c = Collector()
    link = open_link("serial:loop://?poll=0.001", c.on_frames, c.on_lost, LinkOptions())
    assert isinstance(link, SerialLink) and link.oob is False
    try:
        link.send([b"\x81\xa1k\xa2hb"])
        await c.wait(lambda: len(c.frames) == 1)
        link._port.write(b"line noise \xff\xfe")  # into the loopback: read back and dropped
        link.send([b"second"])
        await c.wait(lambda: len(c.frames) == 2)
        assert c.frames == [b"\x81\xa1k\xa2hb", b"second"]
        assert link.stats.dropped >= 1 and not c.lost
    finally:
        link.close()
        link.close()  # idempotent


async def test_pty_link_reads_writes_and_reports_loss(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    c = Collector()
    link = open_link(f"serial://{path}?baudrate=115200", c.on_frames, c.on_lost, LinkOptions())
    try:
        assert read_master(master) == b"\x00"  # the link's opening delimiter
        link.send([b"hello device"])
        assert FrameDecoder().feed(read_master(master)) == [b"hello device"]
        os.write(master, b"\x17garbage" + encode_frame(b"to host") + encode_frame(b"x")[:4])
        await c.wait(lambda: len(c.frames) == 1)
        assert c.frames == [b"to host"]
        os.close(master)  # the device goes away
        await c.wait(lambda: bool(c.lost))
        assert isinstance(c.lost[0], ConnectionLost)
        with pytest.raises(ConnectionLost):
            link.send([b"too late"])
    finally:
        link.close()


async def test_link_learns_the_device_frame_limit(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    c = Collector()
    link = open_link(f"serial://{path}?max_frame=4096", c.on_frames, c.on_lost, LinkOptions())
    try:
        assert isinstance(link, SerialLink) and link.limit == 4096
        link.send([b"y" * 1000])
        welcome = {"k": "welcome", "limits": {"max_message": 100}}
        os.write(master, encode_frame(msgpack.packb(welcome)))
        await c.wait(lambda: len(c.frames) == 1)
        assert link.limit == 100
        with pytest.raises(MessageTooLarge):
            link.send([b"y" * 101])
        link.send([b"y" * 100])
    finally:
        link.close()


async def test_link_never_blocks_when_nobody_reads(pty_pair: tuple[int, str]) -> None:
    _master, path = pty_pair
    c = Collector()
    link = open_link(f"serial://{path}?max_pending=65536", c.on_frames, c.on_lost,
                     LinkOptions())
    try:
        with pytest.raises(Busy):
            for _ in range(10_000):  # the pty buffer fills, then the link's own queue
                link.send([b"z" * 1000])
    finally:
        link.close()


async def test_missing_port_is_connection_lost(tmp_path: Any) -> None:
    c = Collector()
    with pytest.raises(ConnectionLost):
        open_link(f"serial://{tmp_path}/nothing", c.on_frames, c.on_lost, LinkOptions())
    client = Client(f"serial://{tmp_path}/nothing", connect_timeout=0.5)
    with pytest.raises(ConnectionLost):
        await client.connect()
    await client.close()


async def test_link_rejects_multi_frame_messages(pty_pair: tuple[int, str]) -> None:
    _master, path = pty_pair
    c = Collector()
    link = open_link(f"serial://{path}", c.on_frames, c.on_lost, LinkOptions())
    try:
        with pytest.raises(QnhwError):
            link.send([b"header", b"array frame"])
    finally:
        link.close()
