"""Transducer: the microwave-optical converter of a quantum network unit (QNU).

An electro- or piezo-optomechanical transducer converts a microwave photon of a
superconducting QPU into a telecom photon (or back) with efficiency ``eta`` and input-referred
added noise ``N_add`` (Sahu et al., Nat. Commun. 13, 1276, 2022: eta 0.087, N_add 0.16). The
optical pump sets both: more pump power raises ``eta`` and heats the device. Operation is
pulsed (pulse width and repetition rate give the duty cycle) or continuous. ``status``
reports the expected efficiency and noise at the present settings.

Optional feature: ``calibration`` (``calibrate``: measure efficiency and added noise).
"""

from __future__ import annotations

from typing import TypedDict

from qnhw.contract.spec import Command, Contract, Field, Param
from qnhw.devices._schema import FEATURES_FIELD, Number, ts_field
from qnhw.devices.base import Driver
from qnhw.protocol.types import Timestamp

DIRECTIONS = ("microwave_to_optical", "optical_to_microwave")

_STATUS_FIELDS = (
    Field("enabled", "bool", "converting"),
    Field("direction", "str", "conversion direction", choices=DIRECTIONS),
    Field("pump_power", "float", "optical pump power", unit="W"),
    Field("detuning", "float", "pump detuning from the optimal point", unit="Hz"),
    Field("pulse_width", "float", "pump pulse width (null: continuous)", unit="s",
          nullable=True),
    Field("repetition_rate", "float", "pump pulse rate (null: continuous)", unit="Hz",
          nullable=True),
    Field("duty_cycle", "float", "fraction of time converting"),
    Field("efficiency", "float", "expected conversion efficiency at these settings"),
    Field("added_noise", "float", "expected input-referred added noise", unit=""),
    Field("temperature", "float", "device temperature", unit="K"),
)

CONTRACT = Contract(
    name="Transducer",
    version="1.0",
    doc=("A microwave-optical transducer (QNU interface): configure the optical pump, choose "
         "the direction, enable conversion, read the expected efficiency and added noise."),
    features=("calibration",),
    feature_docs=(("calibration", "measure efficiency and added noise (`calibrate`)"),),
    commands=(
        Command("configure_pump", (
            Param("power", "float", "optical pump power (at most "
                  "`capabilities.max_pump_power`)", unit="W", min=0.0, max=10.0),
            Param("detuning", "float", "pump detuning from the optimal point", unit="Hz",
                  min=-100e9, max=100e9, default=0.0),
            Param("pulse_width", "float", "pump pulse width (null: continuous pump)",
                  unit="s", min=1e-12, max=1.0, nullable=True, default=None),
            Param("repetition_rate", "float", "pump pulse rate (null: continuous pump)",
                  unit="Hz", min=1e-3, max=1e9, nullable=True, default=None),
        ), "Set the optical pump; pulse_width and repetition_rate go together (both or "
           "neither). Blocks until the pump settles.",
            returns="the status at the new settings", result=_STATUS_FIELDS),
        Command("set_direction", (
            Param("direction", "str", "conversion direction (within "
                  "`capabilities.directions`)", choices=DIRECTIONS),
        ), "Choose the conversion direction. Refused (busy) while enabled."),
        Command("enable", (), "Start converting (pump on)."),
        Command("disable", (), "Stop converting (pump off)."),
        Command("status", (), "Settings, expected efficiency and noise, temperature. Does not "
                "block.", returns="the status", result=_STATUS_FIELDS),
        Command("calibrate", (
            Param("duration", "float", "measurement time", unit="s", min=1e-3, max=600.0),
        ), "Measure efficiency and added noise at the present settings; blocks for "
           "`duration`.", returns="the measured figures", feature="calibration",
            result=(Field("efficiency", "float", "measured conversion efficiency"),
                    Field("added_noise", "float", "measured input-referred added noise"),
                    ts_field("time", "end of the measurement"))),
    ),
    streams=(),
    capabilities=(
        Field("microwave_frequency", "float", "microwave mode frequency", unit="Hz"),
        Field("optical_wavelength", "float", "optical mode wavelength", unit="m"),
        Field("directions", "list", "conversion directions offered",
              items=Field("direction", "str", choices=DIRECTIONS)),
        Field("efficiency", "float", "peak conversion efficiency"),
        Field("added_noise", "float", "input-referred added noise at peak efficiency"),
        Field("bandwidth", "float", "conversion bandwidth (FWHM)", unit="Hz"),
        Field("max_pump_power", "float", "largest pump power", unit="W"),
        Field("max_duty_cycle", "float", "largest sustainable duty cycle"),
        FEATURES_FIELD,
    ),
)


class TransducerStatus(TypedDict):
    """Transducer settings and expected performance (SI units: W, Hz, s, K)."""

    enabled: bool
    direction: str
    pump_power: float
    detuning: float
    pulse_width: float | None
    repetition_rate: float | None
    duty_cycle: float
    efficiency: float
    added_noise: float
    temperature: float


class Calibration(TypedDict):
    """Result of :meth:`Transducer.calibrate`."""

    efficiency: float
    added_noise: float
    time: Timestamp


class Transducer(Driver):
    """Async driver of a microwave-optical transducer (contract ``Transducer`` 1.0).

    ``await qnu.configure_pump(Quantity(1, "mW"))``, ``await qnu.enable()``,
    ``(await qnu.status())["efficiency"]``.
    """

    CONTRACT = CONTRACT

    async def configure_pump(self, power: Number, detuning: Number = 0.0,
                             pulse_width: Number | None = None,
                             repetition_rate: Number | None = None, *,
                             timeout: float | None = None) -> TransducerStatus:
        """Set pump ``power`` (W), ``detuning`` (Hz) and, for pulsed operation,
        ``pulse_width`` (s) with ``repetition_rate`` (Hz). Blocks until the pump settles."""
        result: TransducerStatus = await self._call(
            "configure_pump", timeout, power=power, detuning=detuning,
            pulse_width=pulse_width, repetition_rate=repetition_rate)
        return result

    async def set_direction(self, direction: str, *, timeout: float | None = None) -> None:
        """Choose ``direction`` (microwave_to_optical / optical_to_microwave); raises
        :class:`qnhw.Busy` while enabled."""
        await self._call("set_direction", timeout, direction=direction)

    async def enable(self, *, timeout: float | None = None) -> None:
        """Start converting."""
        await self._call("enable", timeout)

    async def disable(self, *, timeout: float | None = None) -> None:
        """Stop converting."""
        await self._call("disable", timeout)

    async def status(self, *, timeout: float | None = None) -> TransducerStatus:
        """Settings, expected ``efficiency`` and ``added_noise``, ``temperature`` (K)."""
        result: TransducerStatus = await self._call("status", timeout)
        return result

    async def calibrate(self, duration: Number, *,
                        timeout: float | None = None) -> Calibration:
        """Measure efficiency and added noise for ``duration`` (s; blocks that long).
        Feature ``calibration``."""
        result: Calibration = await self._call("calibrate", timeout, duration=duration)
        return result


__all__ = ["CONTRACT", "DIRECTIONS", "Calibration", "Transducer", "TransducerStatus"]
