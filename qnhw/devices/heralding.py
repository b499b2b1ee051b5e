"""HeraldingStation: the Bell-state-measurement station between two nodes.

Photons from two memories (or sources) meet on a beam splitter in front of threshold
detectors. The station runs rounds of attempts in a chosen scheme -- ``single_click``
(Cabrillo et al. 1999; Humphreys et al. 2018: one photon detected, Psi+ or Psi-),
``barrett_kok`` (Barrett & Kok 2005: one click in each of two rounds) or ``linear_optics``
(polarization BSM identifying Psi+ and Psi-) -- within a detection window after each
attempt's start, and publishes each success on the ``heralds`` stream with the attempt number,
the Bell state and the detectors that clicked. Counters give attempts and heralds per outcome.

Optional feature: ``phase_stabilization`` (``lock_phase``: the interferometer phase lock
single-click heralding needs).
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

SCHEMES = ("single_click", "barrett_kok", "linear_optics")
OUTCOMES = ("psi+", "psi-")

_CONFIG_FIELDS = (
    Field("scheme", "str", "heralding scheme", choices=SCHEMES),
    Field("window", "float", "detection window width", unit="s"),
    Field("window_offset", "float", "window start after each attempt's start", unit="s"),
    Field("attempt_period", "float", "time between attempts", unit="s"),
    Field("armed", "bool", "attempts are running"),
)

CONTRACT = Contract(
    name="HeraldingStation",
    version="1.0",
    doc=("A Bell-state measurement station: choose the scheme and detection window, arm "
         "rounds of attempts, receive heralds (attempt, Bell state, detectors) on a stream."),
    features=("phase_stabilization",),
    feature_docs=(("phase_stabilization", "interferometer phase lock (`lock_phase`)"),),
    commands=(
        Command("configure", (
            Param("scheme", "str", "heralding scheme (within `capabilities.schemes`)",
                  choices=SCHEMES),
            Param("window", "float", "detection window width", unit="s", min=1e-12,
                  max=1e-3),
            Param("window_offset", "float", "window start after each attempt's start",
                  unit="s", min=0.0, max=1e-3, default=0.0),
            Param("attempt_period", "float", "time between attempts", unit="s", min=1e-9,
                  max=1.0, default=1e-6),
        ), "Set the scheme and timing. Refused (busy) while armed.",
            returns="the configuration now in force", result=_CONFIG_FIELDS),
        Command("get_config", (), "The configuration and arm state. Does not block.",
                returns="the configuration", result=_CONFIG_FIELDS),
        Command("arm", (
            Param("attempts", "int", "attempts to run (null: until disarmed)", min=1,
                  max=10**12, nullable=True, default=None),
            ts_param("start", "first attempt (device domain; null: now)", nullable=True,
                     default=None),
        ), "Start rounds of attempts; returns at once, heralds follow on `heralds`."),
        Command("disarm", (), "Stop attempting.",
                returns="attempts run since arm",
                result=(Field("attempts", "int", "attempts since arm"),)),
        Command("statistics", (), "Attempts and heralds since the last reset.",
                returns="counters",
                result=(Field("attempts", "int", "attempts run"),
                        Field("heralds", "int", "successful attempts"),
                        Field("psi_plus", "int", "heralds of Psi+"),
                        Field("psi_minus", "int", "heralds of Psi-"),
                        ts_field("since", "time of the last reset"))),
        Command("reset_statistics", (), "Zero the counters."),
        Command("lock_phase", (
            Param("setpoint", "float", "interferometer phase setpoint", unit="rad",
                  min=-6.3, max=6.3, default=0.0),
        ), "Lock the interferometer phase to `setpoint`; blocks until locked.",
            returns="the residual phase error and lock state",
            feature="phase_stabilization",
            result=(Field("phase_error", "float", "rms residual phase error", unit="rad"),
                    Field("locked", "bool", "the lock holds"))),
    ),
    streams=(
        StreamSpec("heralds", "one event per successful attempt, timestamped at the herald",
                   "map", fields=(
                       Field("attempt", "int", "attempt number since arm (0-based)"),
                       Field("outcome", "str", "Bell state heralded", choices=OUTCOMES),
                       Field("detectors", "list", "detectors that clicked",
                             items=Field("detector", "int")),
                   )),
    ),
    capabilities=(
        Field("schemes", "list", "schemes offered", items=Field("scheme", "str",
                                                                 choices=SCHEMES)),
        Field("inputs", "int", "optical inputs (2)"),
        Field("detectors", "int", "threshold detectors after the beam splitter"),
        Field("detection_efficiency", "float", "efficiency of each detector"),
        Field("dark_count_rate", "float", "dark counts per detector", unit="Hz"),
        Field("hom_visibility", "float", "calibrated two-photon interference visibility"),
        Field("max_attempt_rate", "float", "fastest attempt rate", unit="Hz"),
        FEATURES_FIELD,
    ),
)


class HeraldingConfig(TypedDict):
    """The station's configuration (times in s)."""

    scheme: str
    window: float
    window_offset: float
    attempt_period: float
    armed: bool


