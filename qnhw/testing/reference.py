"""Minimal in-memory reference implementations of every device contract.

They keep state and behave plausibly -- counters count, routes route, a stored state can be
retrieved, a Bell circuit gives 00 and 11 -- without a physics model: that is the emulators'
job. They exist to prove the contracts implementable, to run the conformance kit against, and
to give the CLI and driver tests a device to talk to::

    async with reference_server("QuantumMemory") as server:
        async with QuantumMemory.connect(server.address) as mem:
            await mem.initialize(0)

Conventions shared by all of them: an argument that names something the device does not
have (a qubit beyond its size, a non-native gate, an unknown trigger id, an empty slot) is
refused with :class:`qnhw.BadParams`; a command the device cannot take in its present state
(configure while armed, fire while disarmed) with :class:`qnhw.Busy`. Timestamps are the
server's clock (``server.clock()``, int picoseconds in ``server.clock_domain``); the timing
card runs its own steerable clock and the trigger generator its own clock since power-on, each
in its own domain (:attr:`ReferenceDevice.CLOCK_DOMAIN`).
"""

from __future__ import annotations

import asyncio
import cmath
import contextlib
import math
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from qnhw.contract.spec import Contract
from qnhw.devices import (
    base,
    heralding,
    memory,
    qpu,
    source,
    switch,
    timetagger,
    timing,
    trigger_generator,
)
from qnhw.devices import transducer as transducer_mod
from qnhw.devices.qasm import QELIB1_GATES, Instruction, parse
from qnhw.errors import BadParams, Busy, DeviceFault
from qnhw.log import get_logger
from qnhw.protocol.types import Timestamp
from qnhw.runtime.server import DeviceServer, host_clock_ps
from qnhw.runtime.tasks import BackgroundTasks

_BATCH_S = 0.01  # period of background stream batches, seconds


