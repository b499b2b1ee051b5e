"""Emulated White-Rabbit-like timing card: the ``TimingCard`` contract on a steerable clock.

Model (see :mod:`emulators.physics.clocks` and ``docs/physics.md``):

* **The card disciplines its domain.** The domain's time at true lab time ``t`` is
  ``t + x(t) + s(t)``: ``x`` is the free-running time error of the node's oscillator and
  ``s(t) = s0 + f (t - t_f)`` the card's steering (phase steps from ``set_time``,
  ``adjust_offset``, the servo or a clock slip; ``f`` the fractional frequency correction of
  ``adjust_frequency``, in force from then on). That clock is a :class:`DomainClock`:
  standalone, the card's own :class:`OscillatorDomain` -- an
  :class:`~emulators.physics.clocks.OscillatorModel` (offset, frequency offset, drift, white
  FM, random-walk FM; defaults from the ``ocxo`` or ``rubidium`` profile) sampled
  incrementally with the exact increments of its processes; in a lab, the lab core can pass
  the node's clock (``clock=``; :class:`emulators.lab.clocks.NodeClock` fits the protocol),
  so the card steers the domain every device of the node reads.
  :meth:`TimingCardEmulator.domain_now_ps` reads it now (int ps, never decreasing between
  steps); the card's server uses it as its clock.
* **Measurements** (time stamps of two-way exchanges and of input pulses) add Gaussian
  jitter ``timestamp_jitter`` (default: the oscillator's white PM) and are floored to the
  card's ``resolution``; the domain clock itself carries no such jitter.
* **Two-way time transfer** (``sync_exchange``): this card stamps ``t1`` at lab time ``s``,
  the peer stamps ``t2`` at ``s + d_out`` and ``t3`` after its ``turnaround``, this card
  stamps ``t4`` at ``s + d_out + turnaround + d_back``; the command blocks (lab time) for
  that round trip. With ``D = d_out - d_back`` (the link ``asymmetry``) the estimate
  ``((t2 - t1) - (t4 - t3)) / 2`` equals the peer's offset plus ``D / 2``. Peers are other
  :class:`TimingCardEmulator` objects (:meth:`TimingCardEmulator.connect_peer`) or virtual
  clocks given by ``peers=`` (each with its own oscillator).
* **Roles and servo.** ``free_running`` and ``master``: no discipline (not locked).
  ``slave``: at once one exchange with the peer steps the clock by the measured offset
  (locked from then on); then every ``servo_period`` of lab time an exchange steps the phase
  by the measured offset ``theta`` and adds ``servo_gain * theta / servo_period`` to the
  frequency correction (a PI loop; an asymmetric link leaves the slave ``D/2`` ahead of its
  master, the bias of the estimate). ``grandmaster``: the same servo against an ideal
  external reference (GNSS/maser-like: the lab's true time at the phase the clock had when
  the mode was chosen), compared locally (no link delay), after a feed-forward correction of
  the oscillator's deterministic frequency error; locked at once. Leaving a mode keeps the
  frequency correction (holdover).
* **Triggers**: ``schedule_trigger`` pulses fire when the domain reaches their time (a task
  per trigger waits with ``env.spend`` and wakes early when the clock is stepped; pulses a
  forward step jumps over are skipped, not fired in a burst); each pulse is published on
  ``triggers``, handed to trigger listeners, and -- with ``loopback`` (output k cabled to
  input k) -- time-stamped on ``tags`` when that input is enabled. ``pps`` publishes each
  whole second of the domain. Background tasks start with the server and are cancelled when
  it stops (:meth:`TimingCardEmulator.aclose`).

Hooks for the lab world (plain methods, no I/O): :meth:`TimingCardEmulator.domain_now_ps`,
:meth:`domain_time_ps_at`, :meth:`lab_time_of`, :meth:`stamp_at`, :meth:`connect_peer`,
:meth:`add_trigger_listener`, :meth:`input_pulse`, :meth:`clock_slip` (fault: an
unannounced step), :meth:`set_fault`; the ``clock=`` parameter.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from emulators.devices.common import nonnegative, number, positive
from emulators.devices.env import EmulatorEnv
from emulators.devices.serving import contract_server
from emulators.physics import fiber
from emulators.physics.clocks import OscillatorModel
from emulators.physics.profiles import profile
from qnhw.devices import timing as timing_contract
from qnhw.errors import BadParams, Busy, DeviceFault
from qnhw.log import get_logger
from qnhw.protocol.types import Timestamp
from qnhw.runtime.server import DeviceServer
from qnhw.runtime.tasks import BackgroundTasks

__all__ = ["DomainClock", "OscillatorClock", "OscillatorDomain", "PeerClock", "PeerLink",
           "TimingCardEmulator", "VirtualPeer", "oscillator_model", "start_timing_card"]

_PS = 10**12
#: Oscillator profiles a card can use, and the name the capabilities give them.
OSCILLATORS = {"ocxo": "OCXO", "rubidium": "rubidium"}
#: Pulses a trigger fires before it yields to the event loop while catching up.
_CATCH_UP = 256

#: A trigger listener: ``(channel, time_ps in the card domain, lab_time s)``.
TriggerListener = Callable[[int, int, float], None]


def _lab_ps(seconds: float) -> int:
    return round(seconds * _PS)


def oscillator_model(name: str, *, offset: float = 0.0, frequency_offset: float = 0.0,
                     drift_per_s: float | None = None, white_pm_s: float | None = None,
                     white_fm_adev_1s: float | None = None,
                     random_walk_fm_adev_1s: float | None = None) -> OscillatorModel:
    """An :class:`OscillatorModel` from profile ``name`` (``ocxo``, ``rubidium``) with
    overrides; ``ValueError`` naming a bad parameter."""
    if name not in OSCILLATORS:
        raise ValueError(f"oscillator must be one of {sorted(OSCILLATORS)}, got {name!r}")
    p = profile(name)

    def pick(key: str, value: float | None) -> float:
        return nonnegative(key, p[key] if value is None else value)

    return OscillatorModel(
        offset_s=number("offset", offset),
        frequency_offset=number("frequency_offset", frequency_offset),
        drift_per_s=number("drift_per_s", p["drift_per_s"] if drift_per_s is None
                            else drift_per_s),
        white_pm_s=pick("white_pm_s", white_pm_s),
        white_fm_adev_1s=pick("white_fm_adev_1s", white_fm_adev_1s),
        random_walk_fm_adev_1s=pick("random_walk_fm_adev_1s", random_walk_fm_adev_1s))


class OscillatorClock:
    """Free-running time error ``x(t)`` (s) of an :class:`OscillatorModel` without its white
    PM, sampled on demand at lab times ``t`` (s) with the exact increments of its processes
    (as :func:`emulators.physics.clocks.sample_time_error`, but incremental).

    White FM adds a Wiener increment ``N(0, a^2 dt)``; random-walk FM integrates ``(x, y)``
    exactly (``Var dy = 3 b^2 dt``, ``Var dx = b^2 dt^3``, ``Cov = 3 b^2 dt^2 / 2``); offset,
    frequency offset and drift are deterministic (from ``t = 0``). A time earlier than the
    latest sample gets the linear interpolation of the stochastic part between the last two
    samples (the bridge's mean).
    """

    def __init__(self, model: OscillatorModel, rng: np.random.Generator, t0: float) -> None:
        self.model = model
        self.rng = rng
        self._t = t0
        self._xw = 0.0  # white-FM phase
        self._xr = 0.0  # random-walk-FM phase
        self._yr = 0.0  # random-walk-FM frequency
        self._prev_t = t0
        self._prev_s = 0.0

    def deterministic(self, t: float) -> float:
        """Offset, frequency offset and drift part of ``x(t)``."""
        m = self.model
        return m.offset_s + m.frequency_offset * t + m.drift_per_s * t * t / 2.0

    def frequency(self, t: float) -> float:
        """Fractional frequency offset at ``t`` (deterministic part plus random walk)."""
        return self.model.frequency_offset + self.model.drift_per_s * t + self._yr

    def _advance(self, t: float) -> None:
        dt = t - self._t
        self._prev_t, self._prev_s = self._t, self._xw + self._xr
        m = self.model
        if m.white_fm_adev_1s > 0.0:
            self._xw += float(self.rng.normal(0.0, m.white_fm_adev_1s * math.sqrt(dt)))
        if m.random_walk_fm_adev_1s > 0.0:
            c = 3.0 * m.random_walk_fm_adev_1s**2
            z1, z2 = self.rng.standard_normal(2)
            dy = math.sqrt(c * dt) * float(z1)
            dx = dt / 2.0 * dy + math.sqrt(c * dt**3 / 12.0) * float(z2)
            self._xr += self._yr * dt + dx
            self._yr += dy
        self._t = t

    def x(self, t: float) -> float:
        """Time error (s) at lab time ``t`` (s)."""
        if t > self._t:
            self._advance(t)
        stochastic = self._xw + self._xr
        if t < self._t:
            if t <= self._prev_t:
                stochastic = self._prev_s
            else:
                w = (t - self._prev_t) / (self._t - self._prev_t)
                stochastic = self._prev_s + w * (stochastic - self._prev_s)
        return self.deterministic(t) + stochastic


class DomainClock(Protocol):
    """A steerable clock domain, times in integer ps (lab and domain).

    :class:`OscillatorDomain` implements it; :class:`emulators.lab.clocks.NodeClock` fits
    it structurally, so the lab core can hand a node's clock to the card (``clock=``).
    """

    def read(self, lab_ps: int) -> int: ...
    def to_lab(self, domain_ps: int) -> int: ...
    def adjust_offset(self, seconds: float, lab_ps: int) -> None: ...
    def adjust_frequency(self, fractional: float, lab_ps: int) -> None: ...
    def set_time(self, domain_ps: int, lab_ps: int) -> None: ...
    def frequency(self, lab_ps: int) -> float: ...


class OscillatorDomain:
    """A :class:`DomainClock` over an :class:`OscillatorClock`: reads
    ``t + x(t) + s0 + f (t - t_f)``."""

    def __init__(self, model: OscillatorModel, rng: np.random.Generator, t0: float) -> None:
        self.osc = OscillatorClock(model, rng, t0)
        self.steer_offset = 0.0
        self.steer_freq = 0.0
        self._steer_t0 = t0

    def error_s(self, lab_ps: int) -> float:
        """Reading minus lab time (s) at ``lab_ps``."""
        t = lab_ps / _PS
        return self.osc.x(t) + self.steer_offset + self.steer_freq * (t - self._steer_t0)

    def read(self, lab_ps: int) -> int:
        return int(lab_ps) + round(self.error_s(lab_ps) * _PS)

    def to_lab(self, domain_ps: int) -> int:
        t = int(domain_ps)
        for _ in range(3):  # the error changes slowly: the fixed point converges at once
            t = int(domain_ps) - round(self.error_s(t) * _PS)
        return t

    def _fold(self, lab_ps: int) -> None:
        t = lab_ps / _PS
        self.steer_offset += self.steer_freq * (t - self._steer_t0)
        self._steer_t0 = t

    def adjust_offset(self, seconds: float, lab_ps: int) -> None:
        self._fold(lab_ps)
        self.steer_offset += seconds

    def adjust_frequency(self, fractional: float, lab_ps: int) -> None:
        self._fold(lab_ps)
        self.steer_freq = float(fractional)

    def set_time(self, domain_ps: int, lab_ps: int) -> None:
        self.adjust_offset((domain_ps - self.read(lab_ps)) / _PS, lab_ps)

    def frequency(self, lab_ps: int) -> float:
        """Fractional frequency against lab time (oscillator plus steering)."""
        return self.osc.frequency(lab_ps / _PS) + self.steer_freq


class PeerClock(Protocol):
    """What a two-way exchange needs from the far end: its domain, and a time stamp taken
    at a lab time (s) -- ps in its domain, with its measurement noise."""

    @property
    def domain(self) -> str: ...

    def stamp_at(self, lab_time: float) -> int: ...


class VirtualPeer:
    """A peer clock with no device behind it: an :class:`OscillatorDomain` of its own,
    stamped with its white PM and floored to ``resolution`` (s)."""

    def __init__(self, domain: str, model: OscillatorModel, rng: np.random.Generator,
                 t0: float, resolution: float = 1e-12) -> None:
        self._domain = domain
        self.clock = OscillatorDomain(model, rng, t0)
        self._jitter = model.white_pm_s
        self._rng = rng
        self._res = max(1, round(resolution * _PS))

    @property
    def domain(self) -> str:
        return self._domain

    def stamp_at(self, lab_time: float) -> int:
        ps = self.clock.read(_lab_ps(lab_time))
        if self._jitter > 0:
            ps += round(float(self._rng.normal(0.0, self._jitter)) * _PS)
        return ps - ps % self._res


@dataclass(frozen=True)
class PeerLink:
    """A link to a peer: one-way delays ``delay_out`` (this card to the peer) and
    ``delay_back`` (s), the peer's ``turnaround`` (s) and its clock."""

    clock: PeerClock
    delay_out: float
    delay_back: float
    turnaround: float = 1e-6

    @property
    def asymmetry(self) -> float:
        """``D = delay_out - delay_back`` (s)."""
        return self.delay_out - self.delay_back


class _CardServer(DeviceServer):
    """A DeviceServer that starts and stops the card's background tasks with itself."""

    def __init__(self, *args: Any, card: TimingCardEmulator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._card = card

    async def start(self) -> None:
        await super().start()
        self._card._start_background()

    async def stop(self) -> None:
        await self._card.aclose()
        await super().stop()


class TimingCardEmulator:
    """A White-Rabbit-like timing card disciplining a clock domain.

    Parameters (keywords; SI units; a bad value raises ``ValueError`` naming it):

    ``clock`` (None: the card's own :class:`OscillatorDomain` from the oscillator
    parameters below; or a :class:`DomainClock` such as the lab's node clock, whose noise
    is its own); ``oscillator`` ("ocxo" or "rubidium": the profile of the noise defaults);
    ``offset`` (0.0 s: the card's time minus lab time at lab time 0; the card's time must
    not be negative), ``frequency_offset`` (0.0), ``drift_per_s``, ``white_pm_s``,
    ``white_fm_adev_1s``, ``random_walk_fm_adev_1s`` (profile values unless given);
    ``timestamp_jitter`` (rms s of each time stamp; default the white PM, 0 with ``clock``);
    ``outputs`` ((0, 1, 2, 3)), ``inputs`` ((0, 1, 2, 3)); ``loopback`` (True: output k is
    cabled to input k); ``resolution`` (1e-12 s); ``max_frequency_adjust`` (1e-4);
    ``sync_protocol`` ("white_rabbit"); ``servo_period`` (0.1 s), ``servo_gain`` (0.3, in
    (0, 2]); ``peers``: virtual peers ``{name: {key: value}}`` with keys ``offset`` (s, the
    peer's time minus lab time at 0; 0.0), ``frequency_offset`` (0.0), ``oscillator`` (the
    card's), the noise overrides ``drift_per_s``, ``white_pm_s``, ``white_fm_adev_1s``,
    ``random_walk_fm_adev_1s``, ``delay`` (one-way, s; default from ``length_m``, else 5e-6
    s, 1 km of fibre), ``length_m`` (delay from :func:`emulators.physics.fiber.delay`),
    ``asymmetry`` (``D = d_out - d_back``, s; 0.0), ``turnaround`` (1e-6 s), ``domain``
    (the name); default ``{"peer": {"offset": 2.5e-6}}`` so a standalone card can exchange.
    """

    CONTRACT = timing_contract.CONTRACT

    def __init__(self, env: EmulatorEnv, *, clock: DomainClock | None = None,
                 oscillator: str = "ocxo", offset: float = 0.0,
                 frequency_offset: float = 0.0, drift_per_s: float | None = None,
                 white_pm_s: float | None = None, white_fm_adev_1s: float | None = None,
                 random_walk_fm_adev_1s: float | None = None,
                 timestamp_jitter: float | None = None,
                 outputs: Sequence[int] = (0, 1, 2, 3), inputs: Sequence[int] = (0, 1, 2, 3),
                 loopback: bool = True, resolution: float = 1e-12,
                 max_frequency_adjust: float = 1e-4, sync_protocol: str = "white_rabbit",
                 servo_period: float = 0.1, servo_gain: float = 0.3,
                 peers: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.env = env
        self.oscillator = oscillator
        self.model = oscillator_model(
            oscillator, offset=offset, frequency_offset=frequency_offset,
            drift_per_s=drift_per_s, white_pm_s=white_pm_s, white_fm_adev_1s=white_fm_adev_1s,
            random_walk_fm_adev_1s=random_walk_fm_adev_1s)
        self.outputs = self._channels("outputs", outputs)
        self.inputs = self._channels("inputs", inputs)
        self.loopback = bool(loopback)
        self.resolution = positive("resolution", resolution)
        self._res_ps = max(1, round(self.resolution * _PS))
        self.max_frequency_adjust = positive("max_frequency_adjust", max_frequency_adjust)
        if self.max_frequency_adjust > 1e-4:
            raise ValueError("max_frequency_adjust must be at most 1e-4 (the contract's range)")
        if not isinstance(sync_protocol, str) or not sync_protocol:
            raise ValueError("sync_protocol must be a non-empty str")
        self.sync_protocol = sync_protocol
        self.servo_period = positive("servo_period", servo_period)
        self.servo_gain = positive("servo_gain", servo_gain)
        if self.servo_gain > 2.0:
            raise ValueError("servo_gain must be at most 2 (the loop is unstable above)")
        self._rng = self._child_rng()  # time-stamp jitter
        self.clock: DomainClock = clock if clock is not None else OscillatorDomain(
            self.model, self._child_rng(), env.lab_now())
        self.timestamp_jitter = nonnegative(
            "timestamp_jitter", timestamp_jitter if timestamp_jitter is not None
            else (0.0 if clock is not None else self.model.white_pm_s))
        start = self.clock.read(_lab_ps(env.lab_now()))
        if start < 0:
            raise ValueError(f"offset {offset} s makes the card's time negative")
        self._last_ps = start
        self._freq = 0.0  # the frequency correction this card set
        self.mode = "free_running"
        self.peer: str | None = None
        self._servo_locked = False
        self._ref_phase_ps = 0  # grandmaster: reference reading minus lab time
        self.last_offset: float | None = None
        self.last_delay: float | None = None
        self.peers: dict[str, PeerLink] = {}
        for pname, spec in (peers if peers is not None
                            else {"peer": {"offset": 2.5e-6}}).items():
            self.peers[pname] = self._virtual_peer(pname, spec)
        self.triggers: dict[int, dict[str, Any]] = {}
        self._trigger_tasks: dict[int, asyncio.Task[None]] = {}
        self._next_id = 0
        self.enabled_inputs: dict[int, str] = {}
        self._listeners: list[TriggerListener] = []
        self._pps: asyncio.Task[None] | None = None
        self._servo: asyncio.Task[None] | None = None
        self._stepped = asyncio.Event()
        self._fault: str | None = None
        self.server: DeviceServer | None = None
        self._log = get_logger("emulator", device=env.name, contract="TimingCard")
        self._tasks = BackgroundTasks(self._log)

    # --- construction helpers -------------------------------------------------------------

    def _child_rng(self) -> np.random.Generator:
        return np.random.default_rng(int(self.env.rng.integers(2**63)))

    @staticmethod
    def _channels(name: str, values: Sequence[int]) -> list[int]:
        out = list(values)
        for c in out:
            if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 255:
                raise ValueError(f"{name} must be ints in 0..255, got {c!r}")
        if len(set(out)) != len(out):
            raise ValueError(f"{name} must not repeat a channel")
        return out

    def _virtual_peer(self, name: str, spec: Mapping[str, Any]) -> PeerLink:
        if not isinstance(name, str) or not 1 <= len(name) <= 256:
            raise ValueError(f"peers: a peer name must be a str of 1..256 chars, got {name!r}")
        noise = ("drift_per_s", "white_pm_s", "white_fm_adev_1s", "random_walk_fm_adev_1s")
        known = {"offset", "frequency_offset", "oscillator", "delay", "length_m", "asymmetry",
                 "turnaround", "domain", *noise}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"peers[{name!r}] has unknown keys {sorted(unknown)}; known: "
                             f"{sorted(known)}")
        where = f"peers[{name!r}]"
        model = oscillator_model(spec.get("oscillator", self.oscillator),
                                 offset=number(f"{where}.offset", spec.get("offset", 0.0)),
                                 frequency_offset=number(f"{where}.frequency_offset",
                                                          spec.get("frequency_offset", 0.0)),
                                 **{k: number(f"{where}.{k}", spec[k])
                                    for k in noise if k in spec})
        if "delay" in spec:
            delay = nonnegative(f"{where}.delay", spec["delay"])
        elif "length_m" in spec:
            delay = fiber.delay(nonnegative(f"{where}.length_m", spec["length_m"]))
        else:
            delay = 5e-6
        asym = number(f"{where}.asymmetry", spec.get("asymmetry", 0.0))
        if abs(asym) > 2 * delay:
            raise ValueError(f"{where}.asymmetry must be at most twice the delay")
        domain = spec.get("domain", name)
        if not isinstance(domain, str) or not domain:
            raise ValueError(f"{where}.domain must be a non-empty str")
        clock = VirtualPeer(domain, model, self._child_rng(), self.env.lab_now(),
                            self.resolution)
        return PeerLink(clock, delay + asym / 2, delay - asym / 2,
                        nonnegative(f"{where}.turnaround", spec.get("turnaround", 1e-6)))

    # --- the clock ------------------------------------------------------------------------

    @property
    def domain(self) -> str:
        """The card's clock domain (``env.domain``)."""
        return self.env.domain

    def domain_time_ps_at(self, lab_time: float) -> int:
        """The card's time (int ps, its domain) at ``lab_time`` (s), without time-stamp
        jitter. Valid for times near now (clocks are sampled incrementally)."""
        return self.clock.read(_lab_ps(lab_time))

    def domain_now_ps(self) -> int:
        """The card's time now (int ps, its domain); never decreases between steps."""
        ps = self.domain_time_ps_at(self.env.lab_now())
        if ps < self._last_ps:
            return self._last_ps
        self._last_ps = ps
        return ps

    def rate(self) -> float:
        """Domain seconds per lab second now."""
        return 1.0 + self.clock.frequency(_lab_ps(self.env.lab_now()))

    def lab_time_of(self, domain_ps: int) -> float:
        """The lab time (s) at which the card's clock reads ``domain_ps``."""
        return self.clock.to_lab(int(domain_ps)) / _PS

    def stamp_at(self, lab_time: float) -> int:
        """A time stamp the card takes at ``lab_time`` (s): its time plus
        ``timestamp_jitter``, floored to the resolution (int ps, its domain)."""
        ps = self.domain_time_ps_at(lab_time)
        if self.timestamp_jitter > 0:
            ps += round(float(self._rng.normal(0.0, self.timestamp_jitter)) * _PS)
        return ps - ps % self._res_ps

    def _stepped_now(self) -> None:
        """The clock was stepped: re-arm the monotonic guard and wake every waiter."""
        self._last_ps = self.domain_time_ps_at(self.env.lab_now())
        old, self._stepped = self._stepped, asyncio.Event()
        old.set()

    def _step(self, seconds: float) -> int:
        now = self.domain_now_ps()
        if now + round(seconds * _PS) < 0:
            raise BadParams("the step would make the card's time negative",
                            {"param": "offset", "value": seconds})
        self.clock.adjust_offset(seconds, _lab_ps(self.env.lab_now()))
        self._stepped_now()
        return self._last_ps

    def _set_frequency(self, fractional: float) -> None:
        lim = self.max_frequency_adjust
        self._freq = max(-lim, min(lim, float(fractional)))
        self.clock.adjust_frequency(self._freq, _lab_ps(self.env.lab_now()))
        self._stepped_now()

    # --- helpers --------------------------------------------------------------------------

    def _ts(self, ps: int | None = None) -> Timestamp:
        return Timestamp(int(self.domain_now_ps() if ps is None else ps), self.domain)

    def _check_fault(self) -> None:
        if self._fault is not None:
            raise DeviceFault(f"{self.env.name}: {self._fault}", {"fault": self._fault})

    async def _sleep_or_step(self, seconds: float) -> None:
        """Let ``seconds`` of lab time pass, or less if the clock is stepped meanwhile."""
        stepped = self._stepped
        if stepped.is_set():
            return
        spend = asyncio.ensure_future(self.env.spend(seconds))
        wake = asyncio.ensure_future(stepped.wait())
        try:
            await asyncio.wait({spend, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (spend, wake):
                t.cancel()
            for t in (spend, wake):
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _wait_until(self, at_ps: int) -> bool:
        """Wait until the domain reaches ``at_ps``; False if a step moved the clock while
        waiting (the caller recomputes its target)."""
        stepped = self._stepped
        while True:
            now = self.domain_now_ps()
            if now >= at_ps:
                return True
            if stepped.is_set():
                return False
            await self._sleep_or_step((at_ps - now + 1) / _PS / self.rate())
            if stepped.is_set():
                return self.domain_now_ps() >= at_ps

    async def _publish(self, stream: str, payload: Any, ts_ps: int) -> None:
        if self.server is not None:
            await self.server.publish(stream, payload, ts_ps)

    # --- background: PPS, triggers, servo -------------------------------------------------

    def _start_background(self) -> None:
        if self._pps is None or self._pps.done():
            self._pps = self._tasks.spawn(self._pps_loop())

    async def aclose(self) -> None:
        """Cancel every background task (PPS, triggers, servo) and wait for them."""
        await self._tasks.cancel_all()
        self._trigger_tasks.clear()
        self.triggers.clear()
        self._pps = self._servo = None

    async def _pps_loop(self) -> None:
        while True:
            second = self.domain_now_ps() // _PS + 1
            if await self._wait_until(second * _PS):
                await self._publish("pps", {"second": int(second)}, second * _PS)

    async def _fire(self, tid: int) -> None:
        info = self.triggers[tid]
        fired = 0
        try:
            while info["remaining"] > 0:
                at = int(info["at"])
                stepped = self._stepped
                if not await self._wait_until(at):
                    continue  # the clock was stepped: wait again for the same time
                period = info["period"]
                late = self.domain_now_ps() - at
                if stepped.is_set() and period is not None and late > period * _PS:
                    # a forward step jumped over pulses: they are missed, not fired at once
                    missed = min(int(late // round(period * _PS)), info["remaining"] - 1)
                    self._log.warning("trigger pulses skipped by a clock step",
                                      trigger_id=tid, missed=missed)
                    info["remaining"] -= missed
                    at += missed * round(period * _PS)
                    info["at"] = at
                await self._pulse(info["channel"], at, info["width"], tid)
                info["remaining"] -= 1
                if period is not None:
                    info["at"] = at + round(period * _PS)
                fired += 1
                if fired % _CATCH_UP == 0:
                    await asyncio.sleep(0)
        finally:
            self.triggers.pop(tid, None)
            self._trigger_tasks.pop(tid, None)

    async def _pulse(self, channel: int, at: int, width: float, tid: int) -> None:
        lab = self.lab_time_of(at)
        for listener in list(self._listeners):
            listener(channel, at, lab)
        await self._publish("triggers", {"trigger_id": tid, "channel": channel}, at)
        if self.loopback and channel in self.enabled_inputs:
            edge = self.enabled_inputs[channel]
            await self.input_pulse(channel, lab, width if edge == "falling" else 0.0)

    async def _servo_loop(self, measure: Callable[[], Awaitable[tuple[float, float]]]) -> None:
        while True:
            await self.env.spend(self.servo_period)
            await self._servo_step(measure, integrate=True)

    async def _servo_step(self, measure: Callable[[], Awaitable[tuple[float, float]]], *,
                          integrate: bool) -> None:
        """One servo update: measure ``(offset, delay)``, step the phase by the offset and
        (``integrate``) add ``servo_gain * offset / servo_period`` to the frequency."""
        offset, delay = await measure()
        self.last_offset, self.last_delay = offset, delay
        if integrate:
            self._set_frequency(self._freq + self.servo_gain * offset / self.servo_period)
        self._step(offset)
        self._servo_locked = True

    async def _measure_peer(self, peer: str) -> tuple[float, float]:
        t1, t2, t3, t4 = await self._exchange(peer)
        return ((t2 - t1) - (t4 - t3)) / 2 / _PS, ((t2 - t1) + (t4 - t3)) / 2 / _PS

    async def _measure_reference(self) -> tuple[float, float]:
        """Offset of the ideal reference (lab time at the captured phase) from the card,
        compared locally; no lab time passes."""
        t = self.env.lab_now()
        reference = _lab_ps(t) + self._ref_phase_ps
        return (reference - self.stamp_at(t)) / _PS, 0.0

    # --- two-way exchange -----------------------------------------------------------------

    def _link(self, peer: str) -> PeerLink:
        link = self.peers.get(peer)
        if link is None:
            raise BadParams(f"no peer {peer!r} on this card's links ({sorted(self.peers)})",
                            {"param": "peer", "value": peer})
        return link

    async def _exchange(self, peer: str) -> tuple[int, int, int, int]:
        """One exchange; blocks (lab time) for the round trip; returns t1..t4 (ps)."""
        link = self._link(peer)
        s = self.env.lab_now()
        arrive = s + link.delay_out
        respond = arrive + link.turnaround
        back = respond + link.delay_back
        t1 = self.stamp_at(s)
        t2 = link.clock.stamp_at(arrive)
        t3 = link.clock.stamp_at(respond)
        t4 = self.stamp_at(back)
        left = back - self.env.lab_now()
        if left > 0:
            await self.env.spend(left)
        return t1, t2, t3, t4

    # --- contract commands ----------------------------------------------------------------

    @property
    def locked(self) -> bool:
        """Grandmaster: always; slave: after the first servo exchange; else not."""
        return self.mode == "grandmaster" or (self.mode == "slave" and self._servo_locked)

    def get_time(self) -> dict[str, Any]:
        """The card's time, lock state and mode. Does not block."""
        self._check_fault()
        return {"time": self._ts(), "locked": self.locked, "mode": self.mode}

    def set_time(self, time: int) -> None:
        """Step the clock to ``time`` (ps); :class:`qnhw.Busy` in slave mode."""
        self._check_fault()
        if self.mode == "slave":
            raise Busy("a slave's time is set by its master")
        self.clock.set_time(int(time), _lab_ps(self.env.lab_now()))
        self._stepped_now()
        if self.mode == "grandmaster":  # the reference is re-phased to the new time
            self._ref_phase_ps = self._last_ps - _lab_ps(self.env.lab_now())

    def adjust_offset(self, offset: float) -> dict[str, Any]:
        """Step the clock by ``offset`` (s); returns the new time."""
        self._check_fault()
        new = self._step(offset)
        if self.mode == "grandmaster":
            self._ref_phase_ps += round(offset * _PS)
        return {"time": self._ts(new)}

    def adjust_frequency(self, fractional: float) -> None:
        """Replace the frequency correction by ``fractional`` from now on (a servo in
        force keeps steering it)."""
        self._check_fault()
        if abs(fractional) > self.max_frequency_adjust:
            raise BadParams(f"|fractional| above this card's maximum "
                            f"{self.max_frequency_adjust}", {"param": "fractional",
                                                             "value": fractional})
        self._set_frequency(fractional)

    async def set_mode(self, mode: str, peer: str | None = None) -> None:
        """Choose the role. Slave mode locks to ``peer`` with one exchange (blocks for the
        round trip); slave and grandmaster start the servo; other modes stop it."""
        self._check_fault()
        if mode == "slave":
            if peer is None:
                raise BadParams(f"slave mode needs a peer among {sorted(self.peers)}",
                                {"param": "peer"})
            self._link(peer)
        elif peer is not None:
            raise BadParams("only slave mode takes a peer", {"param": "peer", "value": peer})
        if self._servo is not None:
            self._servo.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._servo
            self._servo = None
        self.mode, self.peer = mode, peer
        self._servo_locked = False
        if mode == "slave":
            assert peer is not None

            async def measure() -> tuple[float, float]:
                return await self._measure_peer(peer)

            await self._servo_step(measure, integrate=False)
            self._servo = self._tasks.spawn(self._servo_loop(measure))
        elif mode == "grandmaster":
            lab_ps = _lab_ps(self.env.lab_now())
            self._ref_phase_ps = self.domain_now_ps() - lab_ps
            # feed forward: cancel the oscillator's deterministic frequency error
            own = self.clock.frequency(lab_ps) - self._freq
            self._set_frequency(-own)
            self._servo_locked = True
            self._servo = self._tasks.spawn(self._servo_loop(self._measure_reference))
        self._log.info("mode set", mode=mode, peer=peer)

    def schedule_trigger(self, at: int, channel: int, width: float = 1e-6,
                         period: float | None = None, count: int = 1) -> dict[str, Any]:
        """Schedule ``count`` pulses on ``channel`` from ``at`` (ps, in the future) every
        ``period`` (s). Does not block; the pulses fire from a background task."""
        self._check_fault()
        if channel not in self.outputs:
            raise BadParams(f"output {channel} does not exist ({self.outputs})",
                            {"param": "channel", "value": channel})
        if at <= self.domain_now_ps():
            raise BadParams("at is not in the future", {"param": "at", "value": at})
        if count > 1 and period is None:
            raise BadParams("count > 1 needs a period", {"param": "period"})
        if period is not None and width >= period:
            raise BadParams("width must be shorter than the period", {"param": "width"})
        tid = self._next_id
        self._next_id += 1
        self.triggers[tid] = {"trigger_id": tid, "channel": channel, "at": int(at),
                              "width": float(width), "period": period, "remaining": count}
        self._trigger_tasks[tid] = self._tasks.spawn(self._fire(tid))
        return {"trigger_id": tid}

    def cancel_trigger(self, trigger_id: int) -> None:
        """Cancel a pending trigger; :class:`qnhw.BadParams` if unknown."""
        self._check_fault()
        task = self._trigger_tasks.pop(trigger_id, None)
        if task is None:
            raise BadParams(f"no pending trigger {trigger_id}",
                            {"param": "trigger_id", "value": trigger_id})
        task.cancel()
        self.triggers.pop(trigger_id, None)

    def list_triggers(self) -> dict[str, Any]:
        """Pending triggers. Does not block."""
        self._check_fault()
        return {"triggers": [dict(t, at=self._ts(t["at"])) for t in self.triggers.values()]}

    async def sync_exchange(self, peer: str) -> dict[str, Any]:
        """One two-way exchange with ``peer``; blocks (lab time) for the round trip. In slave
        mode with its master, updates the figures of ``sync_status``."""
        self._check_fault()
        link = self._link(peer)
        t1, t2, t3, t4 = await self._exchange(peer)
        if self.mode == "slave" and peer == self.peer:
            self.last_offset = ((t2 - t1) - (t4 - t3)) / 2 / _PS
            self.last_delay = ((t2 - t1) + (t4 - t3)) / 2 / _PS
        return {"peer": peer, "t1": self._ts(t1), "t2": Timestamp(t2, link.clock.domain),
                "t3": Timestamp(t3, link.clock.domain), "t4": self._ts(t4)}

    def sync_status(self) -> dict[str, Any]:
        """Role, lock, peer, last offset and delay (s), frequency correction. Does not
        block."""
        self._check_fault()
        return {"mode": self.mode, "locked": self.locked, "peer": self.peer,
                "offset": self.last_offset, "delay": self.last_delay,
                "frequency": self._freq}

    def configure_input(self, channel: int, enabled: bool, edge: str = "rising") -> None:
        """Time-stamp pulses on input ``channel`` (on ``edge``) or stop."""
        self._check_fault()
        if channel not in self.inputs:
            raise BadParams(f"input {channel} does not exist ({self.inputs})",
                            {"param": "channel", "value": channel})
        if enabled:
            self.enabled_inputs[channel] = edge
        else:
            self.enabled_inputs.pop(channel, None)

    # --- hooks for the lab world ----------------------------------------------------------

    def connect_peer(self, name: str, card: PeerClock, *, delay: float,
                     asymmetry: float = 0.0, turnaround: float = 1e-6) -> None:
        """Put ``card`` (another :class:`TimingCardEmulator` or any :class:`PeerClock`) on a
        link named ``name``: one-way delay ``delay`` (s), asymmetry ``D = d_out - d_back``.
        Call before building the server, or the capabilities' peer list is updated."""
        d = nonnegative("delay", delay)
        a = number("asymmetry", asymmetry)
        if abs(a) > 2 * d:
            raise ValueError("asymmetry must be at most twice the delay")
        self.peers[name] = PeerLink(card, d + a / 2, d - a / 2,
                                    nonnegative("turnaround", turnaround))
        if self.server is not None:
            self.server.capabilities["peers"] = sorted(self.peers)

    def add_trigger_listener(self, listener: TriggerListener) -> Callable[[], None]:
        """Call ``listener(channel, time_ps, lab_time)`` for every fired pulse; returns a
        remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def input_pulse(self, channel: int, lab_time: float | None = None,
                          width: float = 0.0) -> int | None:
        """A pulse reaches input ``channel`` at ``lab_time`` (s, default now), ``width`` s
        long. If the input is enabled it is time-stamped on its edge and published on
        ``tags``; returns the stamp (ps) or None."""
        edge = self.enabled_inputs.get(channel)
        if edge is None:
            return None
        t = (self.env.lab_now() if lab_time is None else lab_time) + (
            width if edge == "falling" else 0.0)
        stamp = self.stamp_at(t)
        await self._publish("tags", {"channel": np.array([channel], dtype=np.int32),
                                     "time_ps": np.array([stamp], dtype=np.int64)}, stamp)
        return stamp

    def clock_slip(self, seconds: float) -> None:
        """Fault: the clock jumps by ``seconds`` without any command (a slip)."""
        self._log.warning("clock slip injected", seconds=seconds)
        self._step(seconds)

    def set_fault(self, message: str | None) -> None:
        """Inject a device fault (commands fail with :class:`qnhw.DeviceFault`; the clock
        keeps running) or clear it with ``None``."""
        self._fault = message

    # --- server ---------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """The capability map of the ``TimingCard`` contract."""
        return {"modes": list(timing_contract.MODES), "outputs": list(self.outputs),
                "inputs": list(self.inputs), "peers": sorted(self.peers),
                "resolution": self.resolution,
                "max_frequency_adjust": self.max_frequency_adjust,
                "oscillator": OSCILLATORS[self.oscillator],
                "sync_protocol": self.sync_protocol}

    def build_server(self, address: str = "tcp://127.0.0.1:0", *,
                     features: Sequence[str] | None = None, name: str | None = None,
                     **server_opts: Any) -> DeviceServer:
        """A (not yet started) server whose clock is :meth:`domain_now_ps` in
        ``env.domain``; starting it starts PPS, stopping it cancels every background task.
        ``features`` default: all (``input_tags``)."""
        self.server = contract_server(
            self, self.CONTRACT, name=name or self.env.name, address=address,
            capabilities=self.capabilities(), available=self.CONTRACT.features,
            features=features, clock=self.domain_now_ps, clock_domain=self.domain,
            server_cls=_CardServer, card=self, **server_opts)
        return self.server

    async def serve(self, address: str = "tcp://127.0.0.1:0", **opts: Any) -> DeviceServer:
        """Build and start the server (and the PPS task); returns it."""
        server = self.build_server(address, **opts)
        await server.start()
        self._log.info("timing card emulator serving", endpoint=server.address)
        return server



async def start_timing_card(env: EmulatorEnv, address: str = "tcp://127.0.0.1:0", *,
                            features: Sequence[str] | None = None, name: str | None = None,
                            **params: Any) -> DeviceServer:
    """Create a :class:`TimingCardEmulator` from ``params`` and serve it at ``address``;
    returns the started server (``await server.stop()`` also ends the card's tasks)."""
    return await TimingCardEmulator(env, **params).serve(address, features=features,
                                                         name=name)
