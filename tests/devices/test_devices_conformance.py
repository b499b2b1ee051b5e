"""The conformance kit against the reference implementations, and against broken devices."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from qnhw.contract import Param
from qnhw.devices import DRIVERS, switch
from qnhw.runtime import DeviceServer
from qnhw.testing import conformance
from qnhw.testing.reference import ReferenceSwitch, reference_server

# a standalone reference heralding station has light, so it must herald
CASES = [case for d in DRIVERS for case in conformance.cases(
    d, required_streams=conformance.REQUIRED_STREAMS[d.CONTRACT.name]
    + (("heralds",) if d.CONTRACT.name == "HeraldingStation" else ()))]


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_reference_conforms(case: conformance.Case) -> None:
    async with reference_server(case.contract.name, seed=1) as server:
        await case.run(server.address)


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.CONTRACT.name)
async def test_reference_without_optional_features_conforms(driver: Any) -> None:
    """Feature-gated commands are absent, refused as unknown, and the scenario adapts."""
    checks = ("describe", "capabilities", "unknown_command", "bad_params", "exercise")
    async with reference_server(driver, "inproc://conformance-nofeat", features=()) as server:
        for case in conformance.cases(driver, checks=checks):
            await case.run(server.address)


def test_cases_api() -> None:
    names = [c.name for c in conformance.cases("QPU")]
    assert names == list(conformance.CHECKS)
    assert str(conformance.cases("QPU", checks=["describe"])[0]) == "QPU:describe"
    with pytest.raises(ValueError, match="unknown checks"):
        conformance.cases("QPU", checks=["nope"])
    assert len(conformance.all_cases()) == len(DRIVERS) * len(conformance.CHECKS) == 9 * 7
    p = Param("x", "int", min=1, max=5)
    assert conformance.valid_value(p) == 1
    assert {w for w, _ in conformance.invalid_values(p)} >= {
        "below minimum", "above maximum", "wrong type str"}


# --- the kit must catch broken devices ----------------------------------------------------


class _BrokenSwitch(ReferenceSwitch):
    """Returns malformed results and publishes a malformed payload."""

    def get_routes(self) -> dict[str, Any]:
        return {"routes": "all of them"}

    async def _apply(self, new: dict[int, int]) -> dict[str, Any]:
        self.routes = new
        await self.publish("route_changes", {"routes": np.zeros(2, np.int32)})
        return {"routes": self._pairs()}  # no "time"


async def _broken_server(loosen: bool = False, drop: str | None = None,
                         caps: dict[str, Any] | None = None,
                         pub_address: str | None = "auto") -> tuple[DeviceServer,
                                                                    _BrokenSwitch]:
    dev = _BrokenSwitch()
    server = DeviceServer("broken", "inproc://conformance-broken", contract=switch.CONTRACT,
                          capabilities=caps or dev.default_capabilities(),
                          pub_address=pub_address)
    server.capabilities["features"] = []
    for cmd in switch.CONTRACT.commands_for([]):
        if cmd.name == drop:
            continue
        if loosen and cmd.name == "disconnect":  # no range: the server never refuses
            cmd = replace(cmd, params=(Param("input_port", "int", "input port (1-based)"),))
            server.add_command(cmd, lambda input_port: {"routes": [], "time": 0})
            continue
        server.add_command(cmd, getattr(dev, cmd.name))
    return server, dev


async def _report(**kw: Any) -> dict[str, str | None]:
    server, dev = await _broken_server(**kw)
    async with server:
        dev.attach(server)
        try:
            return await conformance.run_suite(server.address, "OpticalSwitch")
        finally:
            await dev.aclose()


async def test_kit_catches_broken_results_payloads_and_validation() -> None:
    report = await _report(loosen=True)
    assert report["handshake"] is None
    assert report["capabilities"] is None
    assert "command 'disconnect' differs" in str(report["describe"])
    bad = str(report["bad_params"])
    assert "disconnect with input_port below minimum (0): accepted" in bad
    assert "set_route" not in bad  # the other commands do validate
    assert "result.time: missing" in str(report["exercise"])
    streams = str(report["streams"])
    assert "payload.routes: expected list, got ndarray" in streams
    assert "payload.added: missing" in streams


async def test_kit_catches_missing_command_and_bad_capabilities() -> None:
    caps = ReferenceSwitch().default_capabilities()
    caps["switching_time"] = "fast"
    del caps["inputs"]
    report = await _report(drop="clear", caps=caps)
    assert "command 'clear' missing" in str(report["describe"])
    capabilities = str(report["capabilities"])
    assert "capabilities.inputs: missing" in capabilities
    assert "capabilities.switching_time: expected float, got str" in capabilities


async def test_kit_checks_streams_of_a_single_session_endpoint(monkeypatch: Any) -> None:
    """On a serial line (one session, no PUB) the kit cannot subscribe beside the scenario: it
    runs the scenario lossless, then fan-out, and checks the events its subscriptions got."""
    assert conformance.single_session("serial:///dev/ttyUSB0?baudrate=115200")
    assert conformance.single_session("serial:socket://127.0.0.1:7777")
    assert not conformance.single_session("tcp://127.0.0.1:5555")
    monkeypatch.setattr(conformance, "single_session", lambda address: True)
    server, dev = await _broken_server(pub_address=None)  # events inline, as on serial
    async with server:
        dev.attach(server)
        try:
            with pytest.raises(conformance.ConformanceError) as err:
                await conformance.cases("OpticalSwitch", checks=["streams"])[0].run(
                    server.address)
        finally:
            await dev.aclose()
    text = str(err.value)
    assert "route_changes (lossless) seq 0: payload.routes: expected list, got ndarray" in text
    assert re.search(r"route_changes \(fanout\) seq \d+: payload.routes: expected list", text)
