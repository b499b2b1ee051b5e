"""Property tests: valid messages round-trip; hostile bytes raise ProtocolError and nothing else."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qnhw.errors import ProtocolError
from qnhw.protocol import (
    ErrorReply,
    Event,
    Quantity,
    Reply,
    Request,
    Timestamp,
    decode_message,
    encode_message,
)

names = st.text(min_size=1, max_size=40)
i64 = st.integers(-(2**63), 2**63 - 1)
arrays = hnp.arrays(
    dtype=st.sampled_from(["?", "i1", "i4", "i8", "u2", "u8", "f4", "f8", "c16"]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=40),
)
scalars = (st.none() | st.booleans() | i64 | st.floats(allow_nan=False) | st.text(max_size=50)
           | st.binary(max_size=50) | st.complex_numbers(allow_nan=False)
           | st.builds(Timestamp, i64, names)
           | st.builds(Quantity, st.floats(allow_nan=False, allow_infinity=False), st.text()))
values = st.recursive(scalars | arrays, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=20)
ids = st.integers(1, 2**64 - 1)

messages = st.one_of(
    st.builds(Request, ids, names, st.dictionaries(st.text(max_size=10), values, max_size=4),
              st.none() | st.integers(0, 2**40)),
    st.builds(Reply, ids, values),
    st.builds(ErrorReply, st.none() | ids, st.integers(0, 100), st.text(max_size=100),
              st.dictionaries(st.text(max_size=10), values, max_size=3)),
    st.builds(Event, names, st.integers(0, 2**63), i64, names, values),
)


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list) and len(a) == len(b) and all(map(equal, a, b))
    if hasattr(a, "__slots__") and type(a) is type(b) and not isinstance(a, Timestamp | Quantity):
        return all(equal(getattr(a, f), getattr(b, f)) for f in a.__slots__)
    return bool(a == b) and type(a) is type(b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.booleans())
def test_valid_messages_round_trip(msg: Any, oob: bool) -> None:
    frames = encode_message(msg, oob=oob)
    assert equal(msg, decode_message([bytes(f) for f in frames]))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=3))
def test_random_bytes_only_raise_protocol_error(frames: list[bytes]) -> None:
    try:
        decode_message(frames)
    except ProtocolError:
        pass


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.data())
def test_mutated_messages_only_raise_protocol_error(msg: Any, data: st.DataObject) -> None:
    frames = [bytearray(f) for f in encode_message(msg)]
    index = data.draw(st.integers(0, len(frames) - 1))
    frame = frames[index]
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(len(frame) - 1, 0)))
        if op == "flip" and frame:
            frame[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del frame[pos:]
        else:
            frame[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        decode_message([bytes(f) for f in frames])
    except ProtocolError:
        pass
