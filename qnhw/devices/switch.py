"""OpticalSwitch: an N x M fibre cross-connect distributing entanglement between node pairs.

Modelled on MEMS / piezo beam-steering cross-connects (e.g. Polatis): a route connects one
input port to one output port; a non-blocking switch takes any one-to-one map. Setting routes
blocks for the switching time; every change is published on ``route_changes``. Ports are
numbered from 1. Capabilities give insertion loss, crosstalk and switching time.

Optional feature: ``power_monitor`` (``port_power``: optical power at a port).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from qnhw.contract.spec import Command, Contract, Field, Param, StreamSpec
from qnhw.devices._schema import FANOUT, FEATURES_FIELD, Mode, float_pair, ts_field
from qnhw.devices.base import Driver
from qnhw.protocol.types import Timestamp
from qnhw.runtime.streams import Subscription

_PORT = Param("port", "int", "port number (1-based)", min=1, max=4096)
_ROUTE_FIELD = Field("route", "list", "[input_port, output_port]", items=Field("port", "int"))
_ROUTES_FIELD = Field("routes", "list", "every route in force", items=_ROUTE_FIELD)
_TIMED = (_ROUTES_FIELD, ts_field("time", "when the switch settled"))

CONTRACT = Contract(
    name="OpticalSwitch",
    version="1.0",
    doc=("A fibre cross-connect: set, read and clear routes from input to output ports; "
         "route changes are published as they settle."),
    features=("power_monitor",),
    feature_docs=(("power_monitor", "optical power at a port (`port_power`)"),),
    commands=(
        Command("set_route", (
            Param("input_port", "int", "input port (1-based)", min=1, max=4096),
            Param("output_port", "int", "output port (1-based)", min=1, max=4096),
        ), "Connect `input_port` to `output_port`, replacing routes that use either port. "
           "Blocks for the switching time.", returns="the routes in force and when they "
           "settled", result=_TIMED),
        Command("set_routes", (
            Param("routes", "list", "[input_port, output_port] pairs", max=4096, items=Param(
                "route", "list", min=2, max=2, items=Param("port", "int", min=1, max=4096))),
            Param("exclusive", "bool", "also clear every route not listed", default=False),
        ), "Apply several routes at once (one switching time). A port may appear once.",
            returns="the routes in force and when they settled", result=_TIMED),
        Command("disconnect", (
            Param("input_port", "int", "input port (1-based)", min=1, max=4096),
        ), "Remove the route from `input_port` (no-op when unrouted).",
            returns="the routes in force and when they settled", result=_TIMED),
        Command("clear", (), "Remove every route.",
                returns="the routes in force and when they settled", result=_TIMED),
        Command("get_routes", (), "The routes in force. Does not block.",
                returns="the routes", result=(_ROUTES_FIELD,)),
        Command("port_power", (
            _PORT,
            Param("side", "str", "input or output side", choices=("input", "output"),
                  default="output"),
        ), "Optical power measured at a port.", returns="the power",
            feature="power_monitor", result=(Field("power", "float", "optical power",
                                                   unit="W"),)),
    ),
    streams=(
        StreamSpec("route_changes", "one event per settled change", "map", fields=(
            _ROUTES_FIELD,
            Field("added", "list", "routes made by this change", items=_ROUTE_FIELD),
            Field("removed", "list", "routes removed by this change", items=_ROUTE_FIELD),
        )),
    ),
    capabilities=(
        Field("inputs", "int", "number of input ports"),
        Field("outputs", "int", "number of output ports"),
        Field("non_blocking", "bool", "any one-to-one map of inputs to outputs works"),
        Field("switching_time", "float", "time to settle a change", unit="s"),
        Field("insertion_loss", "float", "typical loss of a route", unit="dB"),
        Field("crosstalk", "float", "leakage into unrouted outputs (negative)", unit="dB"),
        float_pair("wavelength_range", "[min, max] operating wavelength", "m"),
        Field("technology", "str", "switching technology (mems, piezo, ...)"),
        FEATURES_FIELD,
    ),
)


class RoutesResult(TypedDict):
    """Routes as ``[input_port, output_port]`` pairs and when they settled."""

    routes: list[list[int]]
    time: Timestamp


class Routes(TypedDict):
    """Result of :meth:`OpticalSwitch.get_routes`."""

    routes: list[list[int]]


class PortPower(TypedDict):
    """Result of :meth:`OpticalSwitch.port_power` (``power`` in W)."""

    power: float


class OpticalSwitch(Driver):
    """Async driver of an optical switch (contract ``OpticalSwitch`` 1.0).

    ``await sw.set_route(1, 3)``; ``(await sw.get_routes())["routes"]`` is ``[[1, 3]]``.
    """

    CONTRACT = CONTRACT

    async def set_route(self, input_port: int, output_port: int, *,
                        timeout: float | None = None) -> RoutesResult:
        """Connect ``input_port`` to ``output_port`` (replacing routes using either port);
        blocks for the switching time."""
        result: RoutesResult = await self._call("set_route", timeout, input_port=input_port,
                                                output_port=output_port)
        return result

    async def set_routes(self, routes: Sequence[Sequence[int]], exclusive: bool = False, *,
                         timeout: float | None = None) -> RoutesResult:
        """Apply ``routes`` (``[input_port, output_port]`` pairs) at once; ``exclusive``
        clears every other route. Blocks for one switching time."""
        result: RoutesResult = await self._call(
            "set_routes", timeout, routes=[list(r) for r in routes], exclusive=exclusive)
        return result

    async def disconnect(self, input_port: int, *,
                         timeout: float | None = None) -> RoutesResult:
        """Remove the route from ``input_port``."""
        result: RoutesResult = await self._call("disconnect", timeout, input_port=input_port)
        return result

    async def clear(self, *, timeout: float | None = None) -> RoutesResult:
        """Remove every route."""
        result: RoutesResult = await self._call("clear", timeout)
        return result

    async def get_routes(self, *, timeout: float | None = None) -> Routes:
        """The routes in force as ``[input_port, output_port]`` pairs."""
        result: Routes = await self._call("get_routes", timeout)
        return result

    async def port_power(self, port: int, side: str = "output", *,
                         timeout: float | None = None) -> PortPower:
        """Optical ``power`` (W) at ``port`` on ``side`` (input/output). Feature
        ``power_monitor``."""
        result: PortPower = await self._call("port_power", timeout, port=port, side=side)
        return result

    def route_changes(self, *, mode: Mode = FANOUT, maxsize: int = 4096,
                      credit: int = 64) -> Subscription:
        """Subscribe to ``route_changes``: ``{"routes", "added", "removed"}`` per change."""
        return self._subscribe("route_changes", mode, maxsize, credit)


__all__ = ["CONTRACT", "OpticalSwitch", "PortPower", "Routes", "RoutesResult"]
