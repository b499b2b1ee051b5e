"""Hostile peers: raw frames, oversized messages, wrong versions, unauthorized keys."""

from __future__ import annotations

import asyncio
import random

import msgpack
import pytest
import zmq
import zmq.asyncio

from qnhw.errors import ErrorCode, MessageTooLarge, Unauthorized, VersionMismatch
from qnhw.protocol import Hello, Limits, decode_message, encode_message
from qnhw.protocol.messages import ErrorReply, Welcome
from qnhw.runtime import Client, CurveClient, CurveServer, generate_keypair

from .helpers import make_server


async def raw_exchange(sock: zmq.asyncio.Socket, frames: list[bytes],
                       wait: float = 1.0) -> list[bytes] | None:
    await sock.send_multipart(frames)
    if await sock.poll(int(wait * 1000)):
        return await sock.recv_multipart()  # type: ignore[no-any-return]
    return None


async def test_random_and_malformed_frames_get_errors_and_server_keeps_serving() -> None:
    rng = random.Random(1234)
    ctx = zmq.asyncio.Context()
    async with make_server() as srv, Client(srv.address) as good:
        raw = ctx.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(srv.address)
        try:
            cases: list[list[bytes]] = [
                [b""], [b"\xc1"], [msgpack.packb([1, 2, 3])], [msgpack.packb({"k": "req"})],
                [msgpack.packb({"k": "req", "id": 1, "m": "echo", "p": {"x": 1.0}})],
                [msgpack.packb({"k": "hello", "pv": "x"})],
                [msgpack.packb({1: 2})], [b"\x91" * 3000 + b"\x90"],
                [msgpack.packb(msgpack.ExtType(99, b"x"))],
                [msgpack.packb({"k": "hb"}), b"extra frame"],
            ]
            cases += [[rng.randbytes(rng.randrange(1, 300))] for _ in range(200)]
            replies = 0
            for frames in cases:
                await raw.send_multipart(frames)
                # the good client is served between hostile messages
                assert await good.call("square", n=7) == 49
            for _ in range(len(cases)):  # bounded drain of error replies
                if not await raw.poll(200):
                    break
                reply = decode_message(await raw.recv_multipart())
                assert isinstance(reply, ErrorReply)
                assert reply.code in (ErrorCode.PROTOCOL, ErrorCode.NO_SESSION,
                                      ErrorCode.TOO_LARGE)
                replies += 1
            assert replies >= 200  # every parseable-or-not message got a typed answer
            assert srv.sessions == 1  # the hostile peer never got a session
        finally:
            raw.close()
            ctx.term()


async def test_requests_before_hello_get_no_session() -> None:
    ctx = zmq.asyncio.Context()
    async with make_server() as srv:
        raw = ctx.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(srv.address)
        try:
            frames = encode_message(decode_message(
                [msgpack.packb({"k": "req", "id": 5, "m": "noop", "p": {}})]))
            reply = await raw_exchange(raw, [bytes(f) for f in frames])
            assert reply is not None
            err = decode_message(reply)
            assert isinstance(err, ErrorReply) and err.code == ErrorCode.NO_SESSION
            assert err.id == 5
        finally:
            raw.close()
            ctx.term()


async def test_oversized_message_refused_locally_and_by_server() -> None:
    limits = Limits(max_message=64 * 1024)
    async with make_server(limits=limits) as srv, Client(srv.address) as client:
        with pytest.raises(MessageTooLarge):  # the client knows the server's limit
            await client.call("echo", x=1.0, blob=b"\0" * 100_000)
        assert await client.call("square", n=2) == 4
    ctx = zmq.asyncio.Context()
    async with make_server(limits=limits) as srv:
        raw = ctx.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(srv.address)
        try:
            big = msgpack.packb({"k": "req", "id": 77, "m": "echo", "p": {"b": b"\0" * 100_000}})
            reply = await raw_exchange(raw, [big])
            assert reply is not None
            err = decode_message(reply)  # addressed to the offending request
            assert isinstance(err, ErrorReply) and err.code == ErrorCode.TOO_LARGE
            assert err.id == 77
        finally:
            raw.close()
            ctx.term()


async def test_far_oversized_frame_is_dropped_by_zeromq_and_server_survives() -> None:
    limits = Limits(max_message=64 * 1024)
    ctx = zmq.asyncio.Context()
    async with make_server(limits=limits) as srv, Client(srv.address) as client:
        raw = ctx.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(srv.address)
        try:
            await raw.send(b"\0" * (1024 * 1024))  # above MAXMSGSIZE: peer disconnected
            await asyncio.sleep(0.1)
            assert await client.call("square", n=3) == 9
        finally:
            raw.close()
            ctx.term()


