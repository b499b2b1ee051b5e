"""docs/protocol.md is complete: an independent client and server written from it alone.

The first part of this file (down to "the peers under test") is a client *and* a server written
only against docs/protocol.md, with raw ``zmq`` and ``msgpack`` (and numpy for arrays). It
imports nothing from qnhw. The tests then pit

* the spec client against the reference server (``qnhw.runtime.DeviceServer``), and
* the reference client (``qnhw.runtime.Client``, the oracle) against the spec server,

on real loopback TCP sockets. The hex wire examples of the document are checked too: the spec
encoder must reproduce them byte for byte and the reference server must accept them verbatim.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import itertools
import re
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq

# =================================================================================================
# Spec-only codec and peers (docs/protocol.md sections in brackets). No qnhw imports above the
# "peers under test" line.
# =================================================================================================

PROTOCOL_VERSION = [1, 0]
FEATURES = ["oob-arrays", "lossless-streams", "cancel", "heartbeat", "describe"]  # [6]
MAX_MESSAGE = 64 * 1024 * 1024  # [11]
MAX_FRAMES = 256
MAX_DEPTH = 32
MAX_NDIM = 32
OOB_THRESHOLD = 4096  # [5.2] the sender's choice
MAXMSGSIZE = MAX_MESSAGE + 65536  # [2.4]
EXT_NDARRAY, EXT_NDARRAY_OOB, EXT_COMPLEX, EXT_TIMESTAMP, EXT_QUANTITY = 1, 2, 3, 4, 5  # [5]

# error codes [9]
BAD_PARAMS, UNKNOWN_COMMAND, BUSY, TIMEOUT, VERSION = 1, 2, 3, 5, 7
PROTOCOL, TOO_LARGE, NO_SESSION = 8, 9, 12

# dtype strings [5.1]: optional byte order + type code
_TYPE_CODES = {"b1": "?", "i1": "i1", "i2": "i2", "i4": "i4", "i8": "i8", "u1": "u1",
               "u2": "u2", "u4": "u4", "u8": "u8", "f2": "f2", "f4": "f4", "f8": "f8",
               "c8": "c8", "c16": "c16"}
_ORDERS = {"": "=", "<": "<", ">": ">", "|": "=", "=": "="}
DTYPES = {order + code: np.dtype(np_code).newbyteorder(_ORDERS[order])
          if np.dtype(np_code).itemsize > 1 else np.dtype(np_code)
          for order in _ORDERS for code, np_code in _TYPE_CODES.items()}


class SpecError(Exception):
    """A message that does not follow docs/protocol.md."""


@dataclass(frozen=True)
class Ts:
    """Extension type 4 [5.4]."""

    ps: int
    domain: str


@dataclass(frozen=True)
class Qty:
    """Extension type 5 [5.5]."""

    value: int | float
    unit: str


def ext_ndarray(arr: np.ndarray) -> msgpack.ExtType:
    """An array as extension type 1, by hand [5.1]: [dtype, shape, data]."""
    c = np.ascontiguousarray(arr)
    return msgpack.ExtType(EXT_NDARRAY, msgpack.packb([c.dtype.str, list(arr.shape), c.tobytes()],
                                                      use_bin_type=True))


def ext_ndarray_oob(arr: np.ndarray, frame: int) -> msgpack.ExtType:
    """An array as extension type 2 referring to array frame ``frame`` [5.2]."""
    return msgpack.ExtType(EXT_NDARRAY_OOB, msgpack.packb([arr.dtype.str, list(arr.shape), frame]))


def encode(msg: dict[str, Any], *, oob: bool = True) -> list[bytes]:
    """One message -> [header, *array_frames] [3, 5]."""
    frames: list[bytes] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biufc" or obj.dtype.fields is not None:
                raise TypeError(f"dtype {obj.dtype} does not travel")
            if oob and obj.nbytes >= OOB_THRESHOLD:
                frames.append(np.ascontiguousarray(obj).tobytes())
                return ext_ndarray_oob(obj, len(frames))
            return ext_ndarray(obj)
        if isinstance(obj, complex):
            return msgpack.ExtType(EXT_COMPLEX, struct.pack("<dd", obj.real, obj.imag))
        if isinstance(obj, Ts):
            return msgpack.ExtType(EXT_TIMESTAMP, msgpack.packb([obj.ps, obj.domain]))
        if isinstance(obj, Qty):
            return msgpack.ExtType(EXT_QUANTITY, msgpack.packb([obj.value, obj.unit]))
        if isinstance(obj, np.generic):
            return obj.item()
        raise TypeError(f"cannot encode {type(obj).__name__}")

    header = msgpack.packb(msg, default=default, use_bin_type=True, datetime=True)
    return [header, *frames]


def _ext_parts(data: bytes, n: int) -> list[Any]:
    try:
        parts = msgpack.unpackb(data, raw=False, max_array_len=64, max_str_len=4096,
                                max_bin_len=len(data), max_map_len=0, max_ext_len=0)
    except Exception as exc:
        raise SpecError(f"bad extension payload: {exc}") from None
    if not isinstance(parts, list) or len(parts) != n:
        raise SpecError("extension payload must be an array of the documented length")
    return parts


def _is_int(v: Any) -> bool:
    return type(v) is int


def _array(dtype: Any, shape: Any, raw: bytes) -> np.ndarray:
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise SpecError(f"dtype {dtype!r} not allowed")
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(_is_int(n) and n >= 0 for n in shape)):
        raise SpecError(f"bad shape {shape!r}")
    dt_ = DTYPES[dtype]
    if dt_.itemsize * int(np.prod(shape, dtype=np.int64)) != len(raw):
        raise SpecError("array data has the wrong length")
    return np.frombuffer(raw, dtype=dt_).reshape(shape)  # read-only view [5.1]


def _check_tree(obj: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise SpecError("nested too deep")
    children = obj.values() if isinstance(obj, dict) else obj
    if isinstance(obj, dict) and not all(type(k) is str for k in obj):
        raise SpecError("map keys must be str")
    for v in children:
        if isinstance(v, dict | list):
            _check_tree(v, depth + 1)


# required keys per kind, and a type check for each [4]
_REQUIRED: dict[str, dict[str, Callable[[Any], bool]]] = {
    "hello": {"pv": lambda v: isinstance(v, list) and len(v) == 2},
    "welcome": {"pv": lambda v: isinstance(v, list) and len(v) == 2,
                "device": lambda v: isinstance(v, str),
                "epoch": _is_int, "hb": lambda v: type(v) in (int, float) and 0 < v < 3600},
    "req": {"id": lambda v: _is_int(v) and v >= 1, "m": lambda v: isinstance(v, str) and v != "",
            "p": lambda v: isinstance(v, dict)},
    "rep": {"id": lambda v: _is_int(v) and v >= 1, "r": lambda v: True},
    "err": {"code": _is_int, "msg": lambda v: isinstance(v, str)},
    "ev": {"s": lambda v: isinstance(v, str) and v != "", "seq": lambda v: _is_int(v) and v >= 0,
           "ts": lambda v: _is_int(v) and -2**63 <= v < 2**63,
           "cd": lambda v: isinstance(v, str) and v != "", "p": lambda v: True},
    "evs": {"s": lambda v: isinstance(v, str) and v != "",
            "seq": lambda v: _is_int(v) and 0 <= v < 2**63,
            "ts": lambda v: isinstance(v, list) and len(v) > 0
            and all(_is_int(t) and -2**63 <= t < 2**63 for t in v),
            "cd": lambda v: isinstance(v, str) and v != "", "p": lambda v: isinstance(v, list)},
    "hb": {}, "bye": {}, "cancel": {"id": lambda v: _is_int(v) and v >= 1},
    "credit": {"s": lambda v: isinstance(v, str) and v != "",
               "n": lambda v: _is_int(v) and 1 <= v <= 2**30},
}


def decode(frames: list[bytes]) -> dict[str, Any]:
    """[header, *array_frames] -> message map, validated [3, 4, 5]. Raises SpecError."""
    if not frames or len(frames) > MAX_FRAMES or sum(map(len, frames)) > MAX_MESSAGE:
        raise SpecError("no frames, too many frames or too large")
    used: set[int] = set()

    def ext_hook(code: int, data: bytes) -> Any:
        if code == EXT_NDARRAY:
            dtype, shape, raw = _ext_parts(data, 3)
            if not isinstance(raw, bytes):
                raise SpecError("inline array data must be bin")
            return _array(dtype, shape, raw)
        if code == EXT_NDARRAY_OOB:
            dtype, shape, index = _ext_parts(data, 3)
            if not _is_int(index) or not 1 <= index < len(frames) or index in used:
                raise SpecError(f"array frame {index!r} missing or reused")
            used.add(index)
            return _array(dtype, shape, frames[index])
        if code == EXT_COMPLEX:
            if len(data) != 16:
                raise SpecError("complex payload must be 16 bytes")
            return complex(*struct.unpack("<dd", data))
        if code == EXT_TIMESTAMP:
            ps, domain = _ext_parts(data, 2)
            if not _is_int(ps) or not isinstance(domain, str) or not domain:
                raise SpecError("bad timestamp")
            return Ts(ps, domain)
        if code == EXT_QUANTITY:
            value, unit = _ext_parts(data, 2)
            if type(value) not in (int, float) or not isinstance(unit, str):
                raise SpecError("bad quantity")
            return Qty(value, unit)
        raise SpecError(f"unknown extension type {code}")

    try:
        msg = msgpack.unpackb(frames[0], raw=False, strict_map_key=True, timestamp=3,
                              ext_hook=ext_hook, max_str_len=1024 * 1024,
                              max_array_len=1_000_000, max_map_len=1_000_000)
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError(f"malformed msgpack: {exc}") from None
    if type(msg) is not dict:
        raise SpecError("a message is a map")
    _check_tree(msg, 1)
    if used != set(range(1, len(frames))):
        raise SpecError("every array frame must be referenced exactly once")
    kind = msg.get("k")
    if kind not in _REQUIRED:
        raise SpecError(f"unknown kind {kind!r}")
    for key, ok in _REQUIRED[kind].items():
        if key not in msg or not ok(msg[key]):
            raise SpecError(f"{kind}.{key} missing or ill-typed")
    if kind == "evs" and len(msg["ts"]) != len(msg["p"]):
        raise SpecError("evs.ts and evs.p differ in length")
    return msg


def expand(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of an ``ev`` (one) or an ``evs`` batch (consecutive seqs) [4.6, 4.7]."""
    if msg["k"] == "ev":
        return [msg]
    return [{"k": "ev", "s": msg["s"], "seq": msg["seq"] + i, "ts": ts, "cd": msg["cd"], "p": p}
            for i, (ts, p) in enumerate(zip(msg["ts"], msg["p"], strict=True))]


