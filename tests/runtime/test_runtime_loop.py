"""qnhw's client and server on other event loops: the standard one and uvloop.

Applications that embed qnhw often run uvloop; the runtime drives ZeroMQ through
``loop.add_reader`` (qnhw/transport/zmq_loop.py), so it must work there too. These tests are
plain functions that make their own loop, as such applications do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from qnhw.runtime import Client, StreamMode

from .helpers import make_server


def new_loop(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop  # type: ignore[no-any-return]
    return asyncio.new_event_loop


def run_on(name: str, main: Coroutine[Any, Any, Any]) -> Any:
    factory = new_loop(name)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


async def _round_trips() -> dict[str, object]:
    """Calls, errors and both stream modes between a client and a server on this loop."""
    out: dict[str, object] = {}
    async with make_server(lossless_buffer=16) as srv, Client(srv.address) as client:
        out["echo"] = [await client.call("echo", x=i / 10) for i in range(20)]
        out["concurrent"] = await asyncio.gather(*(client.call("square", n=n)
                                                   for n in range(64)))
        try:
            await client.call("square", n=-1)
        except Exception as exc:  # a typed remote error, raised on this loop
            out["error"] = type(exc).__name__
        async with client.subscribe("counts", mode=StreamMode.LOSSLESS, credit=8) as sub:
            async def produce() -> None:
                for i in range(200):
                    await srv.publish("counts", i)

            producer = asyncio.create_task(produce())
            got = []
            async with asyncio.timeout(10):
                async for ev in sub:
                    got.append(ev.payload)
                    if len(got) == 200:
                        break
            await producer
            out["lossless"] = got
        async with client.subscribe("counts") as fan:  # fan-out: PUB/SUB on its own socket
            for _ in range(200):  # the SUB socket joins asynchronously: bounded wait
                srv.publish_nowait("counts", -1)
                await asyncio.sleep(0.01)
                if fan.get_nowait() is not None:
                    break
            while fan.get_nowait() is not None:
                pass
            for i in range(50):
                srv.publish_nowait("counts", i)
            seen = []
            async with asyncio.timeout(10):
                async for ev in fan:
                    seen.append(ev.payload)
                    if len(seen) == 50:
                        break
            out["fanout"] = seen
    return out


@pytest.mark.parametrize("name", ["asyncio", "uvloop"])
def test_client_and_server_work_on_each_loop(name: str) -> None:
    new_loop(name)  # skips when uvloop is not installed
    out = run_on(name, _round_trips())
    assert out["echo"] == [i / 10 for i in range(20)]
    assert out["concurrent"] == [n * n for n in range(64)]
    assert out["error"] == "BadParams"
    assert out["lossless"] == list(range(200))
    assert out["fanout"] == list(range(50))
