"""Microwave-optical transducer (quantum network unit interface).

* Conversion: each input photon is converted with probability ``eta(Delta)``, with a
  Lorentzian band ``eta(Delta) = eta0 / (1 + (2 Delta / B)^2)`` (``B`` = FWHM bandwidth, Hz).
* Added noise referred to the input ``N_add``: the output carries on average
  ``eta N_add`` noise photons per mode, drawn from a thermal (Bose-Einstein) distribution,
  so ``P(>= 1 noise photon) = eta N_add / (1 + eta N_add)``.
* Quantum-enabled operation requires ``N_add < 1`` (e.g. Zeuthen et al., Quantum Sci.
  Technol. 5, 034009, 2020). Sahu et al., Nat. Commun. 13, 1276 (2022): ``eta = 0.087``,
  ``N_add = 0.16`` (microwave to optics, pulsed).
* Pulsed operation: only a fraction ``duty_cycle`` of time slots is converting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._types import IntArray
from .errors import ParameterError

__all__ = ["Transducer"]


@dataclass(frozen=True)
class Transducer:
    """A transducer: peak efficiency, input-referred added noise (photons), bandwidth (Hz)."""

    efficiency: float
    added_noise: float = 0.0
    bandwidth_hz: float = float("inf")
    duty_cycle: float = 1.0

    def __post_init__(self) -> None:
        v.probability("efficiency", self.efficiency)
        v.nonnegative("added_noise", self.added_noise)
        v.positive("bandwidth_hz", self.bandwidth_hz, allow_inf=True)
        v.probability("duty_cycle", self.duty_cycle)

    def conversion_efficiency(self, detuning_hz: float = 0.0) -> float:
        """``eta0 / (1 + (2 Delta / B)^2)`` at a detuning of ``detuning_hz`` from band centre."""
        d = v.finite("detuning_hz", detuning_hz)
        return self.efficiency / (1.0 + (2.0 * d / self.bandwidth_hz) ** 2)

    def output_noise_photons(self, detuning_hz: float = 0.0) -> float:
        """Mean noise photons per output mode, ``eta N_add``."""
        return self.conversion_efficiency(detuning_hz) * self.added_noise

    def sample(
        self,
        rng: np.random.Generator,
        input_photons: ArrayLike,
        detuning_hz: float = 0.0,
        synchronized: bool = True,
    ) -> tuple[IntArray, IntArray]:
        """Converted signal photons and noise photons at the output, per input mode.

        ``input_photons``: photon number in each input mode (non-negative ints). With
        ``synchronized=False`` an input mode falls in a converting slot only with
        probability ``duty_cycle`` (otherwise it is lost and adds no noise).
        """
        rng = v.generator(rng)
        n_in = np.asarray(input_photons, dtype=np.int64)
        if n_in.size and n_in.min() < 0:
            raise ParameterError("input_photons must be >= 0")
        eta = self.conversion_efficiency(detuning_hz)
        signal = rng.binomial(n_in, eta).astype(np.int64)
        nbar = eta * self.added_noise
        noise = (rng.geometric(1.0 / (1.0 + nbar), size=n_in.shape) - 1).astype(np.int64)
        if not synchronized and self.duty_cycle < 1.0:
            active = rng.random(n_in.shape) < self.duty_cycle
            signal, noise = signal * active, noise * active
        return signal, noise
