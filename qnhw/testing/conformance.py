"""The conformance kit: prove that an endpoint honours its device contract.

Any implementation -- the reference devices, an emulator, a real device server -- runs the same
checks over the wire::

    import pytest
    from qnhw.testing import conformance

    @pytest.mark.parametrize("case", conformance.cases("QuantumMemory"), ids=str)
    async def test_memory_conforms(case, memory_address):
        await case.run(memory_address)

Checks (one :class:`Case` each):

``handshake``
    The welcome names the contract and a compatible version; a client expecting another
    contract name, another major version or a newer minor version is refused with
    ``ContractMismatch``; the endpoint keeps serving.
``describe``
    The ``describe`` reply matches the contract: every command the device must offer (all
    commands without a feature, plus those of the features it advertises) is present with the
    contract's parameters, units, ranges, defaults and result schema; commands of features it
    does not advertise are absent; extra commands are namespaced (``vendor.name``); every
    stream is declared as in the contract; the clock domain is named.
``capabilities``
    The capability map fits the contract's capability schema; advertised features are the
    contract's.
``bad_params``
    For every command and parameter: a wrong type, a value below the minimum or above the
    maximum, a value outside the choices, a quantity in a unit of another dimension, an item of
    the wrong type, a missing required parameter and an unknown parameter each get error code
    ``BAD_PARAMS`` naming the parameter; the connection keeps working.
``unknown_command``
    An unknown command, and a command of a feature the device does not offer, get
    ``UNKNOWN_COMMAND``; the connection keeps working.
``exercise``
    The contract's scenario runs through the typed driver; every offered command is called at
    least once and every result fits the command's result schema, timestamps in the device's
    clock domain.
``streams``
    While the scenario runs, a lossless and a fan-out subscriber to every stream receive
    events whose sequence numbers increase (by exactly one in lossless mode), whose timestamps
    are int picoseconds in the declared domain and whose payloads fit the stream's schema; the
    streams listed as required produce at least one event. On a single-session endpoint (a
    ``serial:`` address: one client at a time, one subscription per stream) the kit cannot add
    subscribers of its own; it runs the scenario twice, its subscriptions forced lossless and
    then fan-out, and checks the events they receive (streams the scenario does not subscribe
    to are not observed there).

The scenarios modify device state (they configure, arm, route, step a timing card's clock):
run the kit on a bench device, not one serving an experiment.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qnhw.contract.spec import Command, Contract, Param
from qnhw.devices import DRIVERS, driver_for
from qnhw.devices.base import FEATURES_KEY, Driver
from qnhw.devices.heralding import HeraldingStation
from qnhw.devices.memory import ROTATIONS, QuantumMemory
from qnhw.devices.qasm import QELIB1_GATES
from qnhw.devices.qpu import QPU
from qnhw.devices.source import PhotonSource
from qnhw.devices.switch import OpticalSwitch
from qnhw.devices.timetagger import TimeTagger
from qnhw.devices.timing import TimingCard
from qnhw.devices.transducer import Transducer
from qnhw.devices.trigger_generator import TriggerGenerator
from qnhw.errors import ContractMismatch, ErrorCode, QnhwError
from qnhw.protocol.messages import Event, EventBatch
from qnhw.protocol.types import Quantity
from qnhw.runtime.client import Client
from qnhw.runtime.streams import StreamEvent, StreamMode, Subscription

#: How long a scenario waits for a stream event it synchronizes on, seconds.
EVENT_TIMEOUT = 5.0
# scenarios subscribe losslessly: the subscription is in force when open() returns, so the
# event the scenario then causes cannot be missed (a fan-out SUB joins asynchronously)
LOSSLESS = "lossless"


class ConformanceError(AssertionError):
    """An endpoint does not honour its contract; the message lists every problem found."""


@dataclass
class Context:
    """What a check gets: the endpoint, its contract and how to connect to it."""

    address: str
    contract: Contract
    driver: type[Driver]
    client_opts: dict[str, Any] = field(default_factory=dict)
    required_streams: tuple[str, ...] = ()

    def client(self, contract: dict[str, str] | None = None, recorder: bool = False) -> Client:
        opts = dict(self.client_opts)
        opts.setdefault("timeout", 10.0)
        opts.setdefault("connect_timeout", 5.0)
        cls = _RecordingClient if recorder else Client
        return cls(self.address, contract=contract if contract is not None
                   else self.contract.ref, name="conformance", **opts)


Check = Callable[[Context], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    """One conformance check of one contract; ``str(case)`` is ``"Contract:check"``."""

    contract: Contract
    name: str
    check: Check
    required_streams: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.contract.name}:{self.name}"

    async def run(self, address: str, **client_opts: Any) -> None:
        """Run the check against the endpoint at ``address``; raises
        :class:`ConformanceError` listing the problems. ``client_opts`` go to
        :class:`qnhw.runtime.Client`."""
        ctx = Context(address, self.contract, driver_for(self.contract.name), client_opts,
                      self.required_streams)
        await self.check(ctx)


#: One subscriber's view of a stream: (stream, mode, the events it received in order).
Observed = tuple[str, str, list[StreamEvent]]


def single_session(address: str) -> bool:
    """Whether the endpoint at ``address`` serves one session at a time: a serial line
    (docs/serial.md), where a second client cannot open the port and a session holds one
    subscription per stream."""
    return address.partition(":")[0] == "serial"


class _TappedSubscription(Subscription):
    """A subscription that also records every event as it arrives, for the kit to check."""

    def __init__(self, client: Client, stream: str, mode: StreamMode, maxsize: int,
                 credit: int, sink: list[StreamEvent]) -> None:
        super().__init__(client, stream, mode, maxsize, credit)
        self._sink = sink

    def _push(self, ev: Event) -> None:
        if not self.closed:
            self._sink.append(StreamEvent(ev.stream, ev.seq, ev.ts_ps, ev.domain, ev.payload))
        super()._push(ev)

    def _push_batch(self, batch: EventBatch) -> None:
        if not self.closed:
            self._sink.extend(
                StreamEvent(batch.stream, batch.seq + i, ts, batch.domain, p)
                for i, (ts, p) in enumerate(zip(batch.ts_ps, batch.payloads, strict=True)))
        super()._push_batch(batch)


class _RecordingClient(Client):
    """A client remembering every call's method, parameters and result.

    With :attr:`tap_mode` set, every subscription it makes uses that mode and records the
    events it receives in :attr:`observed` (one entry per subscription).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, dict[str, Any], Any]] = []
        self.tap_mode: StreamMode | None = None
        self.observed: list[Observed] = []

    async def call(self, method: str, /, *, timeout: float | None = None,
                   **params: Any) -> Any:
        result = await super().call(method, timeout=timeout, **params)
        self.calls.append((method, params, result))
        return result

    def subscribe(self, stream: str, *, mode: StreamMode | str = StreamMode.FANOUT,
                  maxsize: int = 4096, credit: int = 256) -> Subscription:
        if self.tap_mode is None:
            return super().subscribe(stream, mode=mode, maxsize=maxsize, credit=credit)
        checked = super().subscribe(stream, mode=self.tap_mode, maxsize=maxsize, credit=credit)
        sink: list[StreamEvent] = []
        self.observed.append((stream, self.tap_mode.value, sink))
        return _TappedSubscription(self, stream, checked.mode, maxsize, credit, sink)


