"""Emulated photon-pair source: the ``PhotonSource`` contract on the physics core.

Model (:mod:`emulators.physics.sources`, ``docs/physics.md`` section 6):

* A pulsed source at ``repetition_rate``; each pulse carries ``n`` pairs with Poissonian (many
  modes) or thermal (one mode) statistics of mean ``mean_photon_number``. Only non-empty pulses
  are drawn (geometric gaps between them), so a quiet source costs nothing.
* Pair sources have two output ports, ``signal`` and ``idler``; a single-photon source
  (``emits = "single"``) has ``out``. Each photon enters its output fiber with the port's
  coupling efficiency (``signal_efficiency``, ``idler_efficiency``); the world carries it
  through fibers and switches to whatever detector is at the other end.
* Armed ``continuous``, the source emits at its repetition rate over lab time (a stream
  producer: pulses of each lab-time slice are generated when the lab clock passes it);
  armed ``triggered``, it emits bursts on ``fire`` at an absolute time of its domain.
  Every pulse is marked on ``emissions`` (index and time in the source's domain).
* ``tune`` moves the centre wavelength within ``wavelength_range``, taking ``tune_time``.

Capabilities report the heralding (Klyshko) efficiency of the signal arm at the source
output (``signal_efficiency``) and ``g2(0)`` of the heralded signal
(:func:`emulators.physics.sources.heralded_g2`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from emulators.devices.common import Emulator, nonnegative, positive, probability
from emulators.devices.env import EmulatorEnv
from emulators.lab.time import PS_PER_S, Ticker
from emulators.lab.world import PortRef
from emulators.physics._sampling import success_indices
from emulators.physics.sources import heralded_g2, pair_number_distribution
from qnhw.devices import source as source_contract
from qnhw.errors import BadParams, Busy

__all__ = ["PhotonSourceEmulator"]

#: Pulse marks per ``emissions`` event (longer slices are split).
MARKS_PER_EVENT = 100_000
#: Most pulses one slice generates; beyond it the rest of the slice is skipped (logged).
MAX_PULSES_PER_SLICE = 20_000_000


class PhotonSourceEmulator(Emulator):
    """A pulsed photon(-pair) source (module docstring).

    Parameters (keywords; SI units): ``kind`` ("spdc"); ``emits`` ("pair" or "single");
    ``entanglement`` ("none"); ``statistics`` ("poisson" or "thermal");
    ``repetition_rate`` (1e6 Hz) within ``repetition_rate_range`` ((1e3, 1e8) Hz);
    ``mean_photon_number`` (0.05) up to ``max_mean_photon_number`` (1.0);
    ``wavelength`` (1550e-9 m) within ``wavelength_range`` ((1530e-9, 1565e-9) m);
    ``idler_wavelength`` (= wavelength); ``bandwidth`` (100e9 Hz); ``signal_efficiency``,
    ``idler_efficiency`` (0.8 each, into the output fibers); ``tune_time`` (1e-3 s).
    """

    CONTRACT = source_contract.CONTRACT
    KIND = "source"

    def __init__(self, env: EmulatorEnv, *, kind: str = "spdc", emits: str = "pair",
                 entanglement: str = "none", statistics: str = "poisson",
                 repetition_rate: float = 1e6,
                 repetition_rate_range: Sequence[float] = (1e3, 1e8),
                 mean_photon_number: float = 0.05, max_mean_photon_number: float = 1.0,
                 wavelength: float = 1550e-9,
                 wavelength_range: Sequence[float] = (1530e-9, 1565e-9),
                 idler_wavelength: float | None = None, bandwidth: float = 100e9,
                 signal_efficiency: float = 0.8, idler_efficiency: float = 0.8,
                 tune_time: float = 1e-3) -> None:
        super().__init__(env)
        if kind not in source_contract.SOURCE_KINDS:
            raise ValueError(f"kind must be one of {source_contract.SOURCE_KINDS}")
        if emits not in ("single", "pair"):
            raise ValueError("emits must be 'single' or 'pair'")
        if entanglement not in ("none", "polarization", "time_bin", "frequency_bin"):
            raise ValueError("entanglement must be none, polarization, time_bin or "
                             "frequency_bin")
        if statistics not in ("poisson", "thermal"):
            raise ValueError("statistics must be 'poisson' or 'thermal'")
        self.kind, self.emits, self.entanglement = kind, emits, entanglement
        self.statistics = statistics
        rr = [positive("repetition_rate_range[]", x) for x in repetition_rate_range]
        if len(rr) != 2 or rr[0] > rr[1]:
            raise ValueError("repetition_rate_range must be [min, max]")
        self.rate_range = rr
        self.rate = positive("repetition_rate", repetition_rate)
        if not rr[0] <= self.rate <= rr[1]:
            raise ValueError("repetition_rate must lie within repetition_rate_range")
        self.max_mu = positive("max_mean_photon_number", max_mean_photon_number)
        self.mu = nonnegative("mean_photon_number", mean_photon_number)
        if self.mu > self.max_mu:
            raise ValueError("mean_photon_number above max_mean_photon_number")
        wr = [positive("wavelength_range[]", x) for x in wavelength_range]
        if len(wr) != 2 or wr[0] > wr[1]:
            raise ValueError("wavelength_range must be [min, max]")
        self.wavelength_range = wr
        self.wavelength = positive("wavelength", wavelength)
        self.idler_wavelength = None if idler_wavelength is None else positive(
            "idler_wavelength", idler_wavelength)
        self.bandwidth = positive("bandwidth", bandwidth)
        self.signal_efficiency = probability("signal_efficiency", signal_efficiency)
        self.idler_efficiency = probability("idler_efficiency", idler_efficiency)
        self.tune_time = nonnegative("tune_time", tune_time)
        self.trigger = "internal"
        self.mode: str | None = None
        self.pulses = 0
        self._armed_at_pulse = 0
        self._next_pulse_ps = 0
        self.skipped = 0
        self._ticker: Ticker = self.clock.add_ticker(f"{env.name}:pulses", self._tick,
                                                     priority=0)

    # --- emission ---------------------------------------------------------------------------

    @property
    def ports(self) -> list[str]:
        return ["signal", "idler"] if self.emits == "pair" else ["out"]

    def _period_ps(self) -> int:
        return max(1, round(PS_PER_S / self.rate))

    def _nonzero_pairs(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.statistics == "thermal":  # memoryless: n - 1 is thermal again
            return rng.geometric(1.0 / (1.0 + self.mu), size=size).astype(np.int64)
        p = pair_number_distribution(self.mu, "poisson")[1:]
        return (rng.choice(p.size, size=size, p=p / p.sum()) + 1).astype(np.int64)

    def _emit_pulses(self, first: int, times: np.ndarray) -> None:
        """Mark pulses ``first..`` at lab ``times`` and send their photons."""
        n = times.size
        if n == 0:
            return
        idx = np.arange(first, first + n, dtype=np.int64)
        domain = self.to_domain_array(times)
        for k in range(0, n, MARKS_PER_EVENT):
            self.publish_nowait("emissions", {"pulse": idx[k:k + MARKS_PER_EVENT],
                                              "time_ps": domain[k:k + MARKS_PER_EVENT]},
                                int(domain[k]))
        if self.world is None or self.mu <= 0:
            return
        rng = self.env.rng
        p_nonempty = -math.expm1(-self.mu) if self.statistics == "poisson" else \
            self.mu / (1.0 + self.mu)
        hit = success_indices(rng, n, p_nonempty)
        if hit.size == 0:
            return
        pairs = self._nonzero_pairs(rng, hit.size)
        for port, eff in zip(self.ports, (self.signal_efficiency, self.idler_efficiency),
                             strict=False):
            photons = rng.binomial(pairs, eff)
            t = np.repeat(times[hit], photons)
            self.world.send_photons(PortRef(self.name, port), t, rng)

    def _tick(self, t0: int, t1: int) -> None:
        period = self._period_ps()
        nxt = self._next_pulse_ps
        if nxt < t0:
            nxt += -(-(t0 - nxt) // period) * period
        if nxt >= t1:
            return
        n_all = (t1 - 1 - nxt) // period + 1
        n = min(n_all, MAX_PULSES_PER_SLICE)
        if n < n_all:
            self.skipped += n_all - n
            self._log.warning("slice too long: pulses skipped", skipped=n_all - n)
        times = nxt + np.arange(n, dtype=np.int64) * period
        first = self.pulses
        self.pulses += n_all
        self._next_pulse_ps = nxt + n_all * period
        self._emit_pulses(first, times)

    # --- contract commands ----------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {"repetition_rate": self.rate, "mean_photon_number": self.mu,
                "wavelength": self.wavelength, "trigger": self.trigger,
                "armed": self.mode is not None, "mode": self.mode, "pulses": self.pulses}

    def configure(self, repetition_rate: float | None, mean_photon_number: float | None,
                  trigger: str | None) -> dict[str, Any]:
        """Change settings (refused while armed)."""
        self.check_fault()
        if self.mode is not None:
            raise Busy("disarm before changing the configuration")
        source_contract.check_config(repetition_rate, mean_photon_number,
                                     rate_range=self.rate_range,
                                     max_mean_photon_number=self.max_mu)
        if repetition_rate is not None:
            self.rate = repetition_rate
        if mean_photon_number is not None:
            self.mu = mean_photon_number
        if trigger is not None:
            self.trigger = trigger
        return self._config()

    def get_config(self) -> dict[str, Any]:
        """The configuration (does not block)."""
        self.clock.flush()
        return self._config()

    def arm(self, mode: str) -> None:
        """Emit continuously from now, or wait for ``fire``."""
        self.check_fault()
        if self.mode is not None:
            raise Busy(f"already armed ({self.mode})")
        self.mode = mode
        self._armed_at_pulse = self.pulses
        if mode == "continuous":
            now = self.lab_ps()
            self._next_pulse_ps = now
            self._ticker.start(now)

    def disarm(self) -> dict[str, Any]:
        """Stop emitting; returns the pulses since ``arm``."""
        self.check_fault()
        if self.mode == "continuous":
            self.clock.flush()
            self._ticker.stop()
        self.mode = None
        return {"pulses": self.pulses - self._armed_at_pulse}

    def fire(self, pulses: int, at: int | None) -> dict[str, Any]:
        """A burst of ``pulses`` at the repetition rate from ``at`` (device domain)."""
        self.check_fault()
        if self.mode != "triggered":
            raise Busy("arm in triggered mode before fire")
        now = self.lab_ps()
        start = now if at is None else self.to_lab(at)
        if start < now:
            raise BadParams("at is in the past", {"param": "at"})
        if pulses > 1_000_000:
            raise BadParams("bursts are limited to 1000000 pulses", {"param": "pulses"})
        first = self.pulses
        self.pulses += pulses
        times = start + np.arange(pulses, dtype=np.int64) * self._period_ps()
        self.clock.call_at(start, lambda: self._emit_pulses(first, times))
        return {"start": self.ts(start), "first_pulse": first, "pulses": pulses}

    async def tune(self, wavelength: float) -> None:
        """Tune the centre wavelength; takes ``tune_time``."""
        self.check_fault()
        lo, hi = self.wavelength_range
        if not lo <= wavelength <= hi:
            raise BadParams(f"wavelength must be within [{lo:g}, {hi:g}] m",
                            {"param": "wavelength"})
        await self.spend(self.tune_time)
        self.wavelength = wavelength

    # --- server ---------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        pair = self.emits == "pair"
        wavelengths = [self.wavelength, self.idler_wavelength or self.wavelength] if pair \
            else [self.wavelength]
        g2: float | None = None
        if self.mu > 0:
            g2 = heralded_g2(self.mu, self.statistics, self.idler_efficiency) if pair else \
                (1.0 if self.statistics == "poisson" else 2.0)
        return {"kind": self.kind, "emits": self.emits,
                "entanglement": self.entanglement if pair else "none",
                "wavelengths": wavelengths, "wavelength_range": list(self.wavelength_range),
                "repetition_rate_range": list(self.rate_range),
                "max_mean_photon_number": self.max_mu, "bandwidth": self.bandwidth,
                "heralding_efficiency": self.signal_efficiency if pair else None,
                "g2_0": g2}

    async def aclose(self) -> None:
        self.clock.remove_ticker(self._ticker)
        await super().aclose()
