"""Servers for runtime tests: an in-process factory and a separate-process one."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time

from qnhw.contract import Param
from qnhw.errors import DeviceFault
from qnhw.runtime import DeviceServer
from qnhw.contract import StreamSpec


def make_server(address: str = "tcp://127.0.0.1:0", **kwargs: object) -> DeviceServer:
    """A server with a small, representative command set (units, ranges, slow handlers)."""
    srv = DeviceServer("testdev", address, **kwargs)  # type: ignore[arg-type]

    @srv.command(params=[Param("x", "float", unit="s", min=0, max=10, doc="a duration")])
    def echo(x: float) -> float:
        """Return x."""
        return x

    @srv.command(params=[Param("n", "int", min=0, max=1000)])
    def square(n: int) -> int:
        return n * n

    @srv.command(params=[Param("delay", "float", unit="s", min=0, max=30),
                         Param("tag", "int", default=0)])
    async def slow(delay: float, tag: int) -> int:
        await asyncio.sleep(delay)
        return tag

    @srv.command()
    def fault() -> None:
        raise DeviceFault("laser interlock open", {"interlock": "door"})

    @srv.command()
    def crash() -> None:
        raise RuntimeError("bug in handler")

    @srv.command()
    def noop() -> None:
        return None

    srv.add_stream(StreamSpec("counts", "a counter", "int", "host"))
    return srv


def free_tcp_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


SERVER_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, {tests!r})
    from runtime.helpers import make_server
    async def main():
        srv = make_server({address!r}, heartbeat=0.2, session_timeout=1.0)
        await srv.start()
        print("ready", flush=True)
        await srv.serve_forever()
    asyncio.run(main())
""")


class ServerProcess:
    """``make_server`` in a child process at a fixed address; kill and restart it at will."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = SERVER_SCRIPT.format(tests=tests, address=self.address)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        line = self.proc.stdout.readline()  # bounded by the child's own start-up
        if line.strip() != "ready" or time.monotonic() > deadline:
            self.kill()
            raise RuntimeError(f"server process did not start: {line!r}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
