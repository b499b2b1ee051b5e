"""Message encode/decode and field validation, over frames alone."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from qnhw.errors import ErrorCode, MessageTooLarge, ProtocolError, VersionMismatch
from qnhw.protocol import (
    Cancel,
    Credit,
    ErrorReply,
    Event,
    Goodbye,
    Heartbeat,
    Hello,
    Limits,
    Reply,
    Request,
    Welcome,
    decode_message,
    encode_message,
)
from qnhw.protocol.version import PROTOCOL_VERSION, check_compatible

MESSAGES = [
    Hello((1, 0), ["oob-arrays"], "script", {"name": "QuantumMemory", "version": "1.0"}),
    Hello((1, 3)),
    Welcome((1, 0), ["x"], "mem0", 42, 0.5, None, "tcp://127.0.0.1:5602", {"max_message": 10}),
    Request(1, "initialize", {"qubit": 0}, 1_000_000),
    Request(2**64 - 1, "m", {}, None),
    Reply(7, {"counts": {"00": 3}}),
    Reply(8, None),
    ErrorReply(9, int(ErrorCode.BAD_PARAMS), "qubit out of range", {"param": "qubit"}),
    ErrorReply(None, int(ErrorCode.NO_SESSION), "hello first", {}),
    Event("tags", 5, -12, "node-a", {"t": [1, 2]}),
    Heartbeat(3),
    Goodbye("bye"),
    Cancel(11),
    Credit("tags", 64),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: object) -> None:
    frames = encode_message(msg)  # type: ignore[arg-type]
    assert decode_message(frames) == msg
    assert decode_message(encode_message(msg, oob=False)) == msg  # type: ignore[arg-type]


def test_event_with_large_array_uses_frames() -> None:
    tags = np.arange(100_000, dtype=np.int64)
    frames = encode_message(Event("tags", 0, 0, "d", tags))
    assert len(frames) == 2 and len(frames[1]) == tags.nbytes
    out = decode_message([bytes(f) for f in frames])
    assert isinstance(out, Event)
    np.testing.assert_array_equal(out.payload, tags)
    inline = encode_message(Event("tags", 0, 0, "d", tags), oob=False)
    assert len(inline) == 1


def raw(d: object) -> list[bytes]:
    return [msgpack.packb(d)]


@pytest.mark.parametrize("wire", [
    [1, 2],
    {"k": "nope"},
    {"id": 1},
    {"k": "req", "id": 0, "m": "x", "p": {}},
    {"k": "req", "id": -1, "m": "x", "p": {}},
    {"k": "req", "id": 1.0, "m": "x", "p": {}},
    {"k": "req", "id": True, "m": "x", "p": {}},
    {"k": "req", "id": 1, "m": "", "p": {}},
    {"k": "req", "id": 1, "m": "x" * 300, "p": {}},
    {"k": "req", "id": 1, "m": "x", "p": []},
    {"k": "req", "id": 1, "m": "x"},
    {"k": "req", "id": 1, "m": "x", "p": {}, "dl": -5},
    {"k": "req", "id": 1, "m": "x", "p": {}, "dl": 1.5},
    {"k": "req", "id": 1, "m": 7, "p": {}},
    {"k": "req", "id": 1, "m": "x", "p": {}, "dl": True},
    {"k": "rep", "id": 1},
    {"k": "rep", "id": True, "r": 1},
    {"k": "rep", "id": 0, "r": 1},
    {"k": "rep", "id": -3, "r": 1},
    {"k": "ev", "s": "t", "seq": -1, "ts": 0, "cd": "d", "p": 1},
    {"k": "ev", "s": "t", "seq": 0, "ts": 2**63, "cd": "d", "p": 1},
    {"k": "ev", "s": "t", "seq": 0, "ts": 0, "cd": "", "p": 1},
    {"k": "err", "id": 1, "code": "bad", "msg": "x"},
    {"k": "err", "id": 0, "code": 1, "msg": "x"},
    {"k": "hello", "pv": [1]},
    {"k": "hello", "pv": ["1", 0]},
    {"k": "hello", "pv": [1, 0], "feat": [1]},
    {"k": "hello", "pv": [1, 0], "contract": {"name": "x"}},
    {"k": "welcome", "pv": [1, 0], "device": "d", "epoch": 1, "hb": 0},
    {"k": "welcome", "pv": [1, 0], "device": "d", "epoch": 1, "hb": 1, "pub": 5},
    {"k": "credit", "s": "t", "n": 0},
    {"k": "cancel", "id": "1"},
])
def test_invalid_fields_raise_protocol_error(wire: object) -> None:
    with pytest.raises(ProtocolError):
        decode_message(raw(wire))


def test_frame_limits() -> None:
    with pytest.raises(ProtocolError):
        decode_message([])
    with pytest.raises(MessageTooLarge):
        decode_message([b"\x80"] * 300)
    big = encode_message(Request(1, "x", {"blob": b"\0" * 5000}))
    with pytest.raises(MessageTooLarge):
        decode_message(big, Limits(max_message=4096))


def test_version_negotiation() -> None:
    check_compatible((PROTOCOL_VERSION[0], PROTOCOL_VERSION[1] + 7))
    with pytest.raises(VersionMismatch) as info:
        check_compatible((PROTOCOL_VERSION[0] + 1, 0))
    assert info.value.code == ErrorCode.VERSION
