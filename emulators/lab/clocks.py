"""Per-node clock domains: lab time as seen through a node's oscillator and its steering.

A node's clock reads ``t + x(t) + s(t)`` for true lab time ``t`` where

* ``x(t) = x0 + y0 t + D t^2 / 2 + n(t)`` is the free-running time error of the node's
  oscillator (:class:`emulators.physics.OscillatorModel`: offset, fractional frequency offset,
  linear drift, and the noise ``n(t)`` of white PM, white FM and random-walk FM), and
* ``s(t)`` is the steering applied by the node's timing card (phase steps from
  ``adjust_offset``/``set_time``, a fractional frequency correction from
  ``adjust_frequency``) or by a clock-slip fault.

The noise ``n(t)`` is sampled with :func:`emulators.physics.sample_time_error` on a grid of
``tau0`` seconds, in chunks generated in order from the node's own generator, and linearly
interpolated between grid points: a reading is a deterministic function of lab time, however
often and in whatever order it is read. Only the most recent ``retain`` chunks are kept;
readings older than that use the oldest kept value (they never happen in practice: devices
read the present and the last stream batch).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

from emulators.physics import OscillatorModel, sample_time_error

from .time import PS_PER_S

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class NodeClock:
    """The clock of one clock domain (a node). Times in and out are integer picoseconds."""

    def __init__(self, domain: str, model: OscillatorModel | None = None,
                 rng: np.random.Generator | None = None, *, tau0: float = 0.01,
                 chunk: int = 100, retain: int = 600) -> None:
        self.domain = domain
        self.model = model or OscillatorModel()
        self._rng = rng or np.random.default_rng(0)
        self.tau0 = tau0
        self._chunk = chunk
        self._retain = retain
        m = self.model
        self._noisy = m.white_pm_s > 0 or m.white_fm_adev_1s > 0 or m.random_walk_fm_adev_1s > 0
        self._noise_model = OscillatorModel(white_pm_s=m.white_pm_s,
                                            white_fm_adev_1s=m.white_fm_adev_1s,
                                            random_walk_fm_adev_1s=m.random_walk_fm_adev_1s)
        self._chunks: dict[int, FloatArray] = {}
        self._next_chunk = 0
        self._last_value = 0.0
        # steering: s(t) = steer_offset + steer_freq * (t - steer_t0)
        self.steer_offset = 0.0
        self.steer_freq = 0.0
        self._steer_t0 = 0.0
        self.slips = 0

    # --- the oscillator ------------------------------------------------------------------

    def _chunk_values(self, c: int) -> FloatArray:
        while self._next_chunk <= c:
            k = self._next_chunk
            x = sample_time_error(self._rng, self._noise_model, self._chunk + 1, self.tau0)
            vals = self._last_value + (x - x[0])
            self._chunks[k] = vals
            self._last_value = float(vals[-1])
            self._next_chunk += 1
            self._chunks.pop(k - self._retain, None)
        if c in self._chunks:
            return self._chunks[c]
        return self._chunks[min(self._chunks)]

    def _noise(self, t: FloatArray) -> FloatArray:
        if not self._noisy:
            return np.zeros_like(t)
        pos = np.maximum(t, 0.0) / self.tau0
        chunk_idx = (pos // self._chunk).astype(np.int64)
        out = np.empty_like(t)
        for c in np.unique(chunk_idx):
            vals = self._chunk_values(int(c))
            sel = chunk_idx == c
            local = pos[sel] - c * self._chunk
            out[sel] = np.interp(local, np.arange(vals.size, dtype=np.float64), vals)
        return out

    def error_s(self, lab_ps: int) -> float:
        """Clock reading minus lab time, seconds, at lab time ``lab_ps``."""
        return float(self.errors_s(np.array([lab_ps], dtype=np.int64))[0])

    def errors_s(self, lab_ps: IntArray) -> FloatArray:
        """Vectorized :meth:`error_s`."""
        t = np.asarray(lab_ps, dtype=np.float64) / PS_PER_S
        m = self.model
        x = m.offset_s + m.frequency_offset * t + m.drift_per_s * t * t / 2.0 + self._noise(t)
        return np.asarray(x + self.steer_offset + self.steer_freq * (t - self._steer_t0))

    # --- readings -------------------------------------------------------------------------

    def read(self, lab_ps: int) -> int:
        """The domain's time (ps) at lab time ``lab_ps``."""
        return int(lab_ps) + round(self.error_s(lab_ps) * PS_PER_S)

    def read_array(self, lab_ps: IntArray) -> IntArray:
        """Vectorized :meth:`read` (int64 ps)."""
        t = np.asarray(lab_ps, dtype=np.int64)
        if t.size == 0:
            return t.copy()
        return np.asarray(t + np.rint(self.errors_s(t) * PS_PER_S).astype(np.int64))

    def to_lab(self, domain_ps: int) -> int:
        """The lab time (ps) at which this domain reads ``domain_ps``."""
        t = int(domain_ps)
        for _ in range(3):  # the error changes slowly: fixed-point iteration converges at once
            t = int(domain_ps) - round(self.error_s(t) * PS_PER_S)
        return t

    # --- steering (timing card) and faults -------------------------------------------------

    def _fold(self, lab_ps: int) -> float:
        t = lab_ps / PS_PER_S
        self.steer_offset += self.steer_freq * (t - self._steer_t0)
        self._steer_t0 = t
        return t

    def adjust_offset(self, seconds: float, lab_ps: int) -> None:
        """Step the domain by ``seconds`` (positive: forward) at lab time ``lab_ps``."""
        if not math.isfinite(seconds):
            raise ValueError("offset must be finite")
        self._fold(lab_ps)
        self.steer_offset += seconds

    def adjust_frequency(self, fractional: float, lab_ps: int) -> None:
        """Replace the fractional frequency correction from lab time ``lab_ps`` on."""
        self._fold(lab_ps)
        self.steer_freq = float(fractional)

    def set_time(self, domain_ps: int, lab_ps: int) -> None:
        """Step the domain so that it reads ``domain_ps`` at lab time ``lab_ps``."""
        self.adjust_offset((domain_ps - self.read(lab_ps)) / PS_PER_S, lab_ps)

    def slip(self, seconds: float, lab_ps: int) -> None:
        """A clock slip (fault): an unannounced phase step of ``seconds``."""
        self.adjust_offset(seconds, lab_ps)
        self.slips += 1

    def frequency(self, lab_ps: int) -> float:
        """Fractional frequency of the domain against lab time (deterministic part)."""
        t = lab_ps / PS_PER_S
        return self.model.frequency_offset + self.model.drift_per_s * t + self.steer_freq




