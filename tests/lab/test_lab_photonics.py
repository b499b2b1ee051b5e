"""Pair source -> fibers -> detectors -> time tagger, through the drivers, in virtual time:
singles and coincidence rates against closed forms, tag streams in the tagger's domain."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from emulators.lab.time import PS_PER_S
from emulators.physics.fiber import delay, transmission
from emulators.physics.profiles import profile
from emulators.pytest_plugin import LabHandle
from qnhw.runtime.streams import StreamEvent

LABS = Path(__file__).resolve().parents[2] / "examples" / "labs"
Z = 5.0


def _efficiencies() -> tuple[float, float, float]:
    fiber = profile("smf28-1550")
    det = profile("snspd")["efficiency"]
    e1 = 0.8 * transmission(2000.0, fiber["loss_db_per_km"]) * det
    e2 = 0.8 * transmission(3000.0, fiber["loss_db_per_km"]) * det
    d = delay(1000.0, fiber["group_index"])
    return e1, e2, d


@pytest.mark.qnhw_lab(str(LABS / "pair_source.toml"))
async def test_singles_and_coincidences_match_closed_forms(qnhw_lab: LabHandle) -> None:
    src = await qnhw_lab.driver("src.spdc")
    tagger = await qnhw_lab.driver("det.tagger")
    mu, rate, t = 0.05, 1e6, 0.2
    await src.configure(repetition_rate=rate, mean_photon_number=mu)
    await src.arm("continuous")
    counts = await tagger.count([1, 2], t, timeout=30.0)
    e1, e2, d = _efficiencies()
    dark = profile("snspd")["dark_count_rate_hz"]
    for n, e in zip(counts["counts"], (e1, e2), strict=True):
        # Poisson pairs thinned by e: P(click in a pulse) = 1 - exp(-mu e); dead time (50 ns)
        # is far below the pulse period (1 us)
        expected = t * (rate * -math.expm1(-mu * e) + dark)
        assert abs(n - expected) < Z * math.sqrt(expected), (n, expected)
    hist = await tagger.histogram(1, 2, 1e-9, 8192, t, timeout=30.0)
    k = round(d * 1e9)
    peak = int(hist["counts"][k - 2:k + 3].sum())
    p_both = 1 - math.exp(-mu * e1) - math.exp(-mu * e2) + math.exp(-mu * (e1 + e2 - e1 * e2))
    expected = t * rate * p_both
    assert abs(peak - expected) < Z * math.sqrt(expected) + 3, (peak, expected)
    background = np.median(hist["counts"])
    assert background < 2
    await src.disarm()


@pytest.mark.qnhw_lab(str(LABS / "pair_source.toml"))
async def test_tag_stream_is_sorted_int64_in_the_tagger_domain(qnhw_lab: LabHandle) -> None:
    src = await qnhw_lab.driver("src.spdc")
    tagger = await qnhw_lab.driver("det.tagger")
    await src.arm("continuous")
    events: list[StreamEvent] = []
    async with tagger.tags(mode="lossless") as sub:
        await tagger.start([1, 2])
        lab_time = await qnhw_lab.advance(0.05)
        async with asyncio.timeout(10):
            while sum(ev.payload["time_ps"].size for ev in events) == 0 or \
                    events[-1].ts_ps < 0.045 * PS_PER_S:
                events.append(await anext(sub))
        stopped = await tagger.stop()
    await src.disarm()
    assert lab_time == pytest.approx(0.05)
    times = np.concatenate([ev.payload["time_ps"] for ev in events])
    chans = np.concatenate([ev.payload["channel"] for ev in events])
    assert times.dtype == np.int64 and chans.dtype == np.int32
    assert np.all(np.diff(times) >= 0) and set(np.unique(chans)) <= {1, 2}
    assert all(ev.domain == "det" for ev in events)
    # the det node's clock runs 0.5 us ahead of lab time (its configured offset)
    assert times[0] > 0.5e-6 * PS_PER_S
    assert stopped["tags"] >= times.size and stopped["missed"] == 0
    lab = qnhw_lab.require_emulated()
    assert lab.emulator("src.spdc").pulses == pytest.approx(1e6 * 0.05, rel=0.3)


@pytest.mark.qnhw_lab(str(LABS / "pair_source.toml"))
async def test_latched_detector_gives_device_fault_and_recovers(qnhw_lab: LabHandle) -> None:
    from qnhw.errors import DeviceFault

    tagger = await qnhw_lab.driver("det.tagger")
    fault = await qnhw_lab.inject("latch", "det.tagger", channel=1)
    with pytest.raises(DeviceFault, match="latched"):
        await tagger.count([1], 0.01)
    assert (await tagger.count([2], 0.01))["counts"][0] >= 0  # the other channel works
    await tagger.set_bias(1, 1e-5)  # re-biasing the SNSPD unlatches it
    assert (await tagger.count([1], 0.01))["channels"] == [1]
    await qnhw_lab.clear(fault)
