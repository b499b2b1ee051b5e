"""The protocol's message types and their wire form (docs/protocol.md, "Messages").

Every message is one msgpack map (the header frame) with a string field ``"k"`` naming its
kind, optionally followed by out-of-band array frames. :func:`encode_message` and
:func:`decode_message` are pure functions over frames; decoding validates every field and raises
:class:`ProtocolError` for anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from qnhw.errors import MessageTooLarge, ProtocolError
from qnhw.protocol.codec import Buffer, pack, unpack
from qnhw.protocol.limits import DEFAULT_LIMITS, Limits

MAX_ID = 2**64 - 1
MAX_NAME = 256


@dataclass(slots=True)
class Hello:
    """Client -> server, first message of a session."""

    version: tuple[int, int]
    features: list[str] = field(default_factory=list)
    client: str = ""
    contract: dict[str, str] | None = None  # {"name", "version"} the client expects, if any


@dataclass(slots=True)
class Welcome:
    """Server -> client, answer to :class:`Hello`."""

    version: tuple[int, int]
    features: list[str]
    device: str
    epoch: int  # random per server start: a new value means the server restarted
    heartbeat: float  # seconds between heartbeats the server expects
    contract: dict[str, str] | None = None
    pub: str | None = None  # address of the fan-out (PUB) stream endpoint, if any
    limits: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Request:
    """Client -> server: call ``method`` with ``params``; ``deadline_us`` is the time budget."""

    id: int
    method: str
    params: dict[str, Any]
    deadline_us: int | None = None


@dataclass(slots=True)
class Reply:
    """Server -> client: the result of request ``id``."""

    id: int
    result: Any


@dataclass(slots=True)
class ErrorReply:
    """Either direction: request ``id`` (or, with ``id=None``, the session) failed."""

    id: int | None
    code: int
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Event:
    """Server -> client: one stream item with its sequence number and timestamp."""

    stream: str
    seq: int
    ts_ps: int
    domain: str
    payload: Any


@dataclass(slots=True)
class EventBatch:
    """Server -> client: consecutive events of one stream (``seq``, ``seq + 1``, ...).

    Sent on lossless subscriptions when several events wait for the same consumer, so that a
    backlog costs one message instead of many. ``ts_ps`` and ``payloads`` have equal length.
    """

    stream: str
    seq: int
    ts_ps: list[int]
    domain: str
    payloads: list[Any]


@dataclass(slots=True)
class Heartbeat:
    """Either direction: liveness. The server answers each client heartbeat with one."""

    nonce: int = 0


@dataclass(slots=True)
class Goodbye:
    """Either direction: the sender is closing the session."""

    reason: str = ""


@dataclass(slots=True)
class Cancel:
    """Client -> server: the caller gave up on request ``id``; the server may stop the work."""

    id: int


@dataclass(slots=True)
class Credit:
    """Client -> server: grant ``n`` more events of lossless ``stream``."""

    stream: str
    n: int


Message = (Hello | Welcome | Request | Reply | ErrorReply | Event | EventBatch | Heartbeat
           | Goodbye | Cancel | Credit)


def to_wire(msg: Message) -> dict[str, Any]:
    """The msgpack map of ``msg`` (before extension encoding)."""
    if isinstance(msg, Request):
        return {"k": "req", "id": msg.id, "m": msg.method, "p": msg.params, "dl": msg.deadline_us}
    if isinstance(msg, Reply):
        return {"k": "rep", "id": msg.id, "r": msg.result}
    if isinstance(msg, Event):
        return {"k": "ev", "s": msg.stream, "seq": msg.seq, "ts": msg.ts_ps, "cd": msg.domain,
                "p": msg.payload}
    if isinstance(msg, EventBatch):
        return {"k": "evs", "s": msg.stream, "seq": msg.seq, "ts": msg.ts_ps, "cd": msg.domain,
                "p": msg.payloads}
    if isinstance(msg, ErrorReply):
        return {"k": "err", "id": msg.id, "code": msg.code, "msg": msg.message,
                "det": msg.details}
    if isinstance(msg, Heartbeat):
        return {"k": "hb", "n": msg.nonce}
    if isinstance(msg, Hello):
        return {"k": "hello", "pv": list(msg.version), "feat": msg.features, "client": msg.client,
                "contract": msg.contract}
    if isinstance(msg, Welcome):
        return {"k": "welcome", "pv": list(msg.version), "feat": msg.features,
                "device": msg.device, "epoch": msg.epoch, "hb": msg.heartbeat,
                "contract": msg.contract, "pub": msg.pub, "limits": msg.limits}
    if isinstance(msg, Goodbye):
        return {"k": "bye", "why": msg.reason}
    if isinstance(msg, Cancel):
        return {"k": "cancel", "id": msg.id}
    if isinstance(msg, Credit):
        return {"k": "credit", "s": msg.stream, "n": msg.n}
    raise ProtocolError(f"not a protocol message: {type(msg).__name__}")


def encode_message(msg: Message, *, oob: bool = True) -> list[Buffer]:
    """Encode ``msg`` to frames: ``[header, *array_frames]``.

    With ``oob=False`` (byte-stream transports such as serial) every array is inline and the list
    has one frame. Raises :class:`ProtocolError` for unencodable values. Never blocks.
    """
    if oob:
        frames: list[Buffer] = []
        header = pack(to_wire(msg), frames)
        frames.insert(0, header)
        return frames
    return [pack(to_wire(msg))]


# --- decoding -------------------------------------------------------------------------------


def _get(d: dict[str, Any], key: str, kind: str) -> Any:
    try:
        return d[key]
    except KeyError:
        raise ProtocolError(f"{kind} message lacks field {key!r}") from None


def _int(d: dict[str, Any], key: str, kind: str, lo: int = 0, hi: int = MAX_ID) -> int:
    v = _get(d, key, kind)
    if type(v) is not int or not lo <= v <= hi:
        raise ProtocolError(f"{kind}.{key} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _opt_int(d: dict[str, Any], key: str, kind: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    return _int(d, key, kind)


def _str(d: dict[str, Any], key: str, kind: str, *, nonempty: bool = False,
         maxlen: int = MAX_NAME) -> str:
    v = _get(d, key, kind)
    if type(v) is not str or len(v) > maxlen or (nonempty and not v):
        raise ProtocolError(f"{kind}.{key} must be a {'non-empty ' if nonempty else ''}string "
                            f"of at most {maxlen} characters")
    return v


def _dict(d: dict[str, Any], key: str, kind: str, *, optional: bool = False) -> Any:
    v = d.get(key) if optional else _get(d, key, kind)
    if v is None and optional:
        return None
    if type(v) is not dict:
        raise ProtocolError(f"{kind}.{key} must be a map")
    return v


def _version(d: dict[str, Any], kind: str) -> tuple[int, int]:
    v = _get(d, "pv", kind)
    if (type(v) is not list or len(v) != 2
            or not all(type(x) is int and 0 <= x < 65536 for x in v)):
        raise ProtocolError(f"{kind}.pv must be [major, minor] integers")
    return (v[0], v[1])


def _features(d: dict[str, Any], kind: str) -> list[str]:
    v = d.get("feat", [])
    if type(v) is not list or not all(type(x) is str for x in v):
        raise ProtocolError(f"{kind}.feat must be a list of strings")
    return v


def _contract(d: dict[str, Any], kind: str) -> dict[str, str] | None:
    v = _dict(d, "contract", kind, optional=True)
    if v is None:
        return None
    if set(v) != {"name", "version"} or not all(type(x) is str for x in v.values()):
        raise ProtocolError(f"{kind}.contract must be {{name: str, version: str}}")
    return v  # type: ignore[no-any-return]


def from_wire(d: Any) -> Message:
    """Validate a decoded header map and build its message. Raises :class:`ProtocolError`."""
    if type(d) is not dict:
        raise ProtocolError("a message must be a msgpack map")
    k = d.get("k")
    if k == "req":
        # the hot path checks inline; anything off goes through the helpers for the message
        rid, m, p, dl = d.get("id"), d.get("m"), d.get("p"), d.get("dl")
        if (type(rid) is int and 1 <= rid <= MAX_ID and type(m) is str
                and 0 < len(m) <= MAX_NAME and type(p) is dict
                and (dl is None or (type(dl) is int and 0 <= dl <= MAX_ID))):
            return Request(rid, m, p, dl)
        dl = _opt_int(d, "dl", "req")
        return Request(_int(d, "id", "req", 1), _str(d, "m", "req", nonempty=True),
                       _dict(d, "p", "req"), dl)
    if k == "rep":
        rid = d.get("id")
        if type(rid) is int and 1 <= rid <= MAX_ID and "r" in d:
            return Reply(rid, d["r"])
        return Reply(_int(d, "id", "rep", 1), _get(d, "r", "rep"))
    if k == "ev":
        return Event(_str(d, "s", "ev", nonempty=True), _int(d, "seq", "ev"),
                     _int(d, "ts", "ev", -(2**63), 2**63 - 1), _str(d, "cd", "ev", nonempty=True),
                     _get(d, "p", "ev"))
    if k == "evs":
        ts, payloads = _get(d, "ts", "evs"), _get(d, "p", "evs")
        if (type(ts) is not list or type(payloads) is not list or not ts
                or len(ts) != len(payloads)):
            raise ProtocolError("evs.ts and evs.p must be non-empty lists of equal length")
        for t in ts:
            if type(t) is not int or not -(2**63) <= t < 2**63:
                raise ProtocolError("evs.ts must hold int64 picoseconds")
        return EventBatch(_str(d, "s", "evs", nonempty=True),
                          _int(d, "seq", "evs", 0, 2**63 - 1), ts,
                          _str(d, "cd", "evs", nonempty=True), payloads)
    if k == "err":
        rid = d.get("id")
        if rid is not None and (type(rid) is not int or not 1 <= rid <= MAX_ID):
            raise ProtocolError("err.id must be a positive integer or nil")
        det = _dict(d, "det", "err", optional=True) or {}
        return ErrorReply(rid, _int(d, "code", "err", 0, 65535),
                          _str(d, "msg", "err", maxlen=1 << 16), det)
    if k == "hb":
        return Heartbeat(_int(d, "n", "hb") if "n" in d else 0)
    if k == "hello":
        return Hello(_version(d, "hello"), _features(d, "hello"),
                     _str(d, "client", "hello") if "client" in d else "", _contract(d, "hello"))
    if k == "welcome":
        hb = _get(d, "hb", "welcome")
        if type(hb) not in (int, float) or not 0 < hb < 3600:
            raise ProtocolError("welcome.hb must be a number of seconds in (0, 3600)")
        pub = d.get("pub")
        if pub is not None and type(pub) is not str:
            raise ProtocolError("welcome.pub must be a string or nil")
        limits = _dict(d, "limits", "welcome", optional=True) or {}
        return Welcome(_version(d, "welcome"), _features(d, "welcome"),
                       _str(d, "device", "welcome"), _int(d, "epoch", "welcome"), float(hb),
                       _contract(d, "welcome"), pub, limits)
    if k == "bye":
        return Goodbye(_str(d, "why", "bye", maxlen=1 << 16) if "why" in d else "")
    if k == "cancel":
        return Cancel(_int(d, "id", "cancel", 1))
    if k == "credit":
        return Credit(_str(d, "s", "credit", nonempty=True), _int(d, "n", "credit", 1, 1 << 30))
    raise ProtocolError(f"unknown message kind {k!r}")


def peek_id(header: Buffer) -> int | None:
    """The ``id`` of a message that failed to decode, if it can be read cheaply and safely.

    Looks at no more than the first 8 map entries and skips values without building them, so
    an endpoint can address its error reply to the request that caused it. Never raises.
    """
    try:
        unpacker = msgpack.Unpacker(max_buffer_size=len(header), raw=False, max_str_len=64,
                                    max_bin_len=0, max_array_len=0, max_map_len=64,
                                    max_ext_len=0)
        unpacker.feed(header)
        entries = unpacker.read_map_header()
        for _ in range(min(entries, 8)):
            key = unpacker.unpack()
            if key == "id":
                value = unpacker.unpack()
                return value if type(value) is int and 1 <= value <= MAX_ID else None
            unpacker.skip()
    except Exception:
        return None
    return None


def decode_message(frames: Sequence[Buffer], limits: Limits = DEFAULT_LIMITS) -> Message:
    """Decode one message from its frames (header first). Raises :class:`ProtocolError` only."""
    if len(frames) == 1:  # the common case (unpack bounds the size)
        return from_wire(unpack(frames[0], frames, limits))
    if not frames:
        raise ProtocolError("empty message")
    if len(frames) > limits.max_frames:
        raise MessageTooLarge(f"message has {len(frames)} frames, limit {limits.max_frames}")
    total = 0
    for f in frames:
        total += len(f)
    if total > limits.max_message:
        raise MessageTooLarge(f"message of {total} bytes exceeds limit {limits.max_message}")
    return from_wire(unpack(frames[0], frames, limits))
