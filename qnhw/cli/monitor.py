"""``qnhw monitor ADDRESS STREAM``: a live view of one stream.

Shows the event rate, the total received, sequence gaps (events lost, e.g. by a slow fan-out
consumer), restarts of the stream, and the last payloads. On a terminal the view redraws in
place every ``--interval`` seconds; otherwise (a pipe, a log) each event is printed as one line
and a summary follows at the end. ``--count`` and ``--duration`` bound the run; Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

from qnhw.cli.describe import add_connection_args, error_line, short
from qnhw.errors import QnhwError
from qnhw.runtime.client import Client
from qnhw.runtime.streams import StreamEvent, Subscription


@dataclass
class Stats:
    """What the monitor has seen of a stream."""

    stream: str
    started: float = field(default_factory=time.monotonic)
    received: int = 0
    missed: int = 0
    resets: int = 0
    last_seq: int | None = None
    last_ts: int | None = None
    domain: str = ""
    window: deque[float] = field(default_factory=lambda: deque(maxlen=10000))
    last: deque[StreamEvent] = field(default_factory=lambda: deque(maxlen=5))

    def add(self, ev: StreamEvent) -> None:
        self.received += 1
        self.missed += ev.gap
        self.resets += int(ev.reset)
        self.last_seq, self.last_ts, self.domain = ev.seq, ev.ts_ps, ev.domain
        self.window.append(time.monotonic())
        self.last.append(ev)

    def rate(self, span: float = 2.0) -> float:
        """Events per second over the last ``span`` seconds."""
        now = time.monotonic()
        recent = [t for t in self.window if now - t <= span]
        elapsed = min(span, now - self.started)
        return len(recent) / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        mean = self.received / elapsed if elapsed > 0 else 0.0
        return (f"{self.stream}: {self.received} events in {elapsed:.1f} s ({mean:.1f}/s), "
                f"gaps: {self.missed} missed, {self.resets} resets, last seq "
                f"{self.last_seq if self.last_seq is not None else '-'}")


def event_line(ev: StreamEvent, width: int = 160) -> str:
    """One line per event: sequence, timestamp, gap/reset markers, payload summary."""
    flags = (f" GAP {ev.gap}" if ev.gap else "") + (" RESET" if ev.reset else "")
    return f"#{ev.seq} t={ev.ts_ps} ps @{ev.domain}{flags} {short(ev.payload, width)}"


def panel(stats: Stats, sub: Subscription, mode: str) -> str:
    """The live view's text."""
    lines = [
        f"stream {stats.stream} ({mode})   rate {stats.rate():.1f}/s   received "
        f"{stats.received}   missed {stats.missed}   resets {stats.resets}   dropped locally "
        f"{sub.dropped_local}",
        f"last seq {stats.last_seq if stats.last_seq is not None else '-'}   last ts "
        f"{stats.last_ts if stats.last_ts is not None else '-'} ps @{stats.domain or '-'}",
        "",
    ]
    lines += [event_line(ev, 120) for ev in stats.last] or ["(waiting for events)"]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Monitor ``args.stream`` until ``--count``/``--duration`` or cancellation."""
    out = out or sys.stdout
    err = err or sys.stderr
    live = args.live if args.live is not None else out.isatty()
    stats = Stats(args.stream)
    try:
        async with Client(args.address, timeout=args.timeout, connect_timeout=args.timeout,
                          name="qnhw-cli") as client, \
                client.subscribe(args.stream, mode=args.mode) as sub:
            deadline = None if args.duration is None else time.monotonic() + args.duration
            next_draw = time.monotonic()
            while args.count is None or stats.received < args.count:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                wait = args.interval if deadline is None else min(args.interval,
                                                                   deadline - now)
                try:
                    async with asyncio.timeout(max(wait, 0.0)):
                        ev = await anext(sub)
                except TimeoutError:
                    ev = None
                except StopAsyncIteration:
                    break
                if ev is not None:
                    stats.add(ev)
                    if not live:
                        out.write(event_line(ev) + "\n")
                if live and time.monotonic() >= next_draw:
                    out.write("\x1b[H\x1b[J" + panel(stats, sub, args.mode))
                    out.flush()
                    next_draw = time.monotonic() + args.interval
            if live:
                out.write("\x1b[H\x1b[J" + panel(stats, sub, args.mode))
    except QnhwError as exc:
        err.write(error_line(exc))
        return 1
    out.write(stats.summary() + "\n")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "monitor", help="live view of a stream: rate, gaps, last payloads",
        description="Subscribe to a stream and show its rate, sequence gaps and last payloads.")
    add_connection_args(parser)
    parser.add_argument("stream", metavar="STREAM", help="stream name (see describe)")
    parser.add_argument("--mode", choices=["fanout", "lossless"], default="fanout",
                        help="fanout (default; never slows the device) or lossless")
    parser.add_argument("--count", type=int, default=None, help="stop after N events")
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument("--interval", type=float, default=0.5,
                        help="seconds between redraws of the live view (default 0.5)")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--live", dest="live", action="store_true", default=None,
                      help="redraw a live panel (default on a terminal)")
    view.add_argument("--lines", dest="live", action="store_false",
                      help="print one line per event (default when not a terminal)")
    parser.set_defaults(func=lambda args: asyncio.run(run(args)))
