"""CURVE encryption and the client allow-list (a ZAP handler on the server's own context).

Keys are Z85 strings (40 characters) as produced by :func:`generate_keypair`. A server with a
:class:`CurveServer` config accepts only clients whose public key is in ``allowed_clients``; an
unlisted client's handshake fails inside ZeroMQ, so it never receives a single message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import zmq
from zmq.utils import z85

from qnhw.log import get_logger
from qnhw.transport.zmq_loop import LoopSocket

ZAP_ENDPOINT = "inproc://zeromq.zap.01"


def generate_keypair() -> tuple[str, str]:
    """A new CURVE key pair as Z85 strings: ``(public, secret)``."""
    public, secret = zmq.curve_keypair()
    return public.decode("ascii"), secret.decode("ascii")


@dataclass(frozen=True)
class CurveServer:
    """Server side: its key pair and the public keys of the clients it accepts."""

    public: str
    secret: str
    allowed_clients: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class CurveClient:
    """Client side: the server's public key and the client's own key pair."""

    server_public: str
    public: str
    secret: str


def apply_server(sock: zmq.Socket[Any], cfg: CurveServer, domain: str) -> None:
    sock.curve_server = True
    sock.curve_secretkey = cfg.secret.encode("ascii")
    sock.curve_publickey = cfg.public.encode("ascii")
    sock.zap_domain = domain.encode()


def apply_client(sock: zmq.Socket[Any], cfg: CurveClient) -> None:
    sock.curve_serverkey = cfg.server_public.encode("ascii")
    sock.curve_publickey = cfg.public.encode("ascii")
    sock.curve_secretkey = cfg.secret.encode("ascii")


class ZapHandler:
    """Answers ZAP requests (RFC 27) of one context: CURVE clients on the allow-list pass."""

    def __init__(self, ctx: zmq.Context[Any], cfg: CurveServer, device: str) -> None:
        self._allowed = {z85.decode(k.encode("ascii")) for k in cfg.allowed_clients}
        self._log = get_logger("auth", device=device)
        sock = ctx.socket(zmq.ROUTER)
        sock.linger = 0
        sock.bind(ZAP_ENDPOINT)
        self._sock = LoopSocket(sock, self._on_request, loop=asyncio.get_running_loop(),
                                copy=True)

    def _on_request(self, frames: list[Any]) -> None:
        # [identity, b"", version, request_id, domain, address, identity, mechanism, *creds]
        if len(frames) < 9:
            return
        ident, _, version, request_id, _domain, address, _id, mechanism = frames[:8]
        creds = frames[8:]
        ok = mechanism == b"CURVE" and bool(creds) and creds[0] in self._allowed
        if ok:
            status, text, user = b"200", b"OK", z85.encode(creds[0])
        else:
            status, text, user = b"400", b"client key not allowed", b""
            self._log.warning("rejected client", address=address.decode(errors="replace"),
                              mechanism=mechanism.decode(errors="replace"))
        self._sock.send([ident, b"", version, request_id, status, text, user, b""], copy=True)

    def close(self) -> None:
        self._sock.close()