def _fail(what: str, problems: Sequence[str]) -> None:
    if problems:
        raise ConformanceError(f"{what}:\n  " + "\n  ".join(problems))


def _offered(described: dict[str, Any]) -> list[str]:
    caps = described.get("capabilities")
    feats = caps.get(FEATURES_KEY, []) if isinstance(caps, dict) else []
    return [f for f in feats if isinstance(f, str)] if isinstance(feats, list) else []


# --- handshake, describe, capabilities ------------------------------------------------------


async def check_handshake(ctx: Context) -> None:
    problems: list[str] = []
    async with ctx.client() as client:
        welcome = client.welcome
        assert welcome is not None
        if welcome.contract is None:
            problems.append("the welcome declares no contract")
        elif welcome.contract.get("name") != ctx.contract.name:
            problems.append(f"the welcome names contract {welcome.contract.get('name')!r}")
        elif welcome.contract.get("version") != ctx.contract.version:
            problems.append(f"the welcome declares version {welcome.contract.get('version')}, "
                            f"the kit tests {ctx.contract.version}")
    major, minor = (int(x) for x in ctx.contract.version.split("."))
    for wrong in ({"name": ctx.contract.name + "X", "version": ctx.contract.version},
                  {"name": ctx.contract.name, "version": f"{major + 1}.0"},
                  {"name": ctx.contract.name, "version": f"{major}.{minor + 1}"}):
        client = ctx.client(contract=wrong)
        try:
            await client.connect()
        except ContractMismatch:
            pass
        else:
            problems.append(f"a client expecting {wrong} was not refused")
        finally:
            await client.close()
    async with ctx.client() as client:
        try:
            await client.ping()
        except QnhwError as exc:
            problems.append(f"ping after refused handshakes failed: {exc}")
    _fail(f"{ctx.contract.name} handshake", problems)


