"""Emulated lab scale: start-up time and memory of repeater-chain labs of 2, 10, 50 and 100
nodes, and calls per second to one device while all the others idle.

Each lab is a chain of NV nodes: node k holds a memory (two communication qubits inside the
chain, one at the ends) and, except the last, the heralding station of the link k -> k+1, with
two 50 m fibers per link -- ``2N - 1`` devices and ``2N - 1`` endpoints plus the admin
endpoint for ``N`` nodes. Every size runs in a fresh spawned process, so memory figures are
that lab's alone:

* ``build``: validating the config and constructing the world and every emulator;
* ``start``: binding every endpoint (tcp on loopback, or ``--transport``);
* ``rss``: resident memory of the process after start minus before build (MiB), and the
  Python heap allocated for the lab (``tracemalloc`` peak, MiB);
* ``calls/s``: round trips to node 0's memory through its driver, ``status`` (an inline
  handler) and ``measure`` (an async handler spending 10 us of virtual lab time), with 1 and
  8 calls in flight, while every other endpoint idles.

Run: ``.venv/bin/python benchmarks/lab_scale.py [--sizes 2 10 50 100] [--seconds 1.0]``.
Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json


def chain_config(n: int, *, seed: int = 1) -> dict[str, Any]:
    """A repeater chain of ``n`` NV nodes (see the module docstring)."""
    nodes: dict[str, Any] = {}
    fibers: list[dict[str, Any]] = []
    for k in range(n):
        comm = [0, 1] if 0 < k < n - 1 else [0]
        devices: dict[str, Any] = {"memory": {"kind": "memory", "profile": "nv-delft",
                                              "qubits": len(comm), "communication_qubits": comm,
                                              "slots": 0}}
        if k < n - 1:
            devices["bsm"] = {"kind": "heralding", "profile": "snspd"}
        nodes[f"n{k}"] = {"devices": devices}
    for k in range(n - 1):
        left = "optical" if k == 0 else "optical1"
        right = "optical" if k + 1 == n - 1 else "optical0"
        fibers.append({"a": f"n{k}.memory:{left}", "b": f"n{k}.bsm:0", "length": 50.0,
                       "profile": "fiber-637"})
        fibers.append({"a": f"n{k + 1}.memory:{right}", "b": f"n{k}.bsm:1", "length": 50.0,
                       "profile": "fiber-637"})
    return {"lab": {"name": f"chain-{n}", "seed": seed}, "nodes": nodes, "fibers": fibers}


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _rate(call: Any, seconds: float, in_flight: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return done / (time.perf_counter() - t0)


async def _measure(n: int, transport: str, seconds: float) -> dict[str, Any]:
    from emulators.lab import Lab
    from qnhw.devices import QuantumMemory

    rss0 = _rss_mib()
    tracemalloc.start()
    t0 = time.perf_counter()
    lab = Lab.from_dict(chain_config(n), transport=transport)
    t1 = time.perf_counter()
    await lab.start()
    t2 = time.perf_counter()
    heap = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rss = _rss_mib() - rss0
    try:
        async with QuantumMemory.connect(lab.address("n0.memory")) as mem:
            await mem.initialize(0)
            rates = {
                "status_1": await _rate(mem.status, seconds, 1),
                "status_8": await _rate(mem.status, seconds, 8),
                "measure_1": await _rate(lambda: mem.measure(0), seconds, 1),
                "measure_8": await _rate(lambda: mem.measure(0), seconds, 8),
            }
    finally:
        t3 = time.perf_counter()
        await lab.stop()
        stop = time.perf_counter() - t3
    return {"nodes": n, "devices": len(lab.entries), "endpoints": len(lab.addresses),
            "build_s": t1 - t0, "start_s": t2 - t1, "startup_s": t2 - t0, "stop_s": stop,
            "rss_mib": rss, "heap_mib": heap, **rates}


def _child(conn: Any, n: int, transport: str, seconds: float) -> None:
    conn.send(asyncio.run(_measure(n, transport, seconds)))


def run_one(n: int, transport: str, seconds: float) -> dict[str, Any]:
    """One lab size in a fresh spawned process."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, n, transport, seconds))
    proc.start()
    try:
        if not parent.poll(600):
            raise RuntimeError(f"lab of {n} nodes did not report within 600 s")
        result: dict[str, Any] = parent.recv()
        return result
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 10, 50, 100])
    parser.add_argument("--transport", choices=("tcp", "ipc", "inproc"), default="tcp")
    parser.add_argument("--seconds", type=float, default=1.0, help="per call-rate figure")
    args = parser.parse_args(argv)
    rows = [run_one(n, args.transport, args.seconds) for n in args.sizes]
    print(f"emulated repeater-chain labs ({args.transport}, virtual time), one process each\n")
    head = (f"{'nodes':>5} {'devices':>7} {'build s':>8} {'start s':>8} {'total s':>8} "
            f"{'RSS MiB':>8} {'heap MiB':>8} {'status/s':>9} {'x8':>8} {'measure/s':>9} "
            f"{'x8':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['nodes']:5d} {r['devices']:7d} {r['build_s']:8.3f} {r['start_s']:8.3f} "
              f"{r['startup_s']:8.3f} {r['rss_mib']:8.1f} {r['heap_mib']:8.1f} "
              f"{r['status_1']:9.0f} {r['status_8']:8.0f} {r['measure_1']:9.0f} "
              f"{r['measure_8']:8.0f}")
    two = next((r for r in rows if r["nodes"] == 2), None)
    if two is not None:
        verdict = "meets" if two["startup_s"] < 2.0 else "MISSES"
        print(f"\n2-node lab starts in {two['startup_s']:.3f} s ({verdict} the 2 s bar)")
    emit_json({"benchmark": "lab_scale", "transport": args.transport,
               "labs": [{k: (round(v, 4) if isinstance(v, float) else v)
                         for k, v in r.items()} for r in rows]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