def peek_id(header: bytes) -> int | None:
    """The id of an undecodable message: first 8 map entries only [8.6]."""
    try:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(header), 1),
                                    max_str_len=64, max_bin_len=0, max_array_len=0,
                                    max_map_len=64, max_ext_len=0)
        unpacker.feed(header)
        for _ in range(min(unpacker.read_map_header(), 8)):
            if unpacker.unpack() == "id":
                value = unpacker.unpack()
                return value if _is_int(value) and 1 <= value < 2**64 else None
            unpacker.skip()
    except Exception:
        return None
    return None


class SpecClient:
    """A synchronous client over one DEALER [2.2], written from the spec."""

    def __init__(self, ctx: zmq.Context, address: str, timeout: float = 2.0) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAXMSGSIZE)
        self.sock.connect(address)
        self.timeout = timeout
        self.ids = itertools.count(1)
        self.inbox: list[tuple[dict[str, Any], int]] = []  # (message, number of frames)
        self.welcome: dict[str, Any] = {}

    def send(self, msg: dict[str, Any]) -> None:
        self.sock.send_multipart(encode(msg))

    def send_frames(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def receive(self, pred: Callable[[dict[str, Any]], bool],
                timeout: float | None = None) -> tuple[dict[str, Any], int]:
        """The first message matching ``pred`` (others are kept); raises TimeoutError."""
        for i, (msg, _frames) in enumerate(self.inbox):
            if pred(msg):
                return self.inbox.pop(i)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (left := deadline - time.monotonic()) > 0:
            if not self.sock.poll(max(1, int(left * 1000))):
                break
            frames = self.sock.recv_multipart()
            msg = decode(frames)
            if pred(msg):
                return msg, len(frames)
            self.inbox.append((msg, len(frames)))
        raise TimeoutError("no matching message")

    def quiet(self, pred: Callable[[dict[str, Any]], bool], seconds: float) -> bool:
        """True if no message matching ``pred`` arrives within ``seconds``."""
        try:
            self.receive(pred, seconds)
        except TimeoutError:
            return True
        return False

    def events(self, n: int, timeout: float | None = None) -> list[tuple[dict[str, Any], int]]:
        """The next ``n`` events (``ev`` or expanded ``evs``), each with its message's frame
        count; events beyond ``n`` of the last batch are kept for the next call."""
        out: list[tuple[dict[str, Any], int]] = []
        while len(out) < n:
            msg, frames = self.receive(lambda m: m["k"] in ("ev", "evs"), timeout)
            out += [(ev, frames) for ev in expand(msg)]
        for ev, frames in reversed(out[n:]):
            self.inbox.insert(0, (ev, frames))
        return out[:n]

    def hello(self, pv: list[int] = PROTOCOL_VERSION) -> dict[str, Any]:
        self.send({"k": "hello", "pv": pv, "feat": FEATURES, "client": "spec-client",
                   "contract": None})
        msg, _ = self.receive(lambda m: m["k"] == "welcome" or (m["k"] == "err"
                                                                and m.get("id") is None))
        if msg["k"] == "welcome":
            self.welcome = msg
        return msg

    def request(self, method: str, params: dict[str, Any] | None = None,
                dl_us: int | None = 2_000_000) -> int:
        rid = next(self.ids)
        self.send({"k": "req", "id": rid, "m": method, "p": params or {}, "dl": dl_us})
        return rid

    def answer(self, rid: int, timeout: float | None = None) -> tuple[dict[str, Any], int]:
        return self.receive(lambda m: m["k"] in ("rep", "err") and m.get("id") == rid, timeout)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """The ``rep`` or ``err`` answering one request [8.1]."""
        return self.answer(self.request(method, params))[0]

    def close(self) -> None:
        self.sock.close(linger=0)


class SpecServer:
    """A minimal server loop over a raw ROUTER (+ PUB), in a thread, written from the spec."""

    STREAM = "ticks"

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.linger = 0
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAXMSGSIZE)
        self.router.bind("tcp://127.0.0.1:*")
        self.address = self.router.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.linger = 0
        self.pub.bind("tcp://127.0.0.1:*")
        self.pub_address = self.pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.epoch = secrets.randbits(63)
        self.sessions: dict[bytes, dict[str, Any]] = {}
        self.seq = {self.STREAM: 100}
        self.log: dict[str, list[Any]] = collections.defaultdict(list)
        self.frames_of_last_message = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spec-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.router.close(linger=0)
        self.pub.close(linger=0)
        self.ctx.term()

    def _run(self) -> None:
        deadline = time.monotonic() + 30  # bounded even if close() is never called
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self.router.poll(20):
                self._on_frames(self.router.recv_multipart())

    def _send(self, ident: bytes, msg: dict[str, Any]) -> None:
        with contextlib.suppress(zmq.ZMQError):  # peer gone or not reading: dropped [2.4]
            self.router.send_multipart([ident, *encode(msg)], flags=zmq.NOBLOCK)

    def _err(self, ident: bytes, rid: int | None, code: int, text: str,
             det: dict[str, Any] | None = None) -> None:
        self._send(ident, {"k": "err", "id": rid, "code": code, "msg": text, "det": det or {}})

    def _on_frames(self, frames: list[bytes]) -> None:
        ident, body = frames[0], frames[1:]
        try:
            msg = decode(body)
        except SpecError as exc:
            self._err(ident, peek_id(body[0]) if body else None, PROTOCOL, str(exc))
            return
        kind, session = msg["k"], self.sessions.get(ident)
        self.log[kind].append(msg)
        self.frames_of_last_message = len(body)
        if kind == "hello":
            if msg["pv"][0] != PROTOCOL_VERSION[0]:
                self._err(ident, None, VERSION, "major versions must match",
                          {"peer": msg["pv"], "local": PROTOCOL_VERSION})
                return
            self.sessions[ident] = {"subs": {}}
            self._send(ident, {"k": "welcome", "pv": PROTOCOL_VERSION, "feat": FEATURES,
                               "device": "spec-server", "epoch": self.epoch, "hb": 0.1,
                               "contract": {"name": "spec", "version": "1.3"},
                               "pub": self.pub_address,
                               "limits": {"max_message": MAX_MESSAGE, "max_frames": MAX_FRAMES}})
        elif kind == "req":
            if session is None:
                self._err(ident, msg["id"], NO_SESSION, "send hello first")
            else:
                self._request(ident, session, msg)
        elif kind == "hb":
            if session is None:
                self._err(ident, None, NO_SESSION, "send hello first")
            else:
                self._send(ident, {"k": "hb", "n": msg.get("n", 0)})
        elif kind == "credit":
            sub = session["subs"].get(msg["s"]) if session else None
            if sub is not None:
                sub["credit"] += msg["n"]
                self._flush(ident, sub)
        elif kind == "bye":
            self.sessions.pop(ident, None)
        elif kind != "cancel":  # cancel: nothing runs asynchronously here; no answer anyway
            self._err(ident, None, PROTOCOL, f"a server does not accept {kind}")

    def _flush(self, ident: bytes, sub: dict[str, Any]) -> None:
        """Send what credit allows: one ``ev``, or a backlog as one ``evs`` batch [10.2]."""
        queue = sub["queue"]
        n = min(sub["credit"], len(queue))
        if n == 1:
            self._send(ident, queue.popleft())
        elif n > 1:
            batch = [queue.popleft() for _ in range(n)]
            self._send(ident, {"k": "evs", "s": batch[0]["s"], "seq": batch[0]["seq"],
                               "ts": [e["ts"] for e in batch], "cd": batch[0]["cd"],
                               "p": [e["p"] for e in batch]})
            self.log["batches"].append(n)
        sub["credit"] -= n

    def _publish(self, payload: Any) -> None:
        ev = {"k": "ev", "s": self.STREAM, "seq": self.seq[self.STREAM],
              "ts": time.monotonic_ns() * 1000, "cd": "spec", "p": payload}
        self.seq[self.STREAM] += 1
        self.pub.send_multipart([self.STREAM.encode() + b"\0", *encode(ev)])  # [2.3]
        for ident, session in self.sessions.items():
            sub = session["subs"].get(self.STREAM)
            if sub is None:
                continue
            if sub["mode"] == "fanout":
                self._send(ident, ev)
            else:
                sub["queue"].append(ev)
                self._flush(ident, sub)

    def _request(self, ident: bytes, session: dict[str, Any], req: dict[str, Any]) -> None:
        rid, method, p = req["id"], req["m"], req["p"]

        def reply(result: Any) -> None:
            self._send(ident, {"k": "rep", "id": rid, "r": result})

        if method == "qnhw.describe":  # [14.1]
            reply({"device": "spec-server", "protocol": PROTOCOL_VERSION, "features": FEATURES,
                   "contract": {"name": "spec", "version": "1.3"},
                   "commands": [{"name": "add", "doc": "a + b", "returns": "the sum",
                                 "params": [{"name": "a", "type": "int", "unit": "", "doc": "",
                                             "required": True},
                                            {"name": "b", "type": "int", "unit": "", "doc": "",
                                             "required": True}]}],
                   "streams": [{"name": self.STREAM, "doc": "", "payload": "int",
                                "clock_domain": "device"}],
                   "capabilities": {}, "clock_domain": "spec", "clock_epoch_unix_ns": None})
        elif method == "qnhw.ping":
            reply({"time_ps": time.monotonic_ns() * 1000, "domain": "spec"})
        elif method == "qnhw.subscribe":  # [14.3]
            stream, credit, mode = p.get("stream"), p.get("credit", 64), p.get("mode", "lossless")
            if stream != self.STREAM:
                self._err(ident, rid, BAD_PARAMS, "no such stream",
                          {"param": "stream", "streams": [self.STREAM]})
                return
            session["subs"][stream] = {"credit": credit, "mode": mode,
                                       "queue": collections.deque()}
            reply({"stream": stream, "seq": self.seq[stream]})
        elif method == "qnhw.unsubscribe":
            session["subs"].pop(p.get("stream"), None)
            reply(None)
        elif method == "add":
            if not (_is_int(p.get("a")) and _is_int(p.get("b"))):
                self._err(ident, rid, BAD_PARAMS, "a and b must be int", {"param": "a"})
            else:
                reply(p["a"] + p["b"])
        elif method == "inspect_array":
            arr = p["values"]
            reply({"sum": int(arr.sum()), "dtype": arr.dtype.str, "shape": list(arr.shape),
                   "readonly": not arr.flags.writeable, "frames": self.frames_of_last_message})
        elif method == "types":
            reply({"ts": Ts(123_456_789, "spec"), "q": Qty(2.5, "GHz"), "c": 1.5 - 2j,
                   "when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "small": np.arange(3),
                   "big": np.arange(1024, dtype=">f8"), "blob": b"\x00\x01"})
        elif method == "busy":
            self._err(ident, rid, BUSY, "device busy")
        elif method == "weird":
            self._err(ident, rid, 999, "a code from a future minor version")
        elif method == "hang":
            pass  # never answers: the caller will cancel
        elif method == "emit":
            for i in range(p["n"]):
                self._publish(i)
            reply(p["n"])
        elif method == "restart":  # forget every session, as a restarted server would
            reply(None)
            self.sessions.clear()
            self.epoch = secrets.randbits(63)
        else:
            self._err(ident, rid, UNKNOWN_COMMAND, f"no command {method!r}", {"command": method})


