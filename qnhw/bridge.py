"""The serial bridge: a serial-attached device served on ZeroMQ like any other endpoint.

:class:`SerialBridge` connects a :class:`qnhw.runtime.Client` to a device on a serial line
(``serial:...`` address, e.g. a microcontroller running ``firmware_stubs``), reads its
``describe`` reply and starts a :class:`qnhw.runtime.DeviceServer` with the same device name,
contract (name and version), commands (with the same typed, unit-carrying, range-checked
parameters), streams, capabilities and clock domain. Then:

* each call on the ZeroMQ side is validated, forwarded on the serial link and answered with the
  device's result or its typed error (same code, message and details);
* each device stream is subscribed (fan-out) and republished with the device's own sequence
  numbers and timestamps, so a gap on the serial line stays a visible gap downstream;
* ``qnhw.ping`` answers with the device clock, estimated from the host clock and the offset
  measured by a serial ping every ``sync_interval`` seconds (error: half the serial round trip);
* the serial side reconnects by itself when the device is unplugged, reset or restarted;
  meanwhile calls fail with :class:`ConnectionLost` or :class:`DeadlineExceeded`, and
  downstream subscribers see the device's restarted sequence as a reset.

The command table is fixed when the bridge starts: a device that comes back with another
contract is logged, not re-described (restart the bridge).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import zmq

from qnhw.contract.spec import REQUIRED, Command, Contract, Field, Param, StreamSpec
from qnhw.errors import Busy, ConnectionLost, NoSession, QnhwError
from qnhw.log import get_logger
from qnhw.runtime.auth import CurveServer
from qnhw.runtime.client import Client
from qnhw.runtime.server import DeviceServer
from qnhw.runtime.streams import StreamEvent
from qnhw.runtime.tasks import BackgroundTasks

_PARAM_KEYS = frozenset(f.name for f in dataclasses.fields(Param))
_FIELD_KEYS = frozenset(f.name for f in dataclasses.fields(Field))
_TYPES = frozenset({"int", "float", "bool", "str", "bytes", "array", "list", "dict",
                    "timestamp", "any"})


def serial_address(target: str) -> str:
    """``target`` as a ``serial:`` address: ``/dev/ttyUSB0`` becomes ``serial:///dev/ttyUSB0``,
    ``loop://`` becomes ``serial:loop://``; ``serial:...`` is returned unchanged."""
    if target.startswith("serial:"):
        return target
    if "://" in target:
        return "serial:" + target
    return "serial://" + target


def _plain_type(value: Any) -> str:
    return value if isinstance(value, str) and value in _TYPES else "any"


def param_from_describe(d: Mapping[str, Any]) -> Param:
    """A :class:`Param` from one entry of a ``describe`` reply (unknown keys are ignored).

    Raises ``ValueError``/``TypeError`` for an entry that cannot be a parameter.
    """
    kwargs: dict[str, Any] = {k: v for k, v in d.items()
                              if k in _PARAM_KEYS and k not in ("default", "items", "choices")}
    kwargs["type"] = _plain_type(d.get("type"))
    if isinstance(d.get("choices"), list):
        kwargs["choices"] = tuple(d["choices"])
    if isinstance(d.get("items"), Mapping):
        kwargs["items"] = param_from_describe(d["items"])
    required = d.get("required", "default" not in d)
    kwargs["default"] = REQUIRED if required else d.get("default")
    return Param(**kwargs)


def field_from_describe(d: Mapping[str, Any]) -> Field:
    """A :class:`Field` from a result or payload entry of a ``describe`` reply."""
    kwargs: dict[str, Any] = {k: v for k, v in d.items()
                              if k in _FIELD_KEYS and k not in ("items", "fields", "choices")}
    kwargs["type"] = _plain_type(d.get("type"))
    if isinstance(d.get("choices"), list):
        kwargs["choices"] = tuple(d["choices"])
    if isinstance(d.get("items"), Mapping):
        kwargs["items"] = field_from_describe(d["items"])
    if isinstance(d.get("fields"), list):
        kwargs["fields"] = tuple(field_from_describe(f) for f in d["fields"])
    return Field(**kwargs)


def command_from_describe(d: Mapping[str, Any]) -> Command:
    """A :class:`Command` (parameters and result schema) from a ``describe`` entry."""
    params = tuple(param_from_describe(p) for p in d.get("params") or ())
    result = tuple(field_from_describe(f) for f in d.get("result") or ())
    return Command(str(d["name"]), params, str(d.get("doc", "")), str(d.get("returns", "")),
                   result=result)


