"""Serial framing (sans-I/O): COBS, CRC-32, and the resynchronising frame decoder."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnhw.errors import MessageTooLarge, ProtocolError
from qnhw.transport.serial_framing import (
    FrameDecoder,
    check_payload_size,
    cobs_decode,
    cobs_encode,
    cobs_max_encoded,
    crc32,
    encode_frame,
)

# the same vectors as firmware_stubs/tests/test_units.c
COBS_VECTORS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (b"\x00" + bytes(range(1, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
]
# the C encoder's frame for {"k": "hb"} (firmware_stubs/tests/test_units.c, py_frame)
HB_PAYLOAD = bytes([0x81, 0xA1, 0x6B, 0xA2, 0x68, 0x62])
HB_FRAME = bytes([0x00, 0x0B, 0x81, 0xA1, 0x6B, 0xA2, 0x68, 0x62, 0x2F, 0xC8, 0x2A, 0x11, 0x00])


def test_crc32_check_value() -> None:
    assert crc32(b"123456789") == 0xCBF43926
    assert crc32(b"") == 0


@pytest.mark.parametrize(("raw", "encoded"), COBS_VECTORS)
def test_cobs_vectors(raw: bytes, encoded: bytes) -> None:
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


def test_cobs_accepts_trailing_code_after_full_block() -> None:
    assert cobs_decode(b"\xff" + bytes(range(1, 255)) + b"\x01") == bytes(range(1, 255))


@pytest.mark.parametrize("bad", [b"\x05\x11\x22", b"\x03\x11\x00", b"\x00", b"\x02"])
def test_cobs_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        cobs_decode(bad)


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_cobs_round_trip(data: bytes) -> None:
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= cobs_max_encoded(len(data))
    assert cobs_decode(enc) == data


def test_frame_bytes_match_the_c_encoder() -> None:
    assert encode_frame(HB_PAYLOAD) == HB_FRAME
    assert encode_frame(HB_PAYLOAD, leading_delimiter=False) == HB_FRAME[1:]
    assert FrameDecoder().feed(HB_FRAME) == [HB_PAYLOAD]


def test_decoder_byte_by_byte_and_resync() -> None:
    dec = FrameDecoder(64)
    out = []
    stream = (b"\x13\x37\xff" + HB_FRAME + HB_FRAME[:7] + HB_FRAME + b"\x00\x00"
              + b"\x01\x02\x03" + HB_FRAME)
    for b in stream:
        out += dec.feed(bytes([b]))
    assert out == [HB_PAYLOAD] * 3
    assert dec.stats.frames == 3
    assert dec.stats.dropped == 3  # the garbage, the cut frame, the second garbage


def test_decoder_drops_bad_crc_and_short_frames() -> None:
    dec = FrameDecoder()
    bad = bytearray(HB_FRAME)
    bad[4] ^= 0x01
    assert dec.feed(bytes(bad)) == []
    assert dec.stats.crc_errors == 1
    assert dec.feed(b"\x00\x03\x11\x22\x00") == []
    assert dec.stats.short == 1
    assert dec.feed(HB_FRAME) == [HB_PAYLOAD]


def test_decoder_bounds_oversized_input() -> None:
    dec = FrameDecoder(100)
    assert dec.feed(encode_frame(b"\x55" * 101)) == []
    assert dec.stats.oversized == 1
    # megabytes without a delimiter never grow the buffer past one frame
    for _ in range(40):
        assert dec.feed(b"\x55" * 250_000) == []
        assert dec.pending <= cobs_max_encoded(104)
    assert dec.feed(b"\x00" + encode_frame(b"\x55" * 100)) == [b"\x55" * 100]
    assert dec.stats.oversized == 2


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8),
       st.lists(st.binary(max_size=40), min_size=9, max_size=9), st.randoms())
@settings(max_examples=150, deadline=None)
def test_frames_survive_noise_between_them(payloads: list[bytes], noise: list[bytes],
                                           rnd: random.Random) -> None:
    wire = bytearray()
    for i, p in enumerate(payloads):
        wire += noise[i] + encode_frame(p)
    wire += noise[-1]
    dec = FrameDecoder(400)
    out: list[bytes] = []
    pos = 0
    while pos < len(wire):  # random chunking
        n = rnd.randint(1, 64)
        out += dec.feed(bytes(wire[pos:pos + n]))
        pos += n
    assert out == payloads


def test_check_payload_size() -> None:
    check_payload_size(10, 10, "x")
    with pytest.raises(MessageTooLarge):
        check_payload_size(11, 10, "x")
