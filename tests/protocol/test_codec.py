"""Codec over bytes alone: extension types, strictness, limits. No sockets."""

from __future__ import annotations

import datetime as dt
import struct

import msgpack
import numpy as np
import pytest

from qnhw.errors import MessageTooLarge, ProtocolError
from qnhw.protocol import Limits, Quantity, Timestamp, pack, unpack
from qnhw.protocol.codec import OOB_THRESHOLD, Ext


@pytest.mark.parametrize("dtype", ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2",
                                   "f4", "f8", "c8", "c16", ">i4", ">f8"])
def test_array_round_trip_every_dtype(dtype: str) -> None:
    arr = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    out = unpack(pack({"a": arr}))["a"]
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_non_contiguous_and_empty_arrays() -> None:
    arr = np.arange(20, dtype=np.int64).reshape(4, 5)[:, ::2]
    np.testing.assert_array_equal(unpack(pack(arr)), arr)
    empty = np.zeros((0, 3), dtype=np.float32)
    out = unpack(pack(empty))
    assert out.shape == (0, 3) and out.dtype == np.float32


def test_inline_array_layout_is_as_documented() -> None:
    arr = np.array([1, 2], dtype="<i4")
    ext = msgpack.unpackb(pack(arr))
    assert ext.code == Ext.NDARRAY
    assert msgpack.unpackb(ext.data) == ["<i4", [2], arr.tobytes()]


def test_large_array_goes_out_of_band_zero_copy() -> None:
    arr = np.arange(OOB_THRESHOLD, dtype=np.int64)
    frames: list = []
    header = pack({"tags": arr}, frames)
    assert len(frames) == 1 and len(header) < 100
    ext = msgpack.unpackb(header)["tags"]
    assert ext.code == Ext.NDARRAY_OOB
    assert msgpack.unpackb(ext.data) == ["<i8", [OOB_THRESHOLD], 1]
    buf = bytearray(frames[0])
    out = unpack(header, [header, buf])["tags"]
    np.testing.assert_array_equal(out, arr)
    buf[0] = 99  # decoded array is a view on the received buffer: no copy
    assert out[0] == 99


def test_scalars_complex_timestamp_quantity_datetime() -> None:
    when = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    value = {"c": 1.5 - 2j, "t": Timestamp(123_456_789_000, "node-a"), "q": Quantity(5, "us"),
             "d": when, "np": [np.int64(3), np.float32(0.5), np.bool_(True)], "tup": (1, 2)}
    out = unpack(pack(value))
    assert out["c"] == 1.5 - 2j
    assert out["t"] == Timestamp(123_456_789_000, "node-a")
    assert out["q"] == Quantity(5, "us")
    assert out["d"] == when
    assert out["np"] == [3, 0.5, True] and type(out["np"][0]) is int
    assert out["tup"] == [1, 2]


def test_complex_layout() -> None:
    ext = msgpack.unpackb(pack(1.0 + 2.0j))
    assert ext.code == Ext.COMPLEX and ext.data == struct.pack("<dd", 1.0, 2.0)


@pytest.mark.parametrize("value", [object(), np.array([object()]), np.array(["a", "b"]),
                                   np.zeros(2, dtype=[("x", "i4")]), {1, object()},
                                   dt.datetime(2026, 1, 1)])
def test_unencodable_values_raise_protocol_error(value: object) -> None:
    with pytest.raises(ProtocolError):
        pack(value)


def ext(code: int, payload: bytes) -> bytes:
    return msgpack.packb(msgpack.ExtType(code, payload))


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"\xc1", "reserved byte"),
    (b"\x92\x01", "truncated"),
    (msgpack.packb({1: 2}), "int key"),
    (msgpack.packb({b"k": 1}, use_bin_type=True), "bytes key"),
    (msgpack.packb({"a": {(1).to_bytes(1, "big"): 1}}, use_bin_type=True), "nested bytes key"),
    (msgpack.packb([1]) + b"\x01", "trailing data"),
    (b"\x91" * 40 + b"\x90", "too deep"),
    (b"\x91" * 5000 + b"\x90", "far too deep"),
    (ext(42, b"x"), "unknown ext"),
    (ext(Ext.NDARRAY, msgpack.packb(["|O", [1], b"\0" * 8])), "object dtype"),
    (ext(Ext.NDARRAY, msgpack.packb(["<U4", [1], b"\0" * 16])), "str dtype"),
    (ext(Ext.NDARRAY, msgpack.packb(["<i8", [3], b"\0" * 8])), "size mismatch"),
    (ext(Ext.NDARRAY, msgpack.packb(["<i8", [-1], b""])), "negative dim"),
    (ext(Ext.NDARRAY, msgpack.packb(["<i8", [1] * 40, b"\0" * 8])), "too many dims"),
    (ext(Ext.NDARRAY, msgpack.packb(["<i8", [1]])), "short array ext"),
    (ext(Ext.NDARRAY, b"\xc1"), "garbage array ext"),
    (ext(Ext.NDARRAY_OOB, msgpack.packb(["<i8", [1], 1])), "missing frame"),
    (ext(Ext.COMPLEX, b"\0" * 15), "short complex"),
    (ext(Ext.TIMESTAMP, msgpack.packb([1.5, "d"])), "float ps"),
    (ext(Ext.TIMESTAMP, msgpack.packb([1, ""])), "empty domain"),
    (ext(Ext.QUANTITY, msgpack.packb(["5", "s"])), "str quantity"),
    (b"\xc7\x03\xff\0\0\0", "bad msgpack timestamp"),
    (b"\xd9\x02\xff\xfe", "invalid utf-8"),
])
def test_malformed_input_raises_protocol_error_only(data: bytes, why: str) -> None:
    with pytest.raises(ProtocolError):
        unpack(data)


def test_unreferenced_and_reused_frames_are_rejected() -> None:
    header = msgpack.packb([ext_obj(Ext.NDARRAY_OOB, ["<i8", [1], 1])] * 2)
    with pytest.raises(ProtocolError, match="reused"):
        unpack(header, [header, b"\0" * 8])
    single = msgpack.packb({"a": 1})
    with pytest.raises(ProtocolError, match="extra frames"):
        unpack(single, [single, b"junk"])


def ext_obj(code: int, parts: list) -> msgpack.ExtType:
    return msgpack.ExtType(code, msgpack.packb(parts))


def test_limits_bound_sizes() -> None:
    small = Limits(max_message=1000, max_str=10, max_items=5)
    with pytest.raises(MessageTooLarge):
        unpack(b"\x90" + b"\0" * 2000, limits=small)
    with pytest.raises(ProtocolError):
        unpack(msgpack.packb("x" * 11), limits=small)
    with pytest.raises(ProtocolError):
        unpack(msgpack.packb(list(range(6))), limits=small)
    assert unpack(msgpack.packb(list(range(5))), limits=small) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("innermost", [[], [1], {}, {"x": 1}])
def test_nesting_limit_is_exact(innermost: object) -> None:
    """max_depth levels of containers decode; one more is refused, whatever the innermost is."""
    limits = Limits(max_depth=6)

    def nested(levels: int) -> object:
        value = innermost  # one level itself
        for i in range(levels - 1):
            value = [value] if i % 2 else {"k": value}
        return value

    assert unpack(msgpack.packb(nested(6)), (), limits) == nested(6)
    with pytest.raises(ProtocolError, match="deeper than 6"):
        unpack(msgpack.packb(nested(7)), (), limits)