def stream_from_describe(d: Mapping[str, Any], default_domain: str) -> StreamSpec:
    """A :class:`StreamSpec` from a ``describe`` entry."""
    fields = tuple(field_from_describe(f) for f in d.get("fields") or ())
    return StreamSpec(str(d["name"]), str(d.get("doc", "")), str(d.get("payload", "")),
                      str(d.get("clock_domain") or default_domain), fields)


class _DeviceClock:
    """The device clock seen from the host: host monotonic time plus a measured offset."""

    def __init__(self) -> None:
        self.offset_ps = 0
        self.uncertainty_ps = 0

    def __call__(self) -> int:
        return time.monotonic_ns() * 1000 + self.offset_ps

    def update(self, device_ps: int, sent_ns: int, received_ns: int) -> None:
        mid_ps = (sent_ns + received_ns) * 500  # midpoint, ns -> ps
        self.offset_ps = device_ps - mid_ps
        self.uncertainty_ps = (received_ns - sent_ns) * 500


class _BridgeServer(DeviceServer):
    """A DeviceServer that republishes events under the device's own sequence numbers."""

    dropped = 0

    def republish(self, ev: StreamEvent) -> None:
        """Publish ``ev`` downstream with its seq and timestamp (never blocks).

        A lossless downstream subscriber that is full loses the event; the skipped sequence
        number makes the loss visible to it.
        """
        self._seq[ev.stream] = ev.seq
        try:
            self.publish_nowait(ev.stream, ev.payload, ev.ts_ps)
        except Busy:
            self.dropped += 1


