"""TimeTagger: single-photon detectors (SNSPD, SPAD) read out by a time tagger.

Modelled on Swabian Instruments' Time Tagger (trigger level, input delay and dead time per
channel, a time-tag stream of int64 picosecond timestamps with int32 channel ids, counters,
virtual coincidence channels, correlation histograms, a built-in test signal) and PicoQuant's
HydraHarp (T2 mode tags, channel offsets, CFD levels, histogramming). Channels are numbered
from 1; each may have a detector behind it, described in ``capabilities.detectors``
(efficiency, dark-count rate, jitter, dead time). Virtual coincidence channels get ids from
``add_coincidence`` and appear in counts and tags like physical ones.

Optional features: ``test_signal``, ``coincidences``, ``histogram``, ``bias_control``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from qnhw.contract.spec import Command, Contract, Field, Param, StreamSpec
from qnhw.devices._schema import FANOUT, FEATURES_FIELD, Mode, Number, float_pair, int_list
from qnhw.devices.base import Driver
from qnhw.errors import BadParams
from qnhw.runtime.streams import Subscription

EDGES = ("rising", "falling")
DETECTOR_TYPES = ("snspd", "spad", "pmt", "none")

_CHANNEL = Param("channel", "int", "input channel (1-based)", min=1, max=1024)
_CHANNEL_FIELDS = (
    Field("channel", "int", "input channel"),
    Field("enabled", "bool", "tags are recorded"),
    Field("threshold", "float", "trigger level", unit="V"),
    Field("edge", "str", "active edge", choices=EDGES),
    Field("delay", "float", "input delay added to every tag", unit="s"),
    Field("dead_time", "float", "dead time after a tag", unit="s"),
)

CONTRACT = Contract(
    name="TimeTagger",
    version="1.0",
    doc=("Detector channels read out by a time tagger: per-channel threshold, edge, delay and "
         "dead time; a lossless-capable stream of int64 picosecond tags with int32 channel "
         "ids; counters, coincidence windows and correlation histograms."),
    features=("test_signal", "coincidences", "histogram", "bias_control"),
    feature_docs=(
        ("test_signal", "built-in test signal on chosen channels (`set_test_signal`)"),
        ("coincidences", "virtual coincidence channels (`add_coincidence`, "
         "`remove_coincidence`)"),
        ("histogram", "start-stop correlation histograms (`histogram`)"),
        ("bias_control", "detector bias current per channel (`set_bias`)"),
    ),
    commands=(
        Command("configure_channel", (
            _CHANNEL,
            Param("enabled", "bool", "record tags (null: unchanged)", nullable=True,
                  default=None),
            Param("threshold", "float", "trigger level (null: unchanged)", unit="V", min=-5.0,
                  max=5.0, nullable=True, default=None),
            Param("edge", "str", "active edge (null: unchanged)", choices=EDGES, nullable=True,
                  default=None),
            Param("delay", "float", "input delay (null: unchanged)", unit="s", min=-1e-3,
                  max=1e-3, nullable=True, default=None),
            Param("dead_time", "float", "dead time (null: unchanged; within "
                  "`capabilities.dead_time_range`)", unit="s", min=0.0, max=1e-3,
                  nullable=True, default=None),
        ), "Change one channel's settings; null leaves a setting unchanged.",
            returns="the channel configuration now in force", result=_CHANNEL_FIELDS),
        Command("get_channel", (_CHANNEL,), "One channel's settings. Does not block.",
                returns="the channel configuration", result=_CHANNEL_FIELDS),
        Command("start", (
            int_list("channels", "channels to stream (empty: every enabled channel)",
                     item="channel", minimum=1, max=1024, default=()),
        ), "Start streaming tags of `channels` on the `tags` stream."),
        Command("stop", (), "Stop streaming tags.", returns="tags streamed and tags missed",
                result=(Field("tags", "int", "tags streamed since start"),
                        Field("missed", "int", "tags lost to overflow since start"))),
        Command("count", (
            int_list("channels", "channels to count (physical or virtual)", item="channel",
                     minimum=1, min=1, max=1024),
            Param("duration", "float", "integration time", unit="s", min=1e-6, max=60.0),
        ), "Count events on `channels` for `duration`; blocks for `duration`.",
            returns="counts and rates per channel",
            result=(Field("channels", "list", "channels, as requested",
                          items=Field("channel", "int")),
                    Field("counts", "list", "events per channel", items=Field("n", "int")),
                    Field("rates", "list", "events per second per channel", unit="Hz",
                          items=Field("rate", "float", unit="Hz")),
                    Field("duration", "float", "integration time", unit="s"))),
        Command("set_test_signal", (
            int_list("channels", "channels whose input is replaced by the test signal",
                     item="channel", minimum=1, min=1, max=1024),
            Param("enabled", "bool", "switch the test signal on or off"),
        ), "Feed the built-in test signal (`capabilities.test_signal_rate`) into channels.",
            feature="test_signal"),
        Command("add_coincidence", (
            int_list("channels", "channels that must all fire", item="channel", minimum=1,
                     min=2, max=8),
            Param("window", "float", "coincidence window", unit="s", min=1e-12, max=1e-3),
        ), "Create a virtual channel that fires when all `channels` fire within `window`.",
            returns="the virtual channel id", feature="coincidences",
            result=(Field("channel", "int", "virtual channel id"),)),
        Command("remove_coincidence", (
            Param("channel", "int", "virtual channel id", min=1),
        ), "Remove a virtual coincidence channel.", feature="coincidences"),
        Command("histogram", (
            Param("start_channel", "int", "channel starting a measurement", min=1),
            Param("stop_channel", "int", "channel whose delay is histogrammed", min=1),
            Param("bin_width", "float", "bin width", unit="s", min=1e-12, max=1e-3),
            Param("bins", "int", "number of bins", min=1, max=65536),
            Param("duration", "float", "acquisition time", unit="s", min=1e-6, max=60.0),
        ), "Histogram of stop-minus-start delays from 0 to bins*bin_width; blocks for "
           "`duration`.", returns="the histogram", feature="histogram",
            result=(Field("counts", "array", "counts per bin", dtype="int64"),
                    Field("bin_width", "float", "bin width", unit="s"))),
        Command("set_bias", (
            _CHANNEL,
            Param("current", "float", "detector bias current", unit="A", min=0.0, max=1e-3),
        ), "Set the bias current of the detector on `channel`.", feature="bias_control"),
    ),
    streams=(
        StreamSpec("tags", "time tags in batches, sorted by time", "map of arrays", fields=(
            Field("channel", "array", "channel id of each tag", dtype="int32"),
            Field("time_ps", "array", "time of each tag in the device domain", unit="ps",
                  dtype="int64"),
            Field("missed", "int", "tags lost to overflow just before this batch"),
        )),
    ),
    capabilities=(
        Field("model", "str", "instrument model"),
        Field("channels", "list", "physical input channels", items=Field("channel", "int")),
        Field("resolution", "float", "RMS timing jitter of the tagger", unit="s"),
        float_pair("dead_time_range", "[min, max] settable dead time", "s"),
        float_pair("threshold_range", "[min, max] trigger level", "V"),
        Field("max_rate", "float", "sustained tag rate", unit="Hz"),
        Field("test_signal_rate", "float", "rate of the built-in test signal", unit="Hz",
              nullable=True),
        Field("detectors", "list", "the detector behind each channel", items=Field(
            "detector", "dict", fields=(
                Field("channel", "int", "input channel"),
                Field("type", "str", "detector technology", choices=DETECTOR_TYPES),
                Field("efficiency", "float", "detection efficiency"),
                Field("dark_count_rate", "float", "dark counts", unit="Hz"),
                Field("jitter", "float", "timing jitter (FWHM)", unit="s"),
                Field("dead_time", "float", "detector recovery time", unit="s"),
            ))),
        FEATURES_FIELD,
    ),
)


class ChannelConfig(TypedDict):
    """A channel's settings: ``threshold`` V, ``delay`` and ``dead_time`` s."""

    channel: int
    enabled: bool
    threshold: float
    edge: str
    delay: float
    dead_time: float


