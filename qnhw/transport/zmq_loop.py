"""Drive a ZeroMQ socket from the asyncio event loop without ``zmq.asyncio``.

The socket's file descriptor (edge-triggered: it signals that ``ZMQ_EVENTS`` may have changed) is
registered with ``loop.add_reader``; when it fires, every pending message is drained with
non-blocking receives, in batches, and handed to a plain callback. Sends are non-blocking
calls on the loop thread. After each send ``ZMQ_EVENTS`` is checked because a send can consume
the read edge. This saves the future-per-receive and poller overhead of ``zmq.asyncio``: see
docs/performance.md for the measurements that chose this design.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import zmq

from qnhw.log import get_logger

_log = get_logger("transport")

# Plain ints: pyzmq's flag enums cost microseconds per `|` or `&` on the hot path.
_POLLIN = int(zmq.POLLIN)
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK) | int(zmq.SNDMORE)
# The Cython methods under pyzmq's Python-level Socket wrappers (same semantics, less overhead).
_send: Callable[..., Any] = zmq.backend.Socket.send
_recv: Callable[..., Any] = zmq.backend.Socket.recv
# "is a message waiting?": zmq_poll with timeout 0 reads ZMQ_EVENTS without Socket.get's
# per-call SocketOption enum lookup (Python code); it takes a prebuilt [(socket, POLLIN)] list
_poll: Callable[[list[Any], int], list[Any]] = zmq.zmq_poll

_BYTES = attrgetter("bytes")  # Frame -> bytes, mapped in C

OnMessage = Callable[[list[Any]], None]


class LoopSocket:
    """A zmq socket whose incoming messages are delivered to ``on_message`` on the loop.

    With ``on_message=None`` the socket is send-only (PUB) and is not registered for reading.
    ``on_message`` receives the list of frames (``zmq.Frame`` when ``copy=False``, else
    ``bytes``). It must not block; exceptions it raises are logged and the socket keeps serving.
    At most ``batch`` messages are drained per loop iteration, so one busy socket cannot starve
    the loop.
    """

    def __init__(self, sock: zmq.Socket[Any], on_message: OnMessage | None, *,
                 loop: asyncio.AbstractEventLoop | None = None, copy: bool = False,
                 batch: int = 256) -> None:
        self.sock = sock
        self._on_message: OnMessage = on_message or (lambda frames: None)
        self._reading = on_message is not None
        self._loop = loop or asyncio.get_running_loop()
        self._copy = copy
        self._batch = batch
        fd = sock.getsockopt(zmq.FD)
        assert isinstance(fd, int)
        self._fd = fd
        self._pollin = [(sock, _POLLIN)]
        self._closed = False
        self._scheduled = False
        self._draining = False
        if self._reading:
            self._loop.add_reader(self._fd, self._drain)
            self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled and not self._closed and self._reading:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        if self._closed:
            return
        sock = self.sock
        pollin = self._pollin
        copy = self._copy
        on_message = self._on_message
        self._draining = True
        try:
            # a zero-timeout poll (ZMQ_EVENTS) is cheaper than letting a non-blocking recv raise
            # zmq.Again, and Frame.more than asking ZMQ_RCVMORE (what recv_multipart does)
            for _ in range(self._batch):
                if not _poll(pollin, 0):
                    return
                frame = _recv(sock, _NOBLOCK, False)
                frames: list[Any] = [frame]
                while frame.more:
                    frame = _recv(sock, _NOBLOCK, False)
                    frames.append(frame)
                if copy:
                    frames = list(map(_BYTES, frames))
                try:
                    on_message(frames)
                except Exception:
                    _log.exception("message handler raised; socket keeps serving")
                if self._closed:
                    return
        except zmq.Again:
            return
        except zmq.ZMQError as exc:
            if not self._closed and exc.errno not in (zmq.ENOTSOCK, zmq.ETERM):
                _log.warning("recv failed", error=str(exc))
            return
        finally:
            self._draining = False
        self._schedule()  # more may be pending: continue on the next loop iteration

    def send(self, frames: Sequence[Any], *, copy: bool = False) -> None:
        """Send one multipart message without blocking.

        Raises ``zmq.Again`` when the socket's high-water mark is reached (or, on a ROUTER with
        ``ROUTER_MANDATORY``, ``zmq.ZMQError`` with ``EHOSTUNREACH`` for an unknown peer);
        ``ValueError`` for an empty ``frames``.
        """
        sock = self.sock
        last = len(frames) - 1
        if last < 0:
            raise ValueError("a message needs at least one frame")
        for i in range(last):  # (once its first frame is queued, a multipart message is whole)
            _send(sock, frames[i], _NOBLOCK_MORE, copy, False)
        _send(sock, frames[last], _NOBLOCK, copy, False)
        # (a running drain re-checks EVENTS itself)
        if self._reading and not self._draining and _poll(self._pollin, 0):
            self._schedule()

    def close(self, linger: int = 0) -> None:
        """Unregister from the loop and close the socket; pending output is kept for at most
        ``linger`` ms."""
        if self._closed:
            return
        self._closed = True
        if self._reading:
            with contextlib.suppress(Exception):  # the loop may be closed already
                self._loop.remove_reader(self._fd)
        self.sock.close(linger=linger)

    @property
    def closed(self) -> bool:
        return self._closed


def pub_address_for(address: str) -> str:
    """Default address of the fan-out (PUB) endpoint that goes with an RPC ``address``.

    tcp: same host, an ephemeral port; ipc/inproc: the same path with ``.pub`` appended.
    """
    scheme, _, rest = address.partition("://")
    if scheme == "tcp":
        host = rest.rsplit(":", 1)[0]
        return f"tcp://{host}:*"
    return f"{address}.pub"
