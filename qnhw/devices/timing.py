"""TimingCard: a White-Rabbit-like timing node that defines and disciplines a clock domain.

Modelled on White Rabbit nodes (WR-LEN, WR-ZEN, SPEC with the WR PTP core) and PTP (IEEE 1588)
hardware clocks: read the time of the card's domain, step it (``set_time``, ``adjust_offset``),
steer the oscillator (``adjust_frequency``, fractional), choose a role (free-running,
grandmaster, master, slave), schedule output pulses at absolute times, and timestamp input
pulses. ``sync_exchange`` performs one two-way time-transfer exchange with a peer over the
card's link and returns the four timestamps: t1 (sent, this card), t2 (received, peer), t3
(sent back, peer), t4 (received, this card); the peer's offset from this card is
``((t2 - t1) - (t4 - t3)) / 2`` and a link asymmetry ``D`` biases it by ``D / 2``
(:func:`two_way_offset`). Streams: ``pps`` (each second of the domain), ``triggers`` (each
scheduled pulse as it fires), ``tags`` (timestamped input pulses).

Optional feature: ``input_tags`` (``configure_input`` and the ``tags`` stream).
"""

from __future__ import annotations

from typing import TypedDict

from qnhw.contract.spec import Command, Contract, Field, Param, StreamSpec
from qnhw.devices._schema import (
    FANOUT,
    FEATURES_FIELD,
    Instant,
    Mode,
    Number,
    ts_field,
    ts_param,
)
from qnhw.devices.base import Driver
from qnhw.protocol.types import Timestamp
from qnhw.runtime.streams import Subscription

MODES = ("free_running", "grandmaster", "master", "slave")
EDGES = ("rising", "falling")

_TRIGGER_ID = Param("trigger_id", "int", "trigger id from schedule_trigger", min=0)
_TRIGGER_FIELDS = (
    Field("trigger_id", "int", "trigger id"),
    Field("channel", "int", "output channel"),
    ts_field("at", "next firing time"),
    Field("width", "float", "pulse width", unit="s"),
    Field("period", "float", "repetition period (null: once)", unit="s", nullable=True),
    Field("remaining", "int", "pulses still to fire"),
)