# =================================================================================================
# The peers under test (qnhw is imported only from here on)
# =================================================================================================

from qnhw.contract import Param, StreamSpec  # noqa: E402
from qnhw.errors import BadParams, Busy, NoSession, QnhwError, UnknownCommand  # noqa: E402
from qnhw.protocol.types import Quantity, Timestamp  # noqa: E402
from qnhw.runtime import Client, ConnectionState, DeviceServer, StreamMode  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def wire_example(name: str) -> bytes:
    """The bytes of a ``<!-- wire-example: name -->`` block of the document."""
    m = re.search(rf"<!-- wire-example: {name} -->\s*```text\n(.*?)```", DOC.read_text(), re.S)
    assert m is not None, f"docs/protocol.md lacks wire example {name!r}"
    return bytes.fromhex(m.group(1))


@dataclass
class Peer:
    server: DeviceServer
    started: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)


def make_peer() -> Peer:
    srv = DeviceServer("spec-peer", "tcp://127.0.0.1:0")
    peer = Peer(srv)

    @srv.command(params=[Param("delay", "float", unit="s", min=0, max=1, doc="the delay")],
                 doc="Set the delay.")
    def set_delay(delay: float) -> float:
        return delay

    @srv.command(params=[Param("factor", "float"), Param("values", "array", dtype="iuf")])
    def scale(factor: float, values: np.ndarray) -> np.ndarray:
        return values * factor

    @srv.command()
    def types() -> dict[str, Any]:
        return {"ts": Timestamp(1_500_000, "host"), "q": Quantity(5, "us"), "c": 1.5 - 2j,
                "when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                "small": np.array([1, 2, 3], dtype="<i4"),
                "big": np.arange(2048, dtype=np.float64), "blob": b"\x00\xff"}

    @srv.command(params=[Param("delay", "float", unit="s", min=0, max=30)])
    async def slow(delay: float) -> str:
        peer.started.set()
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            peer.cancelled.set()
            raise
        return "done"

    @srv.command(params=[Param("n", "int", min=0, max=100)])
    def emit(n: int) -> int:
        for i in range(n):
            srv.publish_nowait("counts", {"i": i, "blob": np.full(1024, i, dtype=np.float64)})
        return n

    srv.add_stream(StreamSpec("counts", "a counter", "map"))
    return peer


