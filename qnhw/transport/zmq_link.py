"""The ZeroMQ link: a DEALER socket plus a monitor that reports disconnects and auth failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import zmq
import zmq.utils.monitor

from qnhw.errors import Busy, ConnectionLost, QnhwError, Unauthorized
from qnhw.transport.link import LinkOptions, OnFrames, OnLost, register_link
from qnhw.transport.zmq_loop import LoopSocket


class ZmqLink:
    """DEALER connected to a server's ROUTER; array frames travel out of band."""

    oob = True

    def __init__(self, address: str, on_frames: OnFrames, on_lost: OnLost,
                 options: LinkOptions) -> None:
        ctx: zmq.Context[Any] = options.context or zmq.Context.instance()
        loop = asyncio.get_running_loop()
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.rcvhwm = 10000
        sock.sndhwm = 10000
        sock.maxmsgsize = options.limits.max_message + 65536
        if options.curve is not None:
            from qnhw.runtime.auth import apply_client

            apply_client(sock, options.curve)
        self._on_lost = on_lost
        self._monitor: LoopSocket | None = None
        if not address.startswith("inproc://"):
            mon = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED
                                          | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                          | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
            self._monitor = LoopSocket(mon, self._on_monitor, loop=loop, copy=True)
        sock.connect(address)
        self._sock = LoopSocket(sock, on_frames, loop=loop, copy=False)
        self.address = address

    def send(self, frames: Sequence[Any]) -> None:
        try:
            self._sock.send(frames)
        except zmq.Again:
            raise Busy(f"send queue to {self.address} is full") from None
        except zmq.ZMQError as exc:
            raise ConnectionLost(f"cannot send to {self.address}: {exc}") from None

    def _on_monitor(self, frames: list[Any]) -> None:
        event = zmq.utils.monitor.parse_monitor_message(frames)["event"]
        err: QnhwError
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            err = Unauthorized(f"{self.address} refused this client's key")
        elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            err = Unauthorized(f"security handshake with {self.address} failed")
        else:
            err = ConnectionLost(f"{self.address} disconnected")
        self._on_lost(err)

    def close(self) -> None:
        if self._monitor is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._sock.sock.disable_monitor()
            self._monitor.close()
            self._monitor = None
        self._sock.close()


def _factory(address: str, on_frames: OnFrames, on_lost: OnLost,
             options: LinkOptions) -> ZmqLink:
    return ZmqLink(address, on_frames, on_lost, options)


for _scheme in ("tcp", "ipc", "inproc"):
    register_link(_scheme, _factory)
