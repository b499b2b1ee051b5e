"""Timing card emulator: conformance over tcp, and clock physics against closed forms.

Tolerances are 5 standard deviations of the estimate for the sample size used.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from emulators.devices.env import EmulatorEnv, standalone_env
from emulators.devices.timing import (
    OscillatorClock,
    OscillatorDomain,
    TimingCardEmulator,
    VirtualPeer,
    start_timing_card,
)
from emulators.physics.clocks import OscillatorModel, allan_deviation
from qnhw.devices.timing import TimingCard, two_way_offset
from qnhw.errors import BadParams, Busy, DeviceFault
from qnhw.runtime.streams import StreamEvent, Subscription
from qnhw.testing import conformance

PS = 10**12
QUIET: dict[str, Any] = {"drift_per_s": 0.0, "white_pm_s": 0.0, "white_fm_adev_1s": 0.0,
                         "random_walk_fm_adev_1s": 0.0}


def virtual_env(name: str, seed: int, now: list[float] | None = None) -> EmulatorEnv:
    """Virtual lab time: ``spend`` advances the (possibly shared) clock at once."""
    clock = [0.0] if now is None else now

    async def spend(seconds: float) -> None:
        clock[0] += max(0.0, seconds)
        await asyncio.sleep(0)

    return EmulatorEnv(name, np.random.default_rng(seed), f"{name}.clock",
                       lambda: round(clock[0] * PS), lambda: clock[0], spend)


async def next_event(sub: Subscription, timeout: float = 5.0) -> StreamEvent:
    async with asyncio.timeout(timeout):
        return await anext(sub)


# --- conformance --------------------------------------------------------------------------


@pytest.mark.parametrize("case", conformance.cases("TimingCard"), ids=str)
async def test_timing_card_conforms(case: conformance.Case) -> None:
    server = await start_timing_card(standalone_env("wr", seed=3), "tcp://127.0.0.1:0")
    try:
        await case.run(server.address)
    finally:
        await server.stop()


# --- the oscillator -----------------------------------------------------------------------


def test_white_fm_allan_deviation_falls_as_inverse_root_tau() -> None:
    a, n = 1e-11, 4000
    model = OscillatorModel(white_fm_adev_1s=a)
    osc = OscillatorClock(model, np.random.default_rng(12), 0.0)
    x = np.array([osc.x(float(k)) for k in range(n)])
    for m in (1, 10):
        adev = float(allan_deviation(x, 1.0, m)[0])
        expected = float(model.allan_deviation(float(m)))
        assert expected == pytest.approx(a / math.sqrt(m))
        # overlapping ADEV of white FM: about 3N/(2m) degrees of freedom
        assert abs(adev / expected - 1) <= 5 * math.sqrt(m / (3 * n))


def test_random_walk_fm_variance_of_the_frequency() -> None:
    b, dt, n = 1e-12, 2.0, 3000
    osc = OscillatorClock(OscillatorModel(random_walk_fm_adev_1s=b),
                          np.random.default_rng(3), 0.0)
    ys = []
    for k in range(1, n + 1):
        osc.x(k * dt)
        ys.append(osc.frequency(k * dt))
    dy = np.diff(np.array([0.0, *ys]))
    var = 3 * b * b * dt  # Var[y(t + dt) - y(t)]
    assert abs(float(np.mean(dy**2)) / var - 1) <= 5 * math.sqrt(2 / n)


async def test_card_time_follows_the_oscillator_and_corrections() -> None:
    env = virtual_env("wr", 1)
    card = TimingCardEmulator(env, offset=1e-3, frequency_offset=1e-6, **QUIET)
    t0 = card.domain_now_ps()
    assert t0 == 10**9  # lab 0 + 1 ms offset
    await env.spend(10.0)
    assert card.domain_now_ps() - t0 == pytest.approx(10 * PS * (1 + 1e-6), abs=1)
    # a frequency correction applies from now on
    card.adjust_frequency(-1e-6)
    t1 = card.domain_now_ps()
    await env.spend(10.0)
    assert card.domain_now_ps() - t1 == pytest.approx(10 * PS, abs=1)
    # steps
    before = card.domain_now_ps()
    assert card.adjust_offset(2e-3)["time"].ps == before + 2 * 10**9
    card.set_time(5 * PS)
    assert card.get_time()["time"].ps == 5 * PS
    card.clock_slip(-1e-6)
    assert card.domain_now_ps() == 5 * PS - 10**6
    with pytest.raises(BadParams):
        TimingCardEmulator(env, max_frequency_adjust=1e-6).adjust_frequency(1e-5)


async def test_grandmaster_is_locked_to_the_reference() -> None:
    env = virtual_env("wr", 2)
    card = TimingCardEmulator(env, frequency_offset=3e-6, drift_per_s=1e-9, white_pm_s=0.0,
                              white_fm_adev_1s=0.0, random_walk_fm_adev_1s=0.0)
    assert card.get_time()["locked"] is False
    try:
        await card.set_mode("grandmaster")
        assert card.sync_status()["locked"] is True
        assert card.sync_status()["frequency"] == pytest.approx(-3e-6)  # fed forward
        t0, lab0 = card.domain_now_ps(), env.lab_now()
        for _ in range(400):  # the reference servo runs in virtual time
            await asyncio.sleep(0)
        elapsed = env.lab_now() - lab0
        assert elapsed > 10.0
        # the drift (1e-9 / s) is tracked: the domain keeps the reference's rate
        assert (card.domain_now_ps() - t0) / PS == pytest.approx(elapsed, abs=2e-9)
        assert card.sync_status()["frequency"] == pytest.approx(
            -(3e-6 + 1e-9 * env.lab_now()), abs=1e-9)
    finally:
        await card.set_mode("master")
        await card.aclose()
    assert card.get_time()["locked"] is False


async def test_card_steers_an_injected_domain_clock() -> None:
    """With ``clock=`` (the lab's node clock, say) the card steers a domain others read."""
    env = virtual_env("wr", 3)
    node = OscillatorDomain(OscillatorModel(offset_s=1.0, frequency_offset=1e-6),
                            np.random.default_rng(1), 0.0)
    card = TimingCardEmulator(env, clock=node)
    assert card.timestamp_jitter == 0.0
    assert card.domain_now_ps() == node.read(0) == PS
    card.adjust_offset(0.5)
    await env.spend(2.0)
    card.adjust_frequency(-1e-6)
    other_device_reads = node.read(round(env.lab_now() * PS))
    assert other_device_reads == card.domain_now_ps() == round((3.5 + 2e-6) * PS)
    await env.spend(5.0)
    assert node.read(round(env.lab_now() * PS)) == round((8.5 + 2e-6) * PS)
    assert card.lab_time_of(round((8.5 + 2e-6) * PS)) == pytest.approx(7.0)


# --- two-way time transfer ----------------------------------------------------------------


async def _offset_errors(asymmetry: float, n: int) -> tuple[np.ndarray[Any, Any], float]:
    env = virtual_env("wr", 30)
    sc, sp = 3e-12, 2e-12
    card = TimingCardEmulator(env, white_pm_s=sc, peers={"p": {
        "offset": 3e-6, "delay": 10e-6, "asymmetry": asymmetry, "white_pm_s": sp}})
    peer = card.peers["p"].clock
    assert isinstance(peer, VirtualPeer) and isinstance(card.clock, OscillatorDomain)
    errors = []
    for _ in range(n):
        lab_ps = round(env.lab_now() * PS)
        true = peer.clock.error_s(lab_ps) - card.clock.error_s(lab_ps)  # peer minus card
        ex = await card.sync_exchange("p")
        assert ex["t2"].domain == "p" and ex["t1"].domain == "wr.clock"
        offset, delay = two_way_offset(ex)  # type: ignore[arg-type]
        assert delay == pytest.approx(10e-6, abs=1e-9)
        errors.append(offset - true)
        await env.spend(0.01)
    # per estimate: four stamps with white PM and 1 ps flooring, halved
    sigma = math.sqrt(2 * sc**2 + 2 * sp**2 + 4 * (1e-12) ** 2 / 12) / 2
    return np.array(errors), sigma


async def test_two_way_offset_equals_the_true_offset_within_the_noise() -> None:
    errors, sigma = await _offset_errors(0.0, 300)
    assert np.abs(errors).max() <= 5 * sigma + 1e-12
    assert abs(errors.mean()) <= 5 * sigma / math.sqrt(300) + 0.5e-12


async def test_link_asymmetry_biases_the_offset_by_half() -> None:
    d = 4e-9
    errors, sigma = await _offset_errors(d, 300)
    assert abs(errors.mean() - d / 2) <= 5 * sigma / math.sqrt(300) + 0.5e-12


async def test_exchange_between_two_cards_and_slave_servo() -> None:
    lab = [0.0]
    a = TimingCardEmulator(virtual_env("a", 1, lab), offset=1e-3, peers={}, **QUIET)
    b = TimingCardEmulator(virtual_env("b", 2, lab), offset=4e-3, frequency_offset=2e-7,
                           peers={}, servo_period=0.1, servo_gain=0.5,
                           **{**QUIET, "white_pm_s": 1e-12})
    d_asym = 2e-9
    b.connect_peer("a", a, delay=5e-6, asymmetry=d_asym)
    ex = await b.sync_exchange("a")
    offset, _ = two_way_offset(ex)  # type: ignore[arg-type]
    assert ex["t2"].domain == "a.clock"
    assert offset == pytest.approx(-3e-3 + d_asym / 2, abs=1e-11)
    try:
        await b.set_mode("slave", "a")
        assert b.get_time()["locked"] is True
        t = b.env.lab_now()
        # locked at once: B sits D/2 ahead of its master
        diff = (b.domain_time_ps_at(t) - a.domain_time_ps_at(t)) / PS
        assert diff == pytest.approx(d_asym / 2, abs=10e-12)
        for _ in range(400):  # the servo task runs in virtual time
            await asyncio.sleep(0)
        assert lab[0] > 10.0
        status = b.sync_status()
        assert status["peer"] == "a" and status["delay"] == pytest.approx(5e-6, abs=1e-11)
        # the servo removed B's frequency error
        assert status["frequency"] == pytest.approx(-2e-7, abs=1e-10)
        t = b.env.lab_now()
        diff = (b.domain_time_ps_at(t) - a.domain_time_ps_at(t)) / PS
        assert diff == pytest.approx(d_asym / 2, abs=20e-12)
        with pytest.raises(Busy):
            b.set_time(0)
    finally:
        await b.set_mode("free_running")
        await b.aclose()
    assert b.sync_status()["locked"] is False


async def test_exchange_over_the_wire_with_the_default_peer() -> None:
    server = await start_timing_card(standalone_env("wr", seed=4), "tcp://127.0.0.1:0")
    try:
        async with TimingCard.connect(server.address) as card:
            offset, delay = two_way_offset(await card.sync_exchange("peer"))
    finally:
        await server.stop()
    # ocxo white PM 1 ps on each of four stamps: sd of the estimate 1 ps
    assert offset == pytest.approx(2.5e-6, abs=5e-12 + 2e-12)
    assert delay == pytest.approx(5e-6, abs=5e-12 + 2e-12)


# --- triggers, PPS, tags ------------------------------------------------------------------


async def test_triggers_pps_and_loopback_tags_over_the_wire() -> None:
    card = TimingCardEmulator(standalone_env("wr", seed=5))
    heard: list[tuple[int, int]] = []
    card.add_trigger_listener(lambda ch, ps, lab: heard.append((ch, ps)))
    server = await card.serve()
    try:
        async with TimingCard.connect(server.address) as drv:
            await drv.configure_input(0, True)
            async with drv.triggers(mode="lossless") as trig, drv.tags(mode="lossless") as tags:
                now = (await drv.get_time())["time"].ps
                at = now + 5 * 10**9
                await drv.schedule_trigger(at, 0, period=2e-3, count=3)
                events = [await next_event(trig) for _ in range(3)]
                stamps = [await next_event(tags) for _ in range(3)]
            assert [e.ts_ps for e in events] == [at, at + 2 * 10**9, at + 4 * 10**9]
            assert {e.payload["channel"] for e in events} == {0}
            for k, ev in enumerate(stamps):
                assert ev.payload["channel"].tolist() == [0]
                assert abs(int(ev.payload["time_ps"][0]) - (at + k * 2 * 10**9)) <= 8
            assert heard == [(0, at), (0, at + 2 * 10**9), (0, at + 4 * 10**9)]
            # PPS at the second after a step
            async with drv.pps(mode="lossless") as pps:
                await drv.set_time(7 * PS - 10 * 10**9)
                ev = await next_event(pps)
                while ev.payload["second"] != 7:  # a PPS of the old time may be in flight
                    ev = await next_event(pps)
            assert ev.ts_ps == 7 * PS and ev.domain == "wr.clock"
            # a step past a pending trigger fires it at once
            async with drv.triggers(mode="lossless") as trig:
                now = (await drv.get_time())["time"].ps
                await drv.schedule_trigger(now + 30 * PS, 1)
                await drv.adjust_offset(31.0)
                ev = await next_event(trig, 2.0)
                assert ev.payload["channel"] == 1
            # list and cancel
            far = (await drv.schedule_trigger(now + 3600 * PS, 2))["trigger_id"]
            listed = (await drv.list_triggers())["triggers"]
            assert [t["trigger_id"] for t in listed] == [far]
            await drv.cancel_trigger(far)
            assert (await drv.list_triggers())["triggers"] == []
            with pytest.raises(BadParams):
                await drv.cancel_trigger(far)
            with pytest.raises(BadParams, match="future"):
                await drv.schedule_trigger(now, 0)
            with pytest.raises(BadParams) as err:
                await drv.schedule_trigger(now + PS, 9)
            assert err.value.details["param"] == "channel"
    finally:
        await server.stop()
    assert not card._tasks  # every background task ended with the server


async def test_forward_step_skips_the_pulses_it_jumps_over() -> None:
    card = TimingCardEmulator(standalone_env("wr", seed=6))
    server = await card.serve()
    try:
        async with TimingCard.connect(server.address) as drv:
            async with drv.triggers(mode="lossless") as trig:
                now = (await drv.get_time())["time"].ps
                await drv.schedule_trigger(now + 50 * 10**9, 0, period=1e-3, count=1000)
                await drv.adjust_offset(10.0)
                ev = await next_event(trig)
                async with asyncio.timeout(5):
                    while (await drv.list_triggers())["triggers"]:
                        await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)
                with pytest.raises(TimeoutError):
                    await next_event(trig, 0.05)  # only the last pulse fired
            assert ev.ts_ps == now + 50 * 10**9 + 999 * 10**9
    finally:
        await server.stop()


