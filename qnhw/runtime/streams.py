"""Client-side stream subscriptions: fan-out or lossless, with gap and reset detection."""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import TYPE_CHECKING, Any, NamedTuple

from qnhw.protocol.messages import Event, EventBatch
from qnhw.protocol.types import Timestamp

if TYPE_CHECKING:
    from qnhw.runtime.client import Client


#: Seconds a caught-up lossless consumer waits before returning less than half its credit.
ACK_DELAY = 0.001


class StreamMode(enum.Enum):
    """How a subscription receives events (docs/protocol.md, "Streams")."""

    FANOUT = "fanout"  # PUB/SUB: never slows the device; losses surface as sequence gaps
    LOSSLESS = "lossless"  # over the request connection with credit: nothing lost, ever


class StreamEvent(NamedTuple):
    """One event as the consumer sees it (immutable).

    ``ts_ps``: integer picoseconds in clock domain ``domain``. ``gap``: events missing right
    before this one (0 when none). ``reset``: the sequence restarted (the server restarted);
    events between may be lost.
    """

    stream: str
    seq: int
    ts_ps: int
    domain: str
    payload: Any
    gap: int = 0
    reset: bool = False

    @property
    def timestamp(self) -> Timestamp:
        return Timestamp(self.ts_ps, self.domain)


class Subscription:
    """An async iterator of :class:`StreamEvent` for one stream of one client.

    Use ``async with client.subscribe("tags") as sub: async for ev in sub: ...``. Iteration ends
    when the subscription or the client is closed. In fan-out mode at most ``maxsize`` events
    wait in memory; older ones are dropped and counted (they show up as a gap). In lossless mode
    the server sends only as many events as the consumer granted credit for.
    """

    def __init__(self, client: Client, stream: str, mode: StreamMode, maxsize: int,
                 credit: int) -> None:
        self.client = client
        self.stream = stream
        self.mode = mode
        self.maxsize = maxsize
        self.credit = credit
        self.received = 0  # events delivered to the consumer
        self.missed = 0  # events known lost (sum of gaps)
        self.dropped_local = 0  # fan-out events dropped because the consumer was slow
        self.resets = 0
        self._queue: deque[tuple[int, int, str, Any]] = deque()  # seq, ts_ps, domain, payload
        self._waiter: asyncio.Future[None] | None = None
        self._last_seq: int | None = None
        self._expect_reset = False
        self._consumed = 0
        self._ack_timer: asyncio.TimerHandle | None = None
        self._opened = False
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def open(self) -> None:
        """Subscribe at the server (lossless) or on the SUB socket (fan-out). Idempotent."""
        if not self._opened:
            self._opened = True
            await self.client._attach(self)

    async def close(self) -> None:
        """Unsubscribe and end iteration. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._wake()
        await self.client._detach(self)

    async def __aenter__(self) -> Subscription:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StreamEvent:
        if not self._opened:
            await self.open()
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._take()

    def get_nowait(self) -> StreamEvent | None:
        """The next queued event, or ``None`` when none is waiting."""
        return self._take() if self._queue else None

    def _take(self) -> StreamEvent:
        seq, ts, domain, payload = self._queue.popleft()
        gap, reset = 0, False
        last = self._last_seq
        if last is not None:
            if seq > last + 1:
                gap = seq - last - 1
            elif seq <= last:
                reset = True
        if self._expect_reset:
            reset, self._expect_reset = True, False
        if reset:
            self.resets += 1
        self._last_seq = seq
        self.missed += gap
        self.received += 1
        if self.mode is StreamMode.LOSSLESS:
            self._consumed += 1
            if self._consumed >= max(1, self.credit // 2):
                self._return_credit()
            elif not self._queue and self._ack_timer is None:
                # the consumer caught up: the server may have stopped early at its byte
                # window, so ack soon even below half the credit (coalesced over 1 ms)
                self._ack_timer = asyncio.get_running_loop().call_later(
                    ACK_DELAY, self._return_credit)
        return StreamEvent(self.stream, seq, ts, domain, payload, gap, reset)

    def _terminate(self) -> None:
        """End iteration without telling the server (the connection is gone or closing)."""
        self._closed = True
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._wake()

    def _return_credit(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if self._consumed and not self._closed:
            self.client._grant(self.stream, self._consumed)
            self._consumed = 0

    def _push(self, ev: Event) -> None:
        if self._closed:
            return
        if self.mode is StreamMode.FANOUT and len(self._queue) >= self.maxsize:
            self._queue.popleft()
            self.dropped_local += 1
        self._queue.append((ev.seq, ev.ts_ps, ev.domain, ev.payload))
        if self._waiter is not None:
            self._wake()

    def _push_batch(self, batch: EventBatch) -> None:
        if self._closed:
            return
        seq, domain = batch.seq, batch.domain
        self._queue.extend((seq + i, ts, domain, p)
                           for i, (ts, p) in enumerate(zip(batch.ts_ps, batch.payloads,
                                                           strict=True)))
        if self.mode is StreamMode.FANOUT:
            while len(self._queue) > self.maxsize:
                self._queue.popleft()
                self.dropped_local += 1
        if self._waiter is not None:
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _restarted(self, next_seq: int | None) -> None:
        """The server was re-subscribed after a reconnect; flag the next event."""
        self._expect_reset = True
        self._consumed = 0
        if next_seq is not None:
            self._last_seq = None
