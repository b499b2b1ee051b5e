"""msgpack codec with the protocol's extension types; strict, bounded decoding.

Extension types (byte layouts in docs/protocol.md, "Extension types"):

====  ===============  ==========================================================
code  Python value     ext payload
====  ===============  ==========================================================
1     numpy.ndarray    msgpack ``[dtype: str, shape: [int], data: bin]`` (inline)
2     numpy.ndarray    msgpack ``[dtype: str, shape: [int], frame: int]`` (out of band)
3     complex          16 bytes: real, imag as little-endian IEEE-754 float64
4     Timestamp        msgpack ``[ps: int, domain: str]``
5     Quantity         msgpack ``[value: int | float, unit: str]``
-1    datetime         msgpack's standard timestamp extension (UTC)
====  ===============  ==========================================================

Decoded arrays are read-only views on the received buffers (zero-copy); copy to modify.
No pickle, ever: anything else fails with :class:`ProtocolError`.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Sequence
from enum import IntEnum
from itertools import compress
from typing import Any

import msgpack
import numpy as np

from qnhw.errors import MessageTooLarge, ProtocolError, QnhwError
from qnhw.protocol.limits import DEFAULT_LIMITS, Limits
from qnhw.protocol.types import Quantity, Timestamp

Buffer = bytes | bytearray | memoryview

#: Arrays of at least this many bytes travel as separate frames when the transport has frames.
OOB_THRESHOLD = 4096

_COMPLEX = struct.Struct("<dd")
_DTYPE_CODES = ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8",
                "c16")
#: Every dtype string a peer may send, mapped to its numpy dtype (no parsing of peer input).
_DTYPES: dict[str, np.dtype[Any]] = {
    order + code: np.dtype(order + code if code != "b1" else "?")
    for order in ("", "<", ">", "|", "=") for code in _DTYPE_CODES
}
_ALLOWED_KINDS = frozenset("biufc")


class Ext(IntEnum):
    """msgpack extension type codes of the protocol."""

    NDARRAY = 1
    NDARRAY_OOB = 2
    COMPLEX = 3
    TIMESTAMP = 4
    QUANTITY = 5


def _array_header(arr: np.ndarray[Any, Any]) -> tuple[str, list[int]]:
    if arr.dtype.kind not in _ALLOWED_KINDS or arr.dtype.fields is not None:
        raise ProtocolError(f"cannot encode numpy dtype {arr.dtype!s}: only bool, int, uint, "
                            "float and complex arrays travel")
    return arr.dtype.str, list(arr.shape)


_unpack_inner = msgpack.unpackb


class _Encoder(threading.local):
    """Per-thread reusable packers: building a msgpack Packer costs ~10 us, packing ~0.5 us.

    ``oob`` is the list that large arrays are appended to during one :func:`pack` call (or
    ``None`` to keep every array inline).
    """

    def __init__(self) -> None:
        self.oob: list[Buffer] | None = None
        self.inner = msgpack.Packer(use_bin_type=True)
        self.outer = msgpack.Packer(default=self.default, use_bin_type=True, datetime=True)

    def default(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            dtype, shape = _array_header(obj)
            arr = obj if obj.flags.c_contiguous else np.ascontiguousarray(obj)
            data = memoryview(arr).cast("B") if arr.size else b""  # type: ignore[arg-type]
            oob = self.oob
            if oob is not None and arr.nbytes >= OOB_THRESHOLD:
                oob.append(data)
                return msgpack.ExtType(Ext.NDARRAY_OOB, self.inner.pack([dtype, shape, len(oob)]))
            return msgpack.ExtType(Ext.NDARRAY, self.inner.pack([dtype, shape, data]))
        if isinstance(obj, complex):
            return msgpack.ExtType(Ext.COMPLEX, _COMPLEX.pack(obj.real, obj.imag))
        if isinstance(obj, Timestamp):
            return msgpack.ExtType(Ext.TIMESTAMP, self.inner.pack([obj.ps, obj.domain]))
        if isinstance(obj, Quantity):
            return msgpack.ExtType(Ext.QUANTITY, self.inner.pack([obj.value, obj.unit]))
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        if isinstance(obj, tuple | set | frozenset):
            return list(obj)
        raise ProtocolError(f"cannot encode value of type {type(obj).__name__}")


_ENCODER = _Encoder()


def pack(obj: Any, oob: list[Buffer] | None = None) -> bytes:
    """Encode ``obj`` as msgpack. Large arrays are appended to ``oob`` when it is given.

    Raises :class:`ProtocolError` for values the protocol cannot carry. Never blocks.
    Thread-safe (one set of packers per thread); not re-entrant from inside ``default``.
    """
    enc = _ENCODER
    enc.oob = oob
    try:
        return enc.outer.pack(obj)  # type: ignore[no-any-return]
    except QnhwError:
        enc.outer.reset()
        enc.inner.reset()
        raise
    except Exception as exc:  # msgpack raises TypeError/ValueError/OverflowError
        enc.outer.reset()
        enc.inner.reset()
        raise ProtocolError(f"cannot encode message: {exc}") from exc
    finally:
        enc.oob = None


def _inner(data: bytes, what: str) -> list[Any]:
    # msgpack bounds every length by len(data) when no limit is given: safe for these small
    # payloads, and cheaper than passing limits; the shape checks below do the rest
    try:
        value = _unpack_inner(data)
    except Exception as exc:
        raise ProtocolError(f"malformed {what} extension: {exc}") from exc
    if not isinstance(value, list):
        raise ProtocolError(f"malformed {what} extension: expected an array")
    return value


def _decode_array(dtype: Any, shape: Any, raw: Buffer, limits: Limits) -> np.ndarray[Any, Any]:
    dt = _DTYPES.get(dtype) if isinstance(dtype, str) else None
    if dt is None:
        raise ProtocolError(f"unsupported array dtype {dtype!r}")
    if (not isinstance(shape, list) or len(shape) > limits.max_ndim
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise ProtocolError(f"bad array shape {shape!r}")
    count = 1
    for n in shape:
        count *= n
    if count * dt.itemsize != len(raw):
        raise ProtocolError(f"array data has {len(raw)} bytes, dtype {dtype} shape {shape} "
                            f"needs {count * dt.itemsize}")
    arr = np.frombuffer(raw, dtype=dt)
    return arr if len(shape) == 1 else arr.reshape(shape)


def _make_ext_hook(frames: Sequence[Buffer], used: set[int],
                   limits: Limits) -> Callable[[int, bytes], Any]:
    def ext_hook(code: int, data: bytes) -> Any:
        if code == Ext.NDARRAY:
            parts = _inner(data, "ndarray")
            if len(parts) != 3 or not isinstance(parts[2], bytes):
                raise ProtocolError("malformed ndarray extension")
            return _decode_array(parts[0], parts[1], parts[2], limits)
        if code == Ext.NDARRAY_OOB:
            parts = _inner(data, "ndarray")
            if len(parts) != 3 or not isinstance(parts[2], int) or isinstance(parts[2], bool):
                raise ProtocolError("malformed out-of-band ndarray extension")
            index = parts[2]
            if not 1 <= index < len(frames) or index in used:
                raise ProtocolError(f"ndarray refers to frame {index}, which is missing or reused")
            used.add(index)
            return _decode_array(parts[0], parts[1], frames[index], limits)
        if code == Ext.COMPLEX:
            if len(data) != _COMPLEX.size:
                raise ProtocolError("complex extension must be 16 bytes")
            re_, im = _COMPLEX.unpack(data)
            return complex(re_, im)
        if code == Ext.TIMESTAMP:
            parts = _inner(data, "timestamp")
            if (len(parts) != 2 or not isinstance(parts[0], int) or isinstance(parts[0], bool)
                    or not isinstance(parts[1], str) or not parts[1]):
                raise ProtocolError("malformed timestamp extension")
            return Timestamp(parts[0], parts[1])
        if code == Ext.QUANTITY:
            parts = _inner(data, "quantity")
            if (len(parts) != 2 or isinstance(parts[0], bool)
                    or not isinstance(parts[0], int | float) or not isinstance(parts[1], str)):
                raise ProtocolError("malformed quantity extension")
            return Quantity(parts[0], parts[1])
        raise ProtocolError(f"unknown extension type {code}")

    return ext_hook


_STR = frozenset({str})
_IS_CONTAINER = frozenset({dict, list}).__contains__


def _check_tree(obj: Any, depth: int, limits: Limits) -> None:
    """Refuse non-string map keys and nesting deeper than ``limits.max_depth`` in ``obj``, a
    container at nesting level ``depth`` (<= max_depth).

    The type scans run in C (``map(type, ...)``); Python only visits nested containers, and
    descends only into non-empty ones.
    """
    if type(obj) is dict:
        if not _STR.issuperset(map(type, obj)):
            bad = next(k for k in obj if type(k) is not str)
            raise ProtocolError(f"map keys must be strings, got {type(bad).__name__}")
        values: Any = obj.values()
    else:
        values = obj
    for value in compress(values, map(_IS_CONTAINER, map(type, values))):
        if depth >= limits.max_depth:
            raise ProtocolError(f"message nests deeper than {limits.max_depth} levels")
        if value:
            _check_tree(value, depth + 1, limits)


def _decoder(hook: Callable[[int, bytes], Any], limits: Limits) -> Callable[[Buffer], Any]:
    """A function decoding one msgpack object with ``hook`` for extensions, bounded by
    ``limits``; it raises :class:`ProtocolError` only."""
    options = {"raw": False, "use_list": True, "strict_map_key": True, "timestamp": 3,
               "ext_hook": hook, "max_str_len": limits.max_str,
               "max_bin_len": limits.max_message, "max_array_len": limits.max_items,
               "max_map_len": limits.max_items, "max_ext_len": limits.max_message}
    max_message = limits.max_message
    unpackb = msgpack.unpackb

    def decode(data: Buffer) -> Any:
        if len(data) > max_message:
            raise MessageTooLarge(f"message of {len(data)} bytes exceeds {max_message}")
        try:
            obj = unpackb(data, **options)
        except QnhwError:
            raise
        except Exception as exc:  # msgpack: ValueError, ExtraData, StackError, Unicode...
            raise ProtocolError(f"malformed msgpack: {type(exc).__name__}: {exc}") from exc
        if type(obj) is dict or type(obj) is list:
            _check_tree(obj, 1, limits)
        return obj

    return decode


#: Decoders of single-frame messages, one per Limits (their ext hook references no frames, so
#: an out-of-band array in a single-frame message is refused as "missing frame").
_INLINE: dict[int, tuple[Limits, Callable[[Buffer], Any]]] = {}  # by id(): Limits may not hash


def unpack(data: Buffer, frames: Sequence[Buffer] = (), limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode one msgpack object; ``frames[i]`` (i >= 1) back out-of-band arrays.

    Raises :class:`ProtocolError` (or its subclass :class:`MessageTooLarge`) for anything
    malformed, unknown, oversized or too deep -- and never any other exception. Every frame after
    the first must be referenced by exactly one array.
    """
    if len(frames) <= 1:  # the common case: a single frame; its decoder is built once
        cached = _INLINE.get(id(limits))
        if cached is None or cached[0] is not limits:
            cached = (limits, _decoder(_make_ext_hook((), set(), limits), limits))
            if len(_INLINE) >= 64:  # bounded: many Limits objects only cost a rebuild
                _INLINE.clear()
            _INLINE[id(limits)] = cached
        return cached[1](data)
    used: set[int] = set()
    obj = _decoder(_make_ext_hook(frames, used, limits), limits)(data)
    if len(used) != len(frames) - 1:
        raise ProtocolError(f"message has {len(frames) - 1} extra frames but uses {len(used)}")
    return obj
