"""RPC round-trip latency and throughput: qnhw against bare pyzmq, in one interleaved run.

(a)  synchronous pyzmq DEALER -> synchronous ROUTER echo server + msgpack   (the floor)
(b)  zmq.asyncio DEALER -> zmq.asyncio ROUTER echo server + msgpack         (the naive async
     driver and server: the issue's "zmq.asyncio DEALER/ROUTER"; both ends async, like c)
(b1) zmq.asyncio DEALER -> (a)'s synchronous ROUTER                         (async client only)
(c)  qnhw Client.call -> DeviceServer no-op command                          (what users get)
(d)  minimal asyncio client on the socket FD (add_reader, drain with ZMQ_EVENTS) -> (a)'s
     server: the floor of the integration qnhw chose, without any protocol work
(e)  qnhw Client.call -> a minimal synchronous server that speaks just enough of the protocol
     (hello, heartbeat, reply): c's client with (a)'s kind of server, which splits c's cost
     between qnhw's client and its asynchronous DeviceServer
(cu) c with client and server on uvloop (only when uvloop is installed; the test extra has it)

Servers run in separate processes; loopback tcp. Each round runs every variant at 1 call in
flight (latency per call) and at 8 in flight (throughput), so machine noise hits all alike; the
order of the variants rotates from round to round.
Run: ``.venv/bin/python benchmarks/rpc_latency.py [--calls N] [--rounds R]``.
Ends with one JSON line of figures; docs/performance.md explains them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import zmq
import zmq.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json, start_process, stop_process, summary  # noqa: E402

T = TypeVar("T")
REQUEST = {"k": "req", "id": 1, "m": "noop", "p": {}, "dl": 5_000_000}


def run_on(loop: str, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a new loop: ``"asyncio"`` (the standard one) or ``"uvloop"``."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def bare_server(conn: Any) -> None:
    """A synchronous ROUTER that decodes each request and answers with a msgpack reply."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    conn.send(f"tcp://127.0.0.1:{port}")
    while True:
        ident, body = sock.recv_multipart()
        req = msgpack.unpackb(body)
        sock.send_multipart([ident, msgpack.packb({"k": "rep", "id": req["id"], "r": None})])


def protocol_server(conn: Any) -> None:
    """(a)'s synchronous ROUTER, answering hello and heartbeats too, so a qnhw Client can use
    it: every request gets an empty reply."""
    from qnhw.protocol import messages
    from qnhw.protocol.version import FEATURES, PROTOCOL_VERSION

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    conn.send(f"tcp://127.0.0.1:{port}")
    welcome = messages.encode_message(messages.Welcome(
        PROTOCOL_VERSION, list(FEATURES), "bench", 1, 1.0, None, None, {}))
    while True:
        ident, body = sock.recv_multipart()
        msg = msgpack.unpackb(body)
        kind = msg.get("k")
        if kind == "req":
            sock.send_multipart([ident, msgpack.packb({"k": "rep", "id": msg["id"], "r": None})])
        elif kind == "hello":
            sock.send_multipart([ident, *welcome])
        elif kind == "hb":
            sock.send_multipart([ident, body])


def asyncio_server(conn: Any) -> None:
    """The same echo server written on ``zmq.asyncio``: a ROUTER awaited in a loop."""

    async def main() -> None:
        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.ROUTER)
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        conn.send(f"tcp://127.0.0.1:{port}")
        while True:
            ident, body = await sock.recv_multipart()
            req = msgpack.unpackb(body)
            await sock.send_multipart([ident, msgpack.packb({"k": "rep", "id": req["id"],
                                                             "r": None})])

    asyncio.run(main())


def qnhw_server(conn: Any, loop: str = "asyncio") -> None:
    """A DeviceServer with a no-op command, on the event loop ``loop`` (asyncio or uvloop)."""
    from qnhw.contract import Command
    from qnhw.runtime import DeviceServer

    async def main() -> None:
        srv = DeviceServer("bench", "tcp://127.0.0.1:0", pub_address=None)
        srv.add_command(Command("noop", doc="Does nothing."), lambda: None)
        await srv.start()
        conn.send(srv.address)
        await asyncio.Event().wait()

    run_on(loop, main())


