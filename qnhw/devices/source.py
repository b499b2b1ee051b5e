"""PhotonSource: single-photon sources and entangled-pair sources.

Covers SPDC and SFWM pair sources (heralded single photons or polarization / time-bin
entangled pairs), quantum-dot single-photon sources and attenuated lasers. The device is
pulsed: a repetition rate, a mean photon (pair) number per pulse ``mu`` and, for tunable
sources, a wavelength. Armed in ``continuous`` mode it emits at its repetition rate; in
``triggered`` mode it emits bursts on ``fire``. Every pulse appears on the ``emissions``
stream (pulse index and time), the marks a heralding station or tagger correlates against.

Optional features: ``triggered`` (``fire`` bursts at an absolute time), ``wavelength_tuning``
(``tune``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from qnhw.contract.spec import Command, Contract, Field, Param, StreamSpec
from qnhw.devices._schema import (
    FANOUT,
    FEATURES_FIELD,
    Instant,
    Mode,
    Number,
    float_pair,
    ts_field,
    ts_param,
)
from qnhw.devices.base import Driver
from qnhw.errors import BadParams
from qnhw.protocol.types import Timestamp
from qnhw.runtime.streams import Subscription

SOURCE_KINDS = ("spdc", "sfwm", "quantum_dot", "attenuated_laser", "entangled_pair")
ARM_MODES = ("continuous", "triggered")
TRIGGERS = ("internal", "external")

_CONFIG_FIELDS = (
    Field("repetition_rate", "float", "pulse repetition rate", unit="Hz"),
    Field("mean_photon_number", "float", "mean photons (pairs) per pulse, mu"),
    Field("wavelength", "float", "centre wavelength (signal for pair sources)", unit="m"),
    Field("trigger", "str", "pulse timing source", choices=TRIGGERS),
    Field("armed", "bool", "emitting or waiting for fire"),
    Field("mode", "str", "arm mode (null when disarmed)", choices=ARM_MODES, nullable=True),
    Field("pulses", "int", "pulses emitted since power-up"),
)

CONTRACT = Contract(
    name="PhotonSource",
    version="1.0",
    doc=("A pulsed source of single photons or photon pairs: configure rate, mean photon "
         "number and wavelength, arm continuous or triggered emission, fire bursts; every "
         "pulse is marked on the `emissions` stream."),
    features=("triggered", "wavelength_tuning"),
    feature_docs=(("triggered", "triggered bursts at an absolute time (`fire`)"),
                  ("wavelength_tuning", "tunable centre wavelength (`tune`)")),
    commands=(
        Command("configure", (
            Param("repetition_rate", "float", "pulse repetition rate (null: unchanged)",
                  unit="Hz", min=1.0, max=10e9, nullable=True, default=None),
            Param("mean_photon_number", "float", "mean photons (pairs) per pulse, mu "
                  "(null: unchanged)", min=0.0, max=10.0, nullable=True, default=None),
            Param("trigger", "str", "pulse timing source (null: unchanged)", choices=TRIGGERS,
                  nullable=True, default=None),
        ), "Change settings; null leaves a setting unchanged. Refused (busy) while armed.",
            returns="the configuration now in force", result=_CONFIG_FIELDS),
        Command("get_config", (), "The configuration and state. Does not block.",
                returns="the configuration", result=_CONFIG_FIELDS),
        Command("arm", (
            Param("mode", "str", "continuous: emit at the repetition rate; triggered: wait for "
                  "fire", choices=ARM_MODES, default="continuous"),
        ), "Start emitting (continuous) or wait for `fire` (triggered)."),
        Command("disarm", (), "Stop emitting.", returns="pulses emitted while armed",
                result=(Field("pulses", "int", "pulses emitted since arm"),)),
        Command("fire", (
            Param("pulses", "int", "pulses in the burst", min=1, max=10**9, default=1),
            ts_param("at", "time of the first pulse (device domain; null: now)",
                     nullable=True, default=None),
        ), "Emit a burst of `pulses` at the repetition rate (armed in triggered mode, else "
           "busy). Returns once the burst is scheduled.",
            returns="time of the first pulse and pulse indices", feature="triggered",
            result=(ts_field("start", "time of the first pulse"),
                    Field("first_pulse", "int", "index of the first pulse"),
                    Field("pulses", "int", "pulses in the burst"))),
        Command("tune", (
            Param("wavelength", "float", "centre wavelength", unit="m", min=200e-9,
                  max=5e-6),
        ), "Tune the centre wavelength (within `capabilities.wavelength_range`). Blocks until "
           "settled.", feature="wavelength_tuning"),
    ),
    streams=(
        StreamSpec("emissions", "pulse marks in batches: every emitted pulse, index and time",
                   "map of arrays", fields=(
                       Field("pulse", "array", "pulse indices", dtype="int64"),
                       Field("time_ps", "array", "pulse times in the device domain", unit="ps",
                             dtype="int64"),
                   )),
    ),
    capabilities=(
        Field("kind", "str", "source technology", choices=SOURCE_KINDS),
        Field("emits", "str", "single photons or pairs", choices=("single", "pair")),
        Field("entanglement", "str", "entangled degree of freedom of pairs",
              choices=("none", "polarization", "time_bin", "frequency_bin")),
        Field("wavelengths", "list", "centre wavelength of each output mode (signal, idler)",
              unit="m", items=Field("wavelength", "float", unit="m")),
        float_pair("wavelength_range", "tuning range [min, max] (equal bounds when fixed)",
                   "m"),
        float_pair("repetition_rate_range", "[min, max] repetition rate", "Hz"),
        Field("max_mean_photon_number", "float", "largest mu per pulse"),
        Field("bandwidth", "float", "spectral FWHM of one photon", unit="Hz"),
        Field("heralding_efficiency", "float", "Klyshko efficiency (null for single-photon "
              "sources)", nullable=True),
        Field("g2_0", "float", "g2(0) of the (heralded) single photons at the default mu",
              nullable=True),
        FEATURES_FIELD,
    ),
)


class SourceConfig(TypedDict):
    """Result of :meth:`PhotonSource.configure` and :meth:`PhotonSource.get_config`
    (``repetition_rate`` in Hz, ``wavelength`` in m)."""

    repetition_rate: float
    mean_photon_number: float
    wavelength: float
    trigger: str
    armed: bool
    mode: str | None
    pulses: int


class DisarmResult(TypedDict):
    """Result of :meth:`PhotonSource.disarm`."""

    pulses: int


class FireResult(TypedDict):
    """Result of :meth:`PhotonSource.fire`."""

    start: Timestamp
    first_pulse: int
    pulses: int


def check_config(repetition_rate: float | None, mean_photon_number: float | None, *,
                 rate_range: Sequence[float], max_mean_photon_number: float) -> None:
    """The device side of ``configure``'s range checks, for implementations of this contract:
    ``repetition_rate`` (Hz) within the device's ``rate_range``, ``mean_photon_number`` at most
    its maximum. Raises :class:`BadParams` naming the parameter; None means unchanged."""
    lo, hi = rate_range
    if repetition_rate is not None and not lo <= repetition_rate <= hi:
        raise BadParams(f"repetition_rate must be within [{lo:g}, {hi:g}] Hz",
                        {"param": "repetition_rate"})
    if mean_photon_number is not None and mean_photon_number > max_mean_photon_number:
        raise BadParams(f"mean_photon_number above this source's maximum "
                        f"{max_mean_photon_number:g}", {"param": "mean_photon_number"})


class PhotonSource(Driver):
    """Async driver of a PhotonSource (contract ``PhotonSource`` 1.0).

    ``await src.configure(repetition_rate=1e6, mean_photon_number=0.05)``,
    ``await src.arm()``, then read ``src.emissions()``. Methods validate before sending and
    wait at most ``timeout`` seconds.
    """

    CONTRACT = CONTRACT

    async def configure(self, repetition_rate: Number | None = None,
                        mean_photon_number: float | None = None, trigger: str | None = None,
                        *, timeout: float | None = None) -> SourceConfig:
        """Set ``repetition_rate`` (Hz), ``mean_photon_number`` (mu per pulse) and
        ``trigger`` (internal/external); ``None`` leaves a setting unchanged. Raises
        :class:`qnhw.Busy` while armed. Returns the configuration in force."""
        result: SourceConfig = await self._call(
            "configure", timeout, repetition_rate=repetition_rate,
            mean_photon_number=mean_photon_number, trigger=trigger)
        return result

    async def get_config(self, *, timeout: float | None = None) -> SourceConfig:
        """The configuration and arm state (``repetition_rate`` Hz, ``wavelength`` m)."""
        result: SourceConfig = await self._call("get_config", timeout)
        return result

    async def arm(self, mode: str = "continuous", *, timeout: float | None = None) -> None:
        """Start emitting (``mode`` continuous) or wait for :meth:`fire` (triggered)."""
        await self._call("arm", timeout, mode=mode)

    async def disarm(self, *, timeout: float | None = None) -> DisarmResult:
        """Stop emitting; returns the ``pulses`` emitted since :meth:`arm`."""
        result: DisarmResult = await self._call("disarm", timeout)
        return result

    async def fire(self, pulses: int = 1, at: Instant | None = None, *,
                   timeout: float | None = None) -> FireResult:
        """Emit a burst of ``pulses`` starting ``at`` (ps, device domain; ``None``: now).
        Needs ``arm("triggered")`` (else :class:`qnhw.Busy`). Feature ``triggered``."""
        result: FireResult = await self._call("fire", timeout, pulses=pulses, at=at)
        return result

    async def tune(self, wavelength: Number, *, timeout: float | None = None) -> None:
        """Tune the centre ``wavelength`` (m); returns once settled. Feature
        ``wavelength_tuning``."""
        await self._call("tune", timeout, wavelength=wavelength)

    def emissions(self, *, mode: Mode = FANOUT, maxsize: int = 4096,
                  credit: int = 64) -> Subscription:
        """Subscribe to ``emissions``: batches ``{"pulse": int64[], "time_ps": int64[]}``."""
        return self._subscribe("emissions", mode, maxsize, credit)


__all__ = ["ARM_MODES", "CONTRACT", "SOURCE_KINDS", "DisarmResult", "FireResult",
           "PhotonSource", "SourceConfig", "check_config"]
