"""Transducer emulator: conformance over tcp, and physics against closed forms.

Tolerances are 5 standard deviations of the estimate for the sample size used.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from emulators.devices.env import EmulatorEnv, standalone_env
from emulators.devices.transducer import (
    TransducerEmulator,
    start_transducer,
    thermal_occupation,
)
from emulators.physics.profiles import profile
from qnhw.devices.transducer import Transducer
from qnhw.errors import BadParams, Busy, DeviceFault
from qnhw.testing import conformance

SAHU = profile("transducer-2022")


def virtual_env(name: str, seed: int) -> EmulatorEnv:
    """Virtual lab time: ``spend`` advances the clock at once (sequential tests only)."""
    now = [0.0]

    async def spend(seconds: float) -> None:
        now[0] += max(0.0, seconds)
        await asyncio.sleep(0)

    return EmulatorEnv(name, np.random.default_rng(seed), f"{name}.clock",
                       lambda: round(now[0] * 1e12), lambda: now[0], spend)


async def pulsed(emu: TransducerEmulator, power: float | None = None, duty: float = 0.01,
                 detuning: float = 0.0) -> dict[str, Any]:
    """Configure a 1 us pulsed pump of ``duty`` and enable; returns the status then."""
    await emu.configure_pump(emu.reference_pump_power if power is None else power, detuning,
                             1e-6, duty / 1e-6)
    emu.enable()
    return emu.status()


# --- conformance --------------------------------------------------------------------------


@pytest.mark.parametrize("case", conformance.cases("Transducer"), ids=str)
async def test_transducer_conforms(case: conformance.Case) -> None:
    server = await start_transducer(standalone_env("qnu", seed=3), "tcp://127.0.0.1:0")
    try:
        await case.run(server.address)
    finally:
        await server.stop()


# --- physics ------------------------------------------------------------------------------


def test_efficiency_vs_pump_goes_through_the_profile_points() -> None:
    emu = TransducerEmulator(virtual_env("t", 0))
    assert emu.peak_efficiency(emu.reference_pump_power) == pytest.approx(SAHU["efficiency"])
    assert emu.peak_efficiency(emu.max_pump_power) == pytest.approx(SAHU["efficiency_high"])
    assert emu.added_noise(emu.reference_pump_power, 0.0) == pytest.approx(SAHU["added_noise"])
    assert emu.added_noise(emu.max_pump_power, 0.0) == pytest.approx(SAHU["added_noise_high"])
    powers = np.linspace(0.0, emu.max_pump_power, 50)
    etas = [emu.peak_efficiency(float(p)) for p in powers]
    assert etas[0] == 0.0 and bool(np.all(np.diff(etas) > 0))
    # 4C/(1+C)^2 peaks at C = 1 with the external efficiency
    assert emu.peak_efficiency(1 / emu.cooperativity_per_watt) == pytest.approx(
        emu.external_efficiency)


async def test_conversion_rate_and_noise_match_eta_and_n_add() -> None:
    env = virtual_env("t", 42)
    emu = TransducerEmulator(env)
    await pulsed(emu)
    eta, n = SAHU["efficiency"], 200_000
    assert emu.conversion_probability() == pytest.approx(eta)
    out = emu.convert(np.ones(n, dtype=np.int64))
    k = int(out.signal.sum())
    assert abs(k - n * eta) <= 5 * math.sqrt(n * eta * (1 - eta))
    nbar = emu.noise_photons()
    assert nbar == pytest.approx(eta * emu.added_noise())
    # thermal noise photons: mean nbar, variance nbar (1 + nbar)
    assert abs(out.noise.mean() - nbar) <= 5 * math.sqrt(nbar * (1 + nbar) / n)
    assert out.time_ps == env.now_ps()


async def test_detuning_follows_the_lorentzian_band() -> None:
    emu = TransducerEmulator(virtual_env("t", 1))
    status = await pulsed(emu, detuning=emu.bandwidth / 2)
    assert status["efficiency"] == pytest.approx(SAHU["efficiency"] / 2)
    assert emu.conversion_probability() == pytest.approx(SAHU["efficiency"] / 2)


async def test_nothing_converts_while_disabled_or_the_other_way() -> None:
    emu = TransducerEmulator(virtual_env("t", 1))
    out = emu.convert([5, 5, 5])
    assert out.signal.tolist() == [0, 0, 0] and out.noise.tolist() == [0, 0, 0]
    await pulsed(emu)
    other = emu.convert(np.full(1000, 3), direction="optical_to_microwave")
    assert other.signal.sum() == 0 and other.noise.sum() == 0
    assert emu.convert(np.full(1000, 3), direction="microwave_to_optical").signal.sum() > 0


async def test_convert_state_is_a_pure_loss_channel() -> None:
    emu = TransducerEmulator(virtual_env("t", 1))
    await pulsed(emu)
    plus = np.full((2, 2), 0.5, dtype=np.complex128)
    out = emu.convert_state(plus)
    eta = SAHU["efficiency"]
    assert out.rho[1, 1].real == pytest.approx(eta / 2)
    assert out.rho[0, 1].real == pytest.approx(math.sqrt(eta) / 2)
    assert np.trace(out.rho).real == pytest.approx(1.0)
    nbar = emu.noise_photons()
    assert out.p_noise == pytest.approx(nbar / (1 + nbar))


async def test_duty_cycle_heats_and_raises_the_noise() -> None:
    emu = TransducerEmulator(virtual_env("t", 1))
    low = await pulsed(emu, power=emu.max_pump_power, duty=0.001)
    emu.disable()
    high = await pulsed(emu, power=emu.max_pump_power, duty=0.1)
    expected_t = emu.base_temperature + emu.thermal_resistance * emu.max_pump_power * 0.1
    assert high["temperature"] == pytest.approx(expected_t)
    assert high["temperature"] > low["temperature"]
    n_th = thermal_occupation(emu.microwave_frequency, expected_t)
    assert high["added_noise"] == pytest.approx(SAHU["added_noise_high"] + n_th)
    # Bose-Einstein occupation at h f = k T ln 2 is exactly 1
    f = 7e9
    t = 6.62607015e-34 * f / (1.380649e-23 * math.log(2))
    assert thermal_occupation(f, t) == pytest.approx(1.0)
    emu.disable()
    assert emu.status()["temperature"] == emu.base_temperature


async def test_calibrate_measures_eta_and_n_add() -> None:
    env = virtual_env("t", 5)
    emu = TransducerEmulator(env)
    await pulsed(emu, duty=0.1)  # 1e5 pulses per second
    t0 = env.lab_now()
    cal = await emu.calibrate(1.0)
    assert env.lab_now() - t0 == pytest.approx(1.0)
    eta, n_add = emu.conversion_probability(), emu.added_noise()
    pulses = 100_000
    probes, empty = pulses // 2, pulses - pulses // 2
    sent = probes * emu.calibration_photons
    nbar = eta * n_add
    sd_eta = math.sqrt(sent * eta * (1 - eta) + probes * nbar * (1 + nbar)) / sent
    assert abs(cal["efficiency"] - eta) <= 5 * sd_eta
    sd_n = math.sqrt(nbar * (1 + nbar) / empty) / eta
    assert abs(cal["added_noise"] - n_add) <= 5 * sd_n + n_add * 5 * sd_eta / eta


async def test_over_the_wire_status_and_busy_states() -> None:
    emu = TransducerEmulator(standalone_env("qnu", seed=2), settle_time=1e-3)
    server = await emu.serve()
    try:
        async with Transducer.connect(server.address) as qnu:
            with pytest.raises(Busy, match="before calibrating"):
                await qnu.calibrate(0.01)
            with pytest.raises(Busy, match="duty cycle"):  # continuous pump
                await qnu.enable()
            status = await qnu.configure_pump(0.5, pulse_width=1e-6, repetition_rate=1e4)
            assert status["duty_cycle"] == pytest.approx(0.01)
            assert status["efficiency"] == pytest.approx(SAHU["efficiency"])
            await qnu.enable()
            with pytest.raises(Busy, match="disable"):
                await qnu.set_direction("optical_to_microwave")
            with pytest.raises(BadParams) as err:
                await qnu.configure_pump(0.5)  # continuous while converting
            assert err.value.details["param"] == "pulse_width"
            with pytest.raises(BadParams) as err:
                await qnu.configure_pump(2.0, pulse_width=1e-6, repetition_rate=1e4)
            assert err.value.details["param"] == "power"
            emu.set_fault("pump laser unlocked")
            with pytest.raises(DeviceFault, match="unlocked"):
                await qnu.status()
            emu.set_fault(None)
            assert (await qnu.status())["enabled"] is False  # a fault stops the conversion
    finally:
        await server.stop()


async def test_overheating_quenches() -> None:
    emu = TransducerEmulator(virtual_env("t", 1), max_duty_cycle=1.0, thermal_resistance=5.0)
    await emu.configure_pump(emu.max_pump_power)  # continuous: 0.01 + 5 K
    with pytest.raises(DeviceFault, match="quench"):
        emu.enable()
    assert not emu.enabled


@pytest.mark.parametrize(("params", "name"), [
    ({"efficiency": 1.5}, "efficiency"),
    ({"efficiency_high": 0.5}, "efficiency_high"),
    ({"efficiency_high": 0.01}, "efficiency_high"),
    ({"max_pump_power": 0.0}, "max_pump_power"),
    ({"reference_pump_power": 2.0}, "reference_pump_power"),
    ({"added_noise": -0.1}, "added_noise"),
    ({"bandwidth": float("inf")}, "bandwidth"),
    ({"directions": ["sideways"]}, "directions"),
    ({"max_duty_cycle": 0.0}, "max_duty_cycle"),
    ({"critical_temperature": 0.001}, "critical_temperature"),
])
def test_bad_parameters_name_themselves(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        TransducerEmulator(virtual_env("t", 0), **params)