async def check_describe(ctx: Context) -> None:
    problems: list[str] = []
    async with ctx.client() as client:
        described = await client.describe()
    if described.get("contract") != ctx.contract.ref:
        problems.append(f"describe contract is {described.get('contract')}, expected "
                        f"{ctx.contract.ref}")
    domain = described.get("clock_domain")
    if not isinstance(domain, str) or not domain:
        problems.append(f"describe names no clock domain ({domain!r})")
        domain = "device"
    offered = _offered(described)
    bound = ctx.contract.bind_domain(domain)
    got = {c.get("name"): c for c in described.get("commands", []) if isinstance(c, dict)}
    expected = {c.name: c for c in bound.commands_for(offered)}
    for name, cmd in expected.items():
        if name not in got:
            problems.append(f"command {name!r} missing")
        elif got[name] != _plain(cmd.describe()):
            problems.append(f"command {name!r} differs from the contract: "
                            f"{_diff(_plain(cmd.describe()), got[name])}")
    for c in ctx.contract.commands:
        if c.feature is not None and c.feature not in offered and c.name in got:
            problems.append(f"command {c.name!r} present though feature {c.feature!r} is not "
                            "advertised")
    for extra in got:
        if extra not in expected and not any(c.name == extra for c in ctx.contract.commands) \
                and "." not in str(extra):
            problems.append(f"extra command {extra!r} is not in the contract (namespace vendor "
                            "extensions as 'vendor.command')")
    streams = {s.get("name"): s for s in described.get("streams", []) if isinstance(s, dict)}
    for s in ctx.contract.streams:
        if s.name not in streams:
            problems.append(f"stream {s.name!r} missing")
        elif streams[s.name] != _plain(s.describe()):
            problems.append(f"stream {s.name!r} differs from the contract: "
                            f"{_diff(_plain(s.describe()), streams[s.name])}")
    if "describe" not in described.get("features", []):
        problems.append("protocol features do not list 'describe'")
    _fail(f"{ctx.contract.name} describe", problems)


async def check_capabilities(ctx: Context) -> None:
    async with ctx.client() as client:
        described = await client.describe()
    _fail(f"{ctx.contract.name} capabilities",
          ctx.contract.check_capabilities(described.get("capabilities")))