class ReferenceDevice:
    """Base of the reference implementations: clock, publishing and background tasks."""

    CONTRACT: ClassVar[Contract]
    #: Devices with their own clock (not the host's) name its default domain here;
    #: :func:`reference_server` then serves :meth:`clock` in that domain.
    CLOCK_DOMAIN: ClassVar[str | None] = None

    def __init__(self, *, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self._server: DeviceServer | None = None
        self._log = get_logger("reference", contract=self.CONTRACT.name)
        self._tasks = BackgroundTasks(self._log)

    def default_capabilities(self) -> dict[str, Any]:
        """The capability map this reference device declares."""
        raise NotImplementedError

    def clock(self) -> int:
        """The device's own clock, int picoseconds; used as the server's clock only by
        devices that define their domain (the timing card)."""
        return host_clock_ps()

    def attach(self, server: DeviceServer) -> None:
        """Use ``server`` for timestamps and publishing."""
        self._server = server

    @property
    def server(self) -> DeviceServer:
        if self._server is None:
            raise RuntimeError("reference device not attached to a server")
        return self._server

    def now(self) -> int:
        return self.server.clock()

    def ts(self, ps: int) -> Timestamp:
        return Timestamp(int(ps), self.server.clock_domain)

    async def publish(self, stream: str, payload: Any, ts_ps: int | None = None) -> None:
        await self.server.publish(stream, payload, ts_ps)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a background task of this device (cancelled by :meth:`aclose`)."""
        return self._tasks.spawn(coro)

    async def aclose(self) -> None:
        """Cancel every background task and wait for them."""
        await self._tasks.cancel_all()


def _check_index(what: str, value: int, size: int) -> None:
    if not 0 <= value < size:
        raise BadParams(f"{what} {value} does not exist (this device has {size})",
                        {"param": what, "value": value})


# --- QuantumMemory ------------------------------------------------------------------------


def _rotate(v: npt.NDArray[np.float64], axis: str, angle: float) -> npt.NDArray[np.float64]:
    """Rotate Bloch vector ``v`` about ``axis`` by ``angle`` (right-handed)."""
    c, s = math.cos(angle), math.sin(angle)
    x, y, z = v
    if axis == "x":
        return np.array([x, c * y - s * z, s * y + c * z])
    if axis == "y":
        return np.array([c * x + s * z, y, -s * x + c * z])
    return np.array([c * x - s * y, s * x + c * y, z])


_FIXED_ROTATIONS: dict[str, tuple[str, float]] = {
    "x": ("x", math.pi), "y": ("y", math.pi), "z": ("z", math.pi),
    "s": ("z", math.pi / 2), "sdg": ("z", -math.pi / 2), "t": ("z", math.pi / 4),
    "tdg": ("z", -math.pi / 4), "sx": ("x", math.pi / 2),
}  # fmt: skip


class ReferenceMemory(ReferenceDevice):
    """A QuantumMemory keeping one Bloch vector per qubit.

    Single-qubit gates rotate it exactly; a two-qubit gate on qubits in Z eigenstates acts
    classically, otherwise it marks both qubits entangled with maximally mixed reduced states
    (as for a Bell pair). ``entangle`` succeeds after a geometric number of attempts with
    probability ``2 * alpha * link_efficiency`` each and sleeps for the attempts it used.
    """

    CONTRACT = memory.CONTRACT

    def __init__(self, *, qubits: int = 4, communication: Sequence[int] = (0,),
                 slots: int = 2, link_efficiency: float = 0.05,
                 neighbours: Sequence[str] = ("neighbour",), seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.neighbours = list(neighbours)
        self.n = qubits
        self.communication = list(communication)
        self.slots = slots
        self.link_efficiency = link_efficiency
        self.bloch = [np.array([0.0, 0.0, 1.0]) for _ in range(qubits)]
        self.states = ["uninitialized"] * qubits
        self.since: list[int | None] = [None] * qubits
        self.stored: dict[int, tuple[npt.NDArray[np.float64], int]] = {}
        self.photons = 0
        self.busy = False

    def default_capabilities(self) -> dict[str, Any]:
        return {
            "platform": "nv", "qubits": self.n, "slots": self.slots,
            "communication_qubits": list(self.communication),
            "gates": list(memory.MEMORY_GATES),
            "qubit_properties": [
                {"qubit": q, "role": "communication" if q in self.communication else "memory",
                 "t1": 3600.0 if q in self.communication else 36000.0,
                 "t2": 1e-3 if q in self.communication else 1.0, "dephasing": "gaussian",
                 "readout_error_0": 0.02, "readout_error_1": 0.05} for q in range(self.n)],
            "gate_properties": [
                {"gate": g, "qubits": [0] if g not in ("cx", "cz", "crx", "cry", "swap")
                 else [0, 1], "duration": 1e-6 if len(g) < 3 else 5e-4, "error": 1e-3}
                for g in memory.MEMORY_GATES],
            "wavelength": 637e-9, "neighbours": list(self.neighbours),
        }

    def _qubit(self, q: int) -> None:
        _check_index("qubit", q, self.n)

    async def _changed(self, q: int, event: str, state: str) -> int:
        t = self.now()
        self.states[q] = state
        self.since[q] = t
        await self.publish("state_changes", {"qubit": q, "event": event, "state": state}, t)
        return t

    async def initialize(self, qubit: int) -> None:
        self._qubit(qubit)
        self.bloch[qubit] = np.array([0.0, 0.0, 1.0])
        await self._changed(qubit, "initialized", "initialized")

    async def gate(self, name: str, qubits: list[int], angle: float) -> None:
        for q in qubits:
            self._qubit(q)
        two = memory.check_gate(name, qubits, angle)
        if not two:
            q = qubits[0]
            if name == "h":
                self.bloch[q] = _rotate(_rotate(self.bloch[q], "y", math.pi / 2), "x", math.pi)
            elif name in _FIXED_ROTATIONS:
                axis, a = _FIXED_ROTATIONS[name]
                self.bloch[q] = _rotate(self.bloch[q], axis, a)
            else:
                self.bloch[q] = _rotate(self.bloch[q], name[1], angle)
            await self._changed(q, "gate", self.states[q])
            return
        a, b = qubits
        if name == "swap":
            self.bloch[a], self.bloch[b] = self.bloch[b], self.bloch[a]
        elif abs(self.bloch[a][2]) > 1 - 1e-9:  # control in a Z eigenstate: classical action
            if self.bloch[a][2] < 0:
                axis = {"cx": "x", "cz": "z", "crx": "x", "cry": "y"}[name]
                turn = math.pi if name in ("cx", "cz") else angle
                self.bloch[b] = _rotate(self.bloch[b], axis, turn)
        else:
            self.bloch[a] = np.zeros(3)
            self.bloch[b] = np.zeros(3)
            self.states[a] = self.states[b] = "entangled"
        await self._changed(a, "gate", self.states[a])
        await self._changed(b, "gate", self.states[b])

    async def measure(self, qubit: int, basis: str) -> dict[str, Any]:
        self._qubit(qubit)
        axis = {"x": 0, "y": 1, "z": 2}[basis]
        p0 = (1.0 + float(self.bloch[qubit][axis])) / 2
        outcome = int(self.rng.random() >= p0)
        v = np.zeros(3)
        v[axis] = 1.0 if outcome == 0 else -1.0
        self.bloch[qubit] = v
        t = await self._changed(qubit, "measured", "measured")
        return {"outcome": outcome, "time": self.ts(t)}

    async def emit(self, qubit: int, alpha: float) -> dict[str, Any]:
        self._qubit(qubit)
        if qubit not in self.communication:
            raise BadParams(f"qubit {qubit} is not a communication qubit "
                            f"({self.communication})", {"param": "qubit"})
        self.bloch[qubit] = np.zeros(3) if 0 < alpha < 1 else np.array(
            [0.0, 0.0, 1.0 if alpha == 0 else -1.0])
        self.photons += 1
        t = await self._changed(qubit, "emitted", "emitted")
        return {"time": self.ts(t), "photon": self.photons - 1}

    async def store(self, qubit: int, slot: int) -> dict[str, Any]:
        self._qubit(qubit)
        _check_index("slot", slot, self.slots)
        if slot in self.stored:
            raise BadParams(f"slot {slot} already holds a state", {"param": "slot"})
        t = self.now()
        self.stored[slot] = (self.bloch[qubit].copy(), t)
        self.bloch[qubit] = np.array([0.0, 0.0, 1.0])
        await self._changed(qubit, "stored", "stored")
        return {"time": self.ts(t)}

    async def retrieve(self, slot: int, qubit: int) -> dict[str, Any]:
        _check_index("slot", slot, self.slots)
        self._qubit(qubit)
        if slot not in self.stored:
            raise BadParams(f"slot {slot} holds no state", {"param": "slot"})
        vec, t0 = self.stored.pop(slot)
        self.bloch[qubit] = vec
        t = await self._changed(qubit, "retrieved", "initialized")
        return {"time": self.ts(t), "stored_for": (t - t0) * 1e-12, "efficiency": 1.0}

    async def entangle(self, qubit: int, remote: str, attempts: int, attempt_period: float,
                       start: int | None, alpha: float) -> dict[str, Any]:
        self._qubit(qubit)
        if qubit not in self.communication:
            raise BadParams(f"qubit {qubit} is not a communication qubit", {"param": "qubit"})
        if remote not in self.neighbours:
            raise BadParams(f"no neighbour {remote!r} (neighbours: {self.neighbours})",
                            {"param": "remote"})
        if self.busy:
            raise Busy("an entanglement batch is already running")
        now = self.now()
        t0 = now if start is None else start
        if t0 < now:
            raise BadParams("start is in the past", {"param": "start"})
        p = min(1.0, 2 * alpha * self.link_efficiency)
        needed = int(self.rng.geometric(p)) if p > 0 else attempts + 1
        used = min(needed, attempts)
        end = t0 + round(used * attempt_period * 1e12)
        self.busy = True
        self.states[qubit] = "busy"
        try:
            await asyncio.sleep((end - now) * 1e-12)
        finally:
            self.busy = False
        if needed <= attempts:
            self.bloch[qubit] = np.zeros(3)
            bell = str(self.rng.choice(["psi+", "psi-"]))
            await self._changed(qubit, "entangled", "entangled")
            return {"success": True, "attempts": used, "time": self.ts(end), "bell_state": bell}
        await self._changed(qubit, "entangle_failed", "initialized")
        return {"success": False, "attempts": used, "time": self.ts(end), "bell_state": None}

    def status(self) -> dict[str, Any]:
        qubits = []
        for q in range(self.n):
            since = self.since[q]
            qubits.append({"qubit": q, "state": self.states[q],
                           "since": None if since is None else self.ts(since)})
        return {"qubits": qubits, "busy": self.busy}


# --- PhotonSource -------------------------------------------------------------------------


class ReferenceSource(ReferenceDevice):
    """A PhotonSource emitting pulse marks at its repetition rate (batches every 10 ms)."""

    CONTRACT = source.CONTRACT

    def __init__(self, *, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.rate = 1e5
        self.mu = 0.05
        self.wavelength = 1550e-9
        self.trigger = "internal"
        self.mode: str | None = None
        self.pulses = 0
        self.armed_at_pulse = 0
        self._runner: asyncio.Task[None] | None = None

    def default_capabilities(self) -> dict[str, Any]:
        return {"kind": "spdc", "emits": "pair", "entanglement": "polarization",
                "wavelengths": [1550e-9, 1550e-9], "wavelength_range": [1530e-9, 1565e-9],
                "repetition_rate_range": [1e3, 1e6], "max_mean_photon_number": 1.0,
                "bandwidth": 100e9, "heralding_efficiency": 0.8, "g2_0": 0.1}

    def _config(self) -> dict[str, Any]:
        return {"repetition_rate": self.rate, "mean_photon_number": self.mu,
                "wavelength": self.wavelength, "trigger": self.trigger,
                "armed": self.mode is not None, "mode": self.mode, "pulses": self.pulses}

    def configure(self, repetition_rate: float | None, mean_photon_number: float | None,
                  trigger: str | None) -> dict[str, Any]:
        if self.mode is not None:
            raise Busy("disarm before changing the configuration")
        source.check_config(repetition_rate, mean_photon_number,
                            rate_range=self.default_capabilities()["repetition_rate_range"],
                            max_mean_photon_number=1.0)
        if repetition_rate is not None:
            self.rate = repetition_rate
        if mean_photon_number is not None:
            self.mu = mean_photon_number
        if trigger is not None:
            self.trigger = trigger
        return self._config()

    def get_config(self) -> dict[str, Any]:
        return self._config()

    async def _marks(self, first: int, n: int, t0: int) -> None:
        period = round(1e12 / self.rate)
        idx = np.arange(first, first + n, dtype=np.int64)
        times = t0 + (idx - first) * period
        for k in range(0, n, 10000):
            await self.publish("emissions", {"pulse": idx[k:k + 10000],
                                             "time_ps": times[k:k + 10000]}, int(times[k]))

    async def _continuous(self) -> None:
        t_next = self.now()
        while True:
            await asyncio.sleep(_BATCH_S)
            now = self.now()
            n = int((now - t_next) * 1e-12 * self.rate)
            if n > 0:
                first = self.pulses
                self.pulses += n
                await self._marks(first, n, t_next)
                t_next += round(n * 1e12 / self.rate)

    def arm(self, mode: str) -> None:
        if self.mode is not None:
            raise Busy(f"already armed ({self.mode})")
        self.mode = mode
        self.armed_at_pulse = self.pulses
        if mode == "continuous":
            self._runner = self.spawn(self._continuous())

    def disarm(self) -> dict[str, Any]:
        if self._runner is not None:
            self._runner.cancel()
            self._runner = None
        self.mode = None
        return {"pulses": self.pulses - self.armed_at_pulse}

    async def _burst(self, first: int, n: int, at: int) -> None:
        await asyncio.sleep(max(0.0, (at - self.now()) * 1e-12))
        await self._marks(first, n, at)

    def fire(self, pulses: int, at: int | None) -> dict[str, Any]:
        if self.mode != "triggered":
            raise Busy("arm in triggered mode before fire")
        now = self.now()
        start = now if at is None else at
        if start < now:
            raise BadParams("at is in the past", {"param": "at"})
        if pulses > 1_000_000:
            raise BadParams("bursts are limited to 1000000 pulses", {"param": "pulses"})
        first = self.pulses
        self.pulses += pulses
        self.spawn(self._burst(first, pulses, start))
        return {"start": self.ts(start), "first_pulse": first, "pulses": pulses}

    async def tune(self, wavelength: float) -> None:
        lo, hi = self.default_capabilities()["wavelength_range"]
        if not lo <= wavelength <= hi:
            raise BadParams(f"wavelength must be within [{lo:g}, {hi:g}] m",
                            {"param": "wavelength"})
        await asyncio.sleep(0.001)
        self.wavelength = wavelength


# --- TimeTagger ---------------------------------------------------------------------------


class ReferenceTagger(ReferenceDevice):
    """A TimeTagger whose inputs see dark counts, plus a Poissonian test signal on demand.

    Tags are generated in 10 ms batches; delay, dead time and virtual coincidence channels
    are applied to them, counters and histograms follow from the same rates.
    """

    CONTRACT = timetagger.CONTRACT

    def __init__(self, *, channels: int = 4, test_rate: float = 20e3, dark_rate: float = 50.0,
                 seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.channels = list(range(1, channels + 1))
        self.test_rate = test_rate
        self.dark_rate = dark_rate
        self.config: dict[int, dict[str, Any]] = {
            c: {"channel": c, "enabled": True, "threshold": 0.5, "edge": "rising",
                "delay": 0.0, "dead_time": 20e-9} for c in self.channels}
        self.test_on: set[int] = set()
        self.bias = {c: 10e-6 for c in self.channels}
        self.virtual: dict[int, tuple[list[int], float]] = {}
        self._next_virtual = 101
        self._runner: asyncio.Task[None] | None = None
        self.streamed = 0

    def default_capabilities(self) -> dict[str, Any]:
        return {"model": "qnhw reference tagger", "channels": list(self.channels),
                "resolution": 8e-12, "dead_time_range": [2e-9, 1e-3],
                "threshold_range": [-2.5, 2.5], "max_rate": 1e6,
                "test_signal_rate": self.test_rate,
                "detectors": [{"channel": c, "type": "snspd", "efficiency": 0.85,
                               "dark_count_rate": self.dark_rate, "jitter": 30e-12,
                               "dead_time": 20e-9} for c in self.channels]}

    def _physical(self, c: int) -> None:
        if c not in self.config:
            raise BadParams(f"channel {c} does not exist (channels {self.channels})",
                            {"param": "channel", "value": c})

    def _rate(self, c: int) -> float:
        if c in self.virtual:
            chans, window = self.virtual[c]
            rates = [self._rate(x) for x in chans]
            return float(np.prod(rates) * (2 * window) ** (len(rates) - 1))
        if not self.config[c]["enabled"]:
            return 0.0
        return self.dark_rate + (self.test_rate if c in self.test_on else 0.0)

    def configure_channel(self, channel: int, enabled: bool | None, threshold: float | None,
                          edge: str | None, delay: float | None,
                          dead_time: float | None) -> dict[str, Any]:
        self._physical(channel)
        caps = self.default_capabilities()
        return timetagger.apply_channel_settings(
            self.config[channel], threshold_range=caps["threshold_range"],
            dead_time_range=caps["dead_time_range"], enabled=enabled, threshold=threshold,
            edge=edge, delay=delay, dead_time=dead_time)

    def get_channel(self, channel: int) -> dict[str, Any]:
        self._physical(channel)
        return dict(self.config[channel])

    def _batch(self, chans: list[int], t0: int, t1: int) -> tuple[npt.NDArray[np.int32],
                                                                    npt.NDArray[np.int64]]:
        ids: list[npt.NDArray[np.int32]] = []
        times: list[npt.NDArray[np.int64]] = []
        span = t1 - t0
        per: dict[int, npt.NDArray[np.int64]] = {}
        physical = [c for c in chans if c in self.config]
        needed = set(physical) | {x for c in chans if c in self.virtual
                                  for x in self.virtual[c][0]}
        for c in sorted(needed):
            n = int(self.rng.poisson(self._rate(c) * span * 1e-12))
            t = np.sort(t0 + self.rng.integers(0, span, n)) + round(
                self.config[c]["delay"] * 1e12)
            dead = round(self.config[c]["dead_time"] * 1e12)
            if t.size > 1:
                keep = np.ones(t.size, dtype=bool)
                last = t[0]
                for i in range(1, t.size):
                    if t[i] - last < dead:
                        keep[i] = False
                    else:
                        last = t[i]
                t = t[keep]
            per[c] = t.astype(np.int64)
        for c in physical:
            ids.append(np.full(per[c].size, c, dtype=np.int32))
            times.append(per[c])
        for v in chans:
            if v not in self.virtual:
                continue
            members, window = self.virtual[v]
            w = round(window * 1e12)
            base_t = per[members[0]]
            hit = np.ones(base_t.size, dtype=bool)
            for m in members[1:]:
                other = per[m]
                if other.size == 0:
                    hit[:] = False
                    break
                j = np.searchsorted(other, base_t)
                lo = other[np.clip(j - 1, 0, other.size - 1)]
                hi = other[np.clip(j, 0, other.size - 1)]
                hit &= np.minimum(np.abs(lo - base_t), np.abs(hi - base_t)) <= w
            ids.append(np.full(int(hit.sum()), v, dtype=np.int32))
            times.append(base_t[hit])
        if not ids:
            return np.zeros(0, np.int32), np.zeros(0, np.int64)
        all_t = np.concatenate(times)
        order = np.argsort(all_t, kind="stable")
        return np.concatenate(ids)[order], all_t[order]

    async def _stream(self, chans: list[int]) -> None:
        t0 = self.now()
        while True:
            await asyncio.sleep(_BATCH_S)
            t1 = self.now()
            ch, tt = self._batch(chans, t0, t1)
            self.streamed += int(ch.size)
            await self.publish("tags", {"channel": ch, "time_ps": tt, "missed": 0}, t1)
            t0 = t1

    def start(self, channels: list[int]) -> None:
        if self._runner is not None:
            raise Busy("already streaming; stop first")
        chans = channels or [c for c in self.channels if self.config[c]["enabled"]]
        for c in chans:
            if c not in self.config and c not in self.virtual:
                raise BadParams(f"channel {c} does not exist", {"param": "channels"})
        self.streamed = 0
        self._runner = self.spawn(self._stream(list(dict.fromkeys(chans))))

    def stop(self) -> dict[str, Any]:
        if self._runner is not None:
            self._runner.cancel()
            self._runner = None
        return {"tags": self.streamed, "missed": 0}

    async def count(self, channels: list[int], duration: float) -> dict[str, Any]:
        for c in channels:
            if c not in self.config and c not in self.virtual:
                raise BadParams(f"channel {c} does not exist", {"param": "channels"})
        await asyncio.sleep(duration)
        counts = [int(self.rng.poisson(self._rate(c) * duration)) for c in channels]
        return {"channels": list(channels), "counts": counts,
                "rates": [n / duration for n in counts], "duration": duration}

    def set_test_signal(self, channels: list[int], enabled: bool) -> None:
        for c in channels:
            self._physical(c)
        if enabled:
            self.test_on.update(channels)
        else:
            self.test_on.difference_update(channels)

    def add_coincidence(self, channels: list[int], window: float) -> dict[str, Any]:
        for c in channels:
            self._physical(c)
        if len(set(channels)) != len(channels):
            raise BadParams("a channel appears twice", {"param": "channels"})
        vid = self._next_virtual
        self._next_virtual += 1
        self.virtual[vid] = (list(channels), window)
        return {"channel": vid}

    def remove_coincidence(self, channel: int) -> None:
        if self.virtual.pop(channel, None) is None:
            raise BadParams(f"no virtual channel {channel}", {"param": "channel"})

    async def histogram(self, start_channel: int, stop_channel: int, bin_width: float,
                        bins: int, duration: float) -> dict[str, Any]:
        self._physical(start_channel)
        self._physical(stop_channel)
        await asyncio.sleep(duration)
        # uncorrelated inputs: a flat histogram of accidental start-stop pairs
        mean = self._rate(start_channel) * self._rate(stop_channel) * bin_width * duration
        counts = self.rng.poisson(mean, bins).astype(np.int64)
        return {"counts": counts, "bin_width": bin_width}

    def set_bias(self, channel: int, current: float) -> None:
        self._physical(channel)
        self.bias[channel] = current


# --- HeraldingStation ---------------------------------------------------------------------


class ReferenceHeralding(ReferenceDevice):
    """A HeraldingStation succeeding per attempt with a fixed probability per scheme."""

    CONTRACT = heralding.CONTRACT
    P_SUCCESS: ClassVar[dict[str, float]] = {"single_click": 0.05, "barrett_kok": 0.02,
                                             "linear_optics": 0.02}

    def __init__(self, *, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.scheme = "single_click"
        self.window = 5e-9
        self.window_offset = 0.0
        self.attempt_period = 1e-6
        self.attempts = 0
        self.heralds = {"psi+": 0, "psi-": 0}
        self.since = 0
        self.armed_attempts = 0
        self._runner: asyncio.Task[None] | None = None

    def default_capabilities(self) -> dict[str, Any]:
        return {"schemes": list(heralding.SCHEMES), "inputs": 2, "detectors": 2,
                "detection_efficiency": 0.85, "dark_count_rate": 20.0, "hom_visibility": 0.9,
                "max_attempt_rate": 1e7}

    def attach(self, server: DeviceServer) -> None:
        super().attach(server)
        self.since = self.now()

    def _config(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "window": self.window,
                "window_offset": self.window_offset, "attempt_period": self.attempt_period,
                "armed": self._runner is not None}

    def configure(self, scheme: str, window: float, window_offset: float,
                  attempt_period: float) -> dict[str, Any]:
        if self._runner is not None:
            raise Busy("disarm before configuring")
        if window_offset + window > attempt_period:
            raise BadParams("the detection window must end within the attempt period",
                            {"param": "window"})
        if 1 / attempt_period > self.default_capabilities()["max_attempt_rate"]:
            raise BadParams("attempt_period below this station's fastest rate",
                            {"param": "attempt_period"})
        self.scheme, self.window = scheme, window
        self.window_offset, self.attempt_period = window_offset, attempt_period
        return self._config()

    def get_config(self) -> dict[str, Any]:
        return self._config()

    async def _run(self, total: int | None, start: int) -> None:
        await asyncio.sleep(max(0.0, (start - self.now()) * 1e-12))
        period_ps = round(self.attempt_period * 1e12)
        done = 0
        p = self.P_SUCCESS[self.scheme]
        while total is None or done < total:
            n = max(1, int(_BATCH_S / self.attempt_period))
            if total is not None:
                n = min(n, total - done)
            hits = np.flatnonzero(self.rng.random(n) < p)
            for k in hits:
                attempt = done + int(k)
                outcome = "psi+" if self.rng.random() < 0.5 else "psi-"
                detectors = [0] if outcome == "psi+" else [1]
                if self.scheme != "single_click":
                    detectors = [0, 0] if outcome == "psi+" else [0, 1]
                self.heralds[outcome] += 1
                await self.publish("heralds", {"attempt": attempt, "outcome": outcome,
                                               "detectors": detectors},
                                   start + attempt * period_ps
                                   + round((self.window_offset + self.window / 2) * 1e12))
            done += n
            self.attempts += n
            self.armed_attempts += n
            await asyncio.sleep(n * self.attempt_period)
        self._runner = None

    def arm(self, attempts: int | None, start: int | None) -> None:
        if self._runner is not None:
            raise Busy("already armed")
        now = self.now()
        t0 = now if start is None else start
        if t0 < now:
            raise BadParams("start is in the past", {"param": "start"})
        self.armed_attempts = 0
        self._runner = self.spawn(self._run(attempts, t0))

    def disarm(self) -> dict[str, Any]:
        if self._runner is not None:
            self._runner.cancel()
            self._runner = None
        return {"attempts": self.armed_attempts}

    def statistics(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "heralds": sum(self.heralds.values()),
                "psi_plus": self.heralds["psi+"], "psi_minus": self.heralds["psi-"],
                "since": self.ts(self.since)}

    def reset_statistics(self) -> None:
        self.attempts = 0
        self.heralds = {"psi+": 0, "psi-": 0}
        self.since = self.now()

    async def lock_phase(self, setpoint: float) -> dict[str, Any]:
        await asyncio.sleep(0.002)
        return {"phase_error": 0.05, "locked": True}


# --- OpticalSwitch ------------------------------------------------------------------------


class ReferenceSwitch(ReferenceDevice):
    """A non-blocking N x N switch keeping a one-to-one route map."""

    CONTRACT = switch.CONTRACT

    def __init__(self, *, ports: int = 8, switching_time: float = 1e-3,
                 seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.ports = ports
        self.switching_time = switching_time
        self.routes: dict[int, int] = {}
        self._lock = asyncio.Lock()

    def default_capabilities(self) -> dict[str, Any]:
        return {"inputs": self.ports, "outputs": self.ports, "non_blocking": True,
                "switching_time": self.switching_time, "insertion_loss": 1.5,
                "crosstalk": -50.0, "wavelength_range": [1260e-9, 1675e-9],
                "technology": "piezo"}

    def _port(self, what: str, p: int) -> None:
        if not 1 <= p <= self.ports:
            raise BadParams(f"{what} {p} does not exist (ports 1..{self.ports})",
                            {"param": what, "value": p})

    def _pairs(self) -> list[list[int]]:
        return [[i, o] for i, o in sorted(self.routes.items())]

    async def _apply(self, new: dict[int, int]) -> dict[str, Any]:
        async with self._lock:
            old = set(self.routes.items())
            await asyncio.sleep(self.switching_time)
            self.routes = new
            now = set(new.items())
            t = self.now()
            if old != now:
                await self.publish("route_changes", {
                    "routes": self._pairs(),
                    "added": [[i, o] for i, o in sorted(now - old)],
                    "removed": [[i, o] for i, o in sorted(old - now)]}, t)
            return {"routes": self._pairs(), "time": self.ts(t)}

    async def set_route(self, input_port: int, output_port: int) -> dict[str, Any]:
        self._port("input_port", input_port)
        self._port("output_port", output_port)
        new = {i: o for i, o in self.routes.items() if i != input_port and o != output_port}
        new[input_port] = output_port
        return await self._apply(new)

    async def set_routes(self, routes: list[list[int]], exclusive: bool) -> dict[str, Any]:
        ins = [r[0] for r in routes]
        outs = [r[1] for r in routes]
        for i, o in zip(ins, outs, strict=True):
            self._port("input_port", i)
            self._port("output_port", o)
        if len(set(ins)) != len(ins) or len(set(outs)) != len(outs):
            raise BadParams("a port appears in two routes", {"param": "routes"})
        base_routes = {} if exclusive else {i: o for i, o in self.routes.items()
                                            if i not in ins and o not in outs}
        base_routes.update(zip(ins, outs, strict=True))
        return await self._apply(base_routes)

    async def disconnect(self, input_port: int) -> dict[str, Any]:
        self._port("input_port", input_port)
        return await self._apply({i: o for i, o in self.routes.items() if i != input_port})

    async def clear(self) -> dict[str, Any]:
        return await self._apply({})

    def get_routes(self) -> dict[str, Any]:
        return {"routes": self._pairs()}

    def port_power(self, port: int, side: str) -> dict[str, Any]:
        self._port("port", port)
        light = 1e-6  # W on every input
        if side == "input":
            return {"power": light}
        routed = port in self.routes.values()
        loss = 1.5 if routed else 50.0
        return {"power": light * 10 ** (-loss / 10)}


# --- Transducer ---------------------------------------------------------------------------


class ReferenceTransducer(ReferenceDevice):
    """A Transducer whose efficiency grows linearly with pump power up to its peak, with a
    Lorentzian detuning response, and whose added noise grows with the pump."""

    CONTRACT = transducer_mod.CONTRACT
    PEAK_EFFICIENCY = 0.087
    PEAK_NOISE = 0.16
    MAX_POWER = 1e-3
    BANDWIDTH = 1e6

    def __init__(self, *, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.enabled = False
        self.direction = "microwave_to_optical"
        self.power = 0.0
        self.detuning = 0.0
        self.pulse_width: float | None = None
        self.repetition_rate: float | None = None

    def default_capabilities(self) -> dict[str, Any]:
        return {"microwave_frequency": 7.0e9, "optical_wavelength": 1550e-9,
                "directions": list(transducer_mod.DIRECTIONS),
                "efficiency": self.PEAK_EFFICIENCY, "added_noise": self.PEAK_NOISE,
                "bandwidth": self.BANDWIDTH, "max_pump_power": self.MAX_POWER,
                "max_duty_cycle": 0.1}

    def _duty(self) -> float:
        if self.pulse_width is None or self.repetition_rate is None:
            return 1.0
        return self.pulse_width * self.repetition_rate

    def _status(self) -> dict[str, Any]:
        x = self.power / self.MAX_POWER
        eta = self.PEAK_EFFICIENCY * x / (1 + (2 * self.detuning / self.BANDWIDTH) ** 2)
        noise = self.PEAK_NOISE * x * (self._duty() / 0.1 if self.enabled else 0.0) ** 0.5
        return {"enabled": self.enabled, "direction": self.direction,
                "pump_power": self.power, "detuning": self.detuning,
                "pulse_width": self.pulse_width, "repetition_rate": self.repetition_rate,
                "duty_cycle": self._duty(), "efficiency": eta, "added_noise": noise,
                "temperature": 0.01 + (0.09 * x * self._duty() if self.enabled else 0.0)}

    async def configure_pump(self, power: float, detuning: float, pulse_width: float | None,
                             repetition_rate: float | None) -> dict[str, Any]:
        if power > self.MAX_POWER:
            raise BadParams(f"power above the maximum {self.MAX_POWER} W", {"param": "power"})
        if (pulse_width is None) != (repetition_rate is None):
            raise BadParams("pulse_width and repetition_rate go together",
                            {"param": "pulse_width"})
        if pulse_width is not None and repetition_rate is not None:
            duty = pulse_width * repetition_rate
            if duty > 0.1:
                raise BadParams(f"duty cycle {duty:g} above the maximum 0.1",
                                {"param": "repetition_rate"})
        elif self.enabled:
            raise BadParams("continuous pumping exceeds the maximum duty cycle 0.1",
                            {"param": "pulse_width"})
        await asyncio.sleep(0.001)
        self.power, self.detuning = power, detuning
        self.pulse_width, self.repetition_rate = pulse_width, repetition_rate
        return self._status()

    def set_direction(self, direction: str) -> None:
        if self.enabled:
            raise Busy("disable before changing direction")
        self.direction = direction

    def enable(self) -> None:
        if self._duty() > 0.1:
            raise Busy("configure a pulsed pump (duty cycle <= 0.1) before enabling")
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False

    def status(self) -> dict[str, Any]:
        return self._status()

    async def calibrate(self, duration: float) -> dict[str, Any]:
        await asyncio.sleep(duration)
        s = self._status()
        rel = 1 / math.sqrt(max(duration, 1e-3) * 1e4)
        return {"efficiency": max(0.0, s["efficiency"] * (1 + rel * self.rng.normal())),
                "added_noise": max(0.0, s["added_noise"] * (1 + rel * self.rng.normal())),
                "time": self.ts(self.now())}


# --- TimingCard ---------------------------------------------------------------------------


class ReferenceTimingCard(ReferenceDevice):
    """A TimingCard with a steerable software clock (its own domain) and virtual peers.

    ``peers`` maps a peer name to ``(offset_s, delay_s)``: the peer clock's offset from this
    card and the symmetric one-way link delay; ``sync_exchange`` returns timestamps built from
    them (t2, t3 in the domain named after the peer). Output channel ``k`` is looped back to
    input ``k``, so triggers show up as tags when input tagging is on.
    """

    CONTRACT = timing.CONTRACT
    CLOCK_DOMAIN = "timing"

    def __init__(self, *, peers: dict[str, tuple[float, float]] | None = None,
                 channels: int = 4, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.peers = dict(peers if peers is not None else {"peer": (2.5e-6, 5e-6)})
        self.n_channels = channels
        self._host0 = time.monotonic_ns()
        self._base_ps = 0  # the domain's epoch is the card's power-up until set_time
        self.frequency = 0.0
        self.mode = "free_running"
        self.peer: str | None = None
        self.last_offset: float | None = None
        self.last_delay: float | None = None
        self.triggers: dict[int, dict[str, Any]] = {}
        self._trigger_tasks: dict[int, asyncio.Task[None]] = {}
        self._next_id = 0
        self.inputs: dict[int, str] = {}
        self._pps: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def default_capabilities(self) -> dict[str, Any]:
        return {"modes": list(timing.MODES), "outputs": list(range(self.n_channels)),
                "inputs": list(range(self.n_channels)), "peers": sorted(self.peers),
                "resolution": 1e-12, "max_frequency_adjust": 1e-4, "oscillator": "OCXO",
                "sync_protocol": "white_rabbit"}

    def clock(self) -> int:
        elapsed = time.monotonic_ns() - self._host0
        return self._base_ps + round(elapsed * 1000 * (1 + self.frequency))

    def _rebase(self, new_ps: int) -> None:
        self._host0 = time.monotonic_ns()
        self._base_ps = new_ps
        self._wake.set()

    def _host_delay(self, at_ps: int) -> float:
        return max(0.0, (at_ps - self.clock()) * 1e-12 / (1 + self.frequency))

    def attach(self, server: DeviceServer) -> None:
        super().attach(server)
        self._pps = self.spawn(self._pps_loop())

    async def _pps_loop(self) -> None:
        while True:
            now = self.clock()
            second = now // 10**12 + 1
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._host_delay(second * 10**12)):
                    await self._wake.wait()
                continue  # the clock was stepped: recompute the next second
            await self.publish("pps", {"second": int(second)}, second * 10**12)

    def get_time(self) -> dict[str, Any]:
        return {"time": self.ts(self.clock()), "locked": self.mode != "free_running",
                "mode": self.mode}

    def set_time(self, time: int) -> None:
        if self.mode == "slave":
            raise Busy("a slave's time is set by its master")
        self._rebase(time)

    def adjust_offset(self, offset: float) -> dict[str, Any]:
        self._rebase(self.clock() + round(offset * 1e12))
        return {"time": self.ts(self.clock())}

    def adjust_frequency(self, fractional: float) -> None:
        self._rebase(self.clock())
        self.frequency = fractional

    def set_mode(self, mode: str, peer: str | None) -> None:
        if mode == "slave":
            if peer is None or peer not in self.peers:
                raise BadParams(f"slave mode needs a peer among {sorted(self.peers)}",
                                {"param": "peer"})
            offset, delay = self.peers[peer]
            self._rebase(self.clock() + round(offset * 1e12))  # servo locks onto the master
            self.peers = {k: (v[0] - offset, v[1]) for k, v in self.peers.items()}
            self.last_offset, self.last_delay = 0.0, delay
        elif peer is not None:
            raise BadParams("only slave mode takes a peer", {"param": "peer"})
        self.mode = mode
        self.peer = peer if mode == "slave" else None

    async def _fire(self, tid: int) -> None:
        info = self.triggers[tid]
        try:
            while info["remaining"] > 0:
                at = info["at"]
                await asyncio.sleep(self._host_delay(at))
                await self.publish("triggers", {"trigger_id": tid,
                                                "channel": info["channel"]}, at)
                if info["channel"] in self.inputs:
                    await self.publish("tags", {
                        "channel": np.array([info["channel"]], dtype=np.int32),
                        "time_ps": np.array([at], dtype=np.int64)}, at)
                info["remaining"] -= 1
                if info["period"] is not None:
                    info["at"] = at + round(info["period"] * 1e12)
        finally:
            self.triggers.pop(tid, None)
            self._trigger_tasks.pop(tid, None)

    def schedule_trigger(self, at: int, channel: int, width: float, period: float | None,
                         count: int) -> dict[str, Any]:
        _check_index("channel", channel, self.n_channels)
        if at <= self.clock():
            raise BadParams("at is not in the future", {"param": "at"})
        if count > 1 and period is None:
            raise BadParams("count > 1 needs a period", {"param": "period"})
        if period is not None and width >= period:
            raise BadParams("width must be shorter than the period", {"param": "width"})
        tid = self._next_id
        self._next_id += 1
        self.triggers[tid] = {"trigger_id": tid, "channel": channel, "at": at, "width": width,
                              "period": period, "remaining": count}
        self._trigger_tasks[tid] = self.spawn(self._fire(tid))
        return {"trigger_id": tid}

    def cancel_trigger(self, trigger_id: int) -> None:
        task = self._trigger_tasks.pop(trigger_id, None)
        if task is None:
            raise BadParams(f"no pending trigger {trigger_id}", {"param": "trigger_id"})
        task.cancel()
        self.triggers.pop(trigger_id, None)

    def list_triggers(self) -> dict[str, Any]:
        return {"triggers": [dict(t, at=self.ts(t["at"])) for t in self.triggers.values()]}

    async def sync_exchange(self, peer: str) -> dict[str, Any]:
        if peer not in self.peers:
            raise BadParams(f"no peer {peer!r} on this card's links ({sorted(self.peers)})",
                            {"param": "peer"})
        offset, delay = self.peers[peer]
        off, d, turn = round(offset * 1e12), round(delay * 1e12), 10**6
        t1 = self.clock()
        t2 = t1 + d + off
        t3 = t2 + turn
        t4 = t3 - off + d
        await asyncio.sleep(max(0.0, (t4 - t1) * 1e-12))
        if self.mode == "slave" and peer == self.peer:
            self.last_offset, self.last_delay = offset, delay
        return {"peer": peer, "t1": self.ts(t1), "t2": Timestamp(t2, peer),
                "t3": Timestamp(t3, peer), "t4": self.ts(t4)}

    def sync_status(self) -> dict[str, Any]:
        return {"mode": self.mode, "locked": self.mode != "free_running", "peer": self.peer,
                "offset": self.last_offset, "delay": self.last_delay,
                "frequency": self.frequency}

    def configure_input(self, channel: int, enabled: bool, edge: str) -> None:
        _check_index("channel", channel, self.n_channels)
        if enabled:
            self.inputs[channel] = edge
        else:
            self.inputs.pop(channel, None)


# --- TriggerGenerator ---------------------------------------------------------------------


class ReferenceTriggerGenerator(ReferenceDevice):
    """A TriggerGenerator behaving like the C firmware (firmware_stubs/examples/trigger_gen).

    Its own clock domain ("tgen", or the server name; ps since the device was created); four
    channels with 10 ps delay steps; internal triggers at the set rate from one period after
    ``arm``, software and scheduled one-shots; every trigger on the ``triggers`` stream. The
    external trigger input has no signal: arming with the external source is a device fault.
    """

    CONTRACT = trigger_generator.CONTRACT
    CLOCK_DOMAIN = "tgen"
    CHANNELS = 4
    DELAY_RESOLUTION_PS = 10
    MAX_DELAY_PS = 10_000_000_000
    SCHEDULE_DEPTH = 8
    MAX_RATE = 1000.0
    _BURST = 64  # triggers emitted before the runner yields to the loop

    def __init__(self, *, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self._host0 = time.monotonic_ns()
        self.channels = [{"delay": 0, "width": 100_000, "polarity": "positive",
                          "enabled": True} for _ in range(self.CHANNELS)]
        self.source = "internal"
        self.period_ps = 100_000_000_000  # 10 Hz
        self.armed = False
        self.limit = 0
        self.fired = 0
        self.total = 0
        self.dropped = 0  # stays 0: publish() waits for slow lossless subscribers
        self.next_ps = 0
        self.scheduled: list[int] = []
        self._wake = asyncio.Event()

    def default_capabilities(self) -> dict[str, Any]:
        return {"channels": self.CHANNELS, "delay_resolution": self.DELAY_RESOLUTION_PS,
                "max_rate": self.MAX_RATE, "schedule_depth": self.SCHEDULE_DEPTH}

    def clock(self) -> int:
        return (time.monotonic_ns() - self._host0) * 1000

    def attach(self, server: DeviceServer) -> None:
        super().attach(server)
        self.spawn(self._run())

    # --- the trigger engine ---------------------------------------------------------------

    def _mask(self) -> int:
        return sum(1 << c for c, ch in enumerate(self.channels) if ch["enabled"])

    def _disarm(self) -> None:
        self.armed = False
        self.scheduled.clear()
        self._wake.set()

    async def _trigger(self, ts: int, source_name: str) -> int:
        self.fired += 1
        self.total += 1
        count = self.fired
        if self.limit and self.fired >= self.limit:
            self._disarm()
        await self.publish("triggers", {"count": count, "source": source_name,
                                        "mask": self._mask()}, ts)
        return count

    def _next_due(self) -> tuple[int, str] | None:
        if not self.armed:
            return None
        due: tuple[int, str] | None = None
        if self.source == "internal":
            due = (self.next_ps, "internal")
        if self.scheduled and (due is None or min(self.scheduled) <= due[0]):
            due = (min(self.scheduled), "scheduled")
        return due

    async def _run(self) -> None:
        """Emit every trigger when due; sleep until the next one or a change of state."""
        while True:
            burst = self._BURST
            while burst > 0 and (due := self._next_due()) is not None \
                    and due[0] <= self.clock():
                at, kind = due
                if kind == "scheduled":
                    self.scheduled.remove(at)
                else:
                    self.next_ps += self.period_ps
                await self._trigger(at, kind)
                burst -= 1
            if burst == 0:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            due = self._next_due()
            delay = None if due is None else max(0.0, (due[0] - self.clock()) * 1e-12)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    # --- commands -------------------------------------------------------------------------

    def _channel(self, channel: int) -> dict[str, Any]:
        return {"channel": channel, **self.channels[channel]}

    def configure_channel(self, channel: int, delay: int | None, width: int | None,
                          polarity: str | None, enabled: bool | None) -> dict[str, Any]:
        _check_index("channel", channel, self.CHANNELS)
        ch = self.channels[channel]
        if delay is not None:
            step = self.DELAY_RESOLUTION_PS
            ch["delay"] = min(self.MAX_DELAY_PS, (delay + step // 2) // step * step)
        if width is not None:
            ch["width"] = width
        if polarity is not None:
            ch["polarity"] = polarity
        if enabled is not None:
            ch["enabled"] = enabled
        return self._channel(channel)

    def get_channel(self, channel: int) -> dict[str, Any]:
        _check_index("channel", channel, self.CHANNELS)
        return self._channel(channel)

    def set_source(self, source: str) -> dict[str, Any]:
        if self.armed:
            raise Busy("armed: disarm before changing the source")
        self.source = source
        return {"source": source}

    def _rate(self) -> dict[str, Any]:
        return {"rate": 1e12 / self.period_ps, "period": self.period_ps}

    def set_rate(self, rate: float) -> dict[str, Any]:
        self.period_ps = int(1e12 / rate + 0.5)
        if self.armed and self.source == "internal":
            self.next_ps = self.clock() + self.period_ps
            self._wake.set()
        return self._rate()

    def arm(self, count: int) -> dict[str, Any]:
        if self.armed:
            raise Busy("already armed: disarm first")
        if self.source == "external":
            raise DeviceFault("no signal on the external trigger input (check the cable)")
        now = self.clock()
        self.armed = True
        self.fired = 0
        self.limit = count
        self.next_ps = now + self.period_ps
        self.scheduled.clear()
        self._wake.set()
        return {"armed": True, "start": self.ts(now)}

    def disarm(self) -> dict[str, Any]:
        self._disarm()
        return {"fired": self.fired}

    async def fire(self) -> dict[str, Any]:
        if not self.armed:
            raise Busy("not armed: call arm first")
        now = self.clock()
        count = await self._trigger(now, "software")
        return {"count": count, "time": self.ts(now)}

    def schedule(self, at: int) -> dict[str, Any]:
        if not self.armed:
            raise Busy("not armed: call arm first")
        now = self.clock()
        if at < now:
            raise BadParams(f"parameter 'at': {at} ps is in the past (device time {now} ps)",
                            {"param": "at"})
        if len(self.scheduled) >= self.SCHEDULE_DEPTH:
            raise Busy(f"schedule full: {self.SCHEDULE_DEPTH} triggers pending")
        self.scheduled.append(at)
        self._wake.set()
        return {"pending": len(self.scheduled)}

    def status(self) -> dict[str, Any]:
        return {"armed": self.armed, "source": self.source, **self._rate(),
                "fired": self.fired, "total": self.total, "pending": len(self.scheduled),
                "dropped": self.dropped}


# --- QPU ----------------------------------------------------------------------------------


def _u3(theta: float, phi: float, lam: float) -> npt.NDArray[np.complex128]:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -cmath.exp(1j * lam) * s],
                     [cmath.exp(1j * phi) * s, cmath.exp(1j * (phi + lam)) * c]])


def _controlled(u: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
    d = u.shape[0]
    out = np.eye(2 * d, dtype=np.complex128)
    out[d:, d:] = u
    return out


_PI = math.pi
_ONE_QUBIT: dict[str, Callable[[Sequence[float]], npt.NDArray[np.complex128]]] = {
    "id": lambda p: np.eye(2, dtype=np.complex128),
    "x": lambda p: _u3(_PI, 0, _PI), "y": lambda p: _u3(_PI, _PI / 2, _PI / 2),
    "z": lambda p: _u3(0, 0, _PI), "h": lambda p: _u3(_PI / 2, 0, _PI),
    "s": lambda p: _u3(0, 0, _PI / 2), "sdg": lambda p: _u3(0, 0, -_PI / 2),
    "t": lambda p: _u3(0, 0, _PI / 4), "tdg": lambda p: _u3(0, 0, -_PI / 4),
    "sx": lambda p: _u3(_PI / 2, -_PI / 2, _PI / 2),
    "sxdg": lambda p: _u3(-_PI / 2, -_PI / 2, _PI / 2),
    "rx": lambda p: _u3(p[0], -_PI / 2, _PI / 2), "ry": lambda p: _u3(p[0], 0, 0),
    "rz": lambda p: _u3(0, 0, p[0]), "p": lambda p: _u3(0, 0, p[0]),
    "u1": lambda p: _u3(0, 0, p[0]), "u2": lambda p: _u3(_PI / 2, p[0], p[1]),
    "u3": lambda p: _u3(p[0], p[1], p[2]), "u": lambda p: _u3(p[0], p[1], p[2]),
}  # fmt: skip  (global phases omitted: they change no measurement statistics)


def _matrix(name: str, params: Sequence[float]) -> npt.NDArray[np.complex128]:
    if name in _ONE_QUBIT:
        return _ONE_QUBIT[name](params)
    if name in ("cx", "cy", "cz"):
        return _controlled(_ONE_QUBIT[name[1]](()))
    if name == "ccx":
        return _controlled(_controlled(_ONE_QUBIT["x"](())))
    if name == "swap":
        return np.eye(4, dtype=np.complex128)[[0, 2, 1, 3]]
    raise BadParams(f"unknown gate {name!r}")


class _StateVector:
    """A small ideal state vector; qubit 0 is the least significant bit."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.psi = np.zeros(2**n, dtype=np.complex128)
        self.psi[0] = 1.0

    def copy(self) -> _StateVector:
        sv = _StateVector.__new__(_StateVector)
        sv.n, sv.psi = self.n, self.psi.copy()
        return sv

    def apply(self, u: npt.NDArray[np.complex128], qubits: Sequence[int]) -> None:
        k = len(qubits)
        axes = [self.n - 1 - q for q in qubits]
        t = self.psi.reshape((2,) * self.n)
        t = np.tensordot(u.reshape((2,) * (2 * k)), t, axes=(list(range(k, 2 * k)), axes))
        t = np.moveaxis(t, list(range(k)), axes)
        self.psi = np.ascontiguousarray(t).reshape(-1)

    def p1(self, q: int) -> float:
        probs = np.abs(self.psi) ** 2
        mask = (np.arange(probs.size) >> q) & 1
        return float(probs[mask == 1].sum())

    def collapse(self, q: int, bit: int) -> None:
        mask = ((np.arange(self.psi.size) >> q) & 1) == bit
        self.psi[~mask] = 0
        norm = np.linalg.norm(self.psi)
        self.psi /= norm

    def measure(self, q: int, rng: np.random.Generator) -> int:
        bit = int(rng.random() < self.p1(q))
        self.collapse(q, bit)
        return bit


class ReferenceQPU(ReferenceDevice):
    """An ideal (noiseless) QPU: exact state vector up to 10 qubits, a live register, and a
    Target-like descriptor with plausible durations and errors (not applied)."""

    CONTRACT = qpu.CONTRACT
    MAX_SHOTS = 100_000

    def __init__(self, *, qubits: int = 5, communication: Sequence[int] = (0,),
                 seed: int | None = None) -> None:
        super().__init__(seed=seed)
        if not 1 <= qubits <= 10:
            raise ValueError("the reference QPU has 1..10 qubits")
        self.n = qubits
        self.communication = list(communication)
        self.live = _StateVector(qubits)
        self.basis = list(QELIB1_GATES)

    def _target(self) -> dict[str, Any]:
        instructions: list[dict[str, Any]] = []
        for g, (arity, _) in QELIB1_GATES.items():
            if arity == 1:
                instructions += [{"name": g, "qubits": [q], "duration": 35e-9, "error": 2e-4}
                                 for q in range(self.n)]
            elif arity == 2:
                instructions += [{"name": g, "qubits": [a, b], "duration": 300e-9,
                                  "error": 8e-3} for a in range(self.n) for b in range(self.n)
                                 if a != b]
        instructions += [{"name": "measure", "qubits": [q], "duration": 1e-6, "error": 1e-2}
                         for q in range(self.n)]
        return {"num_qubits": self.n, "dt": 2.2e-10, "instructions": instructions,
                "qubits": [{"qubit": q, "role": "communication" if q in self.communication
                            else "compute", "t1": 150e-6, "t2": 100e-6, "frequency": 5e9,
                            "readout_error": 1e-2, "readout_duration": 1e-6}
                           for q in range(self.n)]}

    def default_capabilities(self) -> dict[str, Any]:
        return {"n_qubits": self.n, "basis_gates": list(self.basis), "coupling_map": None,
                "communication_qubits": list(self.communication),
                "max_shots": self.MAX_SHOTS, "max_instructions": 100_000,
                "qasm": "OpenQASM 2.0 qnhw subset", "target": self._target()}

    @staticmethod
    def _duration(instructions: Sequence[Instruction]) -> float:
        table = {"measure": 1e-6, "reset": 1e-6, "barrier": 0.0}
        return sum(table.get(i.name, 35e-9 if len(i.qubits) == 1 else 300e-9)
                   for i in instructions)

    def _execute(self, sv: _StateVector, program: Sequence[Instruction],
                 bits: npt.NDArray[np.uint8]) -> None:
        for ins in program:
            if ins.name == "measure":
                bits[ins.clbits[0]] = sv.measure(ins.qubits[0], self.rng)
            elif ins.name == "reset":
                if sv.measure(ins.qubits[0], self.rng):
                    sv.apply(_matrix("x", ()), ins.qubits)
            elif ins.name != "barrier":
                sv.apply(_matrix(ins.name, ins.params), ins.qubits)

    async def run(self, circuit: str, shots: int, memory: bool,
                  initial_state: str) -> dict[str, Any]:
        program = parse(circuit)
        program.check_target(self.n, self.basis)
        if shots > self.MAX_SHOTS:
            raise BadParams(f"shots above this device's maximum {self.MAX_SHOTS}",
                            {"param": "shots"})
        if len(program.instructions) > 100_000:
            raise BadParams("circuit longer than 100000 instructions", {"param": "circuit"})
        live = initial_state == "live"
        if live and "live_register" not in self.server.capabilities.get("features", []):
            raise BadParams("initial_state 'live' needs the live_register feature",
                            {"param": "initial_state"})
        if live and shots != 1:
            raise BadParams("initial_state 'live' runs exactly one shot", {"param": "shots"})
        ins = program.instructions
        nc = program.n_clbits
        mem = np.zeros((shots, nc), dtype=np.uint8)
        # measurements followed by nothing but measurements and barriers are sampled jointly
        tail = len(ins)
        while tail > 0 and ins[tail - 1].name in ("measure", "barrier"):
            tail -= 1
        prefix, suffix = ins[:tail], ins[tail:]
        if live:
            self._execute(self.live, ins, mem[0])
        elif not any(i.name in ("measure", "reset") for i in prefix):
            sv = _StateVector(max(program.n_qubits, 1))
            self._execute(sv, prefix, mem[0])
            measures = [i for i in suffix if i.name == "measure"]
            probs = np.abs(sv.psi) ** 2
            probs /= probs.sum()
            outcomes = self.rng.choice(probs.size, size=shots, p=probs)
            for m in measures:
                mem[:, m.clbits[0]] = (outcomes >> m.qubits[0]) & 1
        else:
            for s in range(shots):
                self._execute(_StateVector(max(program.n_qubits, 1)), ins, mem[s])
                if s % 256 == 255:
                    await asyncio.sleep(0)
        keys, counts = np.unique(mem[:, ::-1], axis=0, return_counts=True)
        table = {"".join(str(int(b)) for b in k): int(c)
                 for k, c in zip(keys, counts, strict=True)}
        return {"counts": table, "memory": mem if memory else None, "shots": shots,
                "time": self.ts(self.now()),
                "duration": shots * (self._duration(ins) + 100e-6)}

    def calibration(self) -> dict[str, Any]:
        return {**self._target(), "time": self.ts(self.now())}

    def reset(self, qubits: list[int]) -> None:
        for q in qubits:
            _check_index("qubit", q, self.n)
        for q in qubits or range(self.n):
            if self.live.measure(q, self.rng):
                self.live.apply(_matrix("x", ()), [q])

    def measure(self, qubits: list[int]) -> dict[str, Any]:
        for q in qubits:
            _check_index("qubit", q, self.n)
        outcomes = [self.live.measure(q, self.rng) for q in qubits]
        return {"outcomes": outcomes, "time": self.ts(self.now())}


# --- factory ------------------------------------------------------------------------------

_DEVICES: weakref.WeakKeyDictionary[DeviceServer, ReferenceDevice] = weakref.WeakKeyDictionary()


def reference_of(server: DeviceServer) -> ReferenceDevice:
    """The reference device behind a server from :func:`reference_server` (its state, for
    white-box assertions in tests)."""
    return _DEVICES[server]


#: Reference implementation class per contract name.
REFERENCES: dict[str, type[ReferenceDevice]] = {
    cls.CONTRACT.name: cls for cls in (
        ReferenceMemory, ReferenceSource, ReferenceTagger, ReferenceHeralding,
        ReferenceSwitch, ReferenceTransducer, ReferenceTimingCard, ReferenceTriggerGenerator,
        ReferenceQPU)
}


def _contract_name(contract: str | Contract | type[base.Driver]) -> str:
    if isinstance(contract, str):
        return contract
    if isinstance(contract, Contract):
        return contract.name
    return contract.CONTRACT.name


@asynccontextmanager
async def reference_server(contract: str | Contract | type[base.Driver],
                           address: str = "tcp://127.0.0.1:0", *, name: str | None = None,
                           features: Sequence[str] | None = None, seed: int | None = 0,
                           device_options: dict[str, Any] | None = None,
                           **server_opts: Any) -> AsyncIterator[DeviceServer]:
    """Start a :class:`DeviceServer` serving the reference implementation of ``contract``.

    ``features``: optional contract features to offer (``None``: all). ``device_options``:
    keyword arguments of the reference class (e.g. ``{"qubits": 3}``). ``server_opts`` go to
    :class:`DeviceServer`. Yields the started server (``server.address``); stops it and the
    device's background tasks on exit; :func:`reference_of` gives the reference object.
    """
    cname = _contract_name(contract)
    cls = REFERENCES[cname]
    device = cls(seed=seed, **(device_options or {}))
    if cls.CLOCK_DOMAIN is not None:
        server_opts.setdefault("clock", device.clock)
        server_opts.setdefault("clock_domain", name or cls.CLOCK_DOMAIN)
    server = DeviceServer(name or f"ref-{cname.lower()}", address, contract=cls.CONTRACT,
                          capabilities=device.default_capabilities(), **server_opts)
    offered = cls.CONTRACT.features if features is None else tuple(features)
    base.implement_contract(server, device, features=offered)
    _DEVICES[server] = device
    await server.start()
    try:
        device.attach(server)
        yield server
    finally:
        await device.aclose()
        await server.stop()


__all__ = ["REFERENCES", "ReferenceDevice", "ReferenceHeralding", "ReferenceMemory",
           "ReferenceQPU", "ReferenceSource", "ReferenceSwitch", "ReferenceTagger",
           "ReferenceTimingCard", "ReferenceTransducer", "ReferenceTriggerGenerator",
           "reference_of", "reference_server"]
