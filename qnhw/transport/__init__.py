"""Transports: ZeroMQ sockets driven from the asyncio loop, and serial framing."""

from qnhw.transport.zmq_loop import LoopSocket, pub_address_for

__all__ = ["LoopSocket", "pub_address_for"]
