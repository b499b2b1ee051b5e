"""Instructions per RPC round trip, counted by valgrind: a figure machine noise cannot move.

Wall-clock ratios on a shared 2-core machine swing by +-30 % (benchmarks/rpc_latency.py); this
script counts the CPU instructions each design executes per call instead, so a change to the hot
path shows as a repeatable number. Each variant runs client and server in one process (one
thread plus libzmq's I/O threads) over loopback tcp:

  bare     synchronous pyzmq DEALER and ROUTER + msgpack, request and echo reply in one thread
  asyncio  zmq.asyncio DEALER and ROUTER + msgpack on one event loop (client and server tasks)
  qnhw     qnhw Client.call -> DeviceServer no-op command on one event loop

Every variant runs twice, with N and 3N calls, under ``valgrind --tool=callgrind``; the
difference divided by 2N is the cost per call, free of start-up and import costs. Counts
include libzmq's I/O threads and the kernel-call wrappers, not time spent inside the kernel.
Requires valgrind. Run: ``.venv/bin/python benchmarks/rpc_instructions.py [--calls N]``
(about 3 minutes). Ends with one JSON line. Beside the counts it prints the CPU time per call of
the same runs without valgrind (noisy; includes what sleeping and waking threads cost).

``--lines`` instead counts the Python lines each function of the qnhw pair executes per call
(``sys.settrace``), the map for tuning the hot path; no valgrind needed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import zmq
import zmq.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json  # noqa: E402

REQUEST = {"k": "req", "id": 1, "m": "noop", "p": {}, "dl": 5_000_000}
WINDOWS = (1, 8)


def bare(n: int, window: int) -> None:
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    pack, unpack = msgpack.packb, msgpack.unpackb
    rid = 0
    for _ in range(n // window):
        for _ in range(window):
            rid += 1
            dealer.send(pack({**REQUEST, "id": rid}))
        for _ in range(window):
            ident, body = router.recv_multipart()
            req = unpack(body)
            router.send_multipart([ident, pack({"k": "rep", "id": req["id"], "r": None})])
        for _ in range(window):
            unpack(dealer.recv())
    dealer.close(0)
    router.close(0)
    ctx.term()


async def asyncio_pair(n: int, window: int) -> None:
    ctx = zmq.asyncio.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    pack, unpack = msgpack.packb, msgpack.unpackb
    loop = asyncio.get_running_loop()
    pending: dict[int, asyncio.Future[Any]] = {}

    async def serve() -> None:
        while True:
            ident, body = await router.recv_multipart()
            req = unpack(body)
            await router.send_multipart([ident, pack({"k": "rep", "id": req["id"], "r": None})])

    async def read() -> None:
        while True:
            rep = unpack(await dealer.recv())
            pending.pop(rep["id"]).set_result(rep["r"])

    ids = iter(range(1, n + 1))

    async def worker() -> None:
        for rid in ids:
            fut = loop.create_future()
            pending[rid] = fut
            await dealer.send(pack({**REQUEST, "id": rid}))
            await fut

    tasks = [asyncio.create_task(serve()), asyncio.create_task(read())]
    await asyncio.gather(*(worker() for _ in range(window)))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    dealer.close(0)
    router.close(0)
    ctx.term()


async def qnhw_pair(n: int, window: int) -> None:
    from qnhw.contract import Command
    from qnhw.runtime import Client, DeviceServer

    srv = DeviceServer("bench", "tcp://127.0.0.1:0", pub_address=None)
    srv.add_command(Command("noop", doc="Does nothing."), lambda: None)
    await srv.start()
    # generous deadlines: under valgrind everything runs about 50 x slower
    async with Client(srv.address, timeout=120, connect_timeout=120, heartbeat=30) as client:
        ids = iter(range(n))

        async def worker() -> None:
            for _ in ids:
                await client.call("noop")

        await asyncio.gather(*(worker() for _ in range(window)))
    await srv.stop()


def child(variant: str, n: int, window: int) -> None:
    if variant == "bare":
        bare(n, window)
    elif variant == "asyncio":
        asyncio.run(asyncio_pair(n, window))
    else:
        asyncio.run(qnhw_pair(n, window))


def count(variant: str, n: int, window: int) -> int:
    """Instructions of one child run under callgrind."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--fair-sched=yes", "--callgrind-out-file=/dev/null",
         sys.executable,
         __file__, "--child", variant, "--calls", str(n), "--window", str(window)],
        capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{variant} x {n} failed under valgrind:\n{out.stderr[-3000:]}")
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise RuntimeError(f"no instruction count from valgrind:\n{out.stderr[-2000:]}")
    return int(m.group(1))