async def run_spec_client(peer: Peer, scenario: Callable[[SpecClient], None]) -> None:
    """Run a blocking spec-client scenario in a thread while the server serves on this loop."""

    def body() -> None:
        ctx = zmq.Context()
        client = SpecClient(ctx, peer.server.address)
        try:
            scenario(client)
        finally:
            client.close()
            ctx.term()

    async with peer.server:
        await asyncio.wait_for(asyncio.to_thread(body), timeout=8)


# --- the spec client against the reference server ------------------------------------------


async def test_documented_wire_examples_are_exact_and_accepted() -> None:
    hello = wire_example("hello")
    req = wire_example("req")
    assert encode({"k": "hello", "pv": [1, 0], "feat": FEATURES, "client": "my-client",
                   "contract": None}) == [hello]
    assert encode({"k": "req", "id": 7, "m": "set_delay", "p": {"delay": Qty(5, "us")},
                   "dl": 2_000_000}) == [req]
    # the inline byte examples of the document are what the spec encoder produces
    doc = re.sub(r"\s+", " ", DOC.read_text())
    for value in (np.array([True, False]), np.array(7, dtype="<i2"),
                  np.arange(6, dtype="|u1").reshape(2, 3), 1.5 - 2j, Ts(1_500_000, "host"),
                  Qty(5, "us"), Qty(2.5, "GHz"), dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
        assert encode(value)[0].hex(" ") in doc, value  # type: ignore[arg-type]
    assert encode(np.zeros(1024, dtype="<f8"))[0].hex(" ") in doc  # type: ignore[arg-type]
    ev = {"k": "ev", "s": "tags", "seq": 41, "ts": 1500000, "cd": "host", "p": {"ch": 3}}
    for msg in ({"k": "rep", "id": 7, "r": None}, ev, {"k": "hb", "n": 9},
                {"k": "cancel", "id": 7}, {"k": "credit", "s": "tags", "n": 32},
                {"k": "err", "id": 7, "code": 1, "msg": "bad", "det": {"param": "delay"}}):
        assert encode(msg)[0].hex(" ") in doc, msg

    def scenario(c: SpecClient) -> None:
        c.send_frames([hello])  # verbatim from the document
        welcome, _ = c.receive(lambda m: m["k"] == "welcome")
        assert welcome["pv"][0] == 1 and welcome["device"] == "spec-peer"
        c.send_frames([req])
        rep, _ = c.answer(7)
        assert rep == {"k": "rep", "id": 7, "r": pytest.approx(5e-6)}

    await run_spec_client(make_peer(), scenario)


async def test_handshake_calls_arrays_replies_and_typed_errors() -> None:
    def scenario(c: SpecClient) -> None:
        w = c.hello()
        assert w["k"] == "welcome" and w["pv"][0] == 1 and set(FEATURES) <= set(w["feat"])
        assert w["device"] == "spec-peer" and _is_int(w["epoch"]) and 0 < w["hb"] < 3600
        assert w["pub"].startswith("tcp://127.0.0.1:") and w["contract"] is None
        assert w["limits"] == {"max_message": MAX_MESSAGE, "max_frames": MAX_FRAMES}

        ping = c.call("qnhw.ping")
        assert ping["k"] == "rep" and _is_int(ping["r"]["time_ps"])
        assert ping["r"]["domain"] == "host"

        # a small array by hand as ext type 1; the result comes back inline
        small = np.array([1, 2, 3], dtype="<i4")
        rid = c.request("scale", {"factor": 2.0, "values": ext_ndarray(small)})
        rep, nframes = c.answer(rid)
        assert nframes == 1 and rep["k"] == "rep"
        np.testing.assert_array_equal(rep["r"], [2, 4, 6])
        assert rep["r"].dtype == np.float64 and not rep["r"].flags.writeable

        # a large array by hand as ext type 2 + an array frame; the result has a frame too
        big = np.arange(4096, dtype=">i4")  # big-endian on purpose
        rid = next(c.ids)
        header = msgpack.packb({"k": "req", "id": rid, "m": "scale",
                                "p": {"factor": 0.5, "values": ext_ndarray_oob(big, 1)},
                                "dl": 2_000_000}, use_bin_type=True)
        c.send_frames([header, big.tobytes()])
        rep, nframes = c.answer(rid)
        assert rep["k"] == "rep" and nframes == 2  # reply array came out of band
        np.testing.assert_array_equal(rep["r"], big * 0.5)

        # a reply with every extension type
        r = c.call("types")["r"]
        assert r["ts"] == Ts(1_500_000, "host") and r["q"] == Qty(5, "us")
        assert r["c"] == 1.5 - 2j and r["blob"] == b"\x00\xff"
        assert r["when"] == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        assert r["small"].dtype == np.dtype("<i4") and r["small"].tolist() == [1, 2, 3]
        np.testing.assert_array_equal(r["big"], np.arange(2048, dtype=np.float64))

        # a quantity in another SI prefix is converted to the parameter's unit
        assert c.call("set_delay", delay=Qty(250, "ms"))["r"] == pytest.approx(0.25)

        # typed errors carry the request id, a stable code and details
        bad = c.call("set_delay", delay=Qty(1, "V"))
        assert bad["k"] == "err" and bad["code"] == BAD_PARAMS and bad["det"]["param"] == "delay"
        bad = c.call("set_delay", delay=5.0)  # above max
        assert bad["code"] == BAD_PARAMS and bad["det"]["param"] == "delay"
        bad = c.call("set_delay", delay=0.1, colour="red")
        assert bad["code"] == BAD_PARAMS and bad["det"] == {"param": "colour",
                                                             "known": ["delay"]}
        unknown = c.call("no_such_command")
        assert unknown["code"] == UNKNOWN_COMMAND
        assert unknown["det"] == {"command": "no_such_command"}
        assert c.call("qnhw.no_such_builtin")["code"] == UNKNOWN_COMMAND
        assert c.call("qnhw.ping")["k"] == "rep"  # the connection is still fine

    await run_spec_client(make_peer(), scenario)


async def test_session_rules_malformed_messages_heartbeat_and_goodbye() -> None:
    peer = make_peer()

    def scenario(c: SpecClient) -> None:
        rid = c.request("qnhw.ping")  # before hello
        err, _ = c.answer(rid)
        assert err["k"] == "err" and err["code"] == NO_SESSION and err["id"] == rid
        c.send({"k": "hb", "n": 1})
        err, _ = c.receive(lambda m: m["k"] == "err")
        assert err["code"] == NO_SESSION and err["id"] is None

        err = c.hello(pv=[2, 0])
        assert err["k"] == "err" and err["code"] == VERSION and err["id"] is None
        assert err["det"] == {"peer": [2, 0], "local": [1, 0]}
        assert c.hello(pv=[1, 7])["k"] == "welcome"  # any minor of major 1

        c.send({"k": "hb", "n": 42})
        echo, _ = c.receive(lambda m: m["k"] == "hb")
        assert echo == {"k": "hb", "n": 42}
        c.send({"k": "hb"})  # n absent: echoed as 0
        assert c.receive(lambda m: m["k"] == "hb")[0]["n"] == 0

        def error_for(frames: list[bytes]) -> dict[str, Any]:
            c.send_frames(frames)
            return c.receive(lambda m: m["k"] == "err")[0]

        e = error_for([b"\xc1"])  # not msgpack
        assert e["code"] == PROTOCOL and e["id"] is None
        e = error_for([msgpack.packb({"k": "req", "id": 99, "m": "qnhw.ping"})])  # no "p"
        assert e["code"] == PROTOCOL and e["id"] == 99  # peeked id
        e = error_for([msgpack.packb({"k": "req", "id": 98, "m": "qnhw.ping", "p": {}}),
                       b"unreferenced frame"])
        assert e["code"] == PROTOCOL and e["id"] == 98
        e = error_for([msgpack.packb({"k": "req", "id": 97, "m": "x", "p": {}})]
                      + [b"x"] * MAX_FRAMES)  # 257 frames
        assert e["code"] == TOO_LARGE and e["id"] == 97
        e = error_for([msgpack.packb({"k": "req", "id": 96, "m": "x", "p": {1: 2}})])
        assert e["code"] == PROTOCOL and e["id"] == 96  # int map key
        e = error_for([msgpack.packb({"k": "req", "id": 95, "m": "x",
                                      "p": {"a": msgpack.ExtType(42, b"")}})])
        assert e["code"] == PROTOCOL and e["id"] == 95  # unknown extension type
        e = error_for(encode({"k": "rep", "id": 5, "r": 1}))  # a kind servers do not take
        assert e["code"] == PROTOCOL and e["id"] is None
        assert c.call("qnhw.ping")["k"] == "rep"  # the session survived all of that

        c.send({"k": "bye", "why": "done"})
        rid = c.request("qnhw.ping")
        err, _ = c.answer(rid)
        assert err["code"] == NO_SESSION and err["id"] == rid
        assert peer.server.sessions == 0

    await run_spec_client(peer, scenario)


async def test_deadline_and_cancel() -> None:
    peer = make_peer()

    def scenario(c: SpecClient) -> None:
        c.hello()
        started = time.monotonic()
        rid = c.request("slow", {"delay": 5.0}, dl_us=100_000)
        err, _ = c.answer(rid)
        assert err["code"] == TIMEOUT and err["id"] == rid
        assert time.monotonic() - started < 1.5
        peer.started.clear()  # that handler was cancelled at its deadline; start afresh
        peer.cancelled.clear()

        rid = c.request("slow", {"delay": Qty(5, "s")}, dl_us=None)
        assert peer.started.wait(2.0)  # a cancel can only stop a handler that has started
        c.send({"k": "cancel", "id": rid})
        assert peer.cancelled.wait(2.0)  # the handler was cancelled at the server
        assert c.quiet(lambda m: m.get("id") == rid, 0.3)  # and no answer comes for it
        c.send({"k": "cancel", "id": 123456})  # unknown id: ignored
        assert c.call("slow", delay=0.01)["r"] == "done"

    await run_spec_client(peer, scenario)


async def test_describe_reply_schema() -> None:
    def scenario(c: SpecClient) -> None:
        c.hello()
        d = c.call("qnhw.describe")["r"]
        assert set(d) == {"device", "protocol", "features", "contract", "commands", "streams",
                          "capabilities", "clock_domain", "clock_epoch_unix_ns"}
        assert d["device"] == "spec-peer" and d["protocol"] == [1, 0]
        assert d["clock_domain"] == "host" and _is_int(d["clock_epoch_unix_ns"])
        commands = {cmd["name"]: cmd for cmd in d["commands"]}
        assert not any(name.startswith("qnhw.") for name in commands)
        sd = commands["set_delay"]
        assert {"name", "doc", "returns", "params"} <= set(sd) and sd["doc"] == "Set the delay."
        assert sd["params"] == [{"name": "delay", "type": "float", "unit": "s",
                                 "doc": "the delay", "required": True, "min": 0, "max": 1}]
        assert commands["scale"]["params"][1]["dtype"] == "iuf"
        assert d["streams"] == [{"name": "counts", "doc": "a counter", "payload": "map",
                                 "clock_domain": "device"}]

    await run_spec_client(make_peer(), scenario)


async def test_lossless_subscription_with_credit() -> None:
    def scenario(c: SpecClient) -> None:
        c.hello()
        sub = c.call("qnhw.subscribe", stream="counts", mode="lossless", credit=4)
        assert sub["k"] == "rep" and sub["r"]["stream"] == "counts"
        first = sub["r"]["seq"]
        assert c.call("emit", n=10)["r"] == 10

        def is_event(m: dict[str, Any]) -> bool:
            return m["k"] in ("ev", "evs")

        events = c.events(4)
        assert c.quiet(is_event, 0.2)  # credit exhausted: the rest wait at the server
        c.send({"k": "credit", "s": "counts", "n": 6})
        events += c.events(6)  # a backlog: the server may send it as one evs batch
        assert [m["seq"] for m, _ in events] == list(range(first, first + 10))
        assert [m["p"]["i"] for m, _ in events] == list(range(10))
        assert all(m["s"] == "counts" and m["cd"] == "host" and _is_int(m["ts"])
                   for m, _ in events)
        assert all(n >= 2 for _, n in events)  # the 8 KiB payload arrays travel out of band
        np.testing.assert_array_equal(events[3][0]["p"]["blob"], np.full(1024, 3.0))
        ts = [m["ts"] for m, _ in events]
        assert ts == sorted(ts)
        unsub = c.call("qnhw.unsubscribe", stream="counts")
        assert unsub["k"] == "rep" and unsub["r"] is None
        c.call("emit", n=2)
        assert c.quiet(is_event, 0.1)
        bad = c.call("qnhw.subscribe", stream="nope")
        assert bad["code"] == BAD_PARAMS and bad["det"]["param"] == "stream"

    await run_spec_client(make_peer(), scenario)


async def test_fanout_over_sub_and_inline() -> None:
    def scenario(c: SpecClient) -> None:
        c.hello()
        sub = c.sock.context.socket(zmq.SUB)
        sub.linger = 0
        try:
            sub.connect(c.welcome["pub"])
            sub.setsockopt(zmq.SUBSCRIBE, b"counts\x00")
            frames: list[bytes] = []
            for _ in range(100):  # slow joiner: publish until the subscription is live
                c.call("emit", n=1)
                if sub.poll(20):
                    frames = sub.recv_multipart()
                    break
            assert frames and frames[0] == b"counts\x00"
            first = decode(frames[1:])
            assert first["k"] == "ev" and first["s"] == "counts" and first["cd"] == "host"
            while sub.poll(50):  # drain events of the joining phase
                first = decode(sub.recv_multipart()[1:])
            c.call("emit", n=5)
            got = []
            for _ in range(5):
                assert sub.poll(2000)
                parts = sub.recv_multipart()
                assert parts[0] == b"counts\x00" and len(parts) == 3  # topic, header, array
                got.append(decode(parts[1:]))
            assert [e["seq"] for e in got] == list(range(first["seq"] + 1, first["seq"] + 6))
        finally:
            sub.close(linger=0)

        # fan-out over the request link (what serial links use): no credit needed
        r = c.call("qnhw.subscribe", stream="counts", mode="fanout", credit=1)["r"]
        c.call("emit", n=3)
        evs = [ev for ev, _ in c.events(3)]
        assert [e["seq"] for e in evs] == [r["seq"], r["seq"] + 1, r["seq"] + 2]

    await run_spec_client(make_peer(), scenario)


# --- the reference client against the spec server ------------------------------------------


async def wait_until(cond: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def test_reference_client_against_spec_server() -> None:
    srv = SpecServer()
    srv.start()
    try:
        async with Client(srv.address, timeout=2.0, name="oracle",
                          contract={"name": "spec", "version": "1.1"}) as c:
            assert c.device == "spec-server" and c.welcome is not None
            assert c.welcome.epoch == srv.epoch and c.welcome.pub == srv.pub_address
            assert srv.log["hello"][0]["client"] == "oracle"
            assert await c.call("add", a=2, b=3) == 5

            small = await c.call("inspect_array", values=np.arange(10, dtype=np.int16))
            assert small == {"sum": 45, "dtype": "<i2", "shape": [10], "readonly": True,
                             "frames": 1}
            big = np.arange(5000, dtype=np.int64).reshape(50, 100)
            r = await c.call("inspect_array", values=big)  # > 4096 bytes: an array frame
            assert r["sum"] == int(big.sum()) and r["shape"] == [50, 100] and r["frames"] == 2

            t = await c.call("types")
            assert t["ts"] == Timestamp(123_456_789, "spec") and t["q"] == Quantity(2.5, "GHz")
            assert t["c"] == 1.5 - 2j and t["when"] == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            assert t["small"].tolist() == [0, 1, 2] and t["blob"] == b"\x00\x01"
            assert t["big"].dtype == np.dtype(">f8") and t["big"][-1] == 1023.0

            with pytest.raises(BadParams):
                await c.call("add", a="x", b=1)
            with pytest.raises(Busy):
                await c.call("busy")
            with pytest.raises(UnknownCommand):
                await c.call("nope")
            with pytest.raises(QnhwError) as info:
                await c.call("weird")
            assert info.value.details["code"] == 999

            # heartbeats: welcome.hb is 0.1 s; an idle client sends hb, the server echoes
            await asyncio.sleep(0.35)
            assert srv.log["hb"] and c.state is ConnectionState.CONNECTED

            # cancel: cancelling the awaiting task sends {"k": "cancel", "id": ...}
            task = asyncio.create_task(c.call("hang", timeout=5))
            await wait_until(lambda: any(m["m"] == "hang" for m in srv.log["req"]))
            hang_id = next(m["id"] for m in srv.log["req"] if m["m"] == "hang")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await wait_until(lambda: any(m["id"] == hang_id for m in srv.log["cancel"]))

            # lossless stream with credit: every event, in order, credit returned
            async with c.subscribe("ticks", mode=StreamMode.LOSSLESS, credit=4) as sub:
                assert await c.call("emit", n=10) == 10
                got = []
                async with asyncio.timeout(3):
                    async for ev in sub:
                        got.append(ev)
                        if len(got) == 10:
                            break
                assert [e.payload for e in got] == list(range(10))
                assert all(e.gap == 0 and not e.reset and e.domain == "spec" for e in got)
                assert [e.seq for e in got] == list(range(got[0].seq, got[0].seq + 10))
                await wait_until(lambda: sum(m["n"] for m in srv.log["credit"]) == 10)
                assert srv.log["batches"]  # some events arrived as evs batches

            # fan-out over the spec server's PUB socket
            async with c.subscribe("ticks") as fan:
                seen = None
                for _ in range(100):
                    await c.call("emit", n=1)
                    await asyncio.sleep(0.01)
                    if (seen := fan.get_nowait()) is not None:
                        break
                assert seen is not None and seen.stream == "ticks" and seen.domain == "spec"

            # the server forgets the session (a restart): NO_SESSION, then a new handshake
            old_epoch = srv.epoch
            await c.call("restart")
            with pytest.raises(NoSession):
                await c.call("add", a=1, b=1)
            await c.wait_for_state(ConnectionState.CONNECTED, timeout=3)
            assert await c.call("add", a=1, b=1) == 2
            assert c.welcome.epoch == srv.epoch != old_epoch and c.reconnects == 1
        await wait_until(lambda: bool(srv.log["bye"]))  # close() says goodbye
    finally:
        srv.close()