CONTRACT = Contract(
    name="TimingCard",
    version="1.0",
    doc=("A White-Rabbit-like timing node: read, step and steer its clock domain, schedule "
         "output triggers at absolute times, perform two-way time-transfer exchanges with "
         "peers, stream PPS, fired triggers and input time tags."),
    features=("input_tags",),
    feature_docs=(("input_tags", "timestamping of input pulses (`configure_input`, `tags`)"),),
    commands=(
        Command("get_time", (), "Read the card's clock. Does not block.",
                returns="the time, lock state and mode",
                result=(ts_field("time", "the card's time"),
                        Field("locked", "bool", "disciplined to its master (slave) or "
                              "reference (grandmaster)"),
                        Field("mode", "str", "role", choices=MODES))),
        Command("set_time", (ts_param("time", "new time of the domain"),),
                "Step the clock to `time` (refused in slave mode: the master sets it)."),
        Command("adjust_offset", (
            Param("offset", "float", "phase step added to the clock", unit="s", min=-1e3,
                  max=1e3),
        ), "Step the clock by `offset` (positive: forward).",
            returns="the time just after the step", result=(ts_field("time", "new time"),)),
        Command("adjust_frequency", (
            Param("fractional", "float", "fractional frequency correction (1e-9 = 1 ppb) "
                  "replacing the previous one", min=-1e-4, max=1e-4),
        ), "Steer the oscillator by a fractional frequency correction."),
        Command("set_mode", (
            Param("mode", "str", "role (within `capabilities.modes`)", choices=MODES),
            Param("peer", "str", "master to follow in slave mode (within "
                  "`capabilities.peers`)", min=1, max=256, nullable=True, default=None),
        ), "Choose the card's role; slave mode needs a peer."),
        Command("schedule_trigger", (
            ts_param("at", "time of the first pulse (device domain, in the future)"),
            Param("channel", "int", "output channel (within `capabilities.outputs`)", min=0,
                  max=255),
            Param("width", "float", "pulse width", unit="s", min=1e-9, max=1.0, default=1e-6),
            Param("period", "float", "repetition period (null: once)", unit="s", min=1e-6,
                  max=3600.0, nullable=True, default=None),
            Param("count", "int", "pulses to fire", min=1, max=10**9, default=1),
        ), "Schedule output pulses at an absolute time.", returns="the trigger id",
            result=(Field("trigger_id", "int", "id for cancel_trigger"),)),
        Command("cancel_trigger", (_TRIGGER_ID,), "Cancel a scheduled trigger."),
        Command("list_triggers", (), "Scheduled triggers. Does not block.",
                returns="pending triggers",
                result=(Field("triggers", "list", "pending triggers",
                              items=Field("trigger", "dict", fields=_TRIGGER_FIELDS)),)),
        Command("sync_exchange", (
            Param("peer", "str", "peer card on this card's link (within "
                  "`capabilities.peers`)", min=1, max=256),
        ), "One two-way time-transfer exchange with `peer`; blocks for the round trip.",
            returns="the four timestamps",
            result=(Field("peer", "str", "the peer"),
                    ts_field("t1", "request sent (this card's domain)"),
                    ts_field("t2", "request received (the peer's domain)", domain=None),
                    ts_field("t3", "response sent (the peer's domain)", domain=None),
                    ts_field("t4", "response received (this card's domain)"))),
        Command("sync_status", (), "Role, peer and last servo figures. Does not block.",
                returns="synchronization state",
                result=(Field("mode", "str", "role", choices=MODES),
                        Field("locked", "bool", "disciplined"),
                        Field("peer", "str", "master followed (null unless slave)",
                              nullable=True),
                        Field("offset", "float", "last measured offset from the master "
                              "(null before any)", unit="s", nullable=True),
                        Field("delay", "float", "last measured one-way link delay",
                              unit="s", nullable=True),
                        Field("frequency", "float", "fractional frequency correction in "
                              "force"))),
        Command("configure_input", (
            Param("channel", "int", "input channel (within `capabilities.inputs`)", min=0,
                  max=255),
            Param("enabled", "bool", "timestamp pulses on this input"),
            Param("edge", "str", "active edge", choices=EDGES, default="rising"),
        ), "Enable or disable timestamping of an input (tags stream).",
            feature="input_tags"),
    ),
    streams=(
        StreamSpec("pps", "one event at each whole second of the domain", "map",
                   fields=(Field("second", "int", "seconds since the domain's epoch"),)),
        StreamSpec("triggers", "one event per fired output pulse", "map",
                   fields=(Field("trigger_id", "int", "trigger id"),
                           Field("channel", "int", "output channel"))),
        StreamSpec("tags", "timestamped input pulses, in batches", "map of arrays",
                   fields=(Field("channel", "array", "input of each tag", dtype="int32"),
                           Field("time_ps", "array", "time of each tag", unit="ps",
                                 dtype="int64"))),
    ),
    capabilities=(
        Field("modes", "list", "roles offered", items=Field("mode", "str", choices=MODES)),
        Field("outputs", "list", "trigger output channels", items=Field("channel", "int")),
        Field("inputs", "list", "timestamping input channels", items=Field("channel", "int")),
        Field("peers", "list", "peer cards reachable on the links",
              items=Field("peer", "str")),
        Field("resolution", "float", "timestamp and trigger resolution", unit="s"),
        Field("max_frequency_adjust", "float", "largest fractional frequency correction"),
        Field("oscillator", "str", "local oscillator (e.g. OCXO, TCXO, VCXO)"),
        Field("sync_protocol", "str", "link protocol (e.g. white_rabbit, ptp)"),
        FEATURES_FIELD,
    ),
)


class TimeReading(TypedDict):
    """Result of :meth:`TimingCard.get_time`."""

    time: Timestamp
    locked: bool
    mode: str


class OffsetResult(TypedDict):
    """Result of :meth:`TimingCard.adjust_offset`."""

    time: Timestamp


class TriggerId(TypedDict):
    """Result of :meth:`TimingCard.schedule_trigger`."""

    trigger_id: int


class TriggerInfo(TypedDict):
    """A pending trigger (``width``, ``period`` in s)."""

    trigger_id: int
    channel: int
    at: Timestamp
    width: float
    period: float | None
    remaining: int


class TriggerList(TypedDict):
    """Result of :meth:`TimingCard.list_triggers`."""

    triggers: list[TriggerInfo]


class SyncExchange(TypedDict):
    """Result of :meth:`TimingCard.sync_exchange`: t1, t4 in this card's domain, t2, t3 in
    the peer's."""

    peer: str
    t1: Timestamp
    t2: Timestamp
    t3: Timestamp
    t4: Timestamp


class SyncStatus(TypedDict):
    """Result of :meth:`TimingCard.sync_status` (``offset``, ``delay`` in s)."""

    mode: str
    locked: bool
    peer: str | None
    offset: float | None
    delay: float | None
    frequency: float


def two_way_offset(exchange: SyncExchange) -> tuple[float, float]:
    """``(offset, delay)`` in seconds from one exchange: the peer's clock minus this card's,
    ``((t2 - t1) - (t4 - t3)) / 2``, and the one-way delay ``((t2 - t1) + (t4 - t3)) / 2``,
    assuming a symmetric link."""
    t1, t2 = exchange["t1"].ps, exchange["t2"].ps
    t3, t4 = exchange["t3"].ps, exchange["t4"].ps
    return ((t2 - t1) - (t4 - t3)) / 2 * 1e-12, ((t2 - t1) + (t4 - t3)) / 2 * 1e-12


