"""TriggerGenerator: a trigger/delay generator with four delayed pulse outputs.

Modelled on digital delay generators (SRS DG645, Highland T560, the trigger section of a
timing card) and implemented in C by the example firmware ``firmware_stubs/examples/trigger_gen``
(docs/serial.md). Every trigger makes each enabled output channel ``c`` fire a pulse of
``width(c)`` at ``delay(c)`` after the trigger, of either polarity. Triggers come from an
internal rate generator (``set_rate``), the external trigger input, or software only
(``fire``; ``schedule`` for a one-shot at an absolute device time). ``arm`` starts accepting
triggers (optionally for a limited ``count``), ``disarm`` stops. Each trigger is reported on the
``triggers`` stream with its time in the device's clock domain (the firmware's ``tgen0``:
picoseconds since power-on).

Delays, widths and periods are **integer picoseconds** (the hardware's delay resolution is
10 ps; ``capabilities.delay_resolution``), not seconds as in most contracts: pass int ps or a
:class:`qnhw.Quantity` (``Quantity(2.5, "ns")``). The contract has no optional features
(``capabilities.features`` is empty).
"""

from __future__ import annotations

from typing import Any, TypedDict

from qnhw.contract.spec import Command, Contract, Field, Param, StreamSpec
from qnhw.devices._schema import FANOUT, FEATURES_FIELD, Instant, Mode, Number
from qnhw.devices.base import Driver
from qnhw.protocol.types import Quantity, Timestamp
from qnhw.runtime.streams import Subscription

#: A duration in integer picoseconds, or a :class:`qnhw.Quantity` of time.
Picoseconds = int | Quantity

POLARITIES = ("positive", "negative")
SOURCES = ("internal", "external", "software")
#: Values of the ``source`` key of ``triggers`` events.
TRIGGER_SOURCES = ("internal", "software", "scheduled")

_NIL = "; nil leaves it unchanged"
_CHANNEL = Param("channel", "int", "output channel, 0 to 3", min=0, max=3)
_CHANNEL_RESULT = (
    Field("channel", "int", "output channel"),
    Field("delay", "int", "pulse delay after the trigger", "ps"),
    Field("width", "int", "pulse width", "ps"),
    Field("polarity", "str", "positive or negative"),
    Field("enabled", "bool", "output enabled"),
)