def run_sync(address: str, n: int, window: int) -> tuple[list[float], float]:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    pack, unpack = msgpack.packb, msgpack.unpackb
    for i in range(200):  # warm-up
        sock.send(pack({**REQUEST, "id": i + 1}))
        unpack(sock.recv())
    lat: list[float] = []
    t0 = time.perf_counter()
    if window == 1:
        for i in range(n):
            t = time.perf_counter()
            sock.send(pack({**REQUEST, "id": i + 1}))
            unpack(sock.recv())
            lat.append((time.perf_counter() - t) * 1e6)
    else:
        sent = 0
        for _ in range(window):
            sent += 1
            sock.send(pack({**REQUEST, "id": sent}))
        for _ in range(n):
            unpack(sock.recv())
            if sent < n:
                sent += 1
                sock.send(pack({**REQUEST, "id": sent}))
        for _ in range(window - (sent - n) if sent < n else 0):
            sock.recv()
    elapsed = time.perf_counter() - t0
    sock.close()
    return lat, n / elapsed


async def run_asyncio_zmq(address: str, n: int, window: int) -> tuple[list[float], float]:
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    pack, unpack = msgpack.packb, msgpack.unpackb
    for i in range(200):
        await sock.send(pack({**REQUEST, "id": i + 1}))
        unpack(await sock.recv())
    lat: list[float] = []
    t0 = time.perf_counter()
    if window == 1:
        for i in range(n):
            t = time.perf_counter()
            await sock.send(pack({**REQUEST, "id": i + 1}))
            unpack(await sock.recv())
            lat.append((time.perf_counter() - t) * 1e6)
    else:
        # a minimal correct async driver: a reader task resolves futures by id
        pending: dict[int, asyncio.Future[Any]] = {}

        async def reader() -> None:
            while True:
                rep = unpack(await sock.recv())
                pending.pop(rep["id"]).set_result(rep["r"])

        rtask = asyncio.create_task(reader())
        counter = iter(range(1, n + 1))

        async def worker() -> None:
            loop = asyncio.get_running_loop()
            for rid in counter:
                fut = loop.create_future()
                pending[rid] = fut
                await sock.send(pack({**REQUEST, "id": rid}))
                await fut

        await asyncio.gather(*(worker() for _ in range(window)))
        rtask.cancel()
    elapsed = time.perf_counter() - t0
    sock.close()
    return lat, n / elapsed


async def run_fd_reader(address: str, n: int, window: int) -> tuple[list[float], float]:
    """The design option qnhw uses, stripped to the bone: one future per call, resolved from
    an ``add_reader`` callback that drains the socket while ZMQ_EVENTS shows POLLIN."""
    loop = asyncio.get_running_loop()
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    pack, unpack = msgpack.packb, msgpack.unpackb
    pending: dict[int, asyncio.Future[Any]] = {}

    def drain() -> None:
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            rep = unpack(sock.recv(zmq.NOBLOCK))
            fut = pending.pop(rep["id"], None)
            if fut is not None:
                fut.set_result(rep["r"])

    loop.add_reader(sock.getsockopt(zmq.FD), drain)

    async def call(rid: int) -> None:
        fut = loop.create_future()
        pending[rid] = fut
        sock.send(pack({**REQUEST, "id": rid}), zmq.NOBLOCK)
        if sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            loop.call_soon(drain)
        await fut

    for i in range(200):
        await call(i + 1)
    lat: list[float] = []
    t0 = time.perf_counter()
    if window == 1:
        for i in range(n):
            t = time.perf_counter()
            await call(1000 + i)
            lat.append((time.perf_counter() - t) * 1e6)
    else:
        counter = iter(range(1000, 1000 + n))

        async def worker() -> None:
            for rid in counter:
                await call(rid)

        await asyncio.gather(*(worker() for _ in range(window)))
    elapsed = time.perf_counter() - t0
    loop.remove_reader(sock.getsockopt(zmq.FD))
    sock.close()
    return lat, n / elapsed


async def run_qnhw(address: str, n: int, window: int) -> tuple[list[float], float]:
    from qnhw.runtime import Client

    async with Client(address) as client:
        for _ in range(200):
            await client.call("noop")
        lat: list[float] = []
        t0 = time.perf_counter()
        if window == 1:
            for _ in range(n):
                t = time.perf_counter()
                await client.call("noop")
                lat.append((time.perf_counter() - t) * 1e6)
        else:
            counter = iter(range(n))

            async def worker() -> None:
                for _ in counter:
                    await client.call("noop")

            await asyncio.gather(*(worker() for _ in range(window)))
        elapsed = time.perf_counter() - t0
    return lat, n / elapsed