async def test_version_mismatch_is_refused_with_a_clear_error() -> None:
    ctx = zmq.asyncio.Context()
    async with make_server() as srv:
        raw = ctx.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(srv.address)
        try:
            reply = await raw_exchange(raw, [bytes(f) for f in encode_message(Hello((2, 0)))])
            assert reply is not None
            err = decode_message(reply)
            assert isinstance(err, ErrorReply) and err.code == ErrorCode.VERSION
            assert "major versions must match" in err.message
            ok = await raw_exchange(raw, [bytes(f) for f in encode_message(Hello((1, 9)))])
            assert ok is not None and isinstance(decode_message(ok), Welcome)
        finally:
            raw.close()
            ctx.term()


async def test_client_raises_version_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    import qnhw.runtime.client as client_module

    monkeypatch.setattr(client_module, "PROTOCOL_VERSION", (7, 0))
    async with make_server() as srv:
        client = Client(srv.address, connect_timeout=2.0)
        with pytest.raises(VersionMismatch):
            await client.connect()
        await client.close()


async def test_curve_allow_list() -> None:
    server_pub, server_sec = generate_keypair()
    good_pub, good_sec = generate_keypair()
    bad_pub, bad_sec = generate_keypair()
    curve = CurveServer(server_pub, server_sec, frozenset({good_pub}))
    async with make_server(curve=curve) as srv:
        async with Client(srv.address, curve=CurveClient(server_pub, good_pub, good_sec)) as c:
            assert await c.call("square", n=9) == 81
        intruder = Client(srv.address, curve=CurveClient(server_pub, bad_pub, bad_sec),
                          connect_timeout=2.0)
        with pytest.raises(Unauthorized):
            await intruder.connect()
        await intruder.close()
        plain = Client(srv.address, connect_timeout=0.5)  # no encryption at all: nothing back
        with pytest.raises(Exception) as info:
            await plain.connect()
        assert getattr(info.value, "code", None) in (ErrorCode.CONNECTION,
                                                     ErrorCode.UNAUTHORIZED)
        await plain.close()


async def test_unlisted_client_receives_not_a_single_byte() -> None:
    server_pub, server_sec = generate_keypair()
    bad_pub, bad_sec = generate_keypair()
    ctx = zmq.asyncio.Context()
    async with make_server(curve=CurveServer(server_pub, server_sec, frozenset())) as srv:
        raw = ctx.socket(zmq.DEALER)
        raw.linger = 0
        raw.curve_serverkey = server_pub.encode()
        raw.curve_publickey = bad_pub.encode()
        raw.curve_secretkey = bad_sec.encode()
        raw.connect(srv.address)
        try:
            hello = [bytes(f) for f in encode_message(Hello((1, 0)))]
            assert await raw_exchange(raw, hello, wait=1.0) is None
            assert srv.sessions == 0
        finally:
            raw.close()
            ctx.term()


def test_servers_bind_loopback_by_default() -> None:
    srv = make_server.__defaults__  # type: ignore[attr-defined]
    assert srv == ("tcp://127.0.0.1:0",)
    from qnhw.runtime import DeviceServer

    assert DeviceServer.__init__.__defaults__[0] == "tcp://127.0.0.1:0"  # type: ignore[index]


async def test_oversized_reply_becomes_too_large_error() -> None:
    import numpy as np

    limits = Limits(max_message=64 * 1024)
    async with make_server(limits=limits) as srv:
        srv.command("big")(lambda: np.zeros(100_000, dtype=np.int64))
        srv.command("huge_error")(lambda: (_ for _ in ()).throw(RuntimeError("x" * 100_000)))
        async with Client(srv.address) as client:
            with pytest.raises(MessageTooLarge):
                await client.call("big")
            with pytest.raises(Exception) as info:
                await client.call("huge_error")
            assert info.value.code == ErrorCode.INTERNAL  # type: ignore[attr-defined]
            assert len(str(info.value)) < 5000
            assert await client.call("square", n=3) == 9


async def test_reply_beyond_client_limits_fails_its_call_at_once() -> None:
    import numpy as np

    async with make_server() as srv:
        # 150 kB: above the client's 100 kB limit, below ZeroMQ's hard cut (limit + 64 KiB)
        srv.command("big")(lambda: np.zeros(150_000, dtype=np.uint8).tobytes())
        async with Client(srv.address, limits=Limits(max_message=100_000)) as c:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(MessageTooLarge):
                await c.call("big", timeout=5.0)
            assert loop.time() - t0 < 2.0  # not a timeout: the undecodable reply is matched
            assert await c.call("square", n=3) == 9
