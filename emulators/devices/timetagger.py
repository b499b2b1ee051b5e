"""Emulated single-photon detectors behind a time tagger: the ``TimeTagger`` contract.

Model (:func:`emulators.physics.detect`, ``docs/physics.md`` section 5):

* Channel ``k`` (1-based) is the port ``"k"``: photons the world delivers there (through
  fibers, from a pair source, say) meet the channel's detector -- efficiency, Poissonian dark
  counts, Gaussian jitter (FWHM), dead time (non-paralyzable unless ``paralyzable``),
  afterpulsing -- and become int64 picosecond tags. Detector defaults: the ``snspd`` profile.
* The tagger adds its own per-channel settings: an input ``delay``, a tagger ``dead_time``
  (applied after the detector's), a trigger ``threshold`` (a channel whose level is above the
  detector's ``pulse_amplitude`` records nothing) and the active ``edge``.
* Tags are produced for each lab-time slice while the tagger streams (``start``) or counts
  (``count``, ``histogram``), converted to the tagger's clock domain and published as batches
  ``{"channel": int32[], "time_ps": int64[], "missed": int}``. A batch a lossless subscriber
  has no room for is lost and counted in the next batch's ``missed``.
* Virtual coincidence channels fire when all member channels fire within the window (of the
  first member's tag); the test signal replaces a channel's input by a Poisson process of
  ``test_signal_rate``.

Faults: a *latched* detector (an SNSPD stuck in its resistive state: :meth:`latch`, or on its
own when its click rate exceeds ``latch_rate``) records nothing; ``count``/``histogram``/
``start`` on it fail with :class:`qnhw.DeviceFault` until ``set_bias`` re-biases it (or the
fault is cleared).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from emulators.devices.common import Emulator, count, nonnegative, positive, probability
from emulators.devices.env import EmulatorEnv
from emulators.lab.time import PS_PER_S, Ticker, to_ps
from emulators.lab.world import PortRef
from emulators.physics.detectors import DetectorModel, dead_time_mask, detect
from qnhw.devices import timetagger as tagger_contract
from qnhw.errors import BadParams, Busy, DeviceFault

__all__ = ["TimeTaggerEmulator"]

IntArray = npt.NDArray[np.int64]
#: Tags per ``tags`` event (longer batches are split).
TAGS_PER_EVENT = 1_000_000
#: Start-stop pairs a histogram enumerates at most.
MAX_HISTOGRAM_PAIRS = 50_000_000

_DETECTOR_KEYS = ("efficiency", "dark_count_rate", "jitter", "dead_time", "paralyzable",
                  "afterpulse_probability", "afterpulse_time_constant", "type")


@dataclass
class _Collector:
    channels: set[int]
    start_ps: int
    tags: dict[int, list[IntArray]] = field(default_factory=dict)

    def add(self, channel: int, times: IntArray) -> None:
        if channel in self.channels:
            self.tags.setdefault(channel, []).append(times)

    def times(self, channel: int, t0: int, t1: int) -> IntArray:
        parts = self.tags.get(channel, [])
        t = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        t = np.sort(t)
        return t[(t >= t0) & (t < t1)]


class TimeTaggerEmulator(Emulator):
    """Detectors and a time tagger (module docstring).

    Parameters (keywords; SI units): ``channels`` (4); ``model`` (instrument name);
    ``resolution`` (8e-12 s rms); ``dead_time_range`` ((2e-9, 1e-3) s); ``threshold_range``
    ((-2.5, 2.5) V); ``max_rate`` (5e7 Hz); ``test_signal_rate`` (1e5 Hz); detector of every
    channel: ``detector_type`` ("snspd"), ``efficiency`` (0.9), ``dark_count_rate`` (100 Hz),
    ``jitter`` (50e-12 s FWHM), ``dead_time`` (50e-9 s), ``paralyzable`` (False),
    ``afterpulse_probability`` (0), ``afterpulse_time_constant`` (0 s), ``pulse_amplitude``
    (0.5 V), ``latch_rate`` (inf Hz: clicks per second above which the detector latches);
    ``channel_overrides`` ({channel: {key: value}} for any detector key, plus ``type``).
    """

    CONTRACT = tagger_contract.CONTRACT
    KIND = "tagger"

    def __init__(self, env: EmulatorEnv, *, channels: int = 4,
                 model: str = "qnhw emulated time tagger", resolution: float = 8e-12,
                 dead_time_range: Sequence[float] = (2e-9, 1e-3),
                 threshold_range: Sequence[float] = (-2.5, 2.5), max_rate: float = 5e7,
                 test_signal_rate: float = 1e5, detector_type: str = "snspd",
                 efficiency: float = 0.9, dark_count_rate: float = 100.0,
                 jitter: float = 50e-12, dead_time: float = 50e-9, paralyzable: bool = False,
                 afterpulse_probability: float = 0.0, afterpulse_time_constant: float = 0.0,
                 pulse_amplitude: float = 0.5, latch_rate: float = math.inf,
                 channel_overrides: Mapping[int, Mapping[str, Any]] | None = None) -> None:
        super().__init__(env)
        n = count("channels", channels, 1, 1024)
        self.channels = list(range(1, n + 1))
        self.model_name = str(model)
        self.resolution = nonnegative("resolution", resolution)
        dr = [nonnegative("dead_time_range[]", x) for x in dead_time_range]
        tr = [float(x) for x in threshold_range]
        if len(dr) != 2 or dr[0] > dr[1] or len(tr) != 2 or tr[0] > tr[1]:
            raise ValueError("dead_time_range and threshold_range must be [min, max]")
        self.dead_time_range, self.threshold_range = dr, tr
        self.max_rate = positive("max_rate", max_rate)
        self.test_rate = nonnegative("test_signal_rate", test_signal_rate)
        self.pulse_amplitude = positive("pulse_amplitude", pulse_amplitude)
        self.latch_rate = positive("latch_rate", latch_rate, allow_inf=True)
        base = {"type": detector_type, "efficiency": efficiency,
                "dark_count_rate": dark_count_rate, "jitter": jitter, "dead_time": dead_time,
                "paralyzable": paralyzable, "afterpulse_probability": afterpulse_probability,
                "afterpulse_time_constant": afterpulse_time_constant}
        self.detectors: dict[int, dict[str, Any]] = {}
        self.models: dict[int, DetectorModel] = {}
        overrides = dict(channel_overrides or {})
        for c in overrides:
            if c not in self.channels:
                raise ValueError(f"channel_overrides names channel {c}, which does not exist")
        for c in self.channels:
            d = dict(base)
            for k, v in overrides.get(c, {}).items():
                if k not in _DETECTOR_KEYS:
                    raise ValueError(f"channel_overrides[{c}]: unknown key {k!r} "
                                     f"(known: {', '.join(_DETECTOR_KEYS)})")
                d[k] = v
            if d["type"] not in tagger_contract.DETECTOR_TYPES:
                raise ValueError(f"detector type must be one of "
                                 f"{tagger_contract.DETECTOR_TYPES}, got {d['type']!r}")
            self.detectors[c] = d
            self.models[c] = DetectorModel(
                probability(f"efficiency (channel {c})", d["efficiency"]),
                nonnegative(f"dark_count_rate (channel {c})", d["dark_count_rate"]),
                nonnegative(f"dead_time (channel {c})", d["dead_time"]),
                bool(d["paralyzable"]), nonnegative(f"jitter (channel {c})", d["jitter"]),
                probability(f"afterpulse_probability (channel {c})",
                            d["afterpulse_probability"]),
                nonnegative(f"afterpulse_time_constant (channel {c})",
                            d["afterpulse_time_constant"]))
        self.config: dict[int, dict[str, Any]] = {
            c: {"channel": c, "enabled": True, "threshold": 0.1, "edge": "rising",
                "delay": 0.0, "dead_time": max(dr[0], min(dr[1], self.models[c].dead_time_s))}
            for c in self.channels}
        self.bias = {c: 10e-6 for c in self.channels}
        self.test_on: set[int] = set()
        self.virtual: dict[int, tuple[list[int], float]] = {}
        self._next_virtual = 101
        self.latched: set[int] = set()
        self._buffers: dict[int, list[IntArray]] = {c: [] for c in self.channels}
        self._streaming: list[int] | None = None
        self._collectors: list[_Collector] = []
        self.streamed = 0
        self.missed_total = 0
        self._missed = 0
        self._ticker: Ticker = self.clock.add_ticker(f"{env.name}:tags", self._tick,
                                                     priority=10)
        if self.world is not None:
            for c in self.channels:
                self.world.register_sink(PortRef(env.name, str(c)), self._sink(c))

    # --- world hooks and faults ---------------------------------------------------------

    def _sink(self, channel: int) -> Any:
        def receive(arrivals: IntArray) -> None:
            if self._ticker.active:
                self._buffers[channel].append(arrivals)
        return receive

    def latch(self, channel: int) -> None:
        """Fault: the detector on ``channel`` latches (records nothing until re-biased)."""
        self._physical(channel)
        self.latched.add(channel)

    def unlatch(self, channel: int | None = None) -> None:
        if channel is None:
            self.latched.clear()
        else:
            self.latched.discard(channel)

    # --- tag generation -------------------------------------------------------------------

    def _needed(self) -> set[int]:
        chans: set[int] = set(self._streaming or [])
        for col in self._collectors:
            chans |= col.channels
        out: set[int] = set()
        for c in chans:
            out |= set(self.virtual[c][0]) if c in self.virtual else {c}
        return out & set(self.channels)

    def _physical_tags(self, c: int, t0: int, t1: int) -> IntArray:
        parts = self._buffers[c]
        photons = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        keep = photons >= t1
        self._buffers[c] = [photons[keep]] if keep.any() else []
        photons = photons[~keep]
        cfg = self.config[c]
        if not cfg["enabled"] or c in self.latched or \
                abs(cfg["threshold"]) >= self.pulse_amplitude:
            return np.zeros(0, np.int64)
        rng = self.env.rng
        if c in self.test_on:
            n = int(rng.poisson(self.test_rate * (t1 - t0) / PS_PER_S))
            events = np.sort(rng.integers(t0, t1, size=n, dtype=np.int64)) if t1 > t0 else \
                np.zeros(0, np.int64)
        else:
            events = detect(rng, photons, self.models[c], t0, t1, channel=c).times_ps
            if self.latch_rate < math.inf and events.size > self.latch_rate * \
                    (t1 - t0) / PS_PER_S:
                self.latched.add(c)
                self._log.warning("detector latched (count rate too high)", channel=c)
                return np.zeros(0, np.int64)
        if self.resolution > 0 and events.size:
            events = events + np.rint(rng.normal(0, self.resolution * PS_PER_S,
                                                 events.size)).astype(np.int64)
            events.sort()
        events = events + to_ps(cfg["delay"])
        dead = to_ps(cfg["dead_time"])
        return np.asarray(events[dead_time_mask(events, dead)], dtype=np.int64)

    def _virtual_tags(self, v: int, per: dict[int, IntArray]) -> IntArray:
        members, window = self.virtual[v]
        w = to_ps(window)
        base = per.get(members[0], np.zeros(0, np.int64))
        hit = np.ones(base.size, dtype=bool)
        for m in members[1:]:
            other = per.get(m, np.zeros(0, np.int64))
            if other.size == 0:
                return np.zeros(0, np.int64)
            j = np.searchsorted(other, base)
            lo = other[np.clip(j - 1, 0, other.size - 1)]
            hi = other[np.clip(j, 0, other.size - 1)]
            hit &= np.minimum(np.abs(lo - base), np.abs(hi - base)) <= w
        return np.asarray(base[hit], dtype=np.int64)

    def _tick(self, t0: int, t1: int) -> None:
        per = {c: self._physical_tags(c, t0, t1) for c in sorted(self._needed())}
        wanted: set[int] = set(self._streaming or [])
        for col in self._collectors:
            wanted |= col.channels
        for v in wanted & set(self.virtual):
            per[v] = self._virtual_tags(v, per)
        for col in self._collectors:
            for c, times in per.items():
                col.add(c, times)
        if self._streaming is not None:
            self._publish(per, t1)

    def _publish(self, per: dict[int, IntArray], t1: int) -> None:
        chans = [c for c in self._streaming or [] if c in per]
        ids = [np.full(per[c].size, c, dtype=np.int32) for c in chans]
        times = [per[c] for c in chans]
        all_t = np.concatenate(times) if times else np.zeros(0, np.int64)
        all_c = np.concatenate(ids) if ids else np.zeros(0, np.int32)
        order = np.argsort(all_t, kind="stable")
        all_t, all_c = self.to_domain_array(all_t[order]), all_c[order]
        ts = self.to_domain(t1)
        for k in range(0, max(all_t.size, 1), TAGS_PER_EVENT):
            chunk_t = all_t[k:k + TAGS_PER_EVENT]
            payload = {"channel": all_c[k:k + TAGS_PER_EVENT], "time_ps": chunk_t,
                       "missed": self._missed}
            if self.publish_nowait("tags", payload, ts):
                self._missed = 0
                self.streamed += int(chunk_t.size)
            else:
                self._missed += int(chunk_t.size)
                self.missed_total += int(chunk_t.size)

    def _activate(self) -> None:
        if not self._ticker.active:
            for c in self.channels:
                self._buffers[c] = []
            self._ticker.start(self.lab_ps())

    def _maybe_deactivate(self) -> None:
        if self._streaming is None and not self._collectors:
            self._ticker.stop()

    # --- checks ---------------------------------------------------------------------------

    def _physical(self, c: int) -> None:
        if c not in self.config:
            raise BadParams(f"channel {c} does not exist (channels {self.channels})",
                            {"param": "channel", "value": c})

    def _existing(self, channels: Sequence[int], param: str = "channels") -> None:
        for c in channels:
            if c not in self.config and c not in self.virtual:
                raise BadParams(f"channel {c} does not exist", {"param": param, "value": c})

    def _not_latched(self, channels: Sequence[int]) -> None:
        self.check_fault()
        for c in channels:
            members = self.virtual[c][0] if c in self.virtual else [c]
            for m in members:
                if m in self.latched:
                    raise DeviceFault(f"{self.name}: detector on channel {m} is latched (no "
                                      "counts); re-bias it with set_bias",
                                      {"fault": "latched", "channel": m})

    # --- contract commands ----------------------------------------------------------------

    def configure_channel(self, channel: int, enabled: bool | None, threshold: float | None,
                          edge: str | None, delay: float | None,
                          dead_time: float | None) -> dict[str, Any]:
        """Change one channel's settings."""
        self.check_fault()
        self._physical(channel)
        self.clock.flush()  # tags up to now were made with the old settings
        return tagger_contract.apply_channel_settings(
            self.config[channel], threshold_range=self.threshold_range,
            dead_time_range=self.dead_time_range, enabled=enabled, threshold=threshold,
            edge=edge, delay=delay, dead_time=dead_time)

    def get_channel(self, channel: int) -> dict[str, Any]:
        """One channel's settings."""
        self._physical(channel)
        return dict(self.config[channel])

    def start(self, channels: list[int]) -> None:
        """Stream tags of ``channels`` (empty: every enabled channel)."""
        if self._streaming is not None:
            raise Busy("already streaming; stop first")
        chans = list(dict.fromkeys(channels or [c for c in self.channels
                                                if self.config[c]["enabled"]]))
        self._existing(chans)
        self._not_latched(chans)
        self.streamed = 0
        self.missed_total = 0
        self._missed = 0
        self._activate()
        self._streaming = chans

    def stop(self) -> dict[str, Any]:
        """Stop streaming; returns tags streamed and missed since ``start``."""
        self.check_fault()
        if self._streaming is not None:
            self.clock.flush()
        self._streaming = None
        self._maybe_deactivate()
        return {"tags": self.streamed, "missed": self.missed_total}

    async def _collect(self, channels: set[int], duration: float) -> tuple[_Collector, int]:
        col = _Collector(channels, self.lab_ps())
        self._activate()
        self._collectors.append(col)
        try:
            await self.spend(duration)
            end = col.start_ps + to_ps(duration)
            self.clock.flush(end)
        finally:
            self._collectors.remove(col)
            self._maybe_deactivate()
        return col, end

    async def count(self, channels: list[int], duration: float) -> dict[str, Any]:
        """Count events on ``channels`` for ``duration`` (blocks that long)."""
        self._existing(channels)
        self._not_latched(channels)
        col, end = await self._collect(set(channels), duration)
        counts = [int(col.times(c, col.start_ps, end).size) for c in channels]
        return {"channels": list(channels), "counts": counts,
                "rates": [n / duration for n in counts], "duration": duration}

    def set_test_signal(self, channels: list[int], enabled: bool) -> None:
        """Switch the test signal on ``channels`` on or off."""
        self.check_fault()
        for c in channels:
            self._physical(c)
        self.clock.flush()
        if enabled:
            self.test_on.update(channels)
        else:
            self.test_on.difference_update(channels)

    def add_coincidence(self, channels: list[int], window: float) -> dict[str, Any]:
        """A virtual channel firing when all ``channels`` fire within ``window``."""
        self.check_fault()
        for c in channels:
            self._physical(c)
        if len(set(channels)) != len(channels):
            raise BadParams("a channel appears twice", {"param": "channels"})
        vid = self._next_virtual
        self._next_virtual += 1
        self.virtual[vid] = (list(channels), window)
        return {"channel": vid}

    def remove_coincidence(self, channel: int) -> None:
        """Remove virtual channel ``channel``."""
        self.check_fault()
        if self._streaming is not None and channel in self._streaming:
            raise Busy("the virtual channel is streaming; stop first")
        if self.virtual.pop(channel, None) is None:
            raise BadParams(f"no virtual channel {channel}", {"param": "channel"})

    async def histogram(self, start_channel: int, stop_channel: int, bin_width: float,
                        bins: int, duration: float) -> dict[str, Any]:
        """Histogram of stop-minus-start delays in ``[0, bins * bin_width)``."""
        self._existing([start_channel], "start_channel")
        self._existing([stop_channel], "stop_channel")
        self._not_latched([start_channel, stop_channel])
        col, end = await self._collect({start_channel, stop_channel}, duration)
        starts = col.times(start_channel, col.start_ps, end)
        stops = col.times(stop_channel, col.start_ps, end)
        w = to_ps(bin_width)
        lo = np.searchsorted(stops, starts, side="left")
        hi = np.searchsorted(stops, starts + w * bins, side="left")
        n_pairs = int((hi - lo).sum())
        if n_pairs > MAX_HISTOGRAM_PAIRS:
            raise BadParams(f"histogram would need {n_pairs} start-stop pairs (limit "
                            f"{MAX_HISTOGRAM_PAIRS}); shorten duration or range",
                            {"param": "duration"})
        counts = np.zeros(bins, dtype=np.int64)
        if n_pairs:
            reps = hi - lo
            first = np.repeat(lo, reps)
            offs = np.arange(n_pairs) - np.repeat(np.cumsum(reps) - reps, reps)
            delays = stops[first + offs] - np.repeat(starts, reps)
            counts = np.bincount(delays // w, minlength=bins)[:bins].astype(np.int64)
        return {"counts": counts, "bin_width": bin_width}

    def set_bias(self, channel: int, current: float) -> None:
        """Set the bias current of ``channel``'s detector (re-biasing clears a latch)."""
        self.check_fault()
        self._physical(channel)
        self.bias[channel] = current
        self.latched.discard(channel)

    # --- server ---------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        dets = [{"channel": c, "type": self.detectors[c]["type"],
                 "efficiency": self.models[c].efficiency,
                 "dark_count_rate": self.models[c].dark_count_rate_hz,
                 "jitter": self.models[c].jitter_fwhm_s,
                 "dead_time": self.models[c].dead_time_s} for c in self.channels]
        return {"model": self.model_name, "channels": list(self.channels),
                "resolution": self.resolution, "dead_time_range": list(self.dead_time_range),
                "threshold_range": list(self.threshold_range), "max_rate": self.max_rate,
                "test_signal_rate": self.test_rate, "detectors": dets}

    def detector_model(self, channel: int) -> DetectorModel:
        """The detector model of ``channel`` with the tagger's dead time folded in (the
        larger of the two), for analysis."""
        m = self.models[channel]
        return replace(m, dead_time_s=max(m.dead_time_s, self.config[channel]["dead_time"]))

    async def aclose(self) -> None:
        self.clock.remove_ticker(self._ticker)
        if self.world is not None:
            for c in self.channels:
                self.world.unregister_sink(PortRef(self.name, str(c)))
        await super().aclose()