# Every text below is what the firmware's ``describe`` reply says, byte for byte: the
# conformance kit compares them (tests/serial/test_serial_conformance.py).
CONTRACT = Contract(
    name="TriggerGenerator",
    version="1.0",
    doc=("A trigger/delay generator: four output channels each firing a pulse a set delay "
         "after every trigger; triggers from an internal rate generator, the external input "
         "or software (now, or scheduled at a device time), reported on a stream. Delays, "
         "widths and periods are integer picoseconds (delays in steps of "
         "`capabilities.delay_resolution`). The C firmware `firmware_stubs/examples/"
         "trigger_gen` implements it (docs/serial.md)."),
    commands=(
        Command("configure_channel", (
            _CHANNEL,
            Param("delay", "int", "pulse delay after the trigger, rounded to 10 ps" + _NIL, "ps",
                  min=0, max=10_000_000_000, default=None, nullable=True),
            Param("width", "int", "pulse width" + _NIL, "ps", min=1000, max=1_000_000_000,
                  default=None, nullable=True),
            Param("polarity", "str", "pulse polarity" + _NIL, choices=POLARITIES,
                  default=None, nullable=True),
            Param("enabled", "bool", "output enabled" + _NIL, default=None, nullable=True),
        ), "Set the delay, width, polarity and enable of one output channel.",
            "the channel's settings", result=_CHANNEL_RESULT),
        Command("get_channel", (_CHANNEL,), "The settings of one output channel.",
                "the channel's settings", result=_CHANNEL_RESULT),
        Command("set_source", (
            Param("source", "str", "trigger source: internal rate generator, external input, "
                  "or software only", choices=SOURCES),
        ), "Choose where triggers come from (only while disarmed).", "the source",
            result=(Field("source", "str", "the trigger source now"),)),
        Command("set_rate", (
            Param("rate", "float", "internal trigger rate; the period is rounded to whole "
                  "picoseconds", "Hz", min=0.1, max=1000.0),
        ), "Set the internal trigger rate.", "rate and period applied",
            result=(Field("rate", "float", "the rate applied", "Hz"),
                    Field("period", "int", "the trigger period applied", "ps"))),
        Command("arm", (
            Param("count", "int", "triggers until the generator disarms itself; 0 for no limit",
                  min=0, max=1_000_000, default=0),
        ), "Start accepting triggers; internal triggers start one period later. Busy if armed "
           "already; device fault if the external input has no signal.", "arm time",
            result=(Field("armed", "bool", "true"),
                    Field("start", "timestamp", "device time of arming; internal triggers "
                          "follow every period", "ps"))),
        Command("disarm", (), "Stop triggering and clear scheduled triggers.",
                "triggers since arm", result=(Field("fired", "int", "triggers since arm"),)),
        Command("fire", (), "One software trigger now (armed only).", "trigger number and time",
                result=(Field("count", "int", "number of this trigger since arm"),
                        Field("time", "timestamp", "trigger time, device clock", "ps"))),
        Command("schedule", (
            Param("at", "timestamp", "device time of a one-shot trigger (a Timestamp in the "
                  "device's clock domain, or int ps)", "ps", min=0),
        ), "One trigger at an absolute device time (armed only; at most 8 pending).",
            "pending count", result=(Field("pending", "int", "scheduled triggers waiting"),)),
        Command("status", (), "Armed state, source, rate and counters.", "status map", result=(
            Field("armed", "bool", "waiting for or producing triggers"),
            Field("source", "str", "trigger source"),
            Field("rate", "float", "internal trigger rate", "Hz"),
            Field("period", "int", "internal trigger period", "ps"),
            Field("fired", "int", "triggers since arm"),
            Field("total", "int", "triggers since power-on"),
            Field("pending", "int", "scheduled triggers waiting"),
            Field("dropped", "int", "trigger events the stream could not deliver"),
        )),
    ),
    streams=(
        StreamSpec("triggers", "One event per trigger; ts is the trigger time. Channel c pulses "
                   "at ts + delay(c).", "map", fields=(
                       Field("count", "int", "number of this trigger since arm (1-based)"),
                       Field("source", "str", "internal, software or scheduled"),
                       Field("mask", "int", "bit mask of the channels that pulsed"),
                   )),
    ),
    capabilities=(
        Field("channels", "int", "number of output channels (numbered from 0)"),
        Field("delay_resolution", "int", "step of the channel delays", unit="ps"),
        Field("max_rate", "float", "highest internal trigger rate", unit="Hz"),
        Field("schedule_depth", "int", "one-shot triggers that can be pending at once"),
        FEATURES_FIELD,
    ),
)


class ChannelSettings(TypedDict):
    """Result of :meth:`TriggerGenerator.configure_channel` and ``get_channel`` (``delay``,
    ``width`` in ps)."""

    channel: int
    delay: int
    width: int
    polarity: str
    enabled: bool


class SourceResult(TypedDict):
    """Result of :meth:`TriggerGenerator.set_source`."""

    source: str


class RateResult(TypedDict):
    """Result of :meth:`TriggerGenerator.set_rate` (``rate`` in Hz, ``period`` in ps)."""

    rate: float
    period: int


class ArmResult(TypedDict):
    """Result of :meth:`TriggerGenerator.arm`."""

    armed: bool
    start: Timestamp


class DisarmResult(TypedDict):
    """Result of :meth:`TriggerGenerator.disarm`."""

    fired: int


class FireResult(TypedDict):
    """Result of :meth:`TriggerGenerator.fire`."""

    count: int
    time: Timestamp


class ScheduleResult(TypedDict):
    """Result of :meth:`TriggerGenerator.schedule`."""

    pending: int


class GeneratorStatus(TypedDict):
    """Result of :meth:`TriggerGenerator.status` (``rate`` in Hz, ``period`` in ps)."""

    armed: bool
    source: str
    rate: float
    period: int
    fired: int
    total: int
    pending: int
    dropped: int