VARIANTS = {"a": "sync pyzmq", "b": "zmq.asyncio", "b1": "zmq.asyncio/sync",
            "c": "qnhw Client", "d": "fd reader", "e": "qnhw Client/sync"}
if importlib.util.find_spec("uvloop") is not None:
    VARIANTS["cu"] = "qnhw on uvloop"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3000, help="calls per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    servers: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = [
        ("sync", bare_server, ()), ("asyncio", asyncio_server, ()), ("qnhw", qnhw_server, ()),
        ("protocol", protocol_server, ())]
    if "cu" in VARIANTS:
        servers.append(("qnhw_uvloop", qnhw_server, ("uvloop",)))
    procs = {name: start_process(target, *extra) for name, target, extra in servers}
    addr = {name: address for name, (_, address) in procs.items()}
    runs: dict[str, Callable[[int, int], tuple[list[float], float]]] = {
        "a": lambda n, w: run_sync(addr["sync"], n, w),
        "b": lambda n, w: asyncio.run(run_asyncio_zmq(addr["asyncio"], n, w)),
        "b1": lambda n, w: asyncio.run(run_asyncio_zmq(addr["sync"], n, w)),
        "c": lambda n, w: asyncio.run(run_qnhw(addr["qnhw"], n, w)),
        "d": lambda n, w: asyncio.run(run_fd_reader(addr["sync"], n, w)),
        "e": lambda n, w: asyncio.run(run_qnhw(addr["protocol"], n, w)),
        "cu": lambda n, w: run_on("uvloop", run_qnhw(addr.get("qnhw_uvloop", ""), n, w)),
    }
    lat: dict[str, list[float]] = {k: [] for k in VARIANTS}
    thr: dict[str, list[float]] = {k: [] for k in VARIANTS}
    try:
        keys = list(VARIANTS)
        for round_ in range(args.rounds):
            order = keys[round_ % len(keys):] + keys[:round_ % len(keys)]  # rotate: no order bias
            for window in (1, 8):
                for key in order:
                    samples, rate = runs[key](args.calls, window)
                    if window == 1:
                        lat[key].extend(samples)
                    else:
                        thr[key].append(rate)
    finally:
        for proc, _ in procs.values():
            stop_process(proc)
    stats = {k: summary(v) for k, v in lat.items()}
    w8 = {k: sorted(v)[len(v) // 2] for k, v in thr.items()}
    print(f"{'variant':<22}{'median us':>11}{'p99 us':>9}{'calls/s @1':>12}{'calls/s @8':>12}")
    for k, name in VARIANTS.items():
        med = stats[k]["median_us"]
        print(f"{k + ' ' + name:<22}{med:>11.1f}{stats[k]['p99_us']:>9.1f}{1e6 / med:>12.0f}"
              f"{w8[k]:>12.0f}")
    ratio_ca = stats["c"]["median_us"] / stats["a"]["median_us"]
    speedup_cb = stats["b"]["median_us"] / stats["c"]["median_us"]
    speedup_cb1 = stats["b1"]["median_us"] / stats["c"]["median_us"]
    thr_ca = w8["c"] / w8["a"]
    uv = {}
    if "cu" in VARIANTS:
        uv = {"ratio_cu_over_a_latency": round(stats["cu"]["median_us"] / stats["a"]["median_us"],
                                               3),
              "ratio_cu_over_a_throughput_w8": round(w8["cu"] / w8["a"], 3)}
        print(f"on uvloop: cu/a latency {uv['ratio_cu_over_a_latency']:.2f}, cu/a throughput "
              f"@8 {uv['ratio_cu_over_a_throughput_w8']:.2f}")
    print(f"c/a latency {ratio_ca:.2f} (target <= 1.35); b/c speed-up {speedup_cb:.2f} "
          f"(target >= 1.5; b1/c {speedup_cb1:.2f}); c/a throughput @8 {thr_ca:.2f} "
          f"(target >= 0.6)")
    emit_json({
        "benchmark": "rpc_latency", "calls": args.calls, "rounds": args.rounds,
        "latency_us": stats, "throughput_w8": {k: round(v) for k, v in w8.items()},
        "ratio_c_over_a_latency": round(ratio_ca, 3),
        "speedup_c_over_b": round(speedup_cb, 3),
        "speedup_c_over_b1": round(speedup_cb1, 3),
        "ratio_c_over_a_throughput_w8": round(thr_ca, 3), **uv,
        "targets_met": ratio_ca <= 1.35 and speedup_cb >= 1.5 and thr_ca >= 0.6,
    })


if __name__ == "__main__":
    main()
