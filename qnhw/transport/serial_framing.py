"""Serial framing, sans-I/O: COBS-encoded, CRC-32-checked frames delimited by zero bytes.

One protocol message (the msgpack header with every array inline, see
:func:`qnhw.protocol.encode_message` with ``oob=False``) travels as one frame::

    0x00  COBS( payload || CRC-32(payload) as 4 bytes little-endian )  0x00

The CRC is IEEE 802.3 CRC-32 (:func:`zlib.crc32`: reflected polynomial 0xEDB88320, initial
value and final XOR 0xFFFFFFFF; check value 0xCBF43926 for ``b"123456789"``). COBS removes every
zero byte from the encoded block, so 0x00 marks frame boundaries only; a receiver that joins a
line mid-frame, or sees line noise, resynchronises at the next 0x00. Empty frames (two zero
bytes in a row) are ignored, which lets senders put a zero *before* each frame as well, so that
noise on an idle line never corrupts the next frame. The byte-level specification is in
``docs/serial.md``, "Serial framing"; the C implementation is ``firmware_stubs/src/qn_frame.c``.

Everything here is pure: functions over bytes and a :class:`FrameDecoder` that is fed chunks of
received bytes and returns whole payloads. Nothing blocks.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from qnhw.errors import MessageTooLarge, ProtocolError

#: Frame delimiter.
DELIMITER = 0
#: Bytes of CRC appended to each payload.
CRC_SIZE = 4
#: Default maximum payload (one encoded message) in bytes.
DEFAULT_MAX_PAYLOAD = 1024 * 1024

_DELIM = b"\x00"


def crc32(data: bytes | bytearray | memoryview) -> int:
    """IEEE 802.3 CRC-32 of ``data`` (same as :func:`zlib.crc32`)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_max_encoded(n: int) -> int:
    """Largest COBS encoding of ``n`` bytes: one code byte per 254 data bytes, plus one."""
    return n + n // 254 + 1


def cobs_encode(data: bytes | bytearray | memoryview) -> bytes:
    """COBS-encode ``data``; the result contains no zero byte (delimiter not included).

    A trailing run of exactly 254 non-zero bytes ends with its 0xFF block (no extra 0x01 code
    byte); :func:`cobs_decode` accepts both forms.
    """
    out = bytearray()
    chunks = bytes(data).split(_DELIM)
    last = len(chunks) - 1
    for i, chunk in enumerate(chunks):
        # a zero-terminated chunk becomes blocks of at most 254 bytes; the last carries the zero
        pos = 0
        n = len(chunk)
        while n - pos >= 254:
            out.append(0xFF)
            out += chunk[pos:pos + 254]
            pos += 254
        if pos < n or i < last or pos == 0:
            out.append(n - pos + 1)
            out += chunk[pos:]
    return bytes(out)


def cobs_decode(block: bytes | bytearray | memoryview) -> bytes:
    """Decode one COBS block (without delimiters). Raises :class:`ProtocolError` if malformed:
    a zero byte inside, or a code byte pointing past the end."""
    data = bytes(block)
    out = bytearray()
    pos = 0
    n = len(data)
    while pos < n:
        code = data[pos]
        if code == 0:
            raise ProtocolError("COBS block contains a zero byte")
        end = pos + code
        if end > n:
            raise ProtocolError("COBS code byte points past the end of the frame")
        chunk = data[pos + 1:end]
        if 0 in chunk:
            raise ProtocolError("COBS block contains a zero byte")
        out += chunk
        pos = end
        if code != 0xFF and pos < n:
            out.append(0)
    return bytes(out)


def encode_frame(payload: bytes | bytearray | memoryview, *, leading_delimiter: bool = True
                 ) -> bytes:
    """The wire bytes of one frame carrying ``payload``: [0x00] COBS(payload + CRC) 0x00."""
    body = bytes(payload)
    encoded = cobs_encode(body + crc32(body).to_bytes(CRC_SIZE, "little"))
    return (_DELIM if leading_delimiter else b"") + encoded + _DELIM


@dataclass
class FramingStats:
    """Counters of a :class:`FrameDecoder`: good frames and each kind of dropped input."""

    frames: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    oversized: int = 0
    short: int = 0

    @property
    def dropped(self) -> int:
        """Frames dropped for any reason."""
        return self.crc_errors + self.cobs_errors + self.oversized + self.short


class FrameDecoder:
    """Incremental frame decoder: feed it received bytes, get back whole, checked payloads.

    ``max_payload`` bounds one payload in bytes; longer input is discarded up to the next
    delimiter (counted in :attr:`stats`), so memory stays bounded whatever arrives. Corrupt
    frames (bad COBS, bad CRC, shorter than the CRC) are dropped and counted; decoding resumes
    at the next delimiter.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if max_payload < 1:
            raise ValueError("max_payload must be >= 1")
        self.max_payload = max_payload
        self._max_block = cobs_max_encoded(max_payload + CRC_SIZE)
        self._buf = bytearray()
        self._overflow = False
        self.stats = FramingStats()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held in the buffer."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial frame (e.g. after reopening the port)."""
        self._buf.clear()
        self._overflow = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Consume ``data``; return the payloads of the frames it completes, in order."""
        out: list[bytes] = []
        view = bytes(data)
        start = 0
        n = len(view)
        while start < n:
            end = view.find(_DELIM, start)
            if end < 0:
                self._append(view[start:])
                break
            self._append(view[start:end])
            payload = self._finish()
            if payload is not None:
                out.append(payload)
            start = end + 1
        return out

    def _append(self, chunk: bytes) -> None:
        if self._overflow or not chunk:
            return
        if len(self._buf) + len(chunk) > self._max_block:
            self._overflow = True
            self._buf.clear()
            return
        self._buf += chunk

    def _finish(self) -> bytes | None:
        """A delimiter arrived: check and return the frame's payload, or None."""
        if self._overflow:
            self._overflow = False
            self.stats.oversized += 1
            return None
        if not self._buf:
            return None  # empty frame: idle line or a leading delimiter
        block = bytes(self._buf)
        self._buf.clear()
        try:
            raw = cobs_decode(block)
        except ProtocolError:
            self.stats.cobs_errors += 1
            return None
        if len(raw) <= CRC_SIZE:
            self.stats.short += 1
            return None
        payload, trailer = raw[:-CRC_SIZE], raw[-CRC_SIZE:]
        if len(payload) > self.max_payload:
            self.stats.oversized += 1
            return None
        if crc32(payload) != int.from_bytes(trailer, "little"):
            self.stats.crc_errors += 1
            return None
        self.stats.frames += 1
        return payload


def check_payload_size(payload_len: int, limit: int, where: str) -> None:
    """Raise :class:`MessageTooLarge` when a payload of ``payload_len`` bytes exceeds ``limit``."""
    if payload_len > limit:
        raise MessageTooLarge(f"message of {payload_len} bytes exceeds the {limit}-byte frame "
                              f"limit of {where}", {"size": payload_len, "limit": limit})


__all__ = [
    "CRC_SIZE",
    "DEFAULT_MAX_PAYLOAD",
    "DELIMITER",
    "FrameDecoder",
    "FramingStats",
    "check_payload_size",
    "cobs_decode",
    "cobs_encode",
    "cobs_max_encoded",
    "crc32",
    "encode_frame",
]
