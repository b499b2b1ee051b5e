"""Optical switch emulator: conformance over tcp, and physics against closed forms."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from emulators.devices.env import EmulatorEnv, standalone_env
from emulators.devices.switch import SwitchEmulator, start_switch
from qnhw.devices.switch import OpticalSwitch
from qnhw.errors import BadParams, DeviceFault
from qnhw.testing import conformance


def virtual_env(name: str, seed: int) -> EmulatorEnv:
    """Virtual lab time: ``spend`` advances the clock at once (sequential tests only)."""
    now = [0.0]

    async def spend(seconds: float) -> None:
        now[0] += max(0.0, seconds)
        await asyncio.sleep(0)

    return EmulatorEnv(name, np.random.default_rng(seed), f"{name}.clock",
                       lambda: round(now[0] * 1e12), lambda: now[0], spend)


@pytest.mark.parametrize("case", conformance.cases("OpticalSwitch"), ids=str)
async def test_switch_conforms(case: conformance.Case) -> None:
    server = await start_switch(standalone_env("xc", seed=3), "tcp://127.0.0.1:0",
                                switching_time=2e-3)
    try:
        await case.run(server.address)
    finally:
        await server.stop()


async def test_routed_photon_transmission_is_ten_to_minus_il_over_ten() -> None:
    env = virtual_env("xc", 1)
    sw = SwitchEmulator(env, insertion_loss=1.2, crosstalk=-45.0)
    await sw.set_route(1, 3)
    t = 10 ** (-1.2 / 10)
    assert sw.transmission(1, 3) == pytest.approx(t)
    assert sw.transmission(1, 2) == pytest.approx(10 ** (-4.5))
    assert sw.transmission(2, 3) == pytest.approx(10 ** (-4.5))
    assert sw.route_of(1) == 3 and sw.input_of(3) == 1 and sw.route_of(2) is None
    # photons through the route survive with that probability (what the world samples)
    n = 100_000
    survived = int((env.rng.random(n) < sw.transmission(1, 3)).sum())
    assert abs(survived - n * t) <= 5 * math.sqrt(n * t * (1 - t))


async def test_route_is_dark_while_switching_and_time_is_spent() -> None:
    env = virtual_env("xc", 1)
    sw = SwitchEmulator(env, switching_time=25e-3)
    await sw.set_route(1, 1)
    await sw.set_route(2, 2)
    t0 = env.lab_now()
    task = asyncio.get_running_loop().create_task(sw.set_route(1, 3))
    await asyncio.sleep(0)  # the change is in progress: the beams of input 1 move
    floor = 10 ** (sw.crosstalk / 10)
    assert sw.switching
    assert sw.transmission(1, 1) <= floor and sw.transmission(1, 3) <= floor
    assert sw.route_of(1) is None
    assert sw.route_of(2) == 2  # an untouched route keeps its light
    result = await task
    assert env.lab_now() - t0 == pytest.approx(25e-3)
    assert result["time"].ps == round(env.lab_now() * 1e12)
    assert not sw.switching and sw.route_of(1) == 3
    assert result["routes"] == [[1, 3], [2, 2]]
    t1 = env.lab_now()
    await sw.set_route(1, 3)  # nothing changes: no switching time
    assert env.lab_now() == t1


async def test_route_changes_stream_and_power_monitor_over_the_wire() -> None:
    sw = SwitchEmulator(standalone_env("xc", seed=4), inputs=4, outputs=4,
                        switching_time=1e-3, insertion_loss=2.0, crosstalk=-40.0)
    sw.set_input_power(1, 1e-3)
    sw.set_input_power(2, 2e-3)
    seen: list[dict[int, int]] = []
    sw.add_route_listener(seen.append)
    server = await sw.serve()
    try:
        async with OpticalSwitch.connect(server.address) as drv:
            async with drv.route_changes(mode="lossless") as sub:
                await drv.set_routes([[1, 2], [2, 1]])
                async with asyncio.timeout(5):
                    ev = await anext(sub)
                assert ev.payload["added"] == [[1, 2], [2, 1]]
                assert ev.payload["removed"] == []
                assert ev.domain == "xc.clock"
                await drv.set_route(1, 1)  # replaces [1, 2] and [2, 1]
                async with asyncio.timeout(5):
                    ev = await anext(sub)
                assert ev.payload["added"] == [[1, 1]]
                assert ev.payload["removed"] == [[1, 2], [2, 1]]
            out = (await drv.port_power(1))["power"]
            leak = 10 ** (-4.0)
            assert out == pytest.approx(1e-3 * 10 ** (-0.2) + 2e-3 * leak)
            assert (await drv.port_power(2, "input"))["power"] == pytest.approx(2e-3)
            with pytest.raises(BadParams) as err:
                await drv.set_route(5, 1)
            assert err.value.details["param"] == "input_port"
            with pytest.raises(BadParams, match="two routes"):
                await drv.set_routes([[1, 2], [3, 2]])
            sw.set_fault("mirror driver fault")
            with pytest.raises(DeviceFault, match="mirror"):
                await drv.get_routes()
    finally:
        await server.stop()
    assert seen == [{1: 2, 2: 1}, {1: 1}]


async def test_per_route_losses_are_fixed_and_overridable() -> None:
    a = SwitchEmulator(virtual_env("xc", 9), insertion_loss=1.0, insertion_loss_spread=0.3,
                       route_losses={(2, 2): 3.0})
    b = SwitchEmulator(virtual_env("xc", 9), insertion_loss=1.0, insertion_loss_spread=0.3)
    assert a.loss_db(1, 4) == b.loss_db(1, 4) != 1.0  # seeded, drawn once
    assert a.loss_db(2, 2) == 3.0
    losses = [b.loss_db(i, o) for i in range(1, 9) for o in range(1, 9)]
    assert min(losses) >= 0.0
    assert abs(np.mean(losses) - 1.0) < 5 * 0.3 / 8  # 64 routes around the typical loss
    await a.set_route(2, 2)
    assert a.transmission(2, 2) == pytest.approx(10 ** (-0.3))


@pytest.mark.parametrize(("params", "name"), [
    ({"inputs": 0}, "inputs"),
    ({"outputs": 5000}, "outputs"),
    ({"crosstalk": 3.0}, "crosstalk"),
    ({"insertion_loss": 60.0}, "crosstalk"),
    ({"insertion_loss": -1.0}, "insertion_loss"),
    ({"switching_time": -1e-3}, "switching_time"),
    ({"wavelength_range": [1600e-9, 1500e-9]}, "wavelength_range"),
    ({"route_losses": {(9, 1): 1.0}}, "route_losses"),
])
def test_bad_parameters_name_themselves(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SwitchEmulator(virtual_env("xc", 0), **params)