def cpu_per_call(variant: str, n: int, window: int) -> float:
    """CPU time of this process (all threads) per call of native runs, in µs: the difference
    between runs of n and 4n calls, after a warm-up run (imports, first-call caches)."""
    child(variant, 50, window)
    spent = []
    for calls in (n, 4 * n):
        t0 = time.process_time()
        child(variant, calls, window)
        spent.append(time.process_time() - t0)
    return (spent[1] - spent[0]) / (3 * n) * 1e6


def count_lines(n: int, window: int, top: int = 25) -> None:
    """Print the Python lines per call that each function of the qnhw pair executes."""
    counts: Counter[str] = Counter()

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            code = frame.f_code
            counts[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return local if event == "call" else None

    child("qnhw", 100, window)  # warm-up: imports and first-call caches stay out of the count
    sys.settrace(tracer)
    try:
        child("qnhw", n, window)
    finally:
        sys.settrace(None)
    print(f"Python lines per call, qnhw pair, {window} in flight: "
          f"{sum(counts.values()) / n:.0f}")
    for name, c in counts.most_common(top):
        print(f"{c / n:8.1f}  {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=400, help="N: calls of the shorter run")
    ap.add_argument("--child", choices=("bare", "asyncio", "qnhw"), help=argparse.SUPPRESS)
    ap.add_argument("--window", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--lines", action="store_true",
                    help="count Python lines per call of the qnhw pair instead")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.calls, args.window)
        return
    if args.lines:
        for window in WINDOWS:
            count_lines(2000, window)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (Debian: apt install valgrind)")
    n = args.calls - args.calls % 8
    per_call: dict[str, dict[str, int]] = {}
    cpu_us: dict[str, dict[str, float]] = {}
    for variant in ("bare", "asyncio", "qnhw"):
        for window in WINDOWS:
            short, long_ = count(variant, n, window), count(variant, 3 * n, window)
            per_call.setdefault(variant, {})[f"w{window}"] = round((long_ - short) / (2 * n))
            cpu_us.setdefault(variant, {})[f"w{window}"] = round(
                cpu_per_call(variant, 5 * n, window), 1)
    print(f"{'variant':<10}" + "".join(f"{'instr/call @' + str(w):>18}" for w in WINDOWS)
          + "".join(f"{'CPU us/call @' + str(w):>17}" for w in WINDOWS))
    for variant, figs in per_call.items():
        print(f"{variant:<10}" + "".join(f"{figs[f'w{w}']:>18,}" for w in WINDOWS)
              + "".join(f"{cpu_us[variant][f'w{w}']:>17.1f}" for w in WINDOWS))
    ratios = {f"{v}_over_bare_w{w}": round(per_call[v][f"w{w}"] / per_call["bare"][f"w{w}"], 3)
              for v in ("asyncio", "qnhw") for w in WINDOWS}
    print("  ".join(f"{k} {r:.2f}" for k, r in ratios.items()))
    emit_json({"benchmark": "rpc_instructions", "calls": n, "instructions_per_call": per_call,
               "cpu_us_per_call_native": cpu_us, **ratios})


if __name__ == "__main__":
    main()