class DisarmResult(TypedDict):
    """Result of :meth:`HeraldingStation.disarm`."""

    attempts: int


class HeraldStatistics(TypedDict):
    """Result of :meth:`HeraldingStation.statistics`."""

    attempts: int
    heralds: int
    psi_plus: int
    psi_minus: int
    since: Timestamp


class PhaseLock(TypedDict):
    """Result of :meth:`HeraldingStation.lock_phase` (``phase_error`` in rad)."""

    phase_error: float
    locked: bool


class HeraldingStation(Driver):
    """Async driver of a heralding (BSM) station (contract ``HeraldingStation`` 1.0).

    ``await bsm.configure("single_click", window=Quantity(5, "ns"))``, ``await bsm.arm()``,
    then ``async for ev in bsm.heralds(): ev.payload["outcome"]``.
    """

    CONTRACT = CONTRACT

    async def configure(self, scheme: str, window: Number, window_offset: Number = 0.0,
                        attempt_period: Number = 1e-6, *,
                        timeout: float | None = None) -> HeraldingConfig:
        """Set the ``scheme`` (single_click, barrett_kok, linear_optics), detection
        ``window`` (s), ``window_offset`` (s) and ``attempt_period`` (s). Raises
        :class:`qnhw.Busy` while armed."""
        result: HeraldingConfig = await self._call(
            "configure", timeout, scheme=scheme, window=window, window_offset=window_offset,
            attempt_period=attempt_period)
        return result

    async def get_config(self, *, timeout: float | None = None) -> HeraldingConfig:
        """The configuration (times in s) and whether attempts are running."""
        result: HeraldingConfig = await self._call("get_config", timeout)
        return result

    async def arm(self, attempts: int | None = None, start: Instant | None = None, *,
                  timeout: float | None = None) -> None:
        """Run ``attempts`` attempts (``None``: until disarmed) from ``start`` (ps, device
        domain; ``None``: now). Returns at once; heralds arrive on :meth:`heralds`."""
        await self._call("arm", timeout, attempts=attempts, start=start)

    async def disarm(self, *, timeout: float | None = None) -> DisarmResult:
        """Stop; returns the ``attempts`` run since :meth:`arm`."""
        result: DisarmResult = await self._call("disarm", timeout)
        return result

    async def statistics(self, *, timeout: float | None = None) -> HeraldStatistics:
        """Attempts, heralds and heralds per Bell state since the last reset."""
        result: HeraldStatistics = await self._call("statistics", timeout)
        return result

    async def reset_statistics(self, *, timeout: float | None = None) -> None:
        """Zero the counters of :meth:`statistics`."""
        await self._call("reset_statistics", timeout)

    async def lock_phase(self, setpoint: Number = 0.0, *,
                         timeout: float | None = None) -> PhaseLock:
        """Lock the interferometer phase to ``setpoint`` (rad); blocks until locked.
        Feature ``phase_stabilization``."""
        result: PhaseLock = await self._call("lock_phase", timeout, setpoint=setpoint)
        return result

    def heralds(self, *, mode: Mode = FANOUT, maxsize: int = 4096,
                credit: int = 64) -> Subscription:
        """Subscribe to ``heralds``: ``{"attempt", "outcome", "detectors"}`` per success,
        timestamped at the herald in the device domain."""
        return self._subscribe("heralds", mode, maxsize, credit)


__all__ = ["CONTRACT", "OUTCOMES", "SCHEMES", "DisarmResult", "HeraldStatistics",
           "HeraldingConfig", "HeraldingStation", "PhaseLock"]