class TriggerGenerator(Driver):
    """Async driver of a trigger/delay generator (contract ``TriggerGenerator`` 1.0).

    ``await tg.configure_channel(0, delay=Quantity(25, "ns"))``; ``await
    tg.set_source("software")``; ``await tg.arm()``; ``t = (await tg.fire())["time"]``;
    ``await tg.schedule(t.ps + 10**9)``. Timestamps in results are :class:`qnhw.Timestamp`
    in the device's domain, whether the device sent int picoseconds (the C firmware) or
    timestamps.
    """

    CONTRACT = CONTRACT

    def _stamp(self, result: Any, key: str) -> Any:
        """``result[key]`` as a Timestamp in the device domain (int ps are taken as in it)."""
        if isinstance(result, dict) and isinstance(result.get(key), int) \
                and not isinstance(result[key], bool):
            result[key] = Timestamp(result[key], self.clock_domain or "device")
        return result

    async def configure_channel(self, channel: int, delay: Picoseconds | None = None,
                                width: Picoseconds | None = None, polarity: str | None = None,
                                enabled: bool | None = None, *,
                                timeout: float | None = None) -> ChannelSettings:
        """Set output ``channel``'s ``delay`` after the trigger (ps, rounded to 10 ps),
        pulse ``width`` (ps), ``polarity`` (positive, negative) and ``enabled``; ``None``
        leaves a setting unchanged. Returns the channel's settings."""
        result: ChannelSettings = await self._call(
            "configure_channel", timeout, channel=channel, delay=delay, width=width,
            polarity=polarity, enabled=enabled)
        return result

    async def get_channel(self, channel: int, *,
                          timeout: float | None = None) -> ChannelSettings:
        """The settings of output ``channel``."""
        result: ChannelSettings = await self._call("get_channel", timeout, channel=channel)
        return result

    async def set_source(self, source: str, *, timeout: float | None = None) -> SourceResult:
        """Take triggers from ``source``: internal, external or software. Raises
        :class:`qnhw.Busy` while armed."""
        result: SourceResult = await self._call("set_source", timeout, source=source)
        return result

    async def set_rate(self, rate: Number, *, timeout: float | None = None) -> RateResult:
        """Set the internal trigger ``rate`` (Hz, 0.1 to 1000); returns the ``rate`` and
        ``period`` (ps) applied."""
        result: RateResult = await self._call("set_rate", timeout, rate=rate)
        return result

    async def arm(self, count: int = 0, *, timeout: float | None = None) -> ArmResult:
        """Start accepting triggers, for ``count`` triggers (0: until disarmed); returns the
        ``start`` time. Raises :class:`qnhw.Busy` if armed already and
        :class:`qnhw.DeviceFault` when the external input has no signal."""
        result: ArmResult = self._stamp(await self._call("arm", timeout, count=count), "start")
        return result

    async def disarm(self, *, timeout: float | None = None) -> DisarmResult:
        """Stop triggering and clear scheduled triggers; returns triggers ``fired`` since
        arm."""
        result: DisarmResult = await self._call("disarm", timeout)
        return result

    async def fire(self, *, timeout: float | None = None) -> FireResult:
        """One software trigger now; returns its ``count`` since arm and its ``time``.
        Raises :class:`qnhw.Busy` when not armed."""
        result: FireResult = self._stamp(await self._call("fire", timeout), "time")
        return result

    async def schedule(self, at: Instant, *, timeout: float | None = None) -> ScheduleResult:
        """One trigger at device time ``at`` (ps, device domain); returns the ``pending``
        count. Raises :class:`qnhw.Busy` when not armed or 8 are pending, and
        :class:`qnhw.BadParams` when ``at`` is in the past."""
        result: ScheduleResult = await self._call("schedule", timeout, at=at)
        return result

    async def status(self, *, timeout: float | None = None) -> GeneratorStatus:
        """Armed state, source, rate (Hz) and period (ps), trigger counters, pending
        scheduled triggers and events the stream dropped."""
        result: GeneratorStatus = await self._call("status", timeout)
        return result

    def triggers(self, *, mode: Mode = FANOUT, maxsize: int = 4096,
                 credit: int = 64) -> Subscription:
        """Subscribe to ``triggers``: ``{"count", "source", "mask"}`` per trigger, the event
        timestamp being the trigger time (channel ``c`` pulses at ``ts + delay(c)``)."""
        return self._subscribe("triggers", mode, maxsize, credit)


__all__ = ["CONTRACT", "POLARITIES", "SOURCES", "TRIGGER_SOURCES", "ArmResult",
           "ChannelSettings", "DisarmResult", "FireResult", "GeneratorStatus", "Picoseconds",
           "RateResult", "ScheduleResult", "SourceResult", "TriggerGenerator"]
