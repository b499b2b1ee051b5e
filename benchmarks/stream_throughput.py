"""Stream throughput: a qnhw stream of int64 numpy batches against raw zero-copy pyzmq.

(raw)  PUSH -> PULL, multipart [small msgpack header, array bytes], copy=False both ways, the
       consumer wraps each array with numpy.frombuffer: the floor for moving batches.
(qnhw) DeviceServer.publish on a stream -> Client.subscribe(mode="lossless"): sequence
       numbers, timestamps, credit flow control, gap accounting. No event may be lost.

Producers run in separate processes; loopback tcp. Batches of 1k, 64k and 1M int64 elements,
the variants interleaved per round (which goes first alternates). Run:
``.venv/bin/python benchmarks/stream_throughput.py [--rounds R]`` (default 5 rounds).
Ends with one JSON line of figures; docs/performance.md explains them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit_json, start_process, stop_process  # noqa: E402

SIZES = (1_000, 64_000, 1_000_000)


def raw_producer(conn: Any) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.sndhwm = 64
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    conn.send(f"tcp://127.0.0.1:{port}")
    while True:
        n, size = conn.recv()
        data = np.arange(size, dtype=np.int64)
        for seq in range(n):
            header = msgpack.packb({"seq": seq, "dtype": "<i8", "shape": [size]})
            sock.send_multipart([header, data], copy=False)


def raw_consume(address: str, n: int, size: int, conn: Any) -> float:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PULL)
    sock.rcvhwm = 64
    sock.connect(address)
    time.sleep(0.05)
    conn.send((n, size))
    count = 0
    header, frame = sock.recv_multipart(copy=False)
    t0 = time.perf_counter()
    for _ in range(n - 1):
        header, frame = sock.recv_multipart(copy=False)
        meta = msgpack.unpackb(header.buffer)
        arr = np.frombuffer(frame.buffer, dtype=meta["dtype"])
        count += arr.shape[0]
    elapsed = time.perf_counter() - t0
    sock.close()
    assert count == (n - 1) * size
    return (n - 1) / elapsed


def qnhw_producer(conn: Any) -> None:
    from qnhw.contract import Command, Param, StreamSpec
    from qnhw.runtime import DeviceServer

    async def main() -> None:
        srv = DeviceServer("streamer", "tcp://127.0.0.1:0", pub_address=None,
                           lossless_buffer=64)
        srv.add_stream(StreamSpec("tags", "int64 batches", "ndarray int64", "host"))

        async def blast(n: int, size: int) -> None:
            data = np.arange(size, dtype=np.int64)
            for _ in range(n):
                await srv.publish("tags", data)

        tasks: set[asyncio.Task[None]] = set()

        def start(n: int, size: int) -> None:
            task = asyncio.get_running_loop().create_task(blast(n, size))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        srv.add_command(Command("start", (Param("n", "int"), Param("size", "int"))), start)
        await srv.start()
        conn.send(srv.address)
        await asyncio.Event().wait()

    asyncio.run(main())


async def qnhw_consume(address: str, n: int, size: int, credit: int) -> tuple[float, int]:
    from qnhw.runtime import Client

    async with Client(address) as client:
        async with client.subscribe("tags", mode="lossless", credit=credit) as sub:
            await client.call("start", n=n, size=size)
            count = 0
            ev = await anext(sub)
            t0 = time.perf_counter()
            for _ in range(n - 1):
                ev = await anext(sub)
                count += ev.payload.shape[0]
            elapsed = time.perf_counter() - t0
            assert count == (n - 1) * size and sub.missed == 0
            return (n - 1) / elapsed, sub.missed


def start_with_control(target: Any) -> tuple[Any, Any, str]:
    """Like start_process, but keep the pipe to send the producer its orders."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child,), daemon=True)
    proc.start()
    if not parent.poll(30):
        proc.terminate()
        raise RuntimeError("producer did not start")
    return proc, parent, parent.recv()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--credit", type=int, default=256)
    args = ap.parse_args()
    counts = {1_000: 20_000, 64_000: 2_000, 1_000_000: 150}
    raw, raw_conn, raw_addr = start_with_control(raw_producer)
    qp, q_addr = start_process(qnhw_producer)
    rates: dict[str, dict[int, list[float]]] = {"raw": {}, "qnhw": {}}
    missed = 0
    try:
        for round_ in range(args.rounds):
            for size in SIZES:
                n = counts[size]
                # alternate which side goes first, so order effects cancel over the rounds
                for side in (("raw", "qnhw") if round_ % 2 == 0 else ("qnhw", "raw")):
                    if side == "raw":
                        rate = raw_consume(raw_addr, n, size, raw_conn)
                    else:
                        rate, lost = asyncio.run(qnhw_consume(q_addr, n, size, args.credit))
                        missed += lost
                    rates[side].setdefault(size, []).append(rate)
    finally:
        stop_process(raw)
        stop_process(qp)
    figures: dict[str, Any] = {"benchmark": "stream_throughput", "rounds": args.rounds,
                               "credit": args.credit, "missed_events": missed, "sizes": {}}
    targets = {1_000: 0.7, 64_000: 0.85, 1_000_000: 0.85}
    met = missed == 0
    print(f"{'elements':>10}{'raw batch/s':>13}{'qnhw batch/s':>14}{'qnhw GB/s':>11}{'ratio':>8}"
          f"{'target':>8}")
    for size in SIZES:
        r = float(np.median(rates["raw"][size]))
        q = float(np.median(rates["qnhw"][size]))
        ratio = q / r
        met = met and ratio >= targets[size]
        print(f"{size:>10}{r:>13.0f}{q:>14.0f}{q * size * 8 / 1e9:>11.2f}{ratio:>8.2f}"
              f"{targets[size]:>8.2f}")
        figures["sizes"][str(size)] = {"raw_batches_per_s": round(r), "qnhw_batches_per_s":
                                       round(q), "ratio": round(ratio, 3)}
    print(f"events lost: {missed}")
    figures["targets_met"] = met
    emit_json(figures)


if __name__ == "__main__":
    main()