def _plain(value: Any) -> Any:
    """``value`` as it looks after a msgpack round trip (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _diff(want: Any, got: Any, path: str = "") -> str:
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got), key=str):
            if want.get(k) != got.get(k):
                return _diff(want.get(k), got.get(k), f"{path}.{k}" if path else str(k))
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            if a != b:
                return _diff(a, b, f"{path}[{i}]")
    return f"{path or 'value'}: expected {want!r}, got {got!r}"


# --- bad parameters -----------------------------------------------------------------------

_INT64 = 2**63 - 1
_OTHER_UNIT = {"s": "V", "Hz": "s", "m": "s", "W": "s", "V": "s", "A": "s", "K": "s",
               "rad": "s", "J": "s", "T": "s", "": "s", "ps": "V"}


def valid_value(p: Param) -> Any:
    """A value the contract accepts for ``p`` (the default when there is one)."""
    if not p.required:
        return p.default
    if p.choices is not None:
        return p.choices[0]
    lo = p.min
    if p.type == "int" or p.type == "timestamp":
        i = 0 if lo is None else math.ceil(lo)
        return min(i, int(p.max)) if p.max is not None else i
    if p.type == "float":
        f = 0.0 if lo is None else float(lo)
        return min(f, float(p.max)) if p.max is not None else f
    n = max(0, math.ceil(lo or 0))
    if p.type == "str":
        return "a" * max(n, 1 if p.max is None or p.max >= 1 else 0)
    if p.type == "bool":
        return False
    if p.type == "bytes":
        return b"\0" * n
    if p.type == "list":
        return [valid_value(p.items) if p.items is not None else 0 for _ in range(n)]
    if p.type == "array":
        return np.zeros(n)
    if p.type == "dict":
        return {}
    return 0


def invalid_values(p: Param) -> list[tuple[str, Any]]:
    """``(what, value)`` pairs the contract must refuse for ``p``."""
    out: list[tuple[str, Any]] = []
    wrong_type: dict[str, Any] = {"int": "x", "float": "x", "bool": 1, "str": 5, "bytes": 5,
                                  "list": 5, "dict": 5, "timestamp": "x", "array": "x"}
    if p.type in wrong_type:
        out.append((f"wrong type {type(wrong_type[p.type]).__name__}", wrong_type[p.type]))
    if p.type in ("int", "float", "timestamp"):
        if p.min is not None:
            v = p.min - max(1.0, abs(p.min))
            if p.type != "float":
                v = math.floor(v)
            if abs(v) <= _INT64:
                out.append(("below minimum", v))
        if p.max is not None:
            v = p.max + max(1.0, abs(p.max))
            if p.type != "float":
                v = math.ceil(v)
            if abs(v) <= _INT64:
                out.append(("above maximum", v))
        other = _OTHER_UNIT.get(p.unit, "s")
        out.append((f"unit {other!r} for {p.unit or 'dimensionless'}", Quantity(1, other)))
        if p.type == "float":
            out.append(("not finite", float("nan")))
    if p.type in ("str", "list", "bytes"):
        if p.min is not None and p.min > 0:
            out.append(("too short", _sized(p, int(p.min) - 1)))
        if p.max is not None and p.max < 10_000:
            out.append(("too long", _sized(p, int(p.max) + 1)))
    if p.choices is not None:
        bad = "__not_a_choice__" if p.type == "str" else max(
            (c for c in p.choices if isinstance(c, int | float)), default=0) + 1000
        out.append(("not a choice", bad))
    if p.type == "list" and p.items is not None:
        n = max(1, math.ceil(p.min or 0))
        for what, item in invalid_values(p.items):
            if what.startswith("wrong type") or what in ("below minimum", "above maximum"):
                out.append((f"item {what}", [item] * n))
    return out


def _sized(p: Param, n: int) -> Any:
    if p.type == "str":
        return "a" * n
    if p.type == "bytes":
        return b"\0" * n
    item = valid_value(p.items) if p.items is not None else 0
    return [item] * n


async def _expect_error(client: Client, code: ErrorCode, method: str, params: dict[str, Any],
                        param: str | None, what: str, problems: list[str]) -> None:
    try:
        await client.call(method, timeout=5.0, **params)
    except QnhwError as exc:
        if exc.code != code:
            problems.append(f"{method} with {what}: got {exc.code.name} ({exc.message}), "
                            f"expected {code.name}")
        elif param is not None and exc.details.get("param") != param:
            problems.append(f"{method} with {what}: the error names parameter "
                            f"{exc.details.get('param')!r}, expected {param!r}")
    else:
        problems.append(f"{method} with {what}: accepted, expected {code.name}")


async def check_bad_params(ctx: Context) -> None:
    problems: list[str] = []
    async with ctx.client() as client:
        offered = _offered(await client.describe())
        for cmd in ctx.contract.commands_for(offered):
            base = {p.name: valid_value(p) for p in cmd.params if p.required}
            for p in cmd.params:
                for what, value in invalid_values(p):
                    await _expect_error(client, ErrorCode.BAD_PARAMS, cmd.name,
                                        {**base, p.name: value}, p.name,
                                        f"{p.name} {what} ({value!r})", problems)
                if p.required:
                    rest = {k: v for k, v in base.items() if k != p.name}
                    await _expect_error(client, ErrorCode.BAD_PARAMS, cmd.name, rest, p.name,
                                        f"{p.name} missing", problems)
            await _expect_error(client, ErrorCode.BAD_PARAMS, cmd.name,
                                {**base, "no_such_parameter": 1}, "no_such_parameter",
                                "an unknown parameter", problems)
        try:
            await client.ping()
        except QnhwError as exc:
            problems.append(f"the connection broke after bad parameters: {exc}")
    _fail(f"{ctx.contract.name} bad parameters", problems)


async def check_unknown_command(ctx: Context) -> None:
    problems: list[str] = []
    async with ctx.client() as client:
        offered = _offered(await client.describe())
        await _expect_error(client, ErrorCode.UNKNOWN_COMMAND, "no_such_command", {}, None,
                            "an unknown name", problems)
        for c in ctx.contract.commands:
            if c.feature is not None and c.feature not in offered:
                params = {p.name: valid_value(p) for p in c.params if p.required}
                await _expect_error(client, ErrorCode.UNKNOWN_COMMAND, c.name, params, None,
                                    f"feature {c.feature!r} not offered", problems)
        try:
            await client.ping()
        except QnhwError as exc:
            problems.append(f"the connection broke after unknown commands: {exc}")
    _fail(f"{ctx.contract.name} unknown commands", problems)


# --- scenario, results and streams --------------------------------------------------------


async def _run_scenario(ctx: Context, tap_mode: StreamMode | None = None,
                        ) -> tuple[list[str], list[tuple[str, dict[str, Any], Any]], str]:
    return await _run_scenario_on(ctx, ctx.client(recorder=True), tap_mode)


async def _run_scenario_on(ctx: Context, client: Client, tap_mode: StreamMode | None,
                           ) -> tuple[list[str], list[tuple[str, dict[str, Any], Any]], str]:
    problems: list[str] = []
    assert isinstance(client, _RecordingClient)
    client.tap_mode = tap_mode
    try:
        await client.connect()
        driver = await ctx.driver.attach(client)
        try:
            await SCENARIOS[ctx.contract.name](driver)
        except QnhwError as exc:
            problems.append(f"scenario failed: {exc} (after calls "
                            f"{[c[0] for c in client.calls][-3:]})")
        except TimeoutError:
            problems.append(f"scenario timed out waiting for a stream event (after calls "
                            f"{[c[0] for c in client.calls][-3:]})")
        except Exception as exc:  # a malformed capability or result broke the scenario
            problems.append(f"scenario failed: {type(exc).__name__}: {exc} (after calls "
                            f"{[c[0] for c in client.calls][-3:]})")
        return problems, client.calls, driver.clock_domain
    finally:
        await client.close()


async def check_exercise(ctx: Context) -> None:
    problems, calls, domain = await _run_scenario(ctx)
    commands = {c.name: c for c in ctx.contract.commands}
    seen: set[str] = set()
    for method, _params, result in calls:
        cmd: Command | None = commands.get(method)
        if cmd is None:
            continue
        seen.add(method)
        problems.extend(f"{method} {p}" for p in cmd.check_result(result, domain))
    if not problems:
        async with ctx.client() as client:
            offered = _offered(await client.describe())
        missing = [c.name for c in ctx.contract.commands_for(offered) if c.name not in seen]
        if missing:
            problems.append(f"the scenario did not reach {missing}")
    _fail(f"{ctx.contract.name} exercise", problems)


async def _collect(sub: Subscription, sink: list[StreamEvent]) -> None:
    async for ev in sub:
        sink.append(ev)


async def check_streams(ctx: Context) -> None:
    if not ctx.contract.streams:
        return
    if single_session(ctx.address):
        problems, observed, domain = await _observe_single_session(ctx)
    else:
        problems, observed, domain = await _observe(ctx)
    problems.extend(_check_observed(ctx, observed, domain))
    _fail(f"{ctx.contract.name} streams", problems)


async def _observe(ctx: Context) -> tuple[list[str], list[Observed], str]:
    """A lossless and a fan-out subscriber of the kit's own on every stream, each on its own
    connection, while the scenario runs on a third."""
    problems: list[str] = []
    lossless = ctx.client()
    fanout = ctx.client()
    observed: list[Observed] = []
    tasks: list[asyncio.Task[None]] = []
    subs: list[Subscription] = []
    domain = ""
    try:
        await lossless.connect()
        await fanout.connect()
        domain = str((await lossless.describe()).get("clock_domain"))
        for s in ctx.contract.streams:
            for mode, client in ((StreamMode.LOSSLESS, lossless), (StreamMode.FANOUT, fanout)):
                sub = client.subscribe(s.name, mode=mode)
                await sub.open()
                subs.append(sub)
                sink: list[StreamEvent] = []
                observed.append((s.name, mode.value, sink))
                tasks.append(asyncio.get_running_loop().create_task(_collect(sub, sink)))
        scenario_problems, _, _ = await _run_scenario(ctx)
        problems.extend(scenario_problems)
        # the scenario synchronized on its own subscriptions; allow the kit's to catch up
        async with asyncio.timeout(0.2 if scenario_problems else EVENT_TIMEOUT):
            while any(not _received(observed, name) for name in ctx.required_streams):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    except TimeoutError:
        pass
    finally:
        for sub in subs:
            await sub.close()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await lossless.close()
        await fanout.close()
    return problems, observed, domain


async def _observe_single_session(ctx: Context) -> tuple[list[str], list[Observed], str]:
    """On a single-session endpoint the kit cannot add subscribers of its own: it runs the
    scenario twice on one connection, its subscriptions forced lossless, then fan-out, and
    checks every event they receive."""
    problems: list[str] = []
    observed: list[Observed] = []
    domain = ""
    for mode in (StreamMode.LOSSLESS, StreamMode.FANOUT):
        client = ctx.client(recorder=True)
        assert isinstance(client, _RecordingClient)
        found, _, domain = await _run_scenario_on(ctx, client, mode)
        problems.extend(f"{p} (scenario subscribed {mode.value})" for p in found)
        observed.extend(client.observed)
    return problems, observed, domain


def _received(observed: Sequence[Observed], stream: str) -> bool:
    return any(evs for name, kind, evs in observed if name == stream and kind == "lossless")


def _check_observed(ctx: Context, observed: Sequence[Observed], domain: str) -> list[str]:
    problems: list[str] = []
    specs = {s.name: s for s in ctx.contract.streams}
    for name in ctx.required_streams:
        if not _received(observed, name):
            problems.append(f"stream {name!r} produced no event during the scenario")
    for name, kind, evs in observed:
        s = specs.get(name)
        if s is None:
            continue
        want_domain = domain if s.clock_domain == "device" else s.clock_domain
        last: int | None = None
        for ev in evs:
            where = f"{s.name} ({kind}) seq {ev.seq}"
            if last is not None and ev.seq <= last:
                problems.append(f"{where}: sequence not increasing (after {last})")
            if kind == "lossless" and last is not None and ev.seq != last + 1:
                problems.append(f"{where}: lossless stream skipped {ev.seq - last - 1}")
            last = ev.seq
            if not isinstance(ev.ts_ps, int):
                problems.append(f"{where}: timestamp is not int picoseconds")
            if ev.domain != want_domain:
                problems.append(f"{where}: timestamp in domain {ev.domain!r}, declared "
                                f"{want_domain!r}")
            problems.extend(f"{where}: {p}" for p in s.check_payload(ev.payload, domain))
            if len(problems) > 20:
                return problems
    return problems


CHECKS: dict[str, Check] = {
    "handshake": check_handshake,
    "describe": check_describe,
    "capabilities": check_capabilities,
    "bad_params": check_bad_params,
    "unknown_command": check_unknown_command,
    "exercise": check_exercise,
    "streams": check_streams,
}


# --- scenarios ----------------------------------------------------------------------------


async def _next(sub: Subscription, timeout: float = EVENT_TIMEOUT) -> StreamEvent:
    async with asyncio.timeout(timeout):
        return await anext(sub)


async def _memory(m: QuantumMemory) -> None:
    caps = m.capabilities
    comm = list(caps.get("communication_qubits") or [0])
    q = comm[0]
    async with m.state_changes(mode=LOSSLESS) as sub:
        await m.initialize(q)
        await _next(sub)
    if m.has_feature("gates"):
        one = [g for g in caps["gates"] if g not in ("cx", "cz", "crx", "cry", "swap")]
        if one:
            await m.gate(one[0], [q], 0.5 if one[0] in ROTATIONS else 0.0)
    await m.measure(q)
    await m.status()
    if m.has_feature("emit"):
        await m.emit(q, 0.5)
    if m.has_feature("storage") and caps.get("slots", 0) > 0:
        await m.initialize(q)
        await m.store(q, 0)
        await m.retrieve(0, q)
    if m.has_feature("entangle") and caps.get("neighbours"):
        await m.entangle(q, caps["neighbours"][0], attempts=200, attempt_period=1e-6,
                         timeout=10.0)


async def _source(s: PhotonSource) -> None:
    caps = s.capabilities
    lo, hi = caps["repetition_rate_range"]
    await s.get_config()
    await s.configure(repetition_rate=min(hi, max(lo, 1e5)),
                      mean_photon_number=min(0.1, caps["max_mean_photon_number"]))
    async with s.emissions(mode=LOSSLESS) as sub:
        await s.arm("continuous")
        try:
            await _next(sub)
        finally:
            await s.disarm()
    if s.has_feature("triggered"):
        await s.arm("triggered")
        try:
            await s.fire(pulses=10)
        finally:
            await s.disarm()
    if s.has_feature("wavelength_tuning"):
        wlo, whi = caps["wavelength_range"]
        await s.tune((wlo + whi) / 2)


async def _tagger(t: TimeTagger) -> None:
    caps = t.capabilities
    chans = list(caps["channels"])
    ch = chans[0]
    other = chans[1] if len(chans) > 1 else ch
    tlo, thi = caps["threshold_range"]
    dlo, dhi = caps["dead_time_range"]
    await t.get_channel(ch)
    await t.configure_channel(ch, enabled=True, threshold=(tlo + thi) / 2,
                              dead_time=max(dlo, min(dhi, 20e-9)))
    if t.has_feature("test_signal"):
        await t.set_test_signal([ch, other], True)
    virtual = None
    if t.has_feature("coincidences") and other != ch:
        virtual = (await t.add_coincidence([ch, other], 1e-9))["channel"]
    async with t.tags(mode=LOSSLESS) as sub:
        await t.start([ch] if virtual is None else [ch, virtual])
        try:
            await _next(sub)
        finally:
            await t.stop()
    await t.count([ch], 0.01)
    if t.has_feature("histogram"):
        await t.histogram(ch, other, 1e-9, 64, 0.01)
    if t.has_feature("bias_control"):
        await t.set_bias(ch, 1e-5)
    if virtual is not None:
        await t.remove_coincidence(virtual)
    if t.has_feature("test_signal"):
        await t.set_test_signal([ch, other], False)


async def _heralding(h: HeraldingStation) -> None:
    caps = h.capabilities
    period = max(1e-6, 1.0 / caps["max_attempt_rate"])
    await h.get_config()
    await h.configure(caps["schemes"][0], window=min(5e-9, period / 2), attempt_period=period)
    await h.reset_statistics()
    async with h.heralds(mode=LOSSLESS) as sub:
        await h.arm(attempts=None)
        try:  # a station without light never heralds: wait boundedly
            with contextlib.suppress(TimeoutError):
                await _next(sub, 0.5)
        finally:
            await h.disarm()
    await h.statistics()
    if h.has_feature("phase_stabilization"):
        await h.lock_phase(0.0)


async def _switch(sw: OpticalSwitch) -> None:
    caps = sw.capabilities
    two = min(caps["inputs"], caps["outputs"]) >= 2
    await sw.get_routes()
    async with sw.route_changes(mode=LOSSLESS) as sub:
        await sw.set_route(1, 1)
        await _next(sub)
    await sw.set_routes([[1, 2], [2, 1]] if two else [[1, 1]], exclusive=True)
    await sw.disconnect(1)
    await sw.clear()
    if sw.has_feature("power_monitor"):
        await sw.port_power(1)


async def _transducer(x: Transducer) -> None:
    caps = x.capabilities
    await x.disable()
    await x.status()
    await x.set_direction(caps["directions"][0])
    duty = min(0.05, caps["max_duty_cycle"] / 2)
    await x.configure_pump(caps["max_pump_power"] / 2, 0.0, pulse_width=1e-6,
                           repetition_rate=duty / 1e-6)
    await x.enable()
    try:
        await x.status()
        if x.has_feature("calibration"):
            await x.calibrate(0.01)
    finally:
        await x.disable()


async def _timing(tc: TimingCard) -> None:
    caps = tc.capabilities
    await tc.get_time()
    await tc.sync_status()
    mode = "free_running" if "free_running" in caps["modes"] else caps["modes"][0]
    await tc.set_mode(mode)
    await tc.adjust_frequency(0.0)
    await tc.adjust_offset(0.0)
    if caps["peers"]:
        await tc.sync_exchange(caps["peers"][0])
    # step the clock to 20 ms before a whole second, then see the PPS
    now = (await tc.get_time())["time"].ps
    async with tc.pps(mode=LOSSLESS) as sub:
        await tc.set_time((now // 10**12 + 2) * 10**12 - 20 * 10**9)
        await _next(sub)
    out = caps["outputs"][0]
    tagging = tc.has_feature("input_tags") and bool(caps["inputs"])
    if tagging:
        await tc.configure_input(caps["inputs"][0], True)
    async with tc.triggers(mode=LOSSLESS) as sub:
        now = (await tc.get_time())["time"].ps
        await tc.schedule_trigger(now + 5 * 10**9, out)
        await _next(sub)
    later = await tc.schedule_trigger(now + 60 * 10**12, out)
    await tc.list_triggers()
    await tc.cancel_trigger(later["trigger_id"])
    if tagging:
        await tc.configure_input(caps["inputs"][0], False)


async def _trigger_generator(tg: TriggerGenerator) -> None:
    caps = tg.capabilities
    last = caps["channels"] - 1
    await tg.status()
    await tg.disarm()  # set_source needs a disarmed generator
    await tg.set_source("software")  # no internal triggers: the scenario causes every one
    await tg.set_rate(min(100.0, caps["max_rate"]))
    await tg.configure_channel(last, delay=Quantity(5, "ns"), width=Quantity(10, "ns"),
                               polarity="positive", enabled=True)
    await tg.get_channel(last)
    loop = asyncio.get_running_loop()
    async with tg.triggers(mode=LOSSLESS) as sub:
        await tg.arm()
        try:
            sent = loop.time()
            fired = await tg.fire()
            await _next(sub)
            # far enough ahead to outlast the round trip of a slow serial line
            margin = max(0.01, 4 * (loop.time() - sent))
            await tg.schedule(fired["time"].ps + round(margin * 1e12))
            await _next(sub)
        finally:
            await tg.disarm()


def _circuit(basis: Iterable[str], n_qubits: int) -> str:
    """A small circuit over the native gates: a Bell pair when h and cx are native."""
    gates = set(basis)
    lines = ['OPENQASM 2.0;', 'include "qelib1.inc";']
    n = 2 if n_qubits >= 2 and {"h", "cx"} <= gates else 1
    lines += [f"qreg q[{n}];", f"creg c[{n}];"]
    if n == 2:
        lines += ["h q[0];", "cx q[0], q[1];"]
    else:
        one = sorted(g for g in gates if QELIB1_GATES.get(g, (0, 0))[0] == 1)
        if one:
            g = one[0]
            args = ", ".join(["pi/2"] * QELIB1_GATES[g][1])
            lines.append(f"{g}({args}) q[0];" if args else f"{g} q[0];")
    lines.append("measure q -> c;")
    return "\n".join(lines) + "\n"


async def _qpu(q: QPU) -> None:
    caps = q.capabilities
    await q.calibration()
    circuit = _circuit(caps["basis_gates"], caps["n_qubits"])
    await q.run(circuit, shots=min(100, caps["max_shots"]), memory=True, timeout=30.0)
    if q.has_feature("live_register"):
        await q.reset()
        await q.run(circuit, shots=1, initial_state="live", timeout=30.0)
        await q.measure([0])


#: The scenario of each contract: valid calls of every command through the typed driver.
SCENARIOS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "QuantumMemory": _memory, "PhotonSource": _source, "TimeTagger": _tagger,
    "HeraldingStation": _heralding, "OpticalSwitch": _switch, "Transducer": _transducer,
    "TimingCard": _timing, "QPU": _qpu, "TriggerGenerator": _trigger_generator,
}
#: Streams any standalone device must produce during its scenario.
REQUIRED_STREAMS: dict[str, tuple[str, ...]] = {
    "QuantumMemory": ("state_changes",), "PhotonSource": ("emissions",),
    "TimeTagger": ("tags",), "HeraldingStation": (), "OpticalSwitch": ("route_changes",),
    "Transducer": (), "TimingCard": ("pps", "triggers"), "QPU": (),
    "TriggerGenerator": ("triggers",),
}


def cases(contract: str | Contract | type[Driver], *, checks: Iterable[str] | None = None,
          required_streams: Iterable[str] | None = None) -> list[Case]:
    """The conformance cases of ``contract`` (a name, a :class:`Contract` or a driver class),
    for ``pytest.mark.parametrize(..., ids=str)``.

    ``checks``: names from :data:`CHECKS` (default: all). ``required_streams``: streams that
    must produce events during the scenario (default :data:`REQUIRED_STREAMS`; an emulated
    lab with light on the heralding station can require ``("heralds",)``).
    """
    if isinstance(contract, str):
        c = driver_for(contract).CONTRACT
    elif isinstance(contract, Contract):
        c = contract
    else:
        c = contract.CONTRACT
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; known: {list(CHECKS)}")
    required = REQUIRED_STREAMS[c.name] if required_streams is None else tuple(
        required_streams)
    return [Case(c, n, CHECKS[n], required) for n in names]


def all_cases() -> list[Case]:
    """Every case of every contract."""
    return [case for d in DRIVERS for case in cases(d)]


async def run_suite(address: str, contract: str | Contract | type[Driver],
                    **client_opts: Any) -> dict[str, str | None]:
    """Run every case against ``address``; returns ``{check: None | problem text}``."""
    report: dict[str, str | None] = {}
    for case in cases(contract):
        try:
            await case.run(address, **client_opts)
        except ConformanceError as exc:
            report[case.name] = str(exc)
        except QnhwError as exc:
            report[case.name] = f"{type(exc).__name__}: {exc}"
        else:
            report[case.name] = None
    return report


__all__ = ["CHECKS", "EVENT_TIMEOUT", "REQUIRED_STREAMS", "SCENARIOS", "Case",
           "ConformanceError", "Context", "all_cases", "cases", "invalid_values", "run_suite",
           "single_session", "valid_value"]
