"""What the emulators of this package share: lab access, the server, background tasks.

An emulator is built from an :class:`~emulators.devices.env.EmulatorEnv` and keyword
parameters (a bad value raises ``ValueError`` naming it) and reaches the rest of the lab only
through ``env.world``: an :class:`emulators.lab.world.World` inside a lab, ``None`` standalone.
Standalone, an emulator runs on a private wall clock with a perfect clock domain (and a private
qubit registry), so every emulator also works alone -- against the conformance kit, say.

Every emulator of this package has the same lifecycle, whether built on :class:`Emulator`, on
:class:`ForegroundEmulator` (QPU, transducer, switch: their own clocks, no background work) or,
like the timing card, on its own:
``build_server(address, features=..., name=..., **server_opts)`` returns a server not yet
started; ``await serve(address, **opts)`` builds and starts one and returns it (not ``start``:
that is a TimeTagger command); ``await aclose()`` stops the emulator's background work (tasks,
tickers) and leaves the server to its owner, who stops it with ``server.stop()``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from emulators.devices.env import EmulatorEnv
from emulators.devices.serving import contract_server
from emulators.lab.quantum import QubitRegistry
from emulators.lab.time import LabClock, WallClock
from emulators.lab.world import World
from qnhw.contract.spec import Contract
from qnhw.errors import Busy, DeviceFault
from qnhw.log import get_logger
from qnhw.protocol.types import Timestamp
from qnhw.runtime.server import DeviceServer
from qnhw.runtime.tasks import BackgroundTasks

IntArray = npt.NDArray[np.int64]


def number(name: str, value: Any, *, allow_inf: bool = False) -> float:
    """``value`` as a finite float (with ``allow_inf``: or +-inf; never NaN), else
    ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except OverflowError:  # an int beyond the float range
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if math.isnan(x):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not allow_inf and math.isinf(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return x


def positive(name: str, value: Any, *, allow_inf: bool = False) -> float:
    if allow_inf and isinstance(value, float) and value == math.inf:
        return value
    x = number(name, value)
    if not x > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return x


def nonnegative(name: str, value: Any) -> float:
    x = number(name, value)
    if x < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return x


def probability(name: str, value: Any) -> float:
    x = number(name, value)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return x


def fraction(name: str, value: Any) -> float:
    """A number in (0, 1] (an efficiency that cannot be zero, a duty cycle)."""
    x = number(name, value)
    if not 0.0 < x <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return x


def count(name: str, value: Any, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        top = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be >= {minimum}{top}, got {value}")
    return value


class ContractServing:
    """The server side every emulator here shares: :meth:`build_server` makes a
    :class:`DeviceServer` for ``CONTRACT`` with the emulator's :meth:`capabilities`, clock
    ``env.now_ps`` in ``env.domain``. Subclasses set ``env`` and ``server``."""

    CONTRACT: ClassVar[Contract]
    env: EmulatorEnv
    server: DeviceServer | None

    @property
    def features(self) -> list[str]:
        """Optional contract features this emulator offers (default: all)."""
        return list(self.CONTRACT.features)

    def capabilities(self) -> dict[str, Any]:
        raise NotImplementedError

    def build_server(self, address: str = "tcp://127.0.0.1:0", *,
                     features: Sequence[str] | None = None, name: str | None = None,
                     **server_opts: Any) -> DeviceServer:
        """A (not yet started) :class:`DeviceServer`, clock ``env.now_ps`` in
        ``env.domain``. ``features``: optional features to offer (default: all offered)."""
        self.server = contract_server(
            self, self.CONTRACT, name=name or self.env.name, address=address,
            capabilities=self.capabilities(), available=self.features, features=features,
            clock=self.env.now_ps, clock_domain=self.env.domain, **server_opts)
        return self.server


class ForegroundEmulator(ContractServing):
    """Base of the emulators that keep their own state and clock and run no background work
    (QPU, transducer, switch): :meth:`serve` builds and starts the server, :meth:`aclose` has
    nothing to stop. Subclasses also set ``_log``."""

    _log: Any

    async def serve(self, address: str = "tcp://127.0.0.1:0", **opts: Any) -> DeviceServer:
        """Build and start the server; returns it (``server.address`` is bound)."""
        server = self.build_server(address, **opts)
        await server.start()
        self._log.info("emulator serving", endpoint=server.address)
        return server

    async def aclose(self) -> None:
        """Stop background work: these emulators run none (no timers, no tasks), so there is
        nothing to stop; the server, if any, is its owner's to stop."""


class Emulator(ContractServing):
    """Base of the emulators in this package (module docstring)."""

    KIND: ClassVar[str] = ""

    def __init__(self, env: EmulatorEnv) -> None:
        self.env = env
        self.world: World | None = env.world if isinstance(env.world, World) else None
        self.clock: LabClock = self.world.clock if self.world is not None else WallClock()
        self.registry = self.world.registry if self.world is not None else QubitRegistry()
        self.server: DeviceServer | None = None
        self._fault: str | None = None
        self._standalone_offset = 0 if self.world is not None else \
            int(env.now_ps()) - self.clock.now_ps()
        self._log = get_logger("emulator", device=env.name, contract=self.CONTRACT.name)
        self._tasks = BackgroundTasks(self._log)

    # --- time -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.env.name

    def lab_ps(self) -> int:
        """Lab time now, integer ps."""
        return self.clock.now_ps()

    def to_domain(self, lab_ps: int) -> int:
        """The device's clock reading (ps, its domain) at lab time ``lab_ps``."""
        if self.world is not None:
            return self.world.node_clock(self.world.node_of(self.name)).read(lab_ps)
        return int(lab_ps) + self._standalone_offset

    def to_domain_array(self, lab_ps: IntArray) -> IntArray:
        if self.world is not None:
            return self.world.node_clock(self.world.node_of(self.name)).read_array(lab_ps)
        return np.asarray(lab_ps, dtype=np.int64) + self._standalone_offset

    def to_lab(self, domain_ps: int) -> int:
        """The lab time (ps) at which the device's clock reads ``domain_ps``."""
        if self.world is not None:
            return self.world.node_clock(self.world.node_of(self.name)).to_lab(domain_ps)
        return int(domain_ps) - self._standalone_offset

    def ts(self, lab_ps: int | None = None) -> Timestamp:
        """A timestamp in the device's domain of lab time ``lab_ps`` (default: now)."""
        return Timestamp(self.to_domain(self.lab_ps() if lab_ps is None else lab_ps),
                         self.env.domain)

    async def spend(self, seconds: float) -> None:
        """The operation in progress takes ``seconds`` of lab time."""
        if seconds > 0:
            await self.clock.spend(seconds)

    # --- faults ---------------------------------------------------------------------------

    def set_fault(self, message: str | None) -> None:
        """Inject a device fault (commands fail with :class:`qnhw.DeviceFault`) or clear it
        with ``None``."""
        self._fault = message

    def check_fault(self) -> None:
        if self._fault is not None:
            raise DeviceFault(f"{self.name}: {self._fault}", {"fault": self._fault})

    # --- streams and tasks ------------------------------------------------------------------

    def publish_nowait(self, stream: str, payload: Any, ts_ps: int) -> bool:
        """Publish if the server runs; ``False`` when a lossless subscriber is full (the
        event is lost: callers count it)."""
        if self.server is None:
            return True
        try:
            self.server.publish_nowait(stream, payload, ts_ps)
        except Busy:
            return False
        return True

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a background task of this device (cancelled by :meth:`aclose`)."""
        return self._tasks.spawn(coro)

    # --- server ---------------------------------------------------------------------------

    async def serve(self, address: str = "tcp://127.0.0.1:0", **opts: Any) -> DeviceServer:
        """Build (if needed) and start the server; returns it. (Not ``start``: that is a
        TimeTagger command.)"""
        server = self.server if self.server is not None and not opts and \
            address == "tcp://127.0.0.1:0" else self.build_server(address, **opts)
        if self.world is None:
            await self.clock.start()
        await server.start()
        self.attached()
        return server

    def attached(self) -> None:
        """Called once the server runs (start background work here)."""

    async def aclose(self) -> None:
        """Stop background work (tasks, tickers); the server is left alone."""
        await self._tasks.cancel_all()
        if self.world is None:
            await self.clock.stop()

    async def shutdown(self) -> None:
        """Stop background work and the server. (Not ``stop``: a TimeTagger command.)"""
        await self.aclose()
        if self.server is not None:
            await self.server.stop()


__all__ = ["Emulator", "count", "nonnegative", "number", "positive", "probability"]
