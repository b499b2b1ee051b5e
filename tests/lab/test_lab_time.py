"""The lab clock: virtual time moved by requests, timers, tickers and the idle advance; wall
time; node clock domains."""

from __future__ import annotations

import asyncio
import itertools
import math

import numpy as np
import pytest

from emulators.lab.clocks import NodeClock
from emulators.lab.time import PS_PER_S, VirtualClock, WallClock, make_clock, to_ps
from emulators.physics import OscillatorModel, allan_deviation


async def test_virtual_request_spend_advances_at_once() -> None:
    clock = VirtualClock(idle_advance=0)
    with clock.request():
        t0 = asyncio.get_running_loop().time()
        await clock.spend(3600.0)  # an hour of lab time
        assert asyncio.get_running_loop().time() - t0 < 0.5
    assert clock.now_ps() == 3600 * PS_PER_S
    assert clock.now() == 3600.0


async def test_virtual_timers_fire_in_order_at_their_time() -> None:
    clock = VirtualClock(idle_advance=0)
    seen: list[tuple[str, int]] = []
    for name, t in (("c", 30), ("a", 10), ("b", 20), ("a2", 10)):
        clock.call_at(t, lambda n=name: seen.append((n, clock.now_ps())))
    cancelled = clock.call_at(15, lambda: seen.append(("x", -1)))
    cancelled.cancel()
    with clock.request():
        await clock.until(25)
    assert seen == [("a", 10), ("a2", 10), ("b", 20)]
    assert clock.now_ps() == 25


async def test_background_wait_does_not_move_time_and_wakes_at_its_time() -> None:
    clock = VirtualClock(idle_advance=0)
    woke: list[int] = []

    async def background() -> None:
        await clock.spend(5e-6)  # not a request: waits for lab time to pass
        woke.append(clock.now_ps())

    task = asyncio.get_running_loop().create_task(background())
    await asyncio.sleep(0.01)
    assert clock.now_ps() == 0 and not woke  # nothing moved the clock
    with clock.request():
        await clock.spend(1e-3)
    await task
    assert woke == [to_ps(5e-6)]  # woken while the clock stood at its time


async def test_idle_advance_jumps_to_the_next_event() -> None:
    clock = VirtualClock(idle_advance=0.002)
    await clock.start()
    try:
        before = clock.jumps
        await asyncio.wait_for(clock.wait_until(to_ps(7.0)), 2.0)
        assert clock.now_ps() == to_ps(7.0)
        assert clock.jumps > before
    finally:
        await clock.stop()


async def test_idle_advance_waits_while_a_request_runs() -> None:
    clock = VirtualClock(idle_advance=0.001)
    await clock.start()
    fired: list[int] = []
    clock.call_at(to_ps(1.0), lambda: fired.append(clock.now_ps()))
    try:
        with clock.request():  # a request busy without waiting on the lab (e.g. CPU work)
            await asyncio.sleep(0.02)
            assert not fired and clock.now_ps() == 0
        await asyncio.sleep(0.05)
        assert fired == [to_ps(1.0)]
    finally:
        await clock.stop()


async def test_tickers_cover_every_slice_producers_first() -> None:
    clock = VirtualClock(tick=0.01, idle_advance=0)
    calls: list[tuple[str, int, int]] = []
    det = clock.add_ticker("det", lambda a, b: calls.append(("det", a, b)), priority=10)
    src = clock.add_ticker("src", lambda a, b: calls.append(("src", a, b)), priority=0)
    src.start(to_ps(0.003))
    det.start(to_ps(0.003))
    with clock.request():
        await clock.spend(0.025)
    clock.flush()
    spans = [(a, b) for n, a, b in calls if n == "src"]
    assert spans[0][0] == to_ps(0.003) and spans[-1][1] == to_ps(0.025)
    assert all(x[1] == y[0] for x, y in itertools.pairwise(spans))  # contiguous
    assert [n for n, _, _ in calls[:2]] == ["src", "det"]
    # a long advance is merged into few slices (cost does not grow with the span)
    calls.clear()
    with clock.request():
        await clock.spend(1000.0)
    assert len(calls) < 2 * 70


async def test_wall_clock_sleeps_and_ticks() -> None:
    clock = make_clock("wall", tick=0.005)
    assert isinstance(clock, WallClock)
    slices: list[int] = []
    t = clock.add_ticker("t", lambda a, b: slices.append(b - a))
    await clock.start()
    t.start(clock.now_ps())
    try:
        t0 = clock.now()
        await clock.spend(0.03)
        assert 0.029 <= clock.now() - t0 < 0.5
        assert sum(slices) > 0
        fired = asyncio.Event()
        clock.call_at(clock.now_ps() + to_ps(0.01), fired.set)
        await asyncio.wait_for(fired.wait(), 1.0)
    finally:
        await clock.stop()
    with pytest.raises(ValueError):
        make_clock("sideways")  # type: ignore[arg-type]


def test_node_clock_offset_frequency_and_steering() -> None:
    model = OscillatorModel(offset_s=2e-6, frequency_offset=1e-9)
    c = NodeClock("a", model)
    t = 100 * PS_PER_S
    assert c.read(0) == to_ps(2e-6)
    assert c.read(t) == t + to_ps(2e-6 + 1e-9 * 100)
    assert c.to_lab(c.read(t)) == t
    c.adjust_offset(-2e-6, t)
    assert c.read(t) == t + to_ps(1e-7)
    c.adjust_frequency(-1e-9, t)  # cancels the oscillator's frequency offset
    assert c.read(t + 50 * PS_PER_S) == t + 50 * PS_PER_S + to_ps(1e-7)
    c.set_time(10**15, t)
    assert c.read(t) == 10**15
    c.slip(1e-3, t)
    assert c.read(t) == 10**15 + to_ps(1e-3) and c.slips == 1
    arr = np.array([t, t + 5, t + 10], dtype=np.int64)
    assert list(c.read_array(arr)) == [c.read(int(x)) for x in arr]


def test_node_clock_noise_is_a_function_of_time_with_the_model_allan_deviation() -> None:
    a = 1e-11  # white FM, ADEV at 1 s
    model = OscillatorModel(white_fm_adev_1s=a)
    c1 = NodeClock("a", model, np.random.default_rng(3), tau0=0.01)
    c2 = NodeClock("a", model, np.random.default_rng(3), tau0=0.01)
    times = np.arange(0, 4000) * to_ps(0.01)
    x1 = c1.errors_s(times)
    c2.errors_s(times[::-1][:10])  # another reading order gives the same values
    assert np.array_equal(x1, c2.errors_s(times))
    m = np.array([1, 10, 100])
    adev = allan_deviation(x1, 0.01, m)
    expected = a / np.sqrt(m * 0.01)
    # NIST SP 1065: relative confidence ~ 1/sqrt(N/m) for white FM; 5 sigma bound
    n_eff = (x1.size - 2 * m) / m
    assert np.all(np.abs(adev / expected - 1) < 5 / np.sqrt(n_eff) + 0.05), adev / expected
    assert math.isfinite(c1.error_s(2 * 10**15))  # bounded history: older chunks dropped