class StopResult(TypedDict):
    """Result of :meth:`TimeTagger.stop`."""

    tags: int
    missed: int


class CountResult(TypedDict):
    """Result of :meth:`TimeTagger.count`: ``rates`` in Hz, ``duration`` in s."""

    channels: list[int]
    counts: list[int]
    rates: list[float]
    duration: float


class CoincidenceChannel(TypedDict):
    """Result of :meth:`TimeTagger.add_coincidence`."""

    channel: int


class Histogram(TypedDict):
    """Result of :meth:`TimeTagger.histogram`: ``counts`` int64 per bin, ``bin_width`` s."""

    counts: npt.NDArray[np.int64]
    bin_width: float


def apply_channel_settings(config: dict[str, Any], *, threshold_range: Sequence[float],
                           dead_time_range: Sequence[float], enabled: bool | None,
                           threshold: float | None, edge: str | None, delay: float | None,
                           dead_time: float | None) -> dict[str, Any]:
    """The device side of ``configure_channel``, for implementations of this contract.

    Checks ``threshold`` (V) and ``dead_time`` (s) against the device's ranges (raises
    :class:`BadParams` naming the parameter, changing nothing), then sets every argument that is
    not None in ``config``, one channel's settings map. Returns a copy of the new settings.
    """
    lo, hi = threshold_range
    if threshold is not None and not lo <= threshold <= hi:
        raise BadParams(f"threshold outside [{lo:g}, {hi:g}] V", {"param": "threshold"})
    dlo, dhi = dead_time_range
    if dead_time is not None and not dlo <= dead_time <= dhi:
        raise BadParams(f"dead_time outside [{dlo:g}, {dhi:g}] s", {"param": "dead_time"})
    for key, value in (("enabled", enabled), ("threshold", threshold), ("edge", edge),
                       ("delay", delay), ("dead_time", dead_time)):
        if value is not None:
            config[key] = value
    return dict(config)


