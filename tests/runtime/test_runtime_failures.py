"""Timeouts, cancellation, dead peers, restarts: typed errors, then the connection works."""

from __future__ import annotations

import asyncio

import pytest

from qnhw.errors import ConnectionLost, DeadlineExceeded
from qnhw.runtime import Client, ConnectionState

from .helpers import ServerProcess, free_tcp_address, make_server


async def test_timeout_then_next_call_succeeds() -> None:
    async with make_server() as srv, Client(srv.address) as client:
        with pytest.raises(DeadlineExceeded) as info:
            await client.call("slow", delay=1.0, tag=1, timeout=0.1)
        assert isinstance(info.value, TimeoutError)
        # the late reply of the timed-out call must not be taken for this one
        assert await client.call("slow", delay=0.0, tag=2) == 2
        await asyncio.sleep(1.0)  # the first handler finishes (or was cancelled) meanwhile
        assert await client.call("square", n=5) == 25


async def test_server_enforces_the_deadline_too() -> None:
    async with make_server() as srv, Client(srv.address) as client:
        task = asyncio.create_task(client.call("slow", delay=5.0, timeout=0.2))
        with pytest.raises(DeadlineExceeded):
            await task
        for _ in range(50):  # the server cancels its handler task at the deadline
            if not any(s.tasks for s in srv._sessions.values()):
                break
            await asyncio.sleep(0.02)
        assert not any(s.tasks for s in srv._sessions.values())


async def test_cancelled_call_cancels_server_work_and_connection_stays_usable() -> None:
    async with make_server() as srv, Client(srv.address) as client:
        task = asyncio.create_task(client.call("slow", delay=10.0, tag=7))
        for _ in range(100):
            if any(s.tasks for s in srv._sessions.values()):
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if not any(s.tasks for s in srv._sessions.values()):
                break
            await asyncio.sleep(0.01)
        assert not any(s.tasks for s in srv._sessions.values())
        assert await client.call("square", n=4) == 16


async def test_connect_to_nothing_fails_with_typed_error() -> None:
    client = Client(free_tcp_address(), connect_timeout=0.3)
    with pytest.raises(ConnectionLost, match="no answer"):
        await client.connect()
    assert client.state is ConnectionState.CLOSED


async def test_server_killed_mid_call_then_restarted() -> None:
    proc = ServerProcess(free_tcp_address())
    proc.start()
    try:
        async with Client(proc.address, heartbeat=0.2, timeout=5.0) as client:
            assert await client.call("square", n=3) == 9
            epoch = client.welcome.epoch if client.welcome else None
            call = asyncio.create_task(client.call("slow", delay=30.0, timeout=5.0))
            await asyncio.sleep(0.2)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            proc.kill()
            with pytest.raises(ConnectionLost):
                await call
            assert loop.time() - t0 < 5.0  # typed error well within the call's deadline
            assert client.state in (ConnectionState.RECONNECTING, ConnectionState.CONNECTED)
            proc.start()
            await client.wait_for_state(ConnectionState.CONNECTED, timeout=10)
            assert await client.call("square", n=6) == 36
            assert client.welcome is not None and client.welcome.epoch != epoch
            assert client.reconnects >= 1
    finally:
        proc.kill()


async def test_dead_peer_detected_by_heartbeat_on_inproc() -> None:
    """inproc has no disconnect events: only the heartbeat can notice a vanished server."""
    srv = make_server("inproc://hb-test", heartbeat=0.1)
    await srv.start()
    client = Client(srv.address, heartbeat=0.1, dead_after=0.3, reconnect=False)
    await client.connect()
    try:
        states = []

        async def watch() -> None:
            async for s in client.watch_state():
                states.append(s)

        watcher = asyncio.create_task(watch())
        # silence the server without closing anything: its socket stops being read
        assert srv._router is not None
        srv._router._closed = True
        asyncio.get_running_loop().remove_reader(srv._router._fd)
        await asyncio.wait_for(client.wait_for_state(ConnectionState.CLOSED), 2.0)
        await asyncio.wait_for(watcher, 1.0)
        assert states == [ConnectionState.CONNECTED, ConnectionState.CLOSED]
        with pytest.raises(ConnectionLost):
            await client.call("noop")
    finally:
        await client.close()
        srv._router._closed = False  # type: ignore[union-attr]
        srv._router.sock.close(0)  # type: ignore[union-attr]
        srv._router = None
        if srv._pub is not None:
            srv._pub.close()
        if srv._sweeper is not None:
            srv._sweeper.cancel()
            with pytest.raises(asyncio.CancelledError):
                await srv._sweeper


async def test_idle_session_expires_on_server() -> None:
    async with make_server(heartbeat=0.05, session_timeout=0.2) as srv:
        client = Client(srv.address, heartbeat=10.0, dead_after=20.0)
        await client.connect()
        try:
            assert srv.sessions == 1
            # the client's heartbeat is 10 s but the server announces 0.05 s: client adapts
            await asyncio.sleep(0.5)
            assert srv.sessions == 1
        finally:
            await client.close()
        for _ in range(50):
            if srv.sessions == 0:
                break
            await asyncio.sleep(0.02)
        assert srv.sessions == 0
