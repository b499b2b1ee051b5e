"""Lab time: one clock for the whole emulated lab, virtual or wall.

Every device of a lab reads and spends time through one :class:`LabClock`. Lab time is integer
picoseconds since the lab started (``now_ps``); it is the *true* time of the lab's physics (a
memory decoheres over lab time) and has no clock errors -- the per-node clock domains that
devices timestamp in are :class:`emulators.lab.clocks.NodeClock` readings of it.

Two implementations, one interface:

:class:`VirtualClock` (``time = "virtual"``)
    Deterministic and faster than real time. Lab time stands still unless something moves it:

    * a **request** that spends time (a gate, a readout, ``entangle``, ``count``, the lab time
      service's ``advance``) advances the clock at once by that amount: the operation takes
      that long in lab time and no wall time. Operations of concurrent requests are serialized
      in the order the lab receives them (the clock has one advancer at a time);
    * a **background** wait (a scheduled trigger, a pending herald window, a deadline) is a
      timer: it fires when lab time passes it, moved by requests or by the idle advance;
    * the **idle advance**: when no request has arrived or completed for ``idle_advance`` wall
      seconds, the clock jumps to the next timer or the next stream batch of an armed producer.
      This is how a client that *waits for an event* (a trigger it scheduled, a herald, a tag
      batch) gets it without spending time itself. ``idle_advance = 0`` turns it off: then only
      requests move time.

    While the clock passes events it fires them in time order and yields to the event loop
    after each, so a task woken by a timer runs while ``now_ps`` equals the timer's time.

:class:`WallClock` (``time = "wall"``)
    Lab time is the host's monotonic time since the lab started; spending time sleeps; timers
    are loop timers; stream producers are flushed every ``tick`` of wall time. Memories
    decohere while the client thinks.

Stream producers (an armed source, a streaming tagger, an armed heralding station) register a
:class:`Ticker`: a callback ``(t0_ps, t1_ps)`` that generates whatever happened in the lab-time
slice ``[t0, t1)``. The clock calls active tickers at every multiple of ``tick`` (in priority
order: producers of photons before their consumers) and whenever a consumer needs the world up
to date (:meth:`LabClock.flush`).

A handler runs *as a request* when the lab's handler wrapper registered its task with
:meth:`LabClock.request`; :meth:`LabClock.spend` from any other task (a device's background
task) waits instead of advancing, so a device that sleeps in the background until a trigger
time never drags the lab clock along.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from qnhw.log import get_logger

PS_PER_S = 10**12
TimeMode = Literal["virtual", "wall"]

#: Loop iterations the virtual clock yields after firing events, so woken tasks run "at" them.
SETTLE_YIELDS = 4
#: Consecutive tick boundaries the virtual clock visits one by one before merging the rest
#: of a long advance into one slice per ticker.
MAX_SEPARATE_TICKS = 64


def to_ps(seconds: float) -> int:
    """Seconds to integer picoseconds (rounded)."""
    return round(seconds * PS_PER_S)


@dataclass(eq=False)
class Timer:
    """A lab-time timer from :meth:`LabClock.call_at`; :meth:`cancel` stops it."""

    t_ps: int
    callback: Callable[[], None]
    cancelled: bool = False
    handle: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()


@dataclass(eq=False)
class Ticker:
    """A stream producer's periodic callback ``(t0_ps, t1_ps)`` over lab-time slices.

    ``priority``: lower runs first at a shared boundary (photon sources before detectors).
    ``active``: only active tickers run; :meth:`start` resets the slice origin to ``t_ps``.
    ``pulls``: whether the virtual clock's idle advance may jump to this ticker's next batch.
    """

    name: str
    callback: Callable[[int, int], None]
    priority: int = 0
    pulls: bool = True
    active: bool = False
    last_ps: int = 0

    def start(self, t_ps: int) -> None:
        self.active = True
        self.last_ps = t_ps

    def stop(self) -> None:
        self.active = False

    def run_to(self, t_ps: int) -> None:
        """Run the callback over ``[last, t_ps)`` if that slice is not empty."""
        if not self.active or t_ps <= self.last_ps:
            return
        t0, self.last_ps = self.last_ps, t_ps
        try:
            self.callback(t0, t_ps)
        except Exception as exc:  # a producer bug must not stop the lab clock
            get_logger("lab.time").error("ticker failed", ticker=self.name, error=repr(exc),
                                         exc_info=exc)


class LabClock(ABC):
    """The lab's clock (see the module docstring); ``tick``: stream batch period, seconds."""

    mode: TimeMode

    def __init__(self, *, tick: float = 0.01) -> None:
        if not tick > 0:
            raise ValueError("tick must be > 0")
        self.tick_ps = to_ps(tick)
        self._tickers: list[Ticker] = []
        self._requests: set[asyncio.Task[object]] = set()
        self.activity = 0
        self.busy = 0  # requests running and not waiting on the lab clock
        self._log = get_logger("lab.time", mode=self.mode)

    # --- reading ------------------------------------------------------------------------

    @abstractmethod
    def now_ps(self) -> int:
        """Lab time, integer picoseconds since the lab started."""

    def now(self) -> float:
        """Lab time in seconds."""
        return self.now_ps() / PS_PER_S

    # --- requests -----------------------------------------------------------------------

    def note_activity(self) -> None:
        """Something happened on the lab's endpoints (a request arrived or finished)."""
        self.activity += 1

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Mark the current task as running a request for the duration of the block."""
        task = asyncio.current_task()
        self.activity += 1
        if task is None:
            yield
            return
        self._requests.add(task)
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            self._requests.discard(task)
            self.activity += 1

    @contextlib.contextmanager
    def blocked(self) -> Iterator[None]:
        """Within a request: the block waits on lab time (or on another request), so the lab
        may be idle meanwhile (the virtual clock's idle advance may run)."""
        if not self.in_request():
            yield
            return
        self.busy -= 1
        try:
            yield
        finally:
            self.busy += 1

    def in_request(self) -> bool:
        """Whether the current task runs a request (see :meth:`request`)."""
        task = asyncio.current_task()
        return task is not None and task in self._requests

    # --- waiting ------------------------------------------------------------------------

    async def spend(self, seconds: float) -> None:
        """Let ``seconds`` of lab time pass for the caller (see :meth:`until`)."""
        await self.until(self.now_ps() + max(0, to_ps(seconds)))

    @abstractmethod
    async def until(self, t_ps: int) -> None:
        """Block the caller until lab time ``t_ps``.

        Virtual time: a request advances the clock to ``t_ps`` (after any advance in
        progress); anything else waits for the clock to get there. Wall time: sleeps.
        """

    @abstractmethod
    async def wait_until(self, t_ps: int) -> None:
        """Wait, without advancing the clock, until lab time reaches ``t_ps``."""

    @abstractmethod
    def call_at(self, t_ps: int, callback: Callable[[], None]) -> Timer:
        """Call ``callback()`` (a plain function) when lab time reaches ``t_ps``."""

    # --- stream producers ---------------------------------------------------------------

    def add_ticker(self, name: str, callback: Callable[[int, int], None], *,
                   priority: int = 0, pulls: bool = True) -> Ticker:
        """Register a stream producer (inactive until :meth:`Ticker.start`)."""
        ticker = Ticker(name, callback, priority, pulls)
        self._tickers.append(ticker)
        self._tickers.sort(key=lambda t: t.priority)
        return ticker

    def remove_ticker(self, ticker: Ticker) -> None:
        ticker.stop()
        with contextlib.suppress(ValueError):
            self._tickers.remove(ticker)

    def flush(self, t_ps: int | None = None) -> None:
        """Run every active ticker up to ``t_ps`` (default: now), producers first."""
        t = self.now_ps() if t_ps is None else min(t_ps, self.now_ps())
        for ticker in list(self._tickers):
            ticker.run_to(t)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:  # noqa: B027  (optional hook)
        """Start background work (the idle advance, the wall-time ticker)."""

    async def stop(self) -> None:  # noqa: B027  (optional hook)
        """Stop background work."""


class VirtualClock(LabClock):
    """Deterministic virtual lab time (module docstring). ``idle_advance``: wall seconds of
    inactivity before the clock jumps to the next pending event; 0 disables it."""

    mode: TimeMode = "virtual"

    def __init__(self, *, tick: float = 0.01, idle_advance: float = 0.005) -> None:
        super().__init__(tick=tick)
        if idle_advance < 0:
            raise ValueError("idle_advance must be >= 0")
        self.idle_advance = idle_advance
        self._now = 0
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self.jumps = 0  # idle advances made (for tests and the status table)

    def now_ps(self) -> int:
        return self._now

    # --- timers -------------------------------------------------------------------------

    def call_at(self, t_ps: int, callback: Callable[[], None]) -> Timer:
        timer = Timer(int(t_ps), callback)
        heapq.heappush(self._heap, (timer.t_ps, next(self._seq), timer))
        return timer

    async def wait_until(self, t_ps: int) -> None:
        if t_ps <= self._now:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_at(t_ps, lambda: _resolve(fut, None))
        try:
            with self.blocked():
                await fut
        finally:
            timer.cancel()

    async def until(self, t_ps: int) -> None:
        if not self.in_request():
            await self.wait_until(t_ps)
            return
        with self.blocked():
            await self._lock.acquire()
        try:
            await self._advance_to(max(self._now, int(t_ps)))
        finally:
            self._lock.release()

    async def advance(self, seconds: float) -> None:
        """Advance lab time by ``seconds`` now (the lab time service's ``advance``)."""
        async with self._lock:
            await self._advance_to(self._now + max(0, to_ps(seconds)))

    def _next_timer(self) -> int | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _next_tick(self, pulling_only: bool = False) -> int | None:
        active = [t for t in self._tickers if t.active and (t.pulls or not pulling_only)]
        if not active:
            return None
        last = min(t.last_ps for t in active)
        return (last // self.tick_ps + 1) * self.tick_ps

    def next_event(self) -> int | None:
        """The lab time of the next timer or pulling stream batch (``None``: nothing)."""
        times = [t for t in (self._next_timer(), self._next_tick(True)) if t is not None]
        return min(times) if times else None

    async def _advance_to(self, target: int) -> None:
        """Move the clock to ``target`` firing timers and tick boundaries in order (lock
        held)."""
        while True:
            t_timer = self._next_timer()
            t_tick = self._next_tick()
            stop = target if t_timer is None else min(target, t_timer)
            if t_tick is not None and t_tick <= stop:
                n = (stop - t_tick) // self.tick_ps
                boundary = t_tick + (n * self.tick_ps if n >= MAX_SEPARATE_TICKS else 0)
                self._now = boundary
                for ticker in list(self._tickers):
                    ticker.run_to(boundary)
                await asyncio.sleep(0)
                continue
            if t_timer is None or t_timer > target:
                break
            self._now = t_timer
            while self._heap and self._heap[0][0] == t_timer:
                timer = heapq.heappop(self._heap)[2]
                if not timer.cancelled:
                    try:
                        timer.callback()
                    except Exception as exc:
                        self._log.error("timer callback failed", error=repr(exc),
                                        exc_info=exc)
            for _ in range(SETTLE_YIELDS):
                await asyncio.sleep(0)
        self._now = max(self._now, target)

    # --- idle advance -------------------------------------------------------------------

    async def start(self) -> None:
        if self.idle_advance > 0 and self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch(),
                                                                   name="lab-idle-advance")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def _watch(self) -> None:
        seen = self.activity
        while True:
            await asyncio.sleep(self.idle_advance)
            if self.activity != seen or self.busy > 0 or self._lock.locked():
                seen = self.activity
                continue
            for _ in range(SETTLE_YIELDS):  # let messages already delivered be handled
                await asyncio.sleep(0)
            if self.activity != seen:
                seen = self.activity
                continue
            target = self.next_event()
            if target is None:
                continue
            async with self._lock:
                self.jumps += 1
                await self._advance_to(max(target, self._now))
            seen = self.activity


class WallClock(LabClock):
    """Real lab time (module docstring): monotonic seconds since the lab started."""

    mode: TimeMode = "wall"

    def __init__(self, *, tick: float = 0.01) -> None:
        super().__init__(tick=tick)
        self._t0 = time.monotonic_ns()
        self._runner: asyncio.Task[None] | None = None

    def now_ps(self) -> int:
        return (time.monotonic_ns() - self._t0) * 1000

    async def until(self, t_ps: int) -> None:
        await self.wait_until(t_ps)

    async def wait_until(self, t_ps: int) -> None:
        delay = (t_ps - self.now_ps()) / PS_PER_S
        if delay > 0:
            with self.blocked():
                await asyncio.sleep(delay)

    def call_at(self, t_ps: int, callback: Callable[[], None]) -> Timer:
        timer = Timer(int(t_ps), callback)
        delay = max(0.0, (t_ps - self.now_ps()) / PS_PER_S)
        timer.handle = asyncio.get_running_loop().call_later(delay, callback)
        return timer

    async def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(),
                                                                  name="lab-wall-ticker")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None

    async def _run(self) -> None:
        period = self.tick_ps / PS_PER_S
        while True:
            await asyncio.sleep(period)
            self.flush()


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def make_clock(mode: TimeMode, *, tick: float = 0.01, idle_advance: float = 0.005) -> LabClock:
    """A :class:`VirtualClock` or :class:`WallClock`."""
    if mode == "virtual":
        return VirtualClock(tick=tick, idle_advance=idle_advance)
    if mode == "wall":
        return WallClock(tick=tick)
    raise ValueError(f"time mode must be 'virtual' or 'wall', not {mode!r}")


__all__ = ["PS_PER_S", "SETTLE_YIELDS", "LabClock", "Ticker", "TimeMode", "Timer",
           "VirtualClock", "WallClock", "make_clock", "to_ps"]