async def test_input_pulse_hook_is_stamped_on_its_edge() -> None:
    env = virtual_env("wr", 7)
    card = TimingCardEmulator(env, white_pm_s=2e-12)
    assert await card.input_pulse(1) is None  # input disabled
    card.configure_input(1, True, "falling")
    await env.spend(1.0)
    stamp = await card.input_pulse(1, width=1e-6)
    assert stamp is not None
    expected = card.domain_time_ps_at(env.lab_now() + 1e-6)
    assert abs(stamp - expected) <= 5 * 2 + 1


# --- errors -------------------------------------------------------------------------------


async def test_mode_and_fault_errors() -> None:
    card = TimingCardEmulator(virtual_env("wr", 8))
    with pytest.raises(BadParams, match="needs a peer"):
        await card.set_mode("slave")
    with pytest.raises(BadParams, match="only slave"):
        await card.set_mode("master", "peer")
    with pytest.raises(BadParams, match="no peer"):
        await card.sync_exchange("nobody")
    card.set_fault("PLL unlocked")
    with pytest.raises(DeviceFault, match="PLL"):
        card.get_time()
    card.set_fault(None)
    assert card.get_time()["mode"] == "free_running"


@pytest.mark.parametrize(("params", "name"), [
    ({"oscillator": "quartz"}, "oscillator"),
    ({"offset": -1.0}, "offset"),
    ({"white_pm_s": -1e-12}, "white_pm_s"),
    ({"servo_gain": 5.0}, "servo_gain"),
    ({"servo_period": 0.0}, "servo_period"),
    ({"resolution": 0.0}, "resolution"),
    ({"outputs": [300]}, "outputs"),
    ({"max_frequency_adjust": 1e-3}, "max_frequency_adjust"),
    ({"peers": {"p": {"bogus": 1}}}, "bogus"),
    ({"peers": {"p": {"delay": 1e-6, "asymmetry": 1e-5}}}, "asymmetry"),
])
def test_bad_parameters_name_themselves(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        TimingCardEmulator(virtual_env("wr", 0), **params)
