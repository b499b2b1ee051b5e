"""Streams: fan-out gaps are reported, lossless mode loses nothing to a slow consumer."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from qnhw.errors import BadParams, Busy
from qnhw.runtime import Client, ConnectionState, StreamMode

from .helpers import make_server


async def publish_until_seen(srv, client_sub, n: int = 1) -> None:  # type: ignore[no-untyped-def]
    """Fan-out subscriptions join asynchronously (ZeroMQ slow joiner): publish until one
    event arrives, bounded to 2 s."""
    for _ in range(200):
        srv.publish_nowait("counts", -1)
        await asyncio.sleep(0.01)
        if client_sub._queue:
            return
    raise AssertionError("subscription never joined")


async def test_fanout_delivers_in_order_with_timestamps() -> None:
    async with make_server() as srv, Client(srv.address) as client:
        async with client.subscribe("counts") as sub:
            await publish_until_seen(srv, sub)
            while sub.get_nowait() is not None:
                pass
            first = srv._seq["counts"]
            for i in range(100):
                srv.publish_nowait("counts", i)
            got = []
            async with asyncio.timeout(5):
                async for ev in sub:
                    got.append(ev)
                    if len(got) == 100:
                        break
            assert [e.payload for e in got] == list(range(100))
            assert [e.seq for e in got] == list(range(first, first + 100))
            assert all(e.gap == 0 for e in got[1:]) and all(e.domain == "host" for e in got)
            ts = [e.ts_ps for e in got]
            assert ts == sorted(ts)


async def test_fanout_slow_consumer_sees_gaps_never_silence() -> None:
    async with make_server() as srv, Client(srv.address) as client:
        sub = client.subscribe("counts", maxsize=10)
        await sub.open()
        try:
            await publish_until_seen(srv, sub)
            while sub.get_nowait() is not None:
                pass
            last = srv._seq["counts"] - 1
            for i in range(1000):
                srv.publish_nowait("counts", i)
            final = srv._seq["counts"] - 1
            for _ in range(500):  # let them arrive while nobody consumes (bounded: 5 s)
                if sub._queue and sub._queue[-1][0] == final:
                    break
                await asyncio.sleep(0.01)
            got = []
            while (ev := sub.get_nowait()) is not None:
                got.append(ev)
            assert 0 < len(got) <= 10
            assert sub.dropped_local > 0
            # every event published is either received or accounted for as missed
            assert got[-1].seq == srv._seq["counts"] - 1
            assert sub.missed + sub.received >= got[-1].seq - last - 1
            assert any(e.gap > 0 for e in got)
        finally:
            await sub.close()


async def test_lossless_slow_consumer_loses_nothing_and_producer_waits() -> None:
    total = 2000
    async with make_server(lossless_buffer=16) as srv, Client(srv.address) as client:
        async with client.subscribe("counts", mode="lossless", credit=8) as sub:
            assert sub.mode is StreamMode.LOSSLESS

            async def produce() -> None:
                for i in range(total):
                    await srv.publish("counts", np.full(4, i, dtype=np.int64))

            producer = asyncio.create_task(produce())
            received = []
            async with asyncio.timeout(30):
                async for ev in sub:
                    received.append(int(ev.payload[0]))
                    if len(received) % 200 == 0:
                        await asyncio.sleep(0.02)  # a slow consumer
                        assert not producer.done() or len(received) > total - 30
                    if len(received) == total:
                        break
            await producer
            assert received == list(range(total))
            assert sub.missed == 0


async def test_publish_nowait_raises_busy_when_lossless_buffer_full() -> None:
    async with make_server(lossless_buffer=4) as srv, Client(srv.address) as client:
        async with client.subscribe("counts", mode="lossless", credit=1) as sub:
            with pytest.raises(Busy):
                for i in range(50):
                    srv.publish_nowait("counts", i)
            assert (await anext(sub)).payload == 0


async def test_subscribe_to_unknown_stream_is_a_typed_error() -> None:
    async with make_server() as srv, Client(srv.address) as client:
        with pytest.raises(BadParams):
            async with client.subscribe("nope", mode="lossless"):
                pass
        with pytest.raises(BadParams):
            async with client.subscribe("nope"):
                pass
        assert await client.call("square", n=2) == 4


async def test_big_array_batches_on_lossless_stream_are_exact() -> None:
    async with make_server() as srv, Client(srv.address) as client:
        async with client.subscribe("counts", mode="lossless") as sub:
            batches = [np.arange(k * 10_000, (k + 1) * 10_000, dtype=np.int64) for k in range(20)]
            for b in batches:
                await srv.publish("counts", {"tags": b, "channel": np.zeros(len(b), np.int32)})
            async with asyncio.timeout(10):
                for b in batches:
                    ev = await anext(sub)
                    np.testing.assert_array_equal(ev.payload["tags"], b)


async def test_subscription_ends_when_client_closes() -> None:
    async with make_server() as srv:
        client = Client(srv.address)
        await client.connect()
        sub = client.subscribe("counts", mode="lossless")
        await sub.open()
        consumer = asyncio.create_task(anext(sub, None))
        await asyncio.sleep(0.05)
        await client.close()
        assert await asyncio.wait_for(consumer, 2) is None


async def test_receive_only_client_keeps_its_session() -> None:
    """A client that only consumes a stream still heartbeats, so its session never expires."""
    async with make_server(heartbeat=0.05, session_timeout=0.25) as srv, \
            Client(srv.address) as client:
        async with client.subscribe("counts", mode="fanout") as sub:
            for i in range(100):  # 1 s of steady events, 4 session timeouts
                srv.publish_nowait("counts", i)
                await asyncio.sleep(0.01)
            assert srv.sessions == 1
            assert sub.received + len(sub._queue) > 0


async def test_stream_resumes_after_server_restart_with_reset_flag() -> None:
    srv = make_server("tcp://127.0.0.1:0")
    await srv.start()
    address = srv.address
    client = Client(address, heartbeat=0.1)
    await client.connect()
    try:
        sub = client.subscribe("counts", mode="lossless")
        await sub.open()
        for i in range(5):
            await srv.publish("counts", i)
        got = [(await anext(sub)).payload for _ in range(5)]
        assert got == list(range(5))
        await srv.stop()
        srv = make_server(address)
        await srv.start()
        await client.wait_for_state(ConnectionState.CONNECTED, timeout=10)
        for _ in range(200):  # the client re-subscribes on its own
            if srv._sessions and any(s.subs for s in srv._sessions.values()):
                break
            await asyncio.sleep(0.01)
        await srv.publish("counts", 100)
        ev = await asyncio.wait_for(anext(sub), 5)
        assert ev.payload == 100 and ev.reset
    finally:
        await client.close()
        await srv.stop()
