"""Client: the async connection every driver is built on.

One DEALER socket carries requests, replies, heartbeats and lossless stream events; a SUB socket
(created on the first fan-out subscription) carries fan-out events. Both are driven from the
asyncio loop through :class:`qnhw.transport.LoopSocket`. Many calls may be in flight; replies
match by id, so a call that timed out or was cancelled never disturbs later ones.

Liveness: the client sends a heartbeat when it has heard nothing for ``heartbeat`` seconds and
declares the peer dead after ``dead_after`` seconds of silence, or at once when ZeroMQ reports the
TCP/IPC connection gone. Then every pending call fails with :class:`ConnectionLost`, the client
reconnects with back-off, handshakes again and restores its subscriptions; calls made meanwhile
wait for the connection within their own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any

import zmq

from qnhw.contract.spec import check_contract_compatible
from qnhw.errors import (
    ConnectionLost,
    ContractMismatch,
    DeadlineExceeded,
    ErrorCode,
    MessageTooLarge,
    NoSession,
    ProtocolError,
    QnhwError,
    Unauthorized,
    UnknownCommand,
    VersionMismatch,
    error_from_code,
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
    Message,
    Reply,
    Welcome,
    decode_message,
    encode_message,
    peek_id,
)
from qnhw.protocol.version import FEATURES, PROTOCOL_VERSION, check_compatible
from qnhw.runtime.auth import CurveClient, apply_client
from qnhw.runtime.state import ConnectionState, StateCell
from qnhw.runtime.streams import StreamMode, Subscription
from qnhw.runtime.tasks import BackgroundTasks
from qnhw.transport.link import Link, LinkOptions, open_link
from qnhw.transport.zmq_loop import LoopSocket

_FATAL = (VersionMismatch, ContractMismatch, Unauthorized)


class Client:
    """An async connection to one device endpoint.

    ``address``: tcp://, ipc:// or inproc:// endpoint of a :class:`DeviceServer`, or a
    ``serial:`` address of a device on a serial line (docs/serial.md).
    ``timeout``: default per-call deadline in seconds. ``connect_timeout``: how long
    :meth:`connect` waits for the handshake. ``heartbeat`` / ``dead_after``: liveness, seconds.
    ``reconnect``: reconnect automatically after the peer is lost (else the client closes).
    ``contract``: ``{"name", "version"}`` the device must be compatible with.
    ``curve``: keys for an encrypted, authenticated connection.
    """

    def __init__(self, address: str, *, timeout: float = 5.0, connect_timeout: float = 5.0,
                 heartbeat: float = 1.0, dead_after: float | None = None,
                 reconnect: bool = True, name: str = "",
                 contract: Mapping[str, str] | None = None,
                 curve: CurveClient | None = None, limits: Limits = DEFAULT_LIMITS,
                 context: zmq.Context[Any] | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.heartbeat = heartbeat
        self.dead_after = dead_after if dead_after is not None else 3 * heartbeat
        self.reconnect = reconnect
        self.name = name
        self.expected_contract = dict(contract) if contract is not None else None
        self.limits = limits
        self._curve = curve
        self._ctx = context or zmq.Context.instance()
        self._state = StateCell()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._link: Link | None = None
        self._sub: LoopSocket | None = None
        self._sub_address: str | None = None
        self._subs: dict[str, Subscription] = {}
        self._handshake: asyncio.Future[Welcome] | None = None
        self._last_rx = 0.0
        self._last_tx = 0.0
        self._deadlines: list[tuple[float, int, str, float]] = []
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._deadline_at = 0.0
        self._fatal: QnhwError | None = None
        self._closed = False
        self.welcome: Welcome | None = None
        self.reconnects = 0
        self._log = get_logger("client", endpoint=address, client=name or None)
        self._tasks = BackgroundTasks(self._log)
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- state ----------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state.value

    async def wait_for_state(self, *states: ConnectionState,
                             timeout: float | None = None) -> ConnectionState:
        """Wait until the connection is in one of ``states``; raises TimeoutError after
        ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            return await self._state.wait_for(*states)

    def watch_state(self) -> AsyncIterator[ConnectionState]:
        """Async iterator over the connection state: the current one, then each change."""
        return self._state.watch()

    @property
    def device(self) -> str:
        return self.welcome.device if self.welcome else ""

    # --- lifecycle ------------------------------------------------------------------------

    async def connect(self) -> Client:
        """Connect and handshake; returns self. Raises :class:`ConnectionLost` when no server
        answers within ``connect_timeout``, :class:`VersionMismatch`, :class:`ContractMismatch`
        or :class:`Unauthorized`."""
        if self.state is not ConnectionState.IDLE:
            raise RuntimeError(f"connect() on a client in state {self.state.value}")
        self._loop = asyncio.get_running_loop()
        self._state.set(ConnectionState.CONNECTING)
        try:
            await self._open(self.connect_timeout)
        except BaseException:
            self._close_sockets()
            self._state.set(ConnectionState.CLOSED)
            raise
        self._tasks.spawn(self._supervise())
        return self

    async def close(self) -> None:
        """Say goodbye, fail pending calls with :class:`ConnectionLost`, close every socket,
        end every subscription. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._link is not None and self.state is ConnectionState.CONNECTED:
            with contextlib.suppress(QnhwError):
                self._send(Goodbye("client closing"))
        self._state.set(ConnectionState.CLOSED)
        self._fail_pending(ConnectionLost("client closed"))
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self._deadlines.clear()
        await self._tasks.cancel_all()
        for sub in list(self._subs.values()):
            sub._terminate()
        self._subs.clear()
        self._close_sockets()

    async def __aenter__(self) -> Client:
        if self.state is ConnectionState.IDLE:
            await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _close_sockets(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
        if self._sub is not None:
            self._sub.close()
            self._sub = None
            self._sub_address = None

    async def _open(self, timeout: float) -> None:
        """Open the link, send hello and wait for welcome."""
        loop = asyncio.get_running_loop()
        self._handshake = loop.create_future()
        self._link = open_link(self.address, self._on_frames, self._on_link_lost,
                               LinkOptions(self.limits, self._curve, self._ctx))
        contract = self.expected_contract
        self._send(Hello(PROTOCOL_VERSION, list(FEATURES), self.name,
                         dict(contract) if contract else None))
        try:
            async with asyncio.timeout(timeout):
                welcome = await self._handshake
        except TimeoutError:
            raise ConnectionLost(f"no answer from {self.address} within {timeout:g} s",
                                 {"address": self.address}) from None
        finally:
            self._handshake = None
        check_compatible(welcome.version)
        if self.expected_contract is not None:
            check_contract_compatible(self.expected_contract, welcome.contract)
        new_server = self.welcome is not None and self.welcome.epoch != welcome.epoch
        self.welcome = welcome
        self._last_rx = time.monotonic()
        self.heartbeat = min(self.heartbeat, welcome.heartbeat)
        self._state.set(ConnectionState.CONNECTED)
        self._log.info("connected", device=welcome.device, epoch=welcome.epoch)
        await self._restore_subscriptions(new_server)

    # --- liveness and reconnect -----------------------------------------------------------

    async def _supervise(self) -> None:
        while self.state is not ConnectionState.CLOSED:
            await asyncio.sleep(self.heartbeat / 2)
            if self.state is not ConnectionState.CONNECTED or self._link is None:
                continue
            now = time.monotonic()
            idle = now - self._last_rx
            if idle > self.dead_after:
                self._lost(f"no message from the server for {idle:.2f} s")
            elif idle >= self.heartbeat or now - self._last_tx >= self.heartbeat:
                # heartbeat when the server is silent (is it alive?) and when we are (so the
                # server keeps our session while we only receive)
                with contextlib.suppress(QnhwError):
                    self._send(Heartbeat())

    def _lost(self, reason: str) -> None:
        """The peer is gone: fail pending calls now, reconnect in the background."""
        if self.state is not ConnectionState.CONNECTED:
            return
        self._log.warning("connection lost", reason=reason)
        self._fail_pending(ConnectionLost(f"connection to {self.address} lost: {reason}"))
        self._close_sockets()
        if not self.reconnect:
            self._state.set(ConnectionState.CLOSED)
            for sub in self._subs.values():
                sub._terminate()
            return
        self._state.set(ConnectionState.RECONNECTING)
        self._tasks.spawn(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.05
        while self.state is ConnectionState.RECONNECTING:
            try:
                await self._open(max(self.dead_after, 0.5))
            except _FATAL as exc:
                self._log.error("reconnect refused", error=str(exc))
                self._fatal = exc
                self._close_sockets()
                self._state.set(ConnectionState.CLOSED)
                return
            except Exception as exc:  # typed errors and transport errors alike: retry
                self._close_sockets()
                self._log.info("reconnect attempt failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                self.reconnects += 1
                return

    def _fail_pending(self, exc: QnhwError) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(type(exc)(exc.message, exc.details))

    def _on_link_lost(self, err: QnhwError) -> None:
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(err)
        else:
            self._lost(err.message)

    def _send(self, msg: Message) -> None:
        """Send one message on the link (raises Busy / ConnectionLost)."""
        link = self._link
        if link is None:
            raise ConnectionLost(f"not connected to {self.address}")
        link.send(encode_message(msg, oob=link.oob))
        self._last_tx = time.monotonic()

    # --- incoming -------------------------------------------------------------------------

    def _on_frames(self, frames: list[Any]) -> None:
        try:
            msg = decode_message(frames, self.limits)
        except ProtocolError as exc:
            self._log.warning("bad message from server", error=str(exc))
            fut = self._pending.pop(peek_id(frames[0]) or 0, None) if frames else None
            if fut is not None and not fut.done():  # the call it answers fails, typed, now
                fut.set_exception(exc)
            return
        self._last_rx = time.monotonic()
        if isinstance(msg, Reply):
            fut = self._pending.pop(msg.id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg.result)
        elif isinstance(msg, EventBatch):
            sub = self._subs.get(msg.stream)
            if sub is not None:
                sub._push_batch(msg)
        elif isinstance(msg, Event):
            sub = self._subs.get(msg.stream)
            if sub is not None:
                sub._push(msg)
        elif isinstance(msg, ErrorReply):
            self._on_error(msg)
        elif isinstance(msg, Welcome):
            if self._handshake is not None and not self._handshake.done():
                self._handshake.set_result(msg)
        elif isinstance(msg, Goodbye):
            self._lost(f"server said goodbye: {msg.reason}")

    def _on_error(self, msg: ErrorReply) -> None:
        err = error_from_code(msg.code, msg.message, msg.details)
        if msg.id is not None:
            fut = self._pending.pop(msg.id, None)
            if fut is not None and not fut.done():
                fut.set_exception(err)
            if msg.code == ErrorCode.NO_SESSION:
                self._lost("server has no session for this client")
            return
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(err)
        elif msg.code == ErrorCode.NO_SESSION:
            self._lost("server has no session for this client")
        else:
            self._log.warning("error from server", code=msg.code, error=msg.message)

    def _on_sub_frames(self, frames: list[Any]) -> None:
        try:
            msg = decode_message(frames[1:], self.limits)
        except ProtocolError as exc:
            self._log.warning("bad stream message", error=str(exc))
            return
        if type(msg) is Event:
            sub = self._subs.get(msg.stream)
            if sub is not None and sub.mode is StreamMode.FANOUT:
                sub._push(msg)

    # --- calls ----------------------------------------------------------------------------

    def call(self, method: str, /, *, timeout: float | None = None,
             **params: Any) -> Coroutine[Any, Any, Any]:
        """``await client.call(method, **params)``: call ``method`` with keyword ``params``.

        Exactly :meth:`request` (returns its coroutine, saving a frame on the hot path); use
        :meth:`request` for a parameter named ``timeout``."""
        return self.request(method, params, timeout=timeout)

    async def request(self, method: str, params: Mapping[str, Any], /, *,
                      timeout: float | None = None) -> Any:
        """Call ``method`` with ``params``; return its result.

        Waits at most ``timeout`` seconds (default: the client's ``timeout``), including any
        wait for a reconnect. Raises the typed :class:`QnhwError` subclass matching the remote
        error code, :class:`DeadlineExceeded` on timeout, :class:`ConnectionLost` if the
        connection drops while the call is in flight. Cancelling the awaiting task sends a
        cancel to the server; the connection stays usable either way.
        """
        t = self.timeout if timeout is None else timeout
        if self._state.value is not ConnectionState.CONNECTED:
            await self._await_connected(method, t)
        link = self._link
        loop = self._loop
        assert link is not None and loop is not None
        rid = next(self._ids)
        # the wire map of a Request (messages.to_wire), built directly on this hot path
        wire = {"k": "req", "id": rid, "m": method,
                "p": params if type(params) is dict else dict(params), "dl": max(1, int(t * 1e6))}
        if link.oob:
            frames: list[Any] = []
            frames.insert(0, pack(wire, frames))
        else:
            frames = [pack(wire)]
        if len(frames) > 1 or len(frames[0]) > 65536:
            self._check_size(method, frames)
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[rid] = fut
        try:
            link.send(frames)
        except QnhwError:
            del self._pending[rid]
            raise
        now = time.monotonic()
        self._last_tx = now
        self._arm_deadline(now + t, rid, method, t)
        try:
            return await fut
        except asyncio.CancelledError:
            if self._pending.pop(rid, None) is not None and self._link is link:
                with contextlib.suppress(QnhwError):
                    link.send(encode_message(Cancel(rid), oob=link.oob))
            raise
        finally:
            self._pending.pop(rid, None)

    def _arm_deadline(self, deadline: float, rid: int, method: str, timeout: float) -> None:
        """Track a call's deadline. One loop timer serves all calls: the earliest deadline."""
        heap = self._deadlines
        while heap and heap[0][1] not in self._pending:  # answered calls: drop lazily
            heapq.heappop(heap)
        heapq.heappush(heap, (deadline, rid, method, timeout))
        if self._deadline_timer is None or deadline < self._deadline_at:
            if self._deadline_timer is not None:
                self._deadline_timer.cancel()
            assert self._loop is not None
            self._deadline_at = deadline
            self._deadline_timer = self._loop.call_at(
                self._loop.time() + max(0.0, deadline - time.monotonic()), self._expire_due)

    def _expire_due(self) -> None:
        self._deadline_timer = None
        now = time.monotonic()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, rid, method, timeout = heapq.heappop(heap)
            fut = self._pending.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_exception(DeadlineExceeded(f"{method}: no reply within {timeout:g} s",
                                                   {"timeout": timeout}))
        while heap and heap[0][1] not in self._pending:  # answered calls: drop lazily
            heapq.heappop(heap)
        if heap and self._loop is not None and not self._loop.is_closed():
            self._deadline_at = heap[0][0]
            self._deadline_timer = self._loop.call_at(
                self._loop.time() + max(0.0, heap[0][0] - now), self._expire_due)

    def _check_size(self, method: str, frames: list[Any]) -> None:
        """Refuse locally what the server would refuse: larger than its advertised limit."""
        size = sum(len(f) for f in frames)
        server_max = self.welcome.limits.get("max_message") if self.welcome else None
        limit = min(self.limits.max_message, server_max or self.limits.max_message)
        if size > limit:
            raise MessageTooLarge(f"{method}: request of {size} bytes exceeds the limit of "
                                  f"{limit} bytes", {"size": size, "limit": limit})

    async def _await_connected(self, method: str, timeout: float) -> None:
        if self._state.value in (ConnectionState.CLOSED, ConnectionState.IDLE):
            if self._fatal is not None:
                raise type(self._fatal)(self._fatal.message, self._fatal.details)
            raise ConnectionLost(f"client is {self.state.value}; cannot call {method!r}")
        try:
            state = await self.wait_for_state(ConnectionState.CONNECTED, ConnectionState.CLOSED,
                                              timeout=timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"{method}: not reconnected within {timeout:g} s") from None
        if state is ConnectionState.CLOSED:
            raise ConnectionLost(f"client closed; cannot call {method!r}")

    async def describe(self, timeout: float | None = None) -> dict[str, Any]:
        """The server's ``describe`` reply (commands, params, streams, capabilities)."""
        result: dict[str, Any] = await self.call("qnhw.describe", timeout=timeout)
        return result

    async def ping(self, timeout: float | None = None) -> dict[str, Any]:
        """Round trip to the server; returns its clock reading and domain."""
        result: dict[str, Any] = await self.call("qnhw.ping", timeout=timeout)
        return result

    # --- streams --------------------------------------------------------------------------

    def subscribe(self, stream: str, *, mode: StreamMode | str = StreamMode.FANOUT,
                  maxsize: int = 4096, credit: int = 256) -> Subscription:
        """A :class:`Subscription` to ``stream`` (opened on ``async with`` or first iteration).

        ``mode``: "fanout" (PUB/SUB; losses reported as gaps) or "lossless" (credit-based flow
        control; the device waits for a slow consumer). ``maxsize``: fan-out events buffered
        locally. ``credit``: lossless events in flight.
        """
        mode = StreamMode(mode)
        if stream in self._subs and not self._subs[stream].closed:
            raise ValueError(f"already subscribed to {stream!r} on this client")
        if maxsize < 1 or credit < 1:
            raise ValueError("maxsize and credit must be >= 1")
        return Subscription(self, stream, mode, maxsize, credit)

    async def _attach(self, sub: Subscription) -> None:
        self._subs[sub.stream] = sub
        try:
            await self._subscribe_remote(sub)
        except BaseException:
            self._subs.pop(sub.stream, None)
            sub._terminate()
            raise

    async def _subscribe_remote(self, sub: Subscription) -> None:
        if sub.mode is StreamMode.LOSSLESS or self.welcome is None or self.welcome.pub is None:
            # lossless streams, and fan-out on links without a PUB endpoint (serial), come
            # over the request link itself
            reply = await self.call("qnhw.subscribe", stream=sub.stream, credit=sub.credit,
                                    mode=sub.mode.value)
            if sub._last_seq is None and isinstance(reply, dict):
                seq = reply.get("seq")
                if isinstance(seq, int) and seq > 0:
                    sub._last_seq = seq - 1
            return
        self._ensure_sub_socket()
        if self._sub is not None:
            self._sub.sock.setsockopt(zmq.SUBSCRIBE, sub.stream.encode() + b"\0")
        # the next sequence number, asked after subscribing: events published before the SUB
        # socket has joined show up as a gap instead of vanishing unnoticed
        try:
            info = await self.call("qnhw.stream", stream=sub.stream)
        except UnknownCommand:  # a server without qnhw.stream: no early-gap detection
            info = None
        seq = info.get("seq") if isinstance(info, dict) else None
        if sub._last_seq is None and isinstance(seq, int) and seq > 0:
            sub._last_seq = seq - 1

    def _ensure_sub_socket(self) -> None:
        pub = self.welcome.pub if self.welcome else None
        if pub is None:
            raise ConnectionLost(f"{self.address} offers no fan-out endpoint")
        if self._sub is not None and self._sub_address == pub:
            return
        if self._sub is not None:
            self._sub.close()
        sock = self._ctx.socket(zmq.SUB)
        sock.linger = 0
        sock.rcvhwm = 10000
        sock.maxmsgsize = self.limits.max_message + 65536
        if self._curve is not None:
            apply_client(sock, self._curve)
        sock.connect(pub)
        for name, s in self._subs.items():
            if s.mode is StreamMode.FANOUT:
                sock.setsockopt(zmq.SUBSCRIBE, name.encode() + b"\0")
        self._sub = LoopSocket(sock, self._on_sub_frames, loop=asyncio.get_running_loop(),
                               copy=False)
        self._sub_address = pub

    async def _restore_subscriptions(self, new_server: bool) -> None:
        subs = [s for s in self._subs.values() if not s.closed]
        if not subs:
            return
        inline = self.welcome is None or self.welcome.pub is None
        if not inline and any(s.mode is StreamMode.FANOUT for s in subs):
            self._ensure_sub_socket()
        for sub in subs:
            if new_server:
                sub._restarted(None)
            if sub.mode is StreamMode.LOSSLESS or inline:
                self._tasks.spawn(self._resubscribe(sub))

    async def _resubscribe(self, sub: Subscription) -> None:
        try:
            await self.call("qnhw.subscribe", stream=sub.stream, credit=sub.credit,
                            mode=sub.mode.value)
        except QnhwError as exc:
            self._log.warning("resubscribe failed", stream=sub.stream, error=str(exc))

    async def _detach(self, sub: Subscription) -> None:
        if self._subs.get(sub.stream) is not sub:
            return
        del self._subs[sub.stream]
        if self.state is not ConnectionState.CONNECTED:
            return
        if sub.mode is StreamMode.LOSSLESS or self._sub is None:
            with contextlib.suppress(QnhwError):
                await self.call("qnhw.unsubscribe", stream=sub.stream, timeout=1.0)
        else:
            self._sub.sock.setsockopt(zmq.UNSUBSCRIBE, sub.stream.encode() + b"\0")

    def _grant(self, stream: str, n: int) -> None:
        if self._link is not None and self.state is ConnectionState.CONNECTED:
            with contextlib.suppress(QnhwError):
                self._send(Credit(stream, n))


__all__ = ["Client", "NoSession"]
