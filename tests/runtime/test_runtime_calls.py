"""Calls over real loopback sockets: results, typed errors, concurrency, describe."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from qnhw import Quantity
from qnhw.errors import (
    BadParams,
    DeviceFault,
    ErrorCode,
    InternalError,
    UnknownCommand,
)
from qnhw.runtime import Client, ConnectionState

from .helpers import make_server


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:0", "inproc://calls-test", "ipc"])
async def test_call_round_trip_on_every_transport(address: str, tmp_path: object) -> None:
    if address == "ipc":
        address = f"ipc://{tmp_path}/dev.sock"
    async with make_server(address) as srv, Client(srv.address) as client:
        assert client.state is ConnectionState.CONNECTED
        assert await client.call("echo", x=1.25) == 1.25
        assert await client.call("square", n=12) == 144
        assert await client.call("echo", x=Quantity(250, "ms")) == 0.25


async def test_typed_errors_and_connection_survives() -> None:
    async with make_server() as srv, Client(srv.address) as client:
        with pytest.raises(BadParams, match="above maximum") as e1:
            await client.call("echo", x=11.0)
        assert e1.value.code == ErrorCode.BAD_PARAMS and e1.value.details["param"] == "x"
        with pytest.raises(BadParams, match="expected int"):
            await client.call("square", n="3")
        with pytest.raises(BadParams, match="cannot be converted"):
            await client.call("echo", x=Quantity(1, "Hz"))
        with pytest.raises(BadParams, match="missing required"):
            await client.call("square")
        with pytest.raises(BadParams, match="unknown parameter"):
            await client.call("square", n=1, m=2)
        with pytest.raises(UnknownCommand):
            await client.call("no_such_command")
        with pytest.raises(DeviceFault, match="interlock") as e2:
            await client.call("fault")
        assert e2.value.details == {"interlock": "door"}
        with pytest.raises(InternalError, match="bug in handler"):
            await client.call("crash")
        assert await client.call("square", n=3) == 9


async def test_numpy_arrays_travel_both_ways() -> None:
    async with make_server() as srv:
        srv.command(params=[])(lambda: np.arange(100_000, dtype=np.int64))
        async with Client(srv.address) as client:
            out = await client.call("<lambda>")
            np.testing.assert_array_equal(out, np.arange(100_000))


async def test_describe_lists_commands_params_streams() -> None:
    async with make_server() as srv, Client(srv.address) as client:
        d = await client.describe()
        assert d["device"] == "testdev" and d["protocol"] == [1, 0]
        echo = next(c for c in d["commands"] if c["name"] == "echo")
        assert echo["doc"] == "Return x."
        assert echo["params"] == [{"name": "x", "type": "float", "unit": "s",
                                   "doc": "a duration", "required": True, "min": 0, "max": 10}]
        assert [s["name"] for s in d["streams"]] == ["counts"]
        ping = await client.ping()
        assert ping["domain"] == "host" and isinstance(ping["time_ps"], int)


async def test_64_concurrent_calls_from_8_clients_all_correct() -> None:
    async with make_server() as srv:
        clients = [Client(srv.address, name=f"c{i}") for i in range(8)]
        for c in clients:
            await c.connect()
        try:
            async def one(c: Client, n: int) -> tuple[int, int]:
                if n % 4 == 0:  # mix slow async handlers with fast inline ones
                    return n, await c.call("slow", delay=0.01 * (n % 3), tag=n)
                return n, await c.call("square", n=n)

            jobs = [one(clients[i % 8], i) for i in range(128)]
            results = await asyncio.gather(*jobs)
            for n, r in results:
                assert r == (n if n % 4 == 0 else n * n)
        finally:
            for c in clients:
                await c.close()


async def test_slow_handler_does_not_block_other_clients() -> None:
    async with make_server() as srv, Client(srv.address) as a, Client(srv.address) as b:
        slow = asyncio.create_task(a.call("slow", delay=2.0))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for n in range(20):
            assert await b.call("square", n=n) == n * n
        assert loop.time() - t0 < 1.0  # 20 calls while the 2 s handler runs
        assert not slow.done()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
