"""The serial link: protocol messages over a serial line (pyserial), framed and checksummed.

Addresses (all options are optional query parameters)::

    serial:///dev/ttyUSB0?baudrate=115200         a device path (note the third slash)
    serial://COM3?baudrate=9600                   a Windows port name
    serial:loop://                                any pyserial URL after "serial:"
    serial:socket://127.0.0.1:7777?baudrate=9600  (the URL keeps its own query options)

Link options: ``baudrate`` (default 115200), ``bytesize`` (5-8, default 8), ``parity`` (N, E, O,
M, S; default N), ``stopbits`` (1, 1.5, 2), ``rtscts``, ``xonxoff``, ``dsrdtr`` (0/1, default 0),
``exclusive`` (0/1, default 1: take an advisory lock on a device path), ``max_frame`` (largest
payload sent or accepted, bytes; default 1 MiB, lowered to the device's ``limits.max_message``
once its welcome arrives), ``max_pending`` (bytes queued for sending before :meth:`send` raises
:class:`Busy`; default 4 MiB) and ``poll`` (seconds between polls for ports without a file
descriptor; default 0.002). In the ``serial:URL`` form, any other query parameter is left in
the URL for pyserial (e.g. ``serial:loop://?logging=debug``).

Each message is one frame (:mod:`qnhw.transport.serial_framing`); arrays travel inline
(``oob = False``). Ports with a file descriptor (ttys, ptys, ``socket://``) are read and written
non-blocking from the event loop (``add_reader``/``add_writer``); others (``loop://``) are
polled from a loop timer every ``poll`` seconds, writing at most 1 KiB per poll. Nothing blocks
the loop except opening the port.

Loss: end of file, an I/O error (unplugged USB adapter, firmware process gone) or a failed
write closes the port and reports :class:`ConnectionLost` through ``on_lost`` (never from inside
:meth:`send`). The :class:`qnhw.runtime.Client` then opens a new link to the same address with
back-off (0.05 s doubling to 2 s) until the port exists again and the device answers ``hello``;
udev-style symlinks (``/dev/serial/by-id/...``) keep the address stable across replugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgpack
import serial

from qnhw.errors import BadParams, Busy, ConnectionLost, ProtocolError, QnhwError
from qnhw.log import get_logger
from qnhw.transport.link import LinkOptions, OnFrames, OnLost, register_link
from qnhw.transport.serial_framing import (
    DEFAULT_MAX_PAYLOAD,
    FrameDecoder,
    FramingStats,
    check_payload_size,
    encode_frame,
)

_PREFIX = "serial:"
_BOOL = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False}
_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD,
           "M": serial.PARITY_MARK, "S": serial.PARITY_SPACE}
_STOPBITS = {"1": serial.STOPBITS_ONE, "1.5": serial.STOPBITS_ONE_POINT_FIVE,
             "2": serial.STOPBITS_TWO}
_OPTIONS = frozenset({"baudrate", "bytesize", "parity", "stopbits", "rtscts", "xonxoff", "dsrdtr",
                      "exclusive", "max_frame", "max_pending", "poll"})
#: Bytes written per poll on ports without a file descriptor.
POLL_CHUNK = 1024
#: Largest payload inspected for the device's welcome (its frame limit).
_SNIFF_MAX = 65536


@dataclass(frozen=True)
class SerialAddress:
    """A parsed ``serial:`` address. ``port`` is a device path or a pyserial URL."""

    port: str
    is_url: bool
    baudrate: int = 115200
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False
    dsrdtr: bool = False
    exclusive: bool = True
    max_frame: int = DEFAULT_MAX_PAYLOAD
    max_pending: int = 4 * 1024 * 1024
    poll: float = 0.002


def _bad(address: str, why: str) -> BadParams:
    return BadParams(f"bad serial address {address!r}: {why}", {"address": address})


def _number(address: str, key: str, text: str, lo: float, hi: float, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise _bad(address, f"{key}={text!r} is not a number") from None
    if not lo <= value <= hi:
        raise _bad(address, f"{key}={text} is outside [{lo:g}, {hi:g}]")
    return value


def parse_serial_address(address: str) -> SerialAddress:
    """Parse a ``serial:`` address (see the module docstring). Raises :class:`BadParams`."""
    if not address.startswith(_PREFIX):
        raise _bad(address, "must start with 'serial:'")
    rest = address[len(_PREFIX):]
    if rest.startswith("//"):
        is_url = False
        target, _, query = rest[2:].partition("?")
    elif "://" in rest:
        is_url = True
        target, _, query = rest.partition("?")
    else:
        raise _bad(address, "use serial:///path/to/device or serial:<pyserial URL>")
    if not target:
        raise _bad(address, "no port given")
    opts: dict[str, Any] = {}
    passthrough: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _OPTIONS:
            if is_url:
                passthrough.append((key, value))
                continue
            raise _bad(address, f"unknown option {key!r} (known: {', '.join(sorted(_OPTIONS))})")
        if key == "baudrate":
            opts[key] = _number(address, key, value, 1, 2**31 - 1, int)
        elif key == "bytesize":
            opts[key] = _number(address, key, value, 5, 8, int)
        elif key == "parity":
            if value.upper() not in _PARITY:
                raise _bad(address, f"parity must be one of {', '.join(_PARITY)}")
            opts[key] = value.upper()
        elif key == "stopbits":
            if value not in _STOPBITS:
                raise _bad(address, "stopbits must be 1, 1.5 or 2")
            opts[key] = float(value)
        elif key in ("rtscts", "xonxoff", "dsrdtr", "exclusive"):
            if value.lower() not in _BOOL:
                raise _bad(address, f"{key} must be 0 or 1")
            opts[key] = _BOOL[value.lower()]
        elif key == "max_frame":
            opts[key] = _number(address, key, value, 16, 1 << 30, int)
        elif key == "max_pending":
            opts[key] = _number(address, key, value, 1024, 1 << 31, int)
        elif key == "poll":
            opts[key] = _number(address, key, value, 0.0001, 1.0, float)
    if passthrough:
        target = f"{target}?{urlencode(passthrough)}"
    return SerialAddress(target, is_url, **opts)


def open_port(addr: SerialAddress) -> Any:
    """Open the port of ``addr`` with non-blocking reads (``timeout=0``).

    Blocks only for the time the OS takes to open and configure the port. Raises
    :class:`ConnectionLost` when the port cannot be opened (missing, busy, refused).
    """
    kwargs: dict[str, Any] = {
        "baudrate": addr.baudrate, "bytesize": addr.bytesize, "parity": _PARITY[addr.parity],
        "stopbits": _STOPBITS[f"{addr.stopbits:g}"], "rtscts": addr.rtscts,
        "xonxoff": addr.xonxoff, "dsrdtr": addr.dsrdtr, "timeout": 0,
    }
    if not addr.is_url and addr.exclusive:
        kwargs["exclusive"] = True
    try:
        return serial.serial_for_url(addr.port, **kwargs)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise ConnectionLost(f"cannot open serial port {addr.port}: {exc}",
                             {"port": addr.port}) from None


def _fileno(port: Any) -> int | None:
    try:
        fd = port.fileno()
    except (AttributeError, OSError, ValueError, serial.SerialException):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class SerialLink:
    """A link over one serial port (see the module docstring for addresses and behaviour).

    :attr:`stats` counts good and dropped frames; :attr:`peer_max` is the device's frame limit
    once its welcome has been seen. Must be created on the event loop thread.
    """

    oob = False

    def __init__(self, address: str, on_frames: OnFrames, on_lost: OnLost,
                 options: LinkOptions) -> None:
        self.address = address
        self.config = parse_serial_address(address)
        if options.curve is not None:
            raise BadParams("CURVE encryption is not available on serial links",
                            {"address": address})
        self._on_frames = on_frames
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self.max_frame = min(self.config.max_frame, options.limits.max_message)
        self._decoder = FrameDecoder(self.max_frame)
        self.peer_max: int | None = None
        self._tx = bytearray()
        self._closed = False
        self._down = False
        self._writing = False
        self._timer: asyncio.TimerHandle | None = None
        self._reported_drops = 0
        self._last_drop_log = 0.0
        self._log = get_logger("serial", endpoint=address)
        self._port = open_port(self.config)
        self._fd = _fileno(self._port)
        try:
            if self._fd is not None:
                os.set_blocking(self._fd, False)
                self._loop.add_reader(self._fd, self._on_readable)
            else:
                self._timer = self._loop.call_later(self.config.poll, self._poll)
        except (OSError, ValueError) as exc:
            self._detach()
            raise ConnectionLost(f"cannot watch serial port {self.config.port}: {exc}") from None
        self._tx += b"\x00"  # terminate whatever noise the device's receiver holds
        self._flush()
        self._log.debug("serial port open", port=self.config.port,
                        baudrate=self.config.baudrate, polled=self._fd is None)

    @property
    def stats(self) -> FramingStats:
        """Frame counters of the receiving side."""
        return self._decoder.stats

    @property
    def limit(self) -> int:
        """Largest payload :meth:`send` accepts now, in bytes."""
        return self.max_frame if self.peer_max is None else min(self.max_frame, self.peer_max)

    # --- sending ---------------------------------------------------------------------------

    def send(self, frames: Sequence[Any]) -> None:
        """Queue one message (a single frame) without blocking.

        Raises :class:`ConnectionLost` when the port is closed or lost, :class:`Busy` when more
        than ``max_pending`` bytes wait to be written, :class:`MessageTooLarge` when the message
        exceeds :attr:`limit`.
        """
        if self._closed or self._down:
            raise ConnectionLost(f"serial port {self.config.port} is not open")
        if len(frames) != 1:
            raise ProtocolError("a serial link carries one frame per message (arrays inline)")
        payload = frames[0]
        check_payload_size(len(payload), self.limit, f"serial port {self.config.port}")
        if len(self._tx) > self.config.max_pending:
            raise Busy(f"{len(self._tx)} bytes wait to be written to {self.config.port}")
        self._tx += encode_frame(payload)
        self._flush()
        if self._down:
            raise ConnectionLost(f"serial port {self.config.port} failed while writing")

    def _flush(self) -> None:
        if self._fd is None or self._down or self._closed:
            return  # the poll timer writes
        while self._tx:
            try:
                n = os.write(self._fd, self._tx)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._fail(f"write failed: {exc}")
                return
            if n <= 0:
                break
            del self._tx[:n]
        if self._tx and not self._writing:
            self._loop.add_writer(self._fd, self._flush)
            self._writing = True
        elif not self._tx and self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False

    # --- receiving -------------------------------------------------------------------------

    def _on_readable(self) -> None:
        if self._fd is None or self._closed or self._down:
            return
        try:
            data = os.read(self._fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(f"read failed: {exc}")
            return
        if not data:
            self._fail("end of file (device unplugged or closed)")
            return
        self._receive(data)

    def _poll(self) -> None:
        self._timer = None
        if self._closed or self._down:
            return
        try:
            waiting = self._port.in_waiting
            data = self._port.read(waiting) if waiting else b""
            if self._tx:
                chunk = bytes(self._tx[:POLL_CHUNK])
                written = self._port.write(chunk)
                del self._tx[:len(chunk) if written is None else written]
        except (serial.SerialException, OSError) as exc:
            self._fail(f"I/O error: {exc}")
            return
        if data:
            self._receive(data)
        if not (self._closed or self._down):
            self._timer = self._loop.call_later(self.config.poll, self._poll)

    def _receive(self, data: bytes) -> None:
        for payload in self._decoder.feed(data):
            if self._closed or self._down:
                return
            if self.peer_max is None and len(payload) <= _SNIFF_MAX:
                self._sniff_welcome(payload)
            self._on_frames([payload])
        dropped = self._decoder.stats.dropped
        if dropped > self._reported_drops:
            now = time.monotonic()
            if now - self._last_drop_log >= 1.0:
                s = self._decoder.stats
                self._log.warning("dropped corrupt serial frames", new=dropped
                                  - self._reported_drops, crc=s.crc_errors, cobs=s.cobs_errors,
                                  oversized=s.oversized, short=s.short)
                self._reported_drops = dropped
                self._last_drop_log = now

    def _sniff_welcome(self, payload: bytes) -> None:
        """Learn the device's frame limit from its welcome (``limits.max_message``)."""
        try:
            msg = msgpack.unpackb(payload, raw=False, strict_map_key=False,
                                  ext_hook=lambda code, data: None)
        except Exception:
            return
        if type(msg) is not dict or msg.get("k") != "welcome":
            return
        limits = msg.get("limits")
        mm = limits.get("max_message") if type(limits) is dict else None
        if type(mm) is int and mm > 0:
            self.peer_max = mm

    # --- loss and close --------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        if self._closed or self._down:
            return
        self._down = True
        self._detach()
        self._log.warning("serial port lost", port=self.config.port, reason=reason)
        err = ConnectionLost(f"serial port {self.config.port} lost: {reason}",
                             {"port": self.config.port})
        self._loop.call_soon(self._report_lost, err)

    def _report_lost(self, err: QnhwError) -> None:
        if not self._closed:
            self._on_lost(err)

    def _detach(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
            if self._writing:
                with contextlib.suppress(Exception):
                    self._loop.remove_writer(self._fd)
                self._writing = False
        with contextlib.suppress(Exception):
            self._port.close()
        self._tx.clear()

    def close(self) -> None:
        """Close the port; idempotent. Unsent bytes are discarded; no callback fires after."""
        if self._closed:
            return
        self._closed = True
        if not self._down:
            self._detach()


def _factory(address: str, on_frames: OnFrames, on_lost: OnLost,
             options: LinkOptions) -> SerialLink:
    return SerialLink(address, on_frames, on_lost, options)


register_link("serial", _factory)

__all__ = ["POLL_CHUNK", "SerialAddress", "SerialLink", "open_port", "parse_serial_address"]