class TimeTagger(Driver):
    """Async driver of detectors behind a time tagger (contract ``TimeTagger`` 1.0).

    ``await tt.configure_channel(1, threshold=Quantity(80, "mV"))``, ``await tt.start()``,
    then ``async with tt.tags(mode="lossless") as sub: async for ev in sub: ...`` where
    ``ev.payload`` is ``{"channel": int32[], "time_ps": int64[], "missed": int}``.
    """

    CONTRACT = CONTRACT

    async def configure_channel(self, channel: int, enabled: bool | None = None,
                                threshold: Number | None = None, edge: str | None = None,
                                delay: Number | None = None, dead_time: Number | None = None,
                                *, timeout: float | None = None) -> ChannelConfig:
        """Set ``channel``'s ``enabled``, ``threshold`` (V), ``edge`` (rising/falling),
        ``delay`` (s) and ``dead_time`` (s); ``None`` leaves a setting unchanged."""
        result: ChannelConfig = await self._call(
            "configure_channel", timeout, channel=channel, enabled=enabled,
            threshold=threshold, edge=edge, delay=delay, dead_time=dead_time)
        return result

    async def get_channel(self, channel: int, *,
                          timeout: float | None = None) -> ChannelConfig:
        """``channel``'s settings (``threshold`` V, ``delay`` s, ``dead_time`` s)."""
        result: ChannelConfig = await self._call("get_channel", timeout, channel=channel)
        return result

    async def start(self, channels: Sequence[int] = (), *,
                    timeout: float | None = None) -> None:
        """Start streaming tags of ``channels`` (empty: every enabled channel)."""
        await self._call("start", timeout, channels=channels)

    async def stop(self, *, timeout: float | None = None) -> StopResult:
        """Stop streaming; returns ``tags`` streamed and ``missed`` since start."""
        result: StopResult = await self._call("stop", timeout)
        return result

    async def count(self, channels: Sequence[int], duration: Number, *,
                    timeout: float | None = None) -> CountResult:
        """Count events on ``channels`` for ``duration`` (s); blocks that long, so pass a
        ``timeout`` above it. Returns counts and ``rates`` (Hz)."""
        result: CountResult = await self._call("count", timeout, channels=channels,
                                               duration=duration)
        return result

    async def set_test_signal(self, channels: Sequence[int], enabled: bool, *,
                              timeout: float | None = None) -> None:
        """Switch the built-in test signal on ``channels`` on or off (``enabled``).
        Feature ``test_signal``."""
        await self._call("set_test_signal", timeout, channels=channels, enabled=enabled)

    async def add_coincidence(self, channels: Sequence[int], window: Number, *,
                              timeout: float | None = None) -> CoincidenceChannel:
        """Create a virtual channel firing when all ``channels`` fire within ``window`` (s);
        returns its ``channel`` id. Feature ``coincidences``."""
        result: CoincidenceChannel = await self._call("add_coincidence", timeout,
                                                      channels=channels, window=window)
        return result

    async def remove_coincidence(self, channel: int, *, timeout: float | None = None) -> None:
        """Remove virtual coincidence ``channel``. Feature ``coincidences``."""
        await self._call("remove_coincidence", timeout, channel=channel)

    async def histogram(self, start_channel: int, stop_channel: int, bin_width: Number,
                        bins: int, duration: Number, *,
                        timeout: float | None = None) -> Histogram:
        """Histogram ``stop_channel`` minus ``start_channel`` delays in ``bins`` bins of
        ``bin_width`` (s), acquired for ``duration`` (s; blocks that long).
        Feature ``histogram``."""
        result: Histogram = await self._call(
            "histogram", timeout, start_channel=start_channel, stop_channel=stop_channel,
            bin_width=bin_width, bins=bins, duration=duration)
        return result

    async def set_bias(self, channel: int, current: Number, *,
                       timeout: float | None = None) -> None:
        """Set the bias ``current`` (A) of the detector on ``channel``. Feature
        ``bias_control``."""
        await self._call("set_bias", timeout, channel=channel, current=current)

    def tags(self, *, mode: Mode = FANOUT, maxsize: int = 4096,
             credit: int = 64) -> Subscription:
        """Subscribe to ``tags``: batches ``{"channel": int32[], "time_ps": int64[],
        "missed": int}``; use ``mode="lossless"`` for recording."""
        return self._subscribe("tags", mode, maxsize, credit)


__all__ = [
    "CONTRACT",
    "DETECTOR_TYPES",
    "EDGES",
    "ChannelConfig",
    "CoincidenceChannel",
    "CountResult",
    "Histogram",
    "StopResult",
    "TimeTagger",
    "apply_channel_settings",
]