class DomainClock(Protocol):
    """What the world needs of a node's clock domain (a :class:`NodeClock` or a timing card's
    clock, :class:`CardClock`)."""

    domain: str

    def read(self, lab_ps: int) -> int: ...
    def read_array(self, lab_ps: IntArray) -> IntArray: ...
    def to_lab(self, domain_ps: int) -> int: ...
    def slip(self, seconds: float, lab_ps: int) -> None: ...


class TimingCardLike(Protocol):
    """The hooks of :class:`emulators.devices.timing.TimingCardEmulator` a node uses."""

    def domain_time_ps_at(self, lab_time: float) -> int: ...
    def lab_time_of(self, domain_ps: int) -> float: ...
    def clock_slip(self, seconds: float) -> None: ...


class CardClock:
    """A node domain that *is* a timing card's clock: the card disciplines the whole node
    (its ``adjust_offset``, ``adjust_frequency``, ``set_time`` and slave servo move every
    timestamp of the node's devices)."""

    def __init__(self, domain: str, card: TimingCardLike) -> None:
        self.domain = domain
        self.card = card

    def read(self, lab_ps: int) -> int:
        return int(self.card.domain_time_ps_at(lab_ps / PS_PER_S))

    def read_array(self, lab_ps: IntArray) -> IntArray:
        t = np.asarray(lab_ps, dtype=np.int64)
        if t.size == 0:
            return t.copy()
        lo, hi = int(t.min()), int(t.max())
        d_lo = self.read(lo)
        if hi == lo:
            return np.full(t.shape, d_lo, dtype=np.int64)
        slope = (self.read(hi) - d_lo) / (hi - lo)  # the card's clock is smooth over a batch
        return np.asarray(d_lo + np.rint((t - lo) * slope).astype(np.int64))

    def to_lab(self, domain_ps: int) -> int:
        return round(self.card.lab_time_of(int(domain_ps)) * PS_PER_S)

    def error_s(self, lab_ps: int) -> float:
        return (self.read(lab_ps) - int(lab_ps)) / PS_PER_S

    def slip(self, seconds: float, lab_ps: int) -> None:
        self.card.clock_slip(seconds)


__all__ = ["CardClock", "DomainClock", "NodeClock", "TimingCardLike"]
