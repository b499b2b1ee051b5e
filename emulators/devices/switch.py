"""Emulated optical switch: the ``OpticalSwitch`` contract as a lossy N x M cross-connect.

Model (representative of piezo beam-steering / MEMS fibre cross-connects such as Polatis;
:mod:`emulators.physics.profiles` has no switch profile):

* A settled route ``i -> o`` transmits ``10^(-IL/10)`` of the light (insertion loss ``IL``
  in dB: ``insertion_loss``, plus an optional fixed per-route spread drawn once at
  construction, ``insertion_loss_spread`` dB rms, or explicit ``route_losses``).
* Every other input/output pair leaks ``10^(crosstalk/10)`` (``crosstalk`` in dB, negative).
* Changing routes takes ``switching_time``: the command blocks for it (lab time,
  ``env.spend``), and while the beams move every route being made or removed is *dark*
  (only the crosstalk leakage); routes not involved keep transmitting. Changes are applied
  one at a time (commands queue). Each settled change is published on ``route_changes``.
* ``port_power`` (feature ``power_monitor``): light on an input port is what the world put
  there (:meth:`SwitchEmulator.set_input_power`, default ``input_power``); an output port
  sees the sum of every input times its transmission; the power meter adds Gaussian noise
  of rms ``power_meter_noise`` W (clipped at 0).

Hooks for the lab world (plain methods, no I/O): :meth:`SwitchEmulator.route_of`,
:meth:`SwitchEmulator.input_of`, :meth:`SwitchEmulator.transmission`,
:meth:`SwitchEmulator.set_input_power`, :meth:`SwitchEmulator.add_route_listener` (called
with the settled routes after every change), :meth:`SwitchEmulator.set_fault`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from emulators.devices.common import ForegroundEmulator, nonnegative, number
from emulators.devices.env import EmulatorEnv
from qnhw.devices import switch as switch_contract
from qnhw.errors import BadParams, DeviceFault
from qnhw.log import get_logger
from qnhw.protocol.types import Timestamp
from qnhw.runtime.server import DeviceServer

__all__ = ["SwitchEmulator", "start_switch"]

#: What a route listener receives: the settled routes ``{input: output}``.
RouteListener = Callable[[dict[int, int]], None]


def _ports(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise ValueError(f"{name} must be an int in 1..4096, got {value!r}")
    return value


class SwitchEmulator(ForegroundEmulator):
    """A non-blocking fibre cross-connect with insertion loss, crosstalk and switching time.

    Parameters (keywords; SI units and dB; a bad value raises ``ValueError`` naming it):
    ``inputs``, ``outputs`` (8 each; ports numbered from 1); ``insertion_loss`` (1.5 dB);
    ``insertion_loss_spread`` (0.0 dB rms, per route, drawn once from the device's
    generator); ``route_losses`` (``{(input, output): dB}`` overrides); ``crosstalk``
    (-50 dB, negative); ``switching_time`` (25e-3 s); ``wavelength_range``
    ((1260e-9, 1675e-9) m); ``technology`` ("piezo"); ``input_power`` (0.0 W on every
    input until the world sets it); ``power_meter_noise`` (0.0 W rms).
    """

    CONTRACT = switch_contract.CONTRACT

    def __init__(self, env: EmulatorEnv, *, inputs: int = 8, outputs: int = 8,
                 insertion_loss: float = 1.5, insertion_loss_spread: float = 0.0,
                 route_losses: Mapping[tuple[int, int], float] | None = None,
                 crosstalk: float = -50.0, switching_time: float = 25e-3,
                 wavelength_range: Sequence[float] = (1260e-9, 1675e-9),
                 technology: str = "piezo", input_power: float = 0.0,
                 power_meter_noise: float = 0.0) -> None:
        self.env = env
        self.inputs = _ports("inputs", inputs)
        self.outputs = _ports("outputs", outputs)
        self.insertion_loss = nonnegative("insertion_loss", insertion_loss)
        spread = nonnegative("insertion_loss_spread", insertion_loss_spread)
        self.crosstalk = number("crosstalk", crosstalk, allow_inf=True)
        if not -math.inf < self.crosstalk < 0:
            raise ValueError(f"crosstalk must be a finite negative number of dB, got "
                             f"{crosstalk!r}")
        if self.crosstalk > -self.insertion_loss:
            raise ValueError("crosstalk must leak less than a route transmits "
                             "(crosstalk < -insertion_loss)")
        self.switching_time = nonnegative("switching_time", switching_time)
        wr = [number("wavelength_range", w, allow_inf=True) for w in wavelength_range]
        if len(wr) != 2 or not 0 < wr[0] < wr[1]:
            raise ValueError(f"wavelength_range must be [min, max] with 0 < min < max, got "
                             f"{wavelength_range!r}")
        self.wavelength_range = wr
        if not isinstance(technology, str) or not technology:
            raise ValueError("technology must be a non-empty str")
        self.technology = technology
        self.default_input_power = nonnegative("input_power", input_power)
        self.power_meter_noise = nonnegative("power_meter_noise", power_meter_noise)
        self._spread: np.ndarray[Any, np.dtype[np.float64]] | None = None
        if spread > 0.0:  # fixed per-route deviations, clipped so no route gains light
            dev = env.rng.normal(0.0, spread, size=(self.inputs, self.outputs))
            self._spread = np.maximum(dev, -self.insertion_loss)
        self.route_losses: dict[tuple[int, int], float] = {}
        for key, loss in (route_losses or {}).items():
            i, o = key
            if not (1 <= i <= self.inputs and 1 <= o <= self.outputs):
                raise ValueError(f"route_losses names a port that does not exist: {key!r}")
            self.route_losses[(int(i), int(o))] = nonnegative(f"route_losses[{key}]", loss)

        self.routes: dict[int, int] = {}
        self._dark: set[int] = set()  # inputs whose beams are moving
        self._lock = asyncio.Lock()
        self._input_power: dict[int, float] = {}
        self._listeners: list[RouteListener] = []
        self._fault: str | None = None
        self.server: DeviceServer | None = None
        self._log = get_logger("emulator", device=env.name, contract="OpticalSwitch")

    # --- physics and hooks for the world --------------------------------------------------

    def loss_db(self, input_port: int, output_port: int) -> float:
        """Insertion loss (dB) of the route ``input_port -> output_port`` when made."""
        explicit = self.route_losses.get((input_port, output_port))
        if explicit is not None:
            return explicit
        extra = 0.0 if self._spread is None else float(
            self._spread[input_port - 1, output_port - 1])
        return self.insertion_loss + extra

    def route_of(self, input_port: int) -> int | None:
        """The output a settled route connects ``input_port`` to (None: unrouted or moving)."""
        if input_port in self._dark:
            return None
        return self.routes.get(input_port)

    def input_of(self, output_port: int) -> int | None:
        """The input a settled route connects to ``output_port`` (None: none)."""
        for i, o in self.routes.items():
            if o == output_port and i not in self._dark:
                return i
        return None

    @property
    def switching(self) -> bool:
        """Whether beams are moving now."""
        return bool(self._dark)

    def transmission(self, input_port: int, output_port: int) -> float:
        """Power transmission from ``input_port`` to ``output_port`` now: ``10^(-IL/10)``
        for a settled route, ``10^(crosstalk/10)`` otherwise (also while the route moves).
        Raises ``ValueError`` for a port that does not exist."""
        if not (1 <= input_port <= self.inputs and 1 <= output_port <= self.outputs):
            raise ValueError(f"no route {input_port} -> {output_port} on a "
                             f"{self.inputs}x{self.outputs} switch")
        if self.route_of(input_port) == output_port:
            return float(10.0 ** (-self.loss_db(input_port, output_port) / 10.0))
        return float(10.0 ** (self.crosstalk / 10.0))

    def set_input_power(self, input_port: int, watts: float) -> None:
        """The optical power (W) the world feeds into ``input_port``."""
        if not 1 <= input_port <= self.inputs:
            raise ValueError(f"input {input_port} does not exist (1..{self.inputs})")
        self._input_power[input_port] = nonnegative("watts", watts)

    def input_power(self, input_port: int) -> float:
        """Optical power (W) on ``input_port``."""
        return self._input_power.get(input_port, self.default_input_power)

    def output_power(self, output_port: int) -> float:
        """Optical power (W) leaving ``output_port``: every input times its transmission."""
        return sum(self.input_power(i) * self.transmission(i, output_port)
                   for i in range(1, self.inputs + 1))

    def add_route_listener(self, listener: RouteListener) -> Callable[[], None]:
        """Call ``listener(routes)`` after every settled change; returns a remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def set_fault(self, message: str | None) -> None:
        """Inject a device fault (commands fail with :class:`qnhw.DeviceFault`; routes stay
        as they are) or clear it with ``None``."""
        self._fault = message

    # --- helpers --------------------------------------------------------------------------

    def _check_fault(self) -> None:
        if self._fault is not None:
            raise DeviceFault(f"{self.env.name}: {self._fault}", {"fault": self._fault})

    def _port(self, what: str, p: int, side: str) -> None:
        n = self.inputs if side == "input" else self.outputs
        if not 1 <= p <= n:
            raise BadParams(f"{what} {p} does not exist ({side} ports 1..{n})",
                            {"param": what, "value": p})

    def _pairs(self) -> list[list[int]]:
        return [[i, o] for i, o in sorted(self.routes.items())]

    async def _apply(self, new: dict[int, int]) -> dict[str, Any]:
        """Move to routes ``new``: the changed routes go dark for ``switching_time``."""
        async with self._lock:
            self._check_fault()
            old = set(self.routes.items())
            now = set(new.items())
            changed = {i for i, _ in old ^ now}
            self._dark = changed
            try:
                if changed:
                    await self.env.spend(self.switching_time)
                self.routes = dict(new)
            finally:
                self._dark = set()
            t = int(self.env.now_ps())
            if old != now:
                added = [[i, o] for i, o in sorted(now - old)]
                removed = [[i, o] for i, o in sorted(old - now)]
                self._log.debug("routes changed", added=added, removed=removed)
                for listener in list(self._listeners):
                    listener(dict(self.routes))
                if self.server is not None:
                    await self.server.publish("route_changes", {
                        "routes": self._pairs(), "added": added, "removed": removed}, t)
            return {"routes": self._pairs(), "time": Timestamp(t, self.env.domain)}

    # --- contract commands ----------------------------------------------------------------

    async def set_route(self, input_port: int, output_port: int) -> dict[str, Any]:
        """Connect ``input_port`` to ``output_port`` (replacing routes that use either);
        blocks for ``switching_time`` when something changes."""
        self._check_fault()
        self._port("input_port", input_port, "input")
        self._port("output_port", output_port, "output")
        new = {i: o for i, o in self.routes.items() if i != input_port and o != output_port}
        new[input_port] = output_port
        return await self._apply(new)

    async def set_routes(self, routes: list[list[int]], exclusive: bool = False
                         ) -> dict[str, Any]:
        """Apply ``routes`` at once (one switching time); ``exclusive`` clears the rest."""
        self._check_fault()
        ins = [r[0] for r in routes]
        outs = [r[1] for r in routes]
        for i, o in zip(ins, outs, strict=True):
            self._port("input_port", i, "input")
            self._port("output_port", o, "output")
        if len(set(ins)) != len(ins) or len(set(outs)) != len(outs):
            raise BadParams("a port appears in two routes", {"param": "routes"})
        new = {} if exclusive else {i: o for i, o in self.routes.items()
                                    if i not in ins and o not in outs}
        new.update(zip(ins, outs, strict=True))
        return await self._apply(new)

    async def disconnect(self, input_port: int) -> dict[str, Any]:
        """Remove the route from ``input_port`` (no-op when unrouted)."""
        self._check_fault()
        self._port("input_port", input_port, "input")
        return await self._apply({i: o for i, o in self.routes.items() if i != input_port})

    async def clear(self) -> dict[str, Any]:
        """Remove every route."""
        self._check_fault()
        return await self._apply({})

    def get_routes(self) -> dict[str, Any]:
        """The settled routes (a change in progress shows once it settles). Does not
        block."""
        self._check_fault()
        return {"routes": self._pairs()}

    def port_power(self, port: int, side: str = "output") -> dict[str, Any]:
        """Optical power (W) at ``port`` on ``side``, with power-meter noise. Does not
        block."""
        self._check_fault()
        self._port("port", port, side)
        p = self.input_power(port) if side == "input" else self.output_power(port)
        if self.power_meter_noise > 0.0:
            p = max(0.0, p + float(self.env.rng.normal(0.0, self.power_meter_noise)))
        return {"power": p}

    # --- server ---------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """The capability map of the ``OpticalSwitch`` contract."""
        return {"inputs": self.inputs, "outputs": self.outputs, "non_blocking": True,
                "switching_time": self.switching_time, "insertion_loss": self.insertion_loss,
                "crosstalk": self.crosstalk, "wavelength_range": list(self.wavelength_range),
                "technology": self.technology}


async def start_switch(env: EmulatorEnv, address: str = "tcp://127.0.0.1:0", *,
                       features: Sequence[str] | None = None, name: str | None = None,
                       **params: Any) -> DeviceServer:
    """Create a :class:`SwitchEmulator` from ``params`` and serve it at ``address``; returns
    the started server (``await server.stop()`` ends it)."""
    return await SwitchEmulator(env, **params).serve(address, features=features, name=name)