class SerialBridge:
    """Serve the device at ``serial`` (a ``serial:`` address or a port path) on ``bind``.

    ``pub_address``: the fan-out endpoint ("auto": derived from ``bind``; ``None``: none).
    ``timeout``: per-call deadline on the serial side, seconds. ``connect_timeout``: how long
    :meth:`start` waits for the device. ``heartbeat``: serial heartbeat period, seconds.
    ``sync_interval``: seconds between clock-offset measurements. ``curve``: encryption and
    client allow-list for the ZeroMQ side.
    """

    def __init__(self, serial: str, bind: str = "tcp://127.0.0.1:0", *,
                 pub_address: str | None = "auto", timeout: float = 5.0,
                 connect_timeout: float = 10.0, heartbeat: float = 1.0,
                 sync_interval: float = 10.0, curve: CurveServer | None = None,
                 context: zmq.Context[Any] | None = None) -> None:
        self.serial = serial_address(serial)
        self.bind = bind
        self.pub_bind = pub_address
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.heartbeat = heartbeat
        self.sync_interval = sync_interval
        self._curve = curve
        self._ctx = context
        self.client: Client | None = None
        self.server: _BridgeServer | None = None
        self.description: dict[str, Any] = {}
        self.clock = _DeviceClock()
        self._stream_names: list[str] = []
        self._log = get_logger("bridge", upstream=self.serial)
        self._tasks = BackgroundTasks(self._log)

    @property
    def address(self) -> str:
        """The bound ZeroMQ endpoint (valid after :meth:`start`)."""
        return self.server.address if self.server is not None else self.bind

    @property
    def pub_address(self) -> str | None:
        """The bound fan-out endpoint, if any (valid after :meth:`start`)."""
        return self.server.pub_address if self.server is not None else None

    async def start(self) -> None:
        """Connect to the device, describe it, bind the ZeroMQ side. Returns once serving.

        Raises :class:`ConnectionLost` when the device does not answer within
        ``connect_timeout``, or the typed error of a failed ``describe``.
        """
        client = Client(self.serial, timeout=self.timeout, connect_timeout=self.connect_timeout,
                        heartbeat=self.heartbeat, name="qnhw-bridge", context=self._ctx)
        await client.connect()
        self.client = client
        try:
            desc = await client.describe()
            self.description = desc
            await self._sync_clock()
            self.server = self._make_server(desc)
            await self.server.start()
        except BaseException:
            await self.stop()
            raise
        for name in self._stream_names:
            self._tasks.spawn(self._pump(name), name=f"bridge-pump-{name}")
        self._tasks.spawn(self._watch(), name="bridge-watch")
        self._log.info("bridging", device=self.server.name, endpoint=self.server.address,
                       pub=self.server.pub_address)

    async def stop(self) -> None:
        """Stop serving and close the serial side. Idempotent."""
        await self._tasks.cancel_all()
        if self.server is not None:
            await self.server.stop()
        if self.client is not None:
            await self.client.close()

    async def __aenter__(self) -> SerialBridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until cancelled; stops cleanly on cancellation."""
        if self.server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # --- construction ----------------------------------------------------------------------

    def _make_server(self, desc: Mapping[str, Any]) -> _BridgeServer:
        domain = str(desc.get("clock_domain") or "device")
        contract_ref = desc.get("contract")
        commands: list[Command] = []
        for entry in desc.get("commands") or ():
            try:
                commands.append(command_from_describe(entry))
            except (KeyError, TypeError, ValueError) as exc:
                self._log.warning("command not bridged: bad describe entry",
                                  command=entry.get("name") if isinstance(entry, dict) else None,
                                  error=str(exc))
        streams = tuple(stream_from_describe(s, domain) for s in desc.get("streams") or ())
        self._stream_names = [s.name for s in streams]
        contract: Contract | None = None
        if isinstance(contract_ref, Mapping):
            try:
                contract = Contract(str(contract_ref["name"]), str(contract_ref["version"]),
                                    tuple(commands), streams)
            except (KeyError, ValueError) as exc:
                self._log.warning("device contract not passed through", error=str(exc))
        caps = desc.get("capabilities")
        server = _BridgeServer(
            str(desc.get("device") or "serial-device"), self.bind, pub_address=self.pub_bind,
            contract=contract, capabilities=dict(caps) if isinstance(caps, Mapping) else {},
            curve=self._curve, clock=self.clock, clock_domain=domain, context=self._ctx)
        for cmd in commands:
            server.add_command(cmd, self._forwarder(cmd.name))
        if contract is None:
            for spec in streams:
                server.add_stream(spec)
        return server

    def _forwarder(self, method: str) -> Callable[..., Any]:
        async def forward(**params: Any) -> Any:
            client = self.client
            if client is None:
                raise ConnectionLost("bridge is not connected")
            try:
                return await client.request(method, params)
            except NoSession:
                # the device was reset under this call; the serial side re-handshakes by
                # itself -- the downstream session is fine, so do not pass NO_SESSION on
                raise ConnectionLost(f"{method}: the serial device was reset during the call",
                                     {"upstream": self.serial}) from None

        forward.__name__ = method
        return forward

    # --- background work -------------------------------------------------------------------

    async def _pump(self, stream: str) -> None:
        """Republish one device stream; resubscribes after errors (1 s back-off)."""
        assert self.client is not None and self.server is not None
        while True:
            try:
                async with self.client.subscribe(stream, mode="fanout") as sub:
                    async for ev in sub:
                        self.server.republish(ev)
            except QnhwError as exc:
                self._log.warning("stream subscription failed", stream=stream, error=str(exc))
            await asyncio.sleep(1.0)

    async def _sync_clock(self) -> None:
        assert self.client is not None
        sent = time.monotonic_ns()
        reply = await self.client.ping()
        received = time.monotonic_ns()
        ps = reply.get("time_ps") if isinstance(reply, dict) else None
        if isinstance(ps, int):
            self.clock.update(ps, sent, received)

    async def _watch(self) -> None:
        """Re-measure the clock offset every ``sync_interval`` s and after a device restart
        (new epoch); log a device that came back as another one."""
        assert self.client is not None
        epoch = self.client.welcome.epoch if self.client.welcome else None
        last_sync = time.monotonic()
        while True:
            await asyncio.sleep(0.25)
            welcome = self.client.welcome
            restarted = welcome is not None and welcome.epoch != epoch
            if restarted and welcome is not None:
                epoch = welcome.epoch
                if (welcome.device != self.description.get("device")
                        or welcome.contract != self.description.get("contract")):
                    self._log.error("serial device changed identity; restart the bridge",
                                    device=welcome.device, contract=welcome.contract)
            if restarted or time.monotonic() - last_sync >= self.sync_interval:
                with contextlib.suppress(QnhwError):
                    await self._sync_clock()
                    last_sync = time.monotonic()


__all__ = [
    "SerialBridge",
    "command_from_describe",
    "field_from_describe",
    "param_from_describe",
    "serial_address",
    "stream_from_describe",
]
