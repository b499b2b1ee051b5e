"""DeviceServer: serves a device's commands and streams over ZeroMQ.

Sockets: a ROUTER for requests, replies and lossless streams, and a PUB for fan-out streams
(docs/protocol.md, "Sockets and frames"). Everything runs on one asyncio loop; sockets are driven
through :class:`qnhw.transport.LoopSocket`. Plain-function handlers run inline (fastest); async
handlers run as tasks, so a slow handler never blocks other calls. Parameters are validated
against each command's :class:`qnhw.contract.Param` definitions before the handler sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from qnhw.contract.spec import Command, Contract, Param, StreamSpec
from qnhw.errors import (
    BadParams,
    Busy,
    DeadlineExceeded,
    ErrorCode,
    InternalError,
    NoSession,
    ProtocolError,
    QnhwError,
    UnknownCommand,
    VersionMismatch,
)
from qnhw.log import get_logger
from qnhw.protocol.codec import pack
from qnhw.protocol.limits import DEFAULT_LIMITS, Limits
from qnhw.protocol.messages import (
    Cancel,
    Credit,
    ErrorReply,
    Event,
    EventBatch,
    Goodbye,
    Heartbeat,
    Hello,
    Request,
    Welcome,
    decode_message,
    encode_message,
    peek_id,
)
from qnhw.protocol.version import FEATURES, PROTOCOL_VERSION, check_compatible
from qnhw.runtime.auth import CurveServer, ZapHandler, apply_server
from qnhw.transport.zmq_loop import LoopSocket, pub_address_for

Handler = Callable[..., Any]
BUILTIN_PREFIX = "qnhw."
MAX_BATCH = 256  # events per EventBatch message
MAX_ERROR_TEXT = 4096  # characters of an error message that travel
BATCH_BYTES = 4 * 1024 * 1024  # approximate payload bytes per EventBatch message
WINDOW_BYTES = 32 * 1024 * 1024  # approximate unacknowledged bytes per lossless subscriber


def _approx_size(payload: Any) -> int:
    """Cheap size estimate of an event payload, in bytes, for batching."""
    if isinstance(payload, np.ndarray):
        return payload.nbytes
    if isinstance(payload, dict):
        return 64 + sum(v.nbytes if isinstance(v, np.ndarray) else 16 for v in payload.values())
    if isinstance(payload, bytes | str):
        return len(payload)
    return 64


def host_clock_ps() -> int:
    """Host monotonic time in integer picoseconds since this process first asked.

    int64 picoseconds span only +-106 days, so no domain can count from the Unix epoch; the
    ``host`` domain of a server counts from process start, and ``describe`` reports that epoch
    as Unix nanoseconds (``clock_epoch_unix_ns``) for whoever needs wall time.
    """
    return (time.monotonic_ns() - _HOST_EPOCH_MONO_NS) * 1000


_HOST_EPOCH_MONO_NS = time.monotonic_ns()
_HOST_EPOCH_UNIX_NS = time.time_ns()


@dataclass
class _Entry:
    spec: Command
    handler: Handler
    is_async: bool


@dataclass
class _LosslessSub:
    """A stream subscription carried on the session's own connection.

    Lossless: events wait in ``queue`` until the client grants credit. Fan-out (clients whose
    link has no PUB socket, e.g. serial bridges): sent when possible, else dropped (a gap).
    """

    stream: str
    credit: int
    lossless: bool = True
    queue: deque[tuple[int, int, Any]] = field(default_factory=deque)  # (seq, ts_ps, payload)
    inflight: deque[int] = field(default_factory=deque)  # approx. bytes of each unacked event
    inflight_bytes: int = 0
    flush_soon: bool = False  # a coalescing flush is scheduled for this loop iteration

    def acked(self, n: int) -> None:
        """The consumer returned ``n`` credits: its oldest ``n`` events are consumed."""
        self.credit += n
        for _ in range(min(n, len(self.inflight))):
            self.inflight_bytes -= self.inflight.popleft()


@dataclass
class _Session:
    ident: bytes
    client: str
    last_seen: float
    batches: bool = False  # the client announced the "event-batch" feature
    tasks: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    subs: dict[str, _LosslessSub] = field(default_factory=dict)


class DeviceServer:
    """One device endpoint.

    ``address``: where the ROUTER binds (tcp/ipc/inproc; loopback by default; port 0 picks a free
    port, see :attr:`address` after :meth:`start`). ``pub_address``: the fan-out endpoint, by
    default derived from ``address``; ``None`` disables fan-out streams. ``heartbeat``: seconds
    between heartbeats announced to clients; a session silent for ``session_timeout`` seconds is
    dropped (its tasks cancelled, its lossless subscriptions freed). ``lossless_buffer``: events
    queued per lossless subscriber before :meth:`publish` waits.
    """

    def __init__(self, name: str, address: str = "tcp://127.0.0.1:0", *,
                 pub_address: str | None = "auto",
                 contract: Contract | None = None,
                 capabilities: dict[str, Any] | None = None,
                 heartbeat: float = 1.0, session_timeout: float = 5.0,
                 limits: Limits = DEFAULT_LIMITS, curve: CurveServer | None = None,
                 clock: Callable[[], int] = host_clock_ps, clock_domain: str = "host",
                 lossless_buffer: int = 256,
                 context: zmq.Context[Any] | None = None) -> None:
        self.name = name
        self._bind = address
        self._pub_bind = pub_address_for(address) if pub_address == "auto" else pub_address
        self.contract = contract
        self.capabilities: dict[str, Any] = dict(capabilities or {})
        self.heartbeat = heartbeat
        self.session_timeout = session_timeout
        self.limits = limits
        self._curve = curve
        self.clock = clock
        self.clock_domain = clock_domain
        self._lossless_buffer = lossless_buffer
        self._ctx = context
        self._own_ctx = False
        self._commands: dict[str, _Entry] = {}
        self._streams: dict[str, StreamSpec] = {}
        self._seq: dict[str, int] = {}
        self._sessions: dict[bytes, _Session] = {}
        self._drops: dict[bytes, int] = {}  # messages a peer's full queue refused, per peer
        self._router: LoopSocket | None = None
        self._pub: LoopSocket | None = None
        self._zap: ZapHandler | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._space = asyncio.Event()
        self.epoch = secrets.randbits(63)
        self.address = address
        self.pub_address: str | None = None
        self._log = get_logger("server", device=name)
        if contract is not None:
            for s in contract.streams:
                self.add_stream(s)

    # --- registration ---------------------------------------------------------------------

    def add_command(self, spec: Command, handler: Handler) -> None:
        """Register ``handler`` for ``spec``. It is called with validated keyword arguments.

        A plain function runs inline on the loop and must return quickly; a coroutine function
        runs as a task.
        """
        if spec.name.startswith(BUILTIN_PREFIX):
            raise ValueError(f"command names starting with {BUILTIN_PREFIX!r} are reserved")
        self._commands[spec.name] = _Entry(spec, handler, inspect.iscoroutinefunction(handler))

    def command(self, name: str | None = None, *, params: Iterable[Param] = (), doc: str = "",
                returns: str = "") -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add_command`; the docstring is the default ``doc``."""

        def register(fn: Handler) -> Handler:
            spec = Command(name or fn.__name__, tuple(params),
                           doc or inspect.getdoc(fn) or "", returns)
            self.add_command(spec, fn)
            return fn

        return register

    def implement(self, handlers: object) -> None:
        """Register the methods of ``handlers`` named after every command of the contract.

        Raises ``ValueError`` naming the commands that ``handlers`` lacks.
        """
        if self.contract is None:
            raise ValueError("implement() needs a server created with a contract")
        missing = [c.name for c in self.contract.commands if not hasattr(handlers, c.name)]
        if missing:
            raise ValueError(f"{type(handlers).__name__} lacks commands {missing}")
        for c in self.contract.commands:
            self.add_command(c, getattr(handlers, c.name))

    def add_stream(self, spec: StreamSpec) -> None:
        self._streams[spec.name] = spec
        self._seq.setdefault(spec.name, 0)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the sockets and start serving. Returns once bound; does not block."""
        loop = asyncio.get_running_loop()
        if self._ctx is None:
            if self._curve is not None:  # own context: its ZAP handler is ours alone
                self._ctx = zmq.Context()
                self._own_ctx = True
            else:
                self._ctx = zmq.Context.instance()
        if self._curve is not None:
            self._zap = ZapHandler(self._ctx, self._curve, self.name)
        router = self._ctx.socket(zmq.ROUTER)
        router.linger = 0
        router.router_mandatory = 1
        router.sndhwm = 10000
        router.rcvhwm = 10000
        router.maxmsgsize = self.limits.max_message + 65536
        if self._curve is not None:
            apply_server(router, self._curve, self.name)
        self.address = await _bind_retrying(router, self._bind)
        self._router = LoopSocket(router, self._on_router, loop=loop, copy=True)
        if self._pub_bind is not None:
            pub = self._ctx.socket(zmq.PUB)
            pub.linger = 0
            pub.sndhwm = 1000
            if self._curve is not None:
                apply_server(pub, self._curve, self.name)
            self.pub_address = await _bind_retrying(pub, self._pub_bind)
            self._pub = LoopSocket(pub, None, loop=loop)
        self._sweeper = loop.create_task(self._sweep())
        self._log.info("serving", endpoint=self.address, pub=self.pub_address)

    async def stop(self) -> None:
        """Say goodbye to every session, cancel running handlers and close every socket."""
        if self._router is None:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        bye = encode_message(Goodbye("server stopping"))
        for ident in list(self._sessions):
            with contextlib.suppress(zmq.ZMQError):
                self._router.send([ident, *bye])
            self._drop_session(ident)
        await asyncio.sleep(0)
        self._router.close(linger=100)
        self._router = None
        if self._pub is not None:
            self._pub.close()
            self._pub = None
        if self._zap is not None:
            self._zap.close()
        if self._own_ctx and self._ctx is not None:
            self._ctx.term()
        self._space.set()
        self._log.info("stopped", endpoint=self.address)

    async def __aenter__(self) -> DeviceServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until cancelled; stops cleanly on cancellation."""
        if self._router is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    @property
    def sessions(self) -> int:
        """Number of live client sessions."""
        return len(self._sessions)

    # --- streams --------------------------------------------------------------------------

    def _lossless_full(self, stream: str) -> bool:
        for s in self._sessions.values():
            sub = s.subs.get(stream)
            if sub is not None and sub.lossless and len(sub.queue) >= self._lossless_buffer:
                return True
        return False

    def publish_nowait(self, stream: str, payload: Any, ts_ps: int | None = None) -> int:
        """Publish one event now; returns its sequence number.

        Fan-out subscribers that are too slow lose events (they see the gap). Raises
        :class:`Busy` (nothing published) when a lossless subscriber's buffer is full, and
        :class:`UnknownCommand` for an undeclared stream.
        """
        seq = self._seq.get(stream)
        if seq is None:
            raise UnknownCommand(f"no stream named {stream!r}")
        if self._lossless_full(stream):
            raise Busy(f"lossless subscriber of {stream!r} is full")
        self._seq[stream] = seq + 1
        ts = self.clock() if ts_ps is None else ts_ps
        frames: list[Any] | None = None
        if self._pub is not None:
            frames = encode_message(Event(stream, seq, ts, self.clock_domain, payload))
            with contextlib.suppress(zmq.Again):  # PUB drops rather than block: a gap
                self._pub.send([stream.encode() + b"\0", *frames])
        for session in self._sessions.values():
            sub = session.subs.get(stream)
            if sub is None:
                continue
            if not sub.lossless:
                if frames is None:
                    frames = encode_message(Event(stream, seq, ts, self.clock_domain, payload))
                self._send(session.ident, frames)
            else:
                sub.queue.append((seq, ts, payload))
                if sub.credit <= 0:
                    continue
                if len(sub.queue) >= min(sub.credit, MAX_BATCH) or not session.batches:
                    self._flush(session, sub)
                elif not sub.flush_soon:
                    # coalesce: events published in this loop iteration go out as one batch
                    sub.flush_soon = True
                    asyncio.get_running_loop().call_soon(self._flush_later, session, sub)
        return seq

    def _flush_later(self, session: _Session, sub: _LosslessSub) -> None:
        sub.flush_soon = False
        if self._sessions.get(session.ident) is session and session.subs.get(sub.stream) is sub:
            self._flush(session, sub)

    async def publish(self, stream: str, payload: Any, ts_ps: int | None = None) -> int:
        """Publish one event, waiting while a lossless subscriber's buffer is full."""
        while self._lossless_full(stream):
            self._space.clear()
            await self._space.wait()
        return self.publish_nowait(stream, payload, ts_ps)

    def _flush(self, session: _Session, sub: _LosslessSub) -> None:
        """Send queued events as far as credit allows; a backlog goes as event batches."""
        queue = sub.queue
        while sub.credit > 0 and queue and sub.inflight_bytes < WINDOW_BYTES:
            n = min(sub.credit, len(queue), MAX_BATCH if session.batches else 1)
            sizes = [_approx_size(queue[0][2])]
            budget = BATCH_BYTES - sizes[0]
            while len(sizes) < n and budget > 0:
                sizes.append(_approx_size(queue[len(sizes)][2]))
                budget -= sizes[-1]
            n = len(sizes)
            if n == 1:
                seq, ts, payload = queue[0]
                msg: Event | EventBatch = Event(sub.stream, seq, ts, self.clock_domain, payload)
            else:
                items = [queue[i] for i in range(n)]
                msg = EventBatch(sub.stream, items[0][0], [it[1] for it in items],
                                 self.clock_domain, [it[2] for it in items])
            try:
                frames = encode_message(msg)
            except ProtocolError as exc:
                self._log.error("event cannot be encoded; dropped", stream=sub.stream,
                                error=str(exc))
                for _ in range(n):
                    queue.popleft()
                continue
            if not self._send(session.ident, frames):
                break
            for _ in range(n):
                queue.popleft()
            sub.credit -= n
            sub.inflight.extend(sizes)
            sub.inflight_bytes += sum(sizes)
        self._space.set()

    # --- incoming -------------------------------------------------------------------------

    def _send(self, ident: bytes, frames: list[Any]) -> bool:
        assert self._router is not None
        try:
            self._router.send([ident, *frames])
            return True
        except zmq.Again:
            # a client that stopped reading: log the 1st, 2nd, 4th, 8th, ... drop, not each
            n = self._drops[ident] = self._drops.get(ident, 0) + 1
            if n & (n - 1) == 0:
                self._log.warning("client not reading; message not sent", peer=ident.hex(),
                                  dropped=n)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                self._drop_session(ident)
            else:
                self._log.warning("send failed", peer=ident.hex(), error=str(exc))
        return False

    def _reply_error(self, ident: bytes, rid: int | None, err: QnhwError) -> None:
        if self._router is None:
            return
        self._send(ident, encode_message(
            ErrorReply(rid, int(err.code), err.message[:MAX_ERROR_TEXT], _plain(err.details))))

    def _on_router(self, frames: list[Any]) -> None:
        ident = frames[0]
        if len(frames) < 2:
            return
        try:
            msg = decode_message(frames[1:], self.limits)
        except ProtocolError as exc:
            self._log.warning("bad message", peer=ident.hex(), error=str(exc))
            self._reply_error(ident, peek_id(frames[1]), exc)
            return
        session = self._sessions.get(ident)
        if session is not None:
            session.last_seen = time.monotonic()
        if type(msg) is Request:
            if session is None:
                self._reply_error(ident, msg.id, NoSession("no session: send hello first"))
            else:
                self._on_request(session, msg)
        elif type(msg) is Heartbeat:
            if session is None:
                self._reply_error(ident, None, NoSession("no session: send hello first"))
            else:
                self._send(ident, encode_message(msg))
        elif type(msg) is Hello:
            self._on_hello(ident, msg)
        elif type(msg) is Credit:
            sub = session.subs.get(msg.stream) if session is not None else None
            if session is not None and sub is not None:
                sub.acked(msg.n)
                self._flush(session, sub)
        elif type(msg) is Cancel:
            task = session.tasks.get(msg.id) if session is not None else None
            if task is not None:
                task.cancel()
        elif type(msg) is Goodbye:
            self._drop_session(ident)
        else:
            self._reply_error(ident, None, ProtocolError(
                f"a server does not accept {type(msg).__name__} messages"))

    def _on_hello(self, ident: bytes, msg: Hello) -> None:
        try:
            check_compatible(msg.version)
        except VersionMismatch as exc:
            self._log.warning("version mismatch", peer=ident.hex(), peer_version=msg.version)
            self._reply_error(ident, None, exc)
            return
        if ident in self._sessions:
            self._drop_session(ident)
        self._sessions[ident] = _Session(ident, msg.client, time.monotonic(),
                                         "event-batch" in msg.features)
        self._log.info("session opened", peer=ident.hex(), client=msg.client)
        self._send(ident, encode_message(Welcome(
            PROTOCOL_VERSION, list(FEATURES), self.name, self.epoch, self.heartbeat,
            self.contract.ref if self.contract else None, self.pub_address,
            {"max_message": self.limits.max_message, "max_frames": self.limits.max_frames})))

    def _drop_session(self, ident: bytes) -> None:
        self._drops.pop(ident, None)
        session = self._sessions.pop(ident, None)
        if session is None:
            return
        for task in session.tasks.values():
            task.cancel()
        if session.subs:
            self._space.set()
        self._log.info("session closed", peer=ident.hex(), client=session.client)

    def _on_request(self, session: _Session, req: Request) -> None:
        if req.method.startswith(BUILTIN_PREFIX):
            try:
                result = self._builtin(session, req)
            except QnhwError as exc:
                self._reply_error(session.ident, req.id, exc)
            else:
                self._reply(session.ident, req.id, result)
            return
        entry = self._commands.get(req.method)
        if entry is None:
            self._reply_error(session.ident, req.id, UnknownCommand(
                f"no command named {req.method!r}", {"command": req.method}))
            return
        try:
            params = entry.spec.validate(req.params)
        except BadParams as exc:
            self._reply_error(session.ident, req.id, exc)
            return
        if entry.is_async:
            task = asyncio.get_running_loop().create_task(
                self._run_async(session, req, entry.handler, params))
            session.tasks[req.id] = task
            return
        try:
            result = entry.handler(**params)
        except QnhwError as exc:
            self._reply_error(session.ident, req.id, exc)
            return
        except Exception as exc:
            self._reply_error(session.ident, req.id, self._internal(req, exc))
            return
        self._reply(session.ident, req.id, result)

    def _reply(self, ident: bytes, rid: int, result: Any) -> None:
        try:
            frames: list[Any] = []  # the wire map of a Reply, built directly on this hot path
            frames.insert(0, pack({"k": "rep", "id": rid, "r": result}, frames))
        except ProtocolError as exc:
            self._log.error("handler result cannot be encoded", request=rid, error=str(exc))
            frames = encode_message(ErrorReply(rid, int(ErrorCode.INTERNAL),
                                               f"result cannot be encoded: {exc.message}", {}))
        else:
            size = sum(len(f) for f in frames) if len(frames) > 1 or len(frames[0]) > 65536 \
                else 0
            if size > self.limits.max_message:
                self._log.error("reply too large", request=rid, size=size)
                frames = encode_message(ErrorReply(
                    rid, int(ErrorCode.TOO_LARGE), f"reply of {size} bytes exceeds the limit of "
                    f"{self.limits.max_message} bytes", {"size": size}))
        self._send(ident, frames)

    def _internal(self, req: Request, exc: BaseException) -> InternalError:
        self._log.error("handler raised", request=req.id, command=req.method,
                        error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        return InternalError(f"{req.method} failed: {type(exc).__name__}: {exc}")

    async def _run_async(self, session: _Session, req: Request, handler: Handler,
                         params: dict[str, Any]) -> None:
        try:
            if req.deadline_us is not None:
                async with asyncio.timeout(req.deadline_us / 1e6):
                    result = await handler(**params)
            else:
                result = await handler(**params)
        except TimeoutError:
            self._reply_error(session.ident, req.id, DeadlineExceeded(
                f"{req.method} did not finish within {req.deadline_us / 1e6:g} s"
                if req.deadline_us is not None else f"{req.method} timed out"))
        except asyncio.CancelledError:
            pass  # the caller cancelled or the session ended: nobody waits for a reply
        except QnhwError as exc:
            self._reply_error(session.ident, req.id, exc)
        except Exception as exc:
            self._reply_error(session.ident, req.id, self._internal(req, exc))
        else:
            if self._router is not None:
                self._reply(session.ident, req.id, result)
        finally:
            session.tasks.pop(req.id, None)

    # --- built-in methods -----------------------------------------------------------------

    def _builtin(self, session: _Session, req: Request) -> Any:
        method, p = req.method, req.params
        if method == "qnhw.describe":
            return self.describe()
        if method == "qnhw.ping":
            return {"time_ps": self.clock(), "domain": self.clock_domain}
        if method == "qnhw.subscribe":
            stream, credit, mode = p.get("stream"), p.get("credit", 64), p.get("mode", "lossless")
            if not isinstance(stream, str) or stream not in self._streams:
                raise BadParams(f"no stream named {stream!r}",
                                {"param": "stream", "streams": sorted(self._streams)})
            if type(credit) is not int or not 1 <= credit <= 1 << 20:
                raise BadParams("credit must be an int in [1, 1048576]", {"param": "credit"})
            if mode not in ("lossless", "fanout"):
                raise BadParams("mode must be 'lossless' or 'fanout'", {"param": "mode"})
            session.subs[stream] = _LosslessSub(stream, credit, mode == "lossless")
            return {"stream": stream, "seq": self._seq[stream]}
        if method == "qnhw.stream":
            stream = p.get("stream")
            if not isinstance(stream, str) or stream not in self._streams:
                raise BadParams(f"no stream named {stream!r}",
                                {"param": "stream", "streams": sorted(self._streams)})
            return {"stream": stream, "seq": self._seq[stream],
                    "clock_domain": self.clock_domain}
        if method == "qnhw.unsubscribe":
            stream = p.get("stream")
            if isinstance(stream, str) and session.subs.pop(stream, None) is not None:
                self._space.set()
            return None
        raise UnknownCommand(f"no built-in method {method!r}", {"command": method})

    def describe(self) -> dict[str, Any]:
        """The ``describe`` reply: device, versions, commands, streams, capabilities."""
        return {
            "device": self.name,
            "protocol": list(PROTOCOL_VERSION),
            "features": list(FEATURES),
            "contract": self.contract.ref if self.contract else None,
            "commands": [e.spec.describe() for e in self._commands.values()],
            "streams": [s.describe() for s in self._streams.values()],
            "capabilities": self.capabilities,
            "clock_domain": self.clock_domain,
            "clock_epoch_unix_ns": _HOST_EPOCH_UNIX_NS if self.clock is host_clock_ps else None,
        }

    # --- housekeeping ---------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            cutoff = time.monotonic() - self.session_timeout
            for ident in [i for i, s in self._sessions.items() if s.last_seen < cutoff]:
                self._log.info("session expired", peer=ident.hex())
                self._drop_session(ident)


def _bind(sock: zmq.Socket[Any], address: str) -> str:
    """Bind ``sock``; return the concrete endpoint (tcp port 0 or * resolved)."""
    if address.startswith("tcp://") and address.endswith((":0", ":*")):
        address = address.rsplit(":", 1)[0] + ":*"
    sock.bind(address)
    endpoint = sock.getsockopt(zmq.LAST_ENDPOINT)
    assert isinstance(endpoint, bytes)
    return endpoint.decode()


async def _bind_retrying(sock: zmq.Socket[Any], address: str, patience: float = 2.0) -> str:
    """:func:`_bind`, retrying for up to ``patience`` seconds while the address is in use
    (a server restarted on the same port while ZeroMQ still closes the old socket)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return _bind(sock, address)
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                sock.close(linger=0)
                raise
        await asyncio.sleep(0.05)


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    """Error details reduced to what the codec can always carry."""
    out: dict[str, Any] = {}
    for k, v in details.items():
        try:
            pack(v)
        except ProtocolError:
            v = repr(v)
        out[str(k)] = v
    return out


__all__ = ["DeviceServer", "host_clock_ps"]
