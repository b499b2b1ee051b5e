"""Emulated microwave-optical transducer (QNU interface): the ``Transducer`` contract on
:class:`emulators.physics.transducer.Transducer`.

Model (defaults from the ``transducer-2022`` profile, Sahu et al., Nat. Commun. 13, 1276,
2022; see ``docs/physics.md``):

* **Efficiency vs pump power** -- a cavity electro-optic / optomechanical transducer converts
  with ``eta(P) = eta_ext * 4 C / (1 + C)^2`` where the cooperativity ``C = c P`` grows with
  the optical pump power ``P`` and ``eta_ext`` collects the external coupling efficiencies
  (e.g. Tsang, PRA 81, 063837, 2010; Rueda et al., Optica 3, 597, 2016). ``eta_ext`` and
  ``c`` are fitted through the profile's two operating points: ``efficiency`` (0.087) at
  ``reference_pump_power`` and ``efficiency_high`` (0.15) at ``max_pump_power``. The pump
  powers of those points are not in the profile: by default they sit at half and full
  ``max_pump_power`` (representative).
* **Detuning** -- a Lorentzian band of FWHM ``bandwidth`` (profile: 10 MHz):
  ``eta(P, Delta) = eta(P) / (1 + (2 Delta / B)^2)`` (the physics core).
* **Added noise** referred to the input -- pump-induced heating of the microwave mode, a
  power law through the profile's points ``added_noise`` (0.16) at ``reference_pump_power``
  and ``added_noise_high`` (0.41) at ``max_pump_power``: ``N_pump(P) = N_ref (P/P_ref)^g``,
  plus the thermal occupation ``n_th(T) = 1 / (exp(h f / k T) - 1)`` of the microwave mode
  at the device temperature.
* **Duty cycle (heating)** -- the time-averaged pump power ``P * duty`` heats the device:
  ``T = base_temperature + thermal_resistance * P * duty`` (steady state, reached while
  ``configure_pump`` blocks for ``settle_time``). The duty cycle is ``pulse_width *
  repetition_rate`` (1 for a continuous pump); above ``max_duty_cycle`` the transducer
  refuses to convert, and a temperature above ``critical_temperature`` quenches it (a
  :class:`qnhw.DeviceFault`; it disables itself).
* **Conversion** of photons (:meth:`TransducerEmulator.convert`) -- every input photon is
  converted with probability ``eta``; the output carries thermal noise photons of mean
  ``eta * N_add`` per mode (the physics core's ``Transducer.sample``). Both directions use
  the same figures (Sahu et al. report the bidirectional efficiency).

Commands block as the contract says: ``configure_pump`` for ``settle_time`` of lab time,
``calibrate`` for its ``duration``; the others return at once.

Hooks for the lab world (plain methods, no I/O):

* :meth:`TransducerEmulator.convert` -- photon numbers in, converted signal and noise photon
  numbers out (zeros while disabled or for the other direction);
* :meth:`TransducerEmulator.convert_state` -- a single-rail photonic qubit (2x2 density
  matrix in the photon-number basis) through the pure-loss channel of transmissivity
  ``eta``, with the probability of at least one noise photon;
* :meth:`TransducerEmulator.conversion_probability`, :meth:`noise_photons` -- the figures in
  force, for analytic (sampled, not looped) link models;
* :meth:`TransducerEmulator.set_fault` -- device-fault injection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from emulators.devices.common import ForegroundEmulator, fraction, nonnegative, positive
from emulators.devices.env import EmulatorEnv
from emulators.physics import transducer as phys
from emulators.physics.profiles import profile
from qnhw.devices import transducer as contract_mod
from qnhw.errors import BadParams, Busy, DeviceFault
from qnhw.log import get_logger
from qnhw.protocol.types import Timestamp
from qnhw.runtime.server import DeviceServer

__all__ = ["Conversion", "ConvertedState", "TransducerEmulator", "start_transducer"]

_PROFILE = profile("transducer-2022")
_H = 6.62607015e-34  # Planck constant, J s
_KB = 1.380649e-23  # Boltzmann constant, J/K
#: Most probe pulses (or temporal modes) sampled by one ``calibrate``.
MAX_CALIBRATION_PULSES = 200_000


def thermal_occupation(frequency_hz: float, temperature_k: float) -> float:
    """Bose-Einstein occupation ``1 / (exp(h f / k T) - 1)`` of a mode at ``T`` (K)."""
    if temperature_k <= 0.0:
        return 0.0
    x = _H * frequency_hz / (_KB * temperature_k)
    return 0.0 if x > 700 else 1.0 / math.expm1(x)


@dataclass(frozen=True)
class Conversion:
    """Output of :meth:`TransducerEmulator.convert`: converted ``signal`` and ``noise``
    photon numbers per input mode (int64 arrays of the input's shape), the efficiency and
    mean noise photons per mode in force, and when (device domain ps)."""

    signal: npt.NDArray[np.int64]
    noise: npt.NDArray[np.int64]
    efficiency: float
    noise_photons: float
    time_ps: int


@dataclass(frozen=True)
class ConvertedState:
    """Output of :meth:`TransducerEmulator.convert_state`: the output single-rail state
    ``rho`` (2x2, photon-number basis) after the pure-loss channel, the transmissivity
    ``efficiency`` used and ``p_noise``, the probability of at least one noise photon in the
    output mode (``eta N_add / (1 + eta N_add)``, thermal)."""

    rho: npt.NDArray[np.complex128]
    efficiency: float
    p_noise: float


class TransducerEmulator(ForegroundEmulator):
    """A microwave-optical transducer with pump-dependent efficiency, added noise, a
    Lorentzian band and duty-cycle heating.

    Parameters (keywords; SI units; a bad value raises ``ValueError`` naming it):
    ``efficiency`` (0.087, profile ``transducer-2022``) and ``added_noise`` (0.16 photons)
    at ``reference_pump_power`` (default ``max_pump_power / 2``); ``efficiency_high``
    (0.15) and ``added_noise_high`` (0.41) at ``max_pump_power`` (1.0 W peak,
    representative); ``bandwidth`` (10e6 Hz FWHM, profile); ``microwave_frequency`` (7e9
    Hz), ``optical_wavelength`` (1550e-9 m); ``directions`` (both); ``max_duty_cycle``
    (0.1); ``base_temperature`` (0.01 K), ``thermal_resistance`` (1.4 K/W of mean pump
    power), ``critical_temperature`` (1.0 K); ``settle_time`` (1e-3 s);
    ``calibration_photons`` (mean photons per calibration probe pulse, 100).
    """

    CONTRACT = contract_mod.CONTRACT

    def __init__(self, env: EmulatorEnv, *,
                 efficiency: float = _PROFILE["efficiency"],
                 added_noise: float = _PROFILE["added_noise"],
                 efficiency_high: float = _PROFILE["efficiency_high"],
                 added_noise_high: float = _PROFILE["added_noise_high"],
                 bandwidth: float = _PROFILE["bandwidth_hz"],
                 max_pump_power: float = 1.0, reference_pump_power: float | None = None,
                 microwave_frequency: float = 7e9, optical_wavelength: float = 1550e-9,
                 directions: Sequence[str] = contract_mod.DIRECTIONS,
                 max_duty_cycle: float = 0.1, base_temperature: float = 0.01,
                 thermal_resistance: float = 1.4, critical_temperature: float = 1.0,
                 settle_time: float = 1e-3, calibration_photons: float = 100.0) -> None:
        self.env = env
        self.max_pump_power = positive("max_pump_power", max_pump_power)
        if self.max_pump_power > 10.0:
            raise ValueError("max_pump_power must be at most 10 W (the contract's range)")
        p_ref = self.max_pump_power / 2 if reference_pump_power is None else positive(
            "reference_pump_power", reference_pump_power)
        if p_ref >= self.max_pump_power:
            raise ValueError("reference_pump_power must be below max_pump_power")
        self.reference_pump_power = p_ref
        self.efficiency_ref = fraction("efficiency", efficiency)
        self.efficiency_high = fraction("efficiency_high", efficiency_high)
        self.added_noise_ref = nonnegative("added_noise", added_noise)
        self.added_noise_high = nonnegative("added_noise_high", added_noise_high)
        # cooperativity fit: sqrt(r/k) = (1 + C) / (1 + k C), C = C_ref at P_ref
        k = self.max_pump_power / p_ref
        r = self.efficiency_high / self.efficiency_ref
        if not 1.0 / k < r < k:
            raise ValueError(f"efficiency_high / efficiency must lie in ({1 / k:.3g}, {k:.3g}) "
                             f"for pump powers {p_ref} W and {self.max_pump_power} W; got "
                             f"{r:.3g}")
        s = math.sqrt(r / k)
        c_ref = (1.0 - s) / (s * k - 1.0)
        self.cooperativity_per_watt = c_ref / p_ref
        self.external_efficiency = self.efficiency_ref * (1.0 + c_ref) ** 2 / (4.0 * c_ref)
        if self.external_efficiency > 1.0:
            raise ValueError(f"efficiency_high {efficiency_high} with efficiency {efficiency} "
                             f"needs an external efficiency {self.external_efficiency:.3g} > 1")
        if self.added_noise_ref > 0.0 and self.added_noise_high > 0.0:
            self.noise_exponent = math.log(self.added_noise_high / self.added_noise_ref) / \
                math.log(k)
        elif self.added_noise_ref == 0.0 and self.added_noise_high == 0.0:
            self.noise_exponent = 1.0
        else:
            raise ValueError("added_noise and added_noise_high must be both zero or both > 0")
        self.bandwidth = positive("bandwidth", bandwidth)
        self.microwave_frequency = positive("microwave_frequency", microwave_frequency)
        self.optical_wavelength = positive("optical_wavelength", optical_wavelength)
        dirs = list(dict.fromkeys(directions))
        if not dirs or any(d not in contract_mod.DIRECTIONS for d in dirs):
            raise ValueError(f"directions must be non-empty, from {contract_mod.DIRECTIONS}")
        self.directions = dirs
        self.max_duty_cycle = fraction("max_duty_cycle", max_duty_cycle)
        self.base_temperature = nonnegative("base_temperature", base_temperature)
        self.thermal_resistance = nonnegative("thermal_resistance", thermal_resistance)
        self.critical_temperature = positive("critical_temperature", critical_temperature)
        if self.critical_temperature <= self.base_temperature:
            raise ValueError("critical_temperature must exceed base_temperature")
        self.settle_time = nonnegative("settle_time", settle_time)
        self.calibration_photons = positive("calibration_photons", calibration_photons)

        self.enabled = False
        self.direction = dirs[0]
        self.pump_power = 0.0
        self.detuning = 0.0
        self.pulse_width: float | None = None
        self.repetition_rate: float | None = None
        self._fault: str | None = None
        self.server: DeviceServer | None = None
        self._log = get_logger("emulator", device=env.name, contract="Transducer")

    # --- the model ------------------------------------------------------------------------

    def peak_efficiency(self, power: float) -> float:
        """``eta_ext 4 C / (1 + C)^2`` at pump ``power`` (W), on resonance."""
        c = self.cooperativity_per_watt * power
        return self.external_efficiency * 4.0 * c / (1.0 + c) ** 2

    def duty_cycle(self) -> float:
        """Fraction of time the pump is on (1 for a continuous pump)."""
        if self.pulse_width is None or self.repetition_rate is None:
            return 1.0
        return self.pulse_width * self.repetition_rate

    def temperature(self, power: float | None = None, duty: float | None = None,
                    enabled: bool | None = None) -> float:
        """Steady-state device temperature (K) at the settings (default: those in force)."""
        on = self.enabled if enabled is None else enabled
        if not on:
            return self.base_temperature
        p = self.pump_power if power is None else power
        d = self.duty_cycle() if duty is None else duty
        return self.base_temperature + self.thermal_resistance * p * d

    def added_noise(self, power: float | None = None, temperature: float | None = None) -> float:
        """Input-referred added noise (photons): pump heating plus thermal occupation."""
        p = self.pump_power if power is None else power
        t = self.temperature() if temperature is None else temperature
        pump = self.added_noise_ref * (p / self.reference_pump_power) ** self.noise_exponent \
            if p > 0 else 0.0
        return pump + thermal_occupation(self.microwave_frequency, t)

    def model(self) -> phys.Transducer:
        """The physics core's :class:`~emulators.physics.transducer.Transducer` at the
        present pump settings (whether enabled or not)."""
        return phys.Transducer(efficiency=self.peak_efficiency(self.pump_power),
                               added_noise=self.added_noise(), bandwidth_hz=self.bandwidth,
                               duty_cycle=self.duty_cycle())

    def conversion_probability(self) -> float:
        """Probability that one input photon is converted now (0 while disabled)."""
        return self.model().conversion_efficiency(self.detuning) if self.enabled else 0.0

    def noise_photons(self) -> float:
        """Mean noise photons per output mode now, ``eta N_add`` (0 while disabled)."""
        return self.model().output_noise_photons(self.detuning) if self.enabled else 0.0

    def _status(self) -> dict[str, Any]:
        m = self.model()
        return {"enabled": self.enabled, "direction": self.direction,
                "pump_power": self.pump_power, "detuning": self.detuning,
                "pulse_width": self.pulse_width, "repetition_rate": self.repetition_rate,
                "duty_cycle": self.duty_cycle(),
                "efficiency": m.conversion_efficiency(self.detuning),
                "added_noise": m.added_noise, "temperature": self.temperature()}

    # --- helpers --------------------------------------------------------------------------

    def _check_fault(self) -> None:
        if self._fault is not None:
            raise DeviceFault(f"{self.env.name}: {self._fault}", {"fault": self._fault})

    def _ts(self) -> Timestamp:
        return Timestamp(int(self.env.now_ps()), self.env.domain)

    # --- contract commands ----------------------------------------------------------------

    async def configure_pump(self, power: float, detuning: float = 0.0,
                             pulse_width: float | None = None,
                             repetition_rate: float | None = None) -> dict[str, Any]:
        """Set the pump; blocks for ``settle_time`` of lab time. A continuous pump (no pulse
        parameters) or a duty cycle above ``max_duty_cycle`` is refused while enabled."""
        self._check_fault()
        if power > self.max_pump_power:
            raise BadParams(f"power {power} W above the maximum {self.max_pump_power} W",
                            {"param": "power", "value": power})
        if (pulse_width is None) != (repetition_rate is None):
            raise BadParams("pulse_width and repetition_rate go together (both or neither)",
                            {"param": "pulse_width" if pulse_width is None
                             else "repetition_rate"})
        duty = 1.0
        if pulse_width is not None and repetition_rate is not None:
            duty = pulse_width * repetition_rate
            if duty > 1.0:
                raise BadParams(f"pulse_width * repetition_rate = {duty:g} > 1: pulses overlap",
                                {"param": "repetition_rate"})
        if self.enabled and duty > self.max_duty_cycle:
            raise BadParams(f"duty cycle {duty:g} above the maximum {self.max_duty_cycle} "
                            "while converting", {"param": "repetition_rate"
                                                 if pulse_width is not None else "pulse_width"})
        if self.enabled and self.temperature(power, duty) > self.critical_temperature:
            raise BadParams(f"these settings would heat the device above "
                            f"{self.critical_temperature} K", {"param": "power"})
        await self.env.spend(self.settle_time)
        self._check_fault()
        self.pump_power, self.detuning = float(power), float(detuning)
        self.pulse_width, self.repetition_rate = pulse_width, repetition_rate
        self._log.debug("pump configured", power=power, duty=duty)
        return self._status()

    def set_direction(self, direction: str) -> None:
        """Choose the direction; :class:`qnhw.Busy` while enabled. Does not block."""
        self._check_fault()
        if direction not in self.directions:
            raise BadParams(f"direction {direction!r} not offered ({self.directions})",
                            {"param": "direction", "value": direction})
        if self.enabled:
            raise Busy("disable the transducer before changing direction")
        self.direction = direction

    def enable(self) -> None:
        """Start converting. :class:`qnhw.Busy` when the duty cycle exceeds
        ``max_duty_cycle``; :class:`qnhw.DeviceFault` (and stays disabled) when the
        heating would pass ``critical_temperature``. Does not block."""
        self._check_fault()
        if self.duty_cycle() > self.max_duty_cycle:
            raise Busy(f"duty cycle {self.duty_cycle():g} above the maximum "
                       f"{self.max_duty_cycle}: configure a pulsed pump before enabling")
        t = self.temperature(enabled=True)
        if t > self.critical_temperature:
            self.enabled = False
            raise DeviceFault(f"pump heating to {t:.3g} K quenches the device (critical "
                              f"{self.critical_temperature} K)", {"temperature": t})
        self.enabled = True

    def disable(self) -> None:
        """Stop converting (pump off). Does not block."""
        self._check_fault()
        self.enabled = False

    def status(self) -> dict[str, Any]:
        """Settings, expected efficiency and noise, temperature. Does not block."""
        self._check_fault()
        return self._status()

    async def calibrate(self, duration: float) -> dict[str, Any]:
        """Measure efficiency and added noise; blocks for ``duration`` of lab time.

        Probe pulses (coherent, ``calibration_photons`` mean photons) in half of the pump
        pulses (or temporal modes ``1 / bandwidth`` long for a continuous pump) and empty
        pulses in the other half, at most :data:`MAX_CALIBRATION_PULSES`; efficiency =
        converted / sent photons, added noise = mean noise photons per empty pulse / eta.
        :class:`qnhw.Busy` while disabled.
        """
        self._check_fault()
        if not self.enabled:
            raise Busy("enable the transducer before calibrating")
        rate = self.repetition_rate if self.repetition_rate is not None else self.bandwidth
        pulses = int(min(MAX_CALIBRATION_PULSES, max(2.0, rate * duration)))
        m = self.model()
        rng = self.env.rng
        probes = rng.poisson(self.calibration_photons, size=pulses // 2)
        signal, noise_in_probes = m.sample(rng, probes, self.detuning)
        _, noise = m.sample(rng, np.zeros(pulses - pulses // 2, dtype=np.int64),
                            self.detuning)
        sent = int(probes.sum())
        # noise photons are indistinguishable from signal in the probe pulses: subtract the
        # mean noise measured in the empty ones
        detected = float(signal.sum() + noise_in_probes.sum())
        mean_noise = float(noise.mean()) if noise.size else 0.0
        eta = max(0.0, (detected - mean_noise * probes.size) / sent) if sent else 0.0
        n_add = mean_noise / eta if eta > 0 else 0.0
        await self.env.spend(duration)
        self._check_fault()
        return {"efficiency": eta, "added_noise": n_add, "time": self._ts()}

    # --- hooks for the lab world ----------------------------------------------------------

    def convert(self, photons: int | npt.ArrayLike, rng: np.random.Generator | None = None,
                *, direction: str | None = None, synchronized: bool = True) -> Conversion:
        """Convert input photons: ``photons`` is the photon number of each input mode (an int
        or an array of non-negative ints).

        Each photon is converted with probability :meth:`conversion_probability`; every
        mode gains thermal noise photons of mean :meth:`noise_photons`. While disabled, or
        for a ``direction`` other than the one set, nothing is converted and no noise is
        added. ``synchronized=False``: a mode falls in a pump pulse only with probability
        ``duty_cycle``. ``rng`` defaults to the device's generator. Does not block.
        """
        n = np.asarray(photons, dtype=np.int64)
        if n.size and n.min() < 0:
            raise ValueError("photons must be >= 0")
        now = int(self.env.now_ps())
        if not self.enabled or (direction is not None and direction != self.direction):
            zero = np.zeros(n.shape, dtype=np.int64)
            return Conversion(zero, zero.copy(), 0.0, 0.0, now)
        m = self.model()
        signal, noise = m.sample(self.env.rng if rng is None else rng, n, self.detuning,
                                 synchronized)
        return Conversion(signal, noise, m.conversion_efficiency(self.detuning),
                          m.output_noise_photons(self.detuning), now)

    def convert_state(self, rho: npt.ArrayLike, *,
                      direction: str | None = None) -> ConvertedState:
        """A single-rail photonic qubit (2x2 density matrix in the photon basis
        ``{|0>, |1>}``) through the pure-loss channel of transmissivity ``eta`` (amplitude
        damping ``gamma = 1 - eta``). Noise photons are not part of the 2x2 state: their
        probability is ``p_noise``. While disabled (or for the other direction) ``eta = 0``:
        the output is vacuum."""
        r = np.asarray(rho, dtype=np.complex128)
        if r.shape != (2, 2) or abs(np.trace(r) - 1) > 1e-9:
            raise ValueError("rho must be a 2x2 density matrix in the photon-number basis")
        on = self.enabled and (direction is None or direction == self.direction)
        eta = self.conversion_probability() if on else 0.0
        nbar = self.noise_photons() if on else 0.0
        out = np.array([[r[0, 0] + (1 - eta) * r[1, 1], math.sqrt(eta) * r[0, 1]],
                        [math.sqrt(eta) * r[1, 0], eta * r[1, 1]]], dtype=np.complex128)
        return ConvertedState(out, eta, nbar / (1.0 + nbar))

    def set_fault(self, message: str | None) -> None:
        """Inject a device fault (commands fail with :class:`qnhw.DeviceFault`; the
        transducer stops converting) or clear it with ``None``."""
        self._fault = message
        if message is not None:
            self.enabled = False

    # --- server ---------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """The capability map of the ``Transducer`` contract (efficiency and noise at
        ``max_pump_power``, the highest the device offers)."""
        return {"microwave_frequency": self.microwave_frequency,
                "optical_wavelength": self.optical_wavelength,
                "directions": list(self.directions),
                "efficiency": self.peak_efficiency(self.max_pump_power),
                "added_noise": self.added_noise_ref * (self.max_pump_power /
                                                       self.reference_pump_power)
                ** self.noise_exponent,
                "bandwidth": self.bandwidth, "max_pump_power": self.max_pump_power,
                "max_duty_cycle": self.max_duty_cycle}


async def start_transducer(env: EmulatorEnv, address: str = "tcp://127.0.0.1:0", *,
                           features: Sequence[str] | None = None, name: str | None = None,
                           **params: Any) -> DeviceServer:
    """Create a :class:`TransducerEmulator` from ``params`` and serve it at ``address``;
    returns the started server (``await server.stop()`` ends it)."""
    return await TransducerEmulator(env, **params).serve(address, features=features,
                                                         name=name)