class TimingCard(Driver):
    """Async driver of a timing card (contract ``TimingCard`` 1.0).

    ``now = (await card.get_time())["time"]``; ``await card.schedule_trigger(now.ps +
    10**9, channel=0)``; ``offset, delay = two_way_offset(await card.sync_exchange("b"))``.
    """

    CONTRACT = CONTRACT

    async def get_time(self, *, timeout: float | None = None) -> TimeReading:
        """The card's ``time`` (ps in its domain), whether it is ``locked``, its ``mode``."""
        result: TimeReading = await self._call("get_time", timeout)
        return result

    async def set_time(self, time: Instant, *, timeout: float | None = None) -> None:
        """Step the clock to ``time`` (ps). Raises :class:`qnhw.Busy` in slave mode."""
        await self._call("set_time", timeout, time=time)

    async def adjust_offset(self, offset: Number, *,
                            timeout: float | None = None) -> OffsetResult:
        """Step the clock by ``offset`` (s; positive: forward); returns the new ``time``."""
        result: OffsetResult = await self._call("adjust_offset", timeout, offset=offset)
        return result

    async def adjust_frequency(self, fractional: float, *,
                               timeout: float | None = None) -> None:
        """Set the oscillator's ``fractional`` frequency correction (1e-9 = 1 ppb)."""
        await self._call("adjust_frequency", timeout, fractional=fractional)

    async def set_mode(self, mode: str, peer: str | None = None, *,
                       timeout: float | None = None) -> None:
        """Choose the ``mode`` (free_running, grandmaster, master, slave); slave mode
        follows ``peer``."""
        await self._call("set_mode", timeout, mode=mode, peer=peer)

    async def schedule_trigger(self, at: Instant, channel: int, width: Number = 1e-6,
                               period: Number | None = None, count: int = 1, *,
                               timeout: float | None = None) -> TriggerId:
        """Fire ``count`` pulses of ``width`` (s) on output ``channel``, the first ``at``
        (ps, device domain, in the future), then every ``period`` (s). Returns the
        ``trigger_id``."""
        result: TriggerId = await self._call("schedule_trigger", timeout, at=at,
                                             channel=channel, width=width, period=period,
                                             count=count)
        return result

    async def cancel_trigger(self, trigger_id: int, *, timeout: float | None = None) -> None:
        """Cancel trigger ``trigger_id``; :class:`qnhw.BadParams` if unknown."""
        await self._call("cancel_trigger", timeout, trigger_id=trigger_id)

    async def list_triggers(self, *, timeout: float | None = None) -> TriggerList:
        """Pending triggers."""
        result: TriggerList = await self._call("list_triggers", timeout)
        return result

    async def sync_exchange(self, peer: str, *,
                            timeout: float | None = None) -> SyncExchange:
        """One two-way exchange with ``peer``; see :func:`two_way_offset`."""
        result: SyncExchange = await self._call("sync_exchange", timeout, peer=peer)
        return result

    async def sync_status(self, *, timeout: float | None = None) -> SyncStatus:
        """Mode, lock, peer, last ``offset`` and ``delay`` (s), frequency correction."""
        result: SyncStatus = await self._call("sync_status", timeout)
        return result

    async def configure_input(self, channel: int, enabled: bool, edge: str = "rising", *,
                              timeout: float | None = None) -> None:
        """Timestamp input ``channel`` on ``edge`` when ``enabled`` (else stop). Feature
        ``input_tags``."""
        await self._call("configure_input", timeout, channel=channel, enabled=enabled,
                         edge=edge)

    def pps(self, *, mode: Mode = FANOUT, maxsize: int = 4096,
            credit: int = 64) -> Subscription:
        """Subscribe to ``pps``: ``{"second"}`` at each whole second of the domain."""
        return self._subscribe("pps", mode, maxsize, credit)

    def triggers(self, *, mode: Mode = FANOUT, maxsize: int = 4096,
                 credit: int = 64) -> Subscription:
        """Subscribe to ``triggers``: ``{"trigger_id", "channel"}`` per fired pulse."""
        return self._subscribe("triggers", mode, maxsize, credit)

    def tags(self, *, mode: Mode = FANOUT, maxsize: int = 4096,
             credit: int = 64) -> Subscription:
        """Subscribe to ``tags``: ``{"channel": int32[], "time_ps": int64[]}`` batches."""
        return self._subscribe("tags", mode, maxsize, credit)


__all__ = ["CONTRACT", "MODES", "OffsetResult", "SyncExchange", "SyncStatus", "TimeReading",
           "TimingCard", "TriggerId", "TriggerInfo", "TriggerList", "two_way_offset"]
