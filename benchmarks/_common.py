"""Shared helpers of the benchmarks: subprocess servers, statistics, the closing JSON line."""

from __future__ import annotations

import json
import multiprocessing as mp
import statistics
from collections.abc import Callable
from typing import Any


def start_process(target: Callable[..., None], *args: Any) -> tuple[mp.Process, Any]:
    """Start ``target(conn, *args)`` in a spawned process; wait for it to send its address."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, *args), daemon=True)
    proc.start()
    if not parent.poll(30):
        proc.terminate()
        raise RuntimeError(f"{target.__name__} did not start")
    return proc, parent.recv()


def stop_process(proc: mp.Process) -> None:
    proc.terminate()
    proc.join(5)


def summary(samples_us: list[float]) -> dict[str, float]:
    """Median and p99 in microseconds."""
    s = sorted(samples_us)
    return {"median_us": round(statistics.median(s), 1),
            "p99_us": round(s[min(len(s) - 1, int(0.99 * len(s)))], 1)}


def emit_json(figures: dict[str, Any]) -> None:
    """The closing line of every benchmark: one line of JSON."""
    print(json.dumps(figures, sort_keys=True))
