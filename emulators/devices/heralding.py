"""Emulated heralding (Bell-state-measurement) station: the ``HeraldingStation`` contract.

Model (``docs/lab.md``; physics in :mod:`emulators.physics.heralding`):

* Two optical inputs meet on a 50:50 beam splitter in front of two threshold detectors of
  efficiency ``detection_efficiency`` and dark-count rate ``dark_count_rate`` (defaults: the
  ``snspd`` profile); a dark count falls in a detection window of width ``window`` with
  probability ``1 - exp(-R window)``.
* Two-photon interference has visibility ``visibility`` (mode overlap of the photons; the
  world multiplies it by the overlap of the emitters' wave packets).
* Single-click heralding needs the interferometer phase: until ``lock_phase`` succeeds, the
  phase is random (rms ``unlocked_phase_noise``) and single-click heralds carry no
  entanglement; once locked the residual rms phase error is ``phase_noise`` and the phase
  sits at the setpoint.
* Phase stabilization: the lock stabilizes the phase, and so does the station every
  ``phase_stabilization_interval`` while locked (``inf``: only ``lock_phase`` does). Between
  stabilizations the phase difference of the two arms drifts (a Wiener process with the sum
  of the fibers' ``phase_diffusion``), so a single-click herald a time ``tau`` after the last
  stabilization sees rms phase ``sqrt(phase_noise^2 + 2 D tau)`` (the world computes it;
  stabilization itself is taken as instantaneous, without dead time).
* Heralds come from the emitters at its inputs: memories' ``entangle`` batches (sampled by the
  world) and ``emit`` photons (evaluated one by one). Each herald is published on
  ``heralds`` at its lab time in the station's domain; ``statistics`` counts attempts and
  heralds.
* ``arm`` runs attempts on the station's own timing: with no light at its inputs only dark
  counts herald (``2 p_d (1 - p_d)`` per attempt for single click, the square for
  Barrett-Kok), sampled as rare events over lab time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from emulators.devices.common import Emulator, nonnegative, positive, probability
from emulators.devices.env import EmulatorEnv
from emulators.lab.time import Ticker, Timer, to_ps
from emulators.lab.world import StationModel
from emulators.physics._sampling import success_indices
from qnhw.devices import heralding as heralding_contract
from qnhw.errors import BadParams, Busy

__all__ = ["HeraldingStationEmulator"]

#: rms phase (rad) that stands for "no phase reference": coherence factor exp(-50^2/2) = 0.
UNLOCKED = 50.0


class HeraldingStationEmulator(Emulator):
    """A heralding station (module docstring).

    Parameters (keywords; SI units): ``schemes`` (("single_click", "barrett_kok"));
    ``detection_efficiency`` (0.9); ``dark_count_rate`` (100 Hz); ``visibility`` (0.9);
    ``phase_noise`` (0.1 rad rms when locked); ``unlocked_phase_noise`` (50 rad: no phase
    reference); ``lock_time`` (2e-3 s); ``phase_stabilization_interval`` (1e-3 s; ``inf``:
    only at ``lock_phase``); ``max_attempt_rate`` (1e7 Hz); ``qnu_alpha`` (0.1:
    bright population the QNUs prepare for attempts the station drives); the initial
    ``scheme`` ("single_click"), ``window`` (25e-9 s), ``window_offset`` (0 s),
    ``attempt_period`` (1e-6 s).
    """

    CONTRACT = heralding_contract.CONTRACT
    KIND = "heralding"

    def __init__(self, env: EmulatorEnv, *,
                 schemes: Sequence[str] = ("single_click", "barrett_kok"),
                 detection_efficiency: float = 0.9, dark_count_rate: float = 100.0,
                 visibility: float = 0.9, phase_noise: float = 0.1,
                 unlocked_phase_noise: float = UNLOCKED, lock_time: float = 2e-3,
                 phase_stabilization_interval: float = 1e-3,
                 max_attempt_rate: float = 1e7, qnu_alpha: float = 0.1,
                 scheme: str = "single_click",
                 window: float = 25e-9, window_offset: float = 0.0,
                 attempt_period: float = 1e-6) -> None:
        super().__init__(env)
        offered = ("single_click", "barrett_kok")
        self.schemes = list(schemes)
        bad = [s for s in self.schemes if s not in offered]
        if bad or not self.schemes:
            raise ValueError(f"schemes must be a non-empty subset of {offered}, got {schemes!r}")
        self.detection_efficiency = probability("detection_efficiency", detection_efficiency)
        self.dark_count_rate = nonnegative("dark_count_rate", dark_count_rate)
        self.visibility = probability("visibility", visibility)
        self.phase_noise = nonnegative("phase_noise", phase_noise)
        self.unlocked_phase_noise = nonnegative("unlocked_phase_noise", unlocked_phase_noise)
        self.lock_time = nonnegative("lock_time", lock_time)
        self.phase_stabilization_interval = positive(
            "phase_stabilization_interval", phase_stabilization_interval, allow_inf=True)
        self.max_attempt_rate = positive("max_attempt_rate", max_attempt_rate)
        self.qnu_alpha = probability("qnu_alpha", qnu_alpha)
        if scheme not in self.schemes:
            raise ValueError(f"scheme must be one of {self.schemes}, got {scheme!r}")
        self.scheme = scheme
        self.window = positive("window", window)
        self.window_offset = nonnegative("window_offset", window_offset)
        self.attempt_period = positive("attempt_period", attempt_period)
        if self.window + self.window_offset > self.attempt_period:
            raise ValueError("window + window_offset must fit in attempt_period")
        self.locked = False
        self.locked_at_ps = 0
        self.setpoint = 0.0
        self.attempts = 0
        self.heralds = {"psi+": 0, "psi-": 0}
        self.since_ps = self.lab_ps()
        self.armed = False
        self.armed_attempts = 0
        self._arm_total: int | None = None
        self._arm_start = 0
        self._arm_done = 0
        self._ticker: Ticker = self.clock.add_ticker(f"{env.name}:attempts", self._tick,
                                                     priority=5)
        self._qnu_timer: Timer | None = None

    # --- world hooks ----------------------------------------------------------------------

    def station_model(self) -> StationModel:
        return StationModel(self.scheme, self.window, self.detection_efficiency,
                            self.dark_count_rate, self.visibility,
                            self.setpoint if self.locked else 0.0,
                            self.phase_noise if self.locked else self.unlocked_phase_noise,
                            self.phase_stabilization_interval,
                            self.locked_at_ps / 1e12 if self.locked else None)

    def record_attempts(self, n: int) -> None:
        self.attempts += n

    def record_herald(self, attempt: int, outcome: str, detectors: list[int],
                      lab_ps: int) -> None:
        self.heralds[outcome] += 1
        self.publish_nowait("heralds", {"attempt": int(attempt), "outcome": outcome,
                                        "detectors": list(detectors)}, self.to_domain(lab_ps))

    def unlock(self) -> None:
        """Fault: the interferometer loses its phase lock."""
        self.locked = False

    # --- armed attempts (dark counts only) ------------------------------------------------

    def _dark_herald_probability(self) -> float:
        pd = -math.expm1(-self.dark_count_rate * self.window)
        one = 2 * pd * (1 - pd)
        return one * one if self.scheme == "barrett_kok" else one

    def _tick(self, t0: int, t1: int) -> None:
        period = to_ps(self.attempt_period)
        first = max(0, -(-(t0 - self._arm_start) // period))
        last = (t1 - self._arm_start - 1) // period + 1 if t1 > self._arm_start else 0
        if self._arm_total is not None:
            last = min(last, self._arm_total)
        n = last - first
        if n <= 0:
            if self._arm_total is not None and first >= self._arm_total:
                self._finish()
            return
        rng = self.env.rng
        hits = success_indices(rng, n, self._dark_herald_probability()) + first
        self.attempts += n
        self.armed_attempts += n
        offset = to_ps(self.window_offset + self.window / 2)
        for k in hits:
            outcome = "psi+" if rng.random() < 0.5 else "psi-"
            det = [0] if outcome == "psi+" else [1]
            if self.scheme == "barrett_kok":
                det = [0, 0] if outcome == "psi+" else [0, 1]
            self.record_herald(int(k), outcome, det, self._arm_start + int(k) * period + offset)
        if self._arm_total is not None and last >= self._arm_total:
            self._finish()

    # --- QNU links: the station drives the attempts ---------------------------------------

    def _qnu_schedule(self, start_ps: int, first: int) -> None:
        """Sample the attempts until the next herald of the QNU link from ``start_ps`` and
        set a timer at the herald (so lab time stands exactly there when it is delivered)."""
        assert self.world is not None
        link = self.world.qnu_link(self.name)
        period = to_ps(self.attempt_period)
        left = None if self._arm_total is None else self._arm_total - first
        if link is None or (left is not None and left <= 0):
            self._finish()
            return
        k, index = self.world.qnu_sample(link, left, self.qnu_alpha)
        d = max(link.delay_a_ps, link.delay_b_ps)
        if index is None:
            end = start_ps + k * period
            self._qnu_timer = self.clock.call_at(end, lambda: self._qnu_done(first + k))
            return
        t_emit = start_ps + (k - 1) * period
        self._qnu_timer = self.clock.call_at(
            t_emit + d, lambda: self._qnu_herald(link, first, k, index, t_emit))

    def _qnu_done(self, attempts: int) -> None:
        self.attempts += attempts - self.armed_attempts
        self.armed_attempts = attempts
        self._finish()

    def _qnu_herald(self, link: Any, first: int, k: int, index: int, t_emit: int) -> None:
        assert self.world is not None
        if self.world.qnu_link(self.name) != link:  # the link changed meanwhile: resample
            self._qnu_schedule(self.lab_ps(), first)
            return
        bell, detectors = self.world.qnu_deliver(link, self.qnu_alpha, index, t_emit)
        self.attempts += k
        self.armed_attempts = first + k
        self.record_herald(first + k - 1, bell, detectors, self.lab_ps())
        self._finish()

    def _finish(self) -> None:
        self._ticker.stop()
        if self._qnu_timer is not None:
            self._qnu_timer.cancel()
            self._qnu_timer = None
        self.armed = False

    # --- contract commands ----------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "window": self.window,
                "window_offset": self.window_offset, "attempt_period": self.attempt_period,
                "armed": self.armed}

    def configure(self, scheme: str, window: float, window_offset: float,
                  attempt_period: float) -> dict[str, Any]:
        """Set scheme and timing (refused while armed)."""
        self.check_fault()
        if self.armed:
            raise Busy("disarm before configuring")
        if scheme not in self.schemes:
            raise BadParams(f"scheme {scheme!r} not offered ({self.schemes})",
                            {"param": "scheme", "value": scheme})
        if window_offset + window > attempt_period:
            raise BadParams("the detection window must end within the attempt period",
                            {"param": "window"})
        if 1.0 / attempt_period > self.max_attempt_rate * (1 + 1e-9):
            raise BadParams(f"attempt_period below this station's fastest rate "
                            f"({self.max_attempt_rate:g} Hz)", {"param": "attempt_period"})
        self.scheme, self.window = scheme, window
        self.window_offset, self.attempt_period = window_offset, attempt_period
        return self._config()

    def get_config(self) -> dict[str, Any]:
        """The configuration (does not block)."""
        return self._config()

    def arm(self, attempts: int | None, start: int | None) -> None:
        """Run attempts from ``start`` (device domain) on the station's own timing."""
        self.check_fault()
        if self.armed:
            raise Busy("already armed")
        now = self.lab_ps()
        t0 = now if start is None else self.to_lab(start)
        if t0 < now:
            raise BadParams("start is in the past", {"param": "start"})
        self.armed = True
        self.armed_attempts = 0
        self._arm_total = attempts
        self._arm_start = t0
        if self.world is not None and self.world.qnu_link(self.name) is not None:
            self._qnu_schedule(t0, 0)
        else:
            self._ticker.start(t0)

    def disarm(self) -> dict[str, Any]:
        """Stop attempting; returns the attempts run since ``arm``."""
        self.check_fault()
        self.clock.flush()
        if self._qnu_timer is not None:  # QNU attempts run until now, without a herald
            ran = max(0, (self.lab_ps() - self._arm_start) // to_ps(self.attempt_period))
            if self._arm_total is not None:
                ran = min(ran, self._arm_total)
            self.attempts += max(0, ran - self.armed_attempts)
            self.armed_attempts = max(self.armed_attempts, ran)
        self._finish()
        return {"attempts": self.armed_attempts}

    def statistics(self) -> dict[str, Any]:
        """Counters since the last reset."""
        self.clock.flush()
        return {"attempts": self.attempts, "heralds": sum(self.heralds.values()),
                "psi_plus": self.heralds["psi+"], "psi_minus": self.heralds["psi-"],
                "since": self.ts(self.since_ps)}

    def reset_statistics(self) -> None:
        """Zero the counters."""
        self.clock.flush()
        self.attempts = 0
        self.heralds = {"psi+": 0, "psi-": 0}
        self.since_ps = self.lab_ps()

    async def lock_phase(self, setpoint: float) -> dict[str, Any]:
        """Lock the interferometer phase; takes ``lock_time``."""
        self.check_fault()
        await self.spend(self.lock_time)
        self.locked = True
        self.locked_at_ps = self.lab_ps()
        self.setpoint = setpoint
        return {"phase_error": self.phase_noise, "locked": True}

    # --- server ---------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        return {"schemes": list(self.schemes), "inputs": 2, "detectors": 2,
                "detection_efficiency": self.detection_efficiency,
                "dark_count_rate": self.dark_count_rate,
                "hom_visibility": self.visibility, "max_attempt_rate": self.max_attempt_rate}

    async def aclose(self) -> None:
        self.clock.remove_ticker(self._ticker)
        await super().aclose()
