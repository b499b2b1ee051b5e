"""The lab's admin endpoint (device name ``lab``): lab time service and fault injection.

An ordinary qnhw endpoint without a device contract; call it with any
:class:`qnhw.runtime.Client` (or ``qnhw call``). Commands:

``time()``
    ``{"lab_time": s, "lab_ps": int, "mode": "virtual"|"wall", "domains": {node: ps},
    "idle_jumps": int}``: lab time and every node's clock reading.
``advance(seconds)``
    Let ``seconds`` of lab time pass: virtual time advances at once (firing every event on the
    way); wall time sleeps. Returns ``time()``.
``wait_until(node, time)``
    Block until node ``node``'s clock reads ``time`` (int ps); returns ``time()``.
``devices()``
    ``{"devices": [{"name", "kind", "contract", "node", "address", "pub", "up"}]}``.
``inject(kind, target, params={})``
    Inject a fault (:mod:`emulators.lab.faults`); returns it with its ``id``.
``clear(id=None)``
    Clear one fault (or all); ``{"cleared": [ids]}``.
``faults()``
    ``{"faults": [...]}``: the faults in force.
``link(a, b)``
    The physical parameters of the heralded link between emitter devices ``a`` and ``b``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from qnhw.contract.spec import Command, Param
from qnhw.errors import BadParams
from qnhw.runtime.server import DeviceServer

from .faults import FaultError
from .time import VirtualClock

if TYPE_CHECKING:
    from .lab import Lab

_NAME = Param("target", "str", "a device 'node.device' (a node for clock_slip; '*': every "
              "device for latency and drop)", min=1, max=256)


class AdminHandlers:
    """The admin commands of one lab (module docstring)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def time(self) -> dict[str, Any]:
        lab = self.lab
        now = lab.clock.now_ps()
        return {"lab_time": now / 1e12, "lab_ps": now, "mode": lab.clock.mode,
                "domains": {n: node.clock.read(now) for n, node in lab.world.nodes.items()},
                "idle_jumps": getattr(lab.clock, "jumps", 0)}

    async def advance(self, seconds: float) -> dict[str, Any]:
        clock = self.lab.clock
        with clock.request():
            if isinstance(clock, VirtualClock):
                await clock.advance(seconds)
            else:
                await clock.spend(seconds)
        return self.time()

    async def wait_until(self, node: str, time: int) -> dict[str, Any]:
        lab = self.lab
        if node not in lab.world.nodes:
            raise BadParams(f"no node {node!r} (nodes: {', '.join(lab.world.nodes)})",
                            {"param": "node", "value": node})
        target = lab.world.node_clock(node).to_lab(time)
        with lab.clock.request():
            await lab.clock.until(target)
        return self.time()

    def devices(self) -> dict[str, Any]:
        return {"devices": [
            {"name": n, "kind": e.config.kind, "contract": e.contract.name,
             "node": e.config.node, "address": e.address or e.bind, "pub": e.pub_address,
             "up": e.up} for n, e in self.lab.entries.items()]}

    async def inject(self, kind: str, target: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            fault = await self.lab.faults.inject(kind, target, **params)
        except FaultError as exc:
            raise BadParams(str(exc), {"param": "params"}) from None
        return fault.describe()

    async def clear(self, id: int | None) -> dict[str, Any]:
        try:
            return {"cleared": await self.lab.faults.clear(id)}
        except FaultError as exc:
            raise BadParams(str(exc), {"param": "id"}) from None

    def faults(self) -> dict[str, Any]:
        return {"faults": self.lab.faults.describe()}

    def link(self, a: str, b: str) -> dict[str, Any]:
        for p, v in (("a", a), ("b", b)):
            if v not in self.lab.entries:
                raise BadParams(f"no device {v!r}", {"param": p, "value": v})
        params = self.lab.link_parameters(a, b)
        if params is None:
            raise BadParams(f"{a} and {b} share no heralding station now", {"param": "b"})
        return dataclasses.asdict(params)


COMMANDS = (
    Command("time", (), "Lab time, mode and every node's clock reading."),
    Command("advance", (Param("seconds", "float", "lab time to let pass", unit="s", min=0.0,
                              max=1e6),),
            "Let lab time pass (virtual: at once; wall: sleeps)."),
    Command("wait_until", (Param("node", "str", "node whose clock to watch", min=1, max=256),
                           Param("time", "int", "reading to wait for (ps, the node's domain)",
                                 unit="ps", min=0, max=2**63 - 1)),
            "Block until the node's clock reads `time`."),
    Command("devices", (), "Every device: name, kind, contract, node, addresses, up."),
    Command("inject", (Param("kind", "str", "fault kind", min=1, max=64), _NAME,
                       Param("params", "dict", "fault parameters", default={})),
            "Inject a fault; returns it with its id."),
    Command("clear", (Param("id", "int", "fault id (null: all)", min=1, nullable=True,
                            default=None),),
            "Clear a fault (or all)."),
    Command("faults", (), "The faults in force."),
    Command("link", (Param("a", "str", "emitter device", min=1, max=256),
                     Param("b", "str", "emitter device", min=1, max=256)),
            "Physical parameters of the heralded link between two emitters."),
)


def build_admin_server(lab: Lab, address: str) -> DeviceServer:
    """The (not started) admin endpoint of ``lab`` at ``address``."""
    server = DeviceServer("lab", address, capabilities={"lab": lab.config.name,
                                                        "time": lab.config.time},
                          clock=lab.clock.now_ps, clock_domain="lab")
    handlers = AdminHandlers(lab)
    for cmd in COMMANDS:
        server.add_command(cmd, getattr(handlers, cmd.name))
    return server


__all__ = ["COMMANDS", "AdminHandlers", "build_admin_server"]
