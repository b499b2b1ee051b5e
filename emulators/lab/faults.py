"""Fault injection: through the lab config (``[[faults]]``) and at run time through the lab's
admin endpoint (``inject``, ``clear``, ``faults``) or :attr:`emulators.lab.Lab.faults`.

Kinds and what a driver sees (``docs/lab.md`` has the full table):

``latency``      every request to ``target`` waits ``latency`` (+ half-normal ``jitter`` rms)
                 wall seconds before it is handled: calls slow down; a short client timeout
                 gives :class:`qnhw.DeadlineExceeded`.
``drop``         each reply of ``target`` is lost with ``probability`` (the command still
                 runs): the caller gets :class:`qnhw.DeadlineExceeded`, the connection stays
                 usable, the next call works.
``disconnect``   the endpoint of ``target`` closes (clients get :class:`qnhw.ConnectionLost`
                 and reconnect on their own) and comes back after ``duration`` wall seconds
                 (or when the fault is cleared) at the same address, device state intact.
``device_fault`` every command of ``target`` fails with :class:`qnhw.DeviceFault`
                 (``message``) until cleared.
``latch``        the detector on ``channel`` of tagger ``target`` latches: no tags; counting
                 on it gives :class:`qnhw.DeviceFault` until ``set_bias`` (or clear).
``lose_state``   ``qubit`` (default all) of memory ``target`` loses its state: commands on it
                 give :class:`qnhw.DeviceFault` until ``initialize``; an entangled partner's
                 half becomes maximally mixed.
``clock_slip``   node ``target``'s clock domain steps by ``offset`` seconds (a phase slip):
                 every later timestamp of its devices jumps; a timing card can steer it back.
``phase_unlock`` heralding station ``target`` loses its interferometer phase lock: single-
                 click heralds carry no entanglement until ``lock_phase``.

``duration`` (wall seconds for latency/drop/disconnect, lab seconds for the device faults
latch and device_fault) clears a fault by itself; ``at`` (lab seconds, config only) delays the
injection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qnhw.log import get_logger

from .config import FAULT_KINDS
from .time import Timer, to_ps

if TYPE_CHECKING:
    from .lab import Lab

TRANSPORT_FAULTS = ("latency", "drop", "disconnect")


class FaultError(ValueError):
    """A fault cannot be injected or cleared: bad kind, target or parameter."""


@dataclass(eq=False)
class Fault:
    """One injected fault."""

    id: int
    kind: str
    target: str
    params: dict[str, Any]
    active: bool = True
    _timer: Timer | None = field(default=None, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _wall: asyncio.TimerHandle | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "target": self.target,
                "params": dict(self.params), "active": self.active}


class FaultInjector:
    """The faults of one lab (module docstring)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._ids = itertools.count(1)
        self.faults: dict[int, Fault] = {}
        self._rng = np.random.default_rng([lab.config.seed, 0xFA17])
        self._log = get_logger("lab.faults", lab=lab.config.name)

    # --- queries used by the handler wrapper ----------------------------------------------

    def transport(self, device: str) -> tuple[float, float, float]:
        """``(latency, jitter, drop probability)`` in force for ``device``."""
        latency = jitter = 0.0
        keep = 1.0
        for f in self.faults.values():
            if not f.active or f.target not in (device, "*"):
                continue
            if f.kind == "latency":
                latency += float(f.params.get("latency", 0.0))
                jitter = math.hypot(jitter, float(f.params.get("jitter", 0.0)))
            elif f.kind == "drop":
                keep *= 1.0 - float(f.params.get("probability", 1.0))
        return latency, jitter, 1.0 - keep

    def has_transport_faults(self, device: str) -> bool:
        return any(f.active and f.kind in ("latency", "drop") and f.target in (device, "*")
                   for f in self.faults.values())

    def delay(self, device: str) -> tuple[float, bool]:
        """Seconds to wait before handling a request, and whether to drop its reply."""
        latency, jitter, drop = self.transport(device)
        wait = latency + (abs(float(self._rng.normal(0.0, jitter))) if jitter > 0 else 0.0)
        return wait, bool(drop > 0 and self._rng.random() < drop)

    # --- inject / clear -------------------------------------------------------------------

    def _check(self, kind: str, target: str, params: dict[str, Any]) -> None:
        lab = self.lab
        if kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        if kind == "clock_slip":
            if target not in lab.world.nodes:
                raise FaultError(f"clock_slip needs a node as target; no node {target!r}")
            if not isinstance(params.get("offset"), int | float):
                raise FaultError("clock_slip needs offset (seconds)")
            return
        if target == "*" and kind in ("latency", "drop"):
            return
        if target not in lab.entries:
            raise FaultError(f"no device {target!r} (devices: {', '.join(lab.entries)})")
        kind_of = lab.entries[target].config.kind
        need = {"latch": "tagger", "lose_state": "memory", "phase_unlock": "heralding"}
        if kind in need and kind_of != need[kind]:
            raise FaultError(f"{kind} needs a {need[kind]}, {target!r} is a {kind_of}")
        if kind == "latch" and not isinstance(params.get("channel"), int):
            raise FaultError("latch needs channel (int)")
        if kind == "drop":
            p = params.get("probability", 1.0)
            if not isinstance(p, int | float) or not 0 < p <= 1:
                raise FaultError("drop needs probability in (0, 1]")
        if kind == "latency":
            for k in ("latency", "jitter"):
                v = params.get(k, 0.0)
                if not isinstance(v, int | float) or not 0 <= v < 3600:
                    raise FaultError(f"{k} must be a number of seconds in [0, 3600)")
        unknown = set(params) - {"latency", "jitter", "probability", "duration", "message",
                                 "channel", "qubit", "offset"}
        if unknown:
            raise FaultError(f"unknown fault parameters {sorted(unknown)}")

    async def inject(self, kind: str, target: str, **params: Any) -> Fault:
        """Inject a fault now; raises :class:`FaultError` for a bad kind, target or
        parameter."""
        self._check(kind, target, params)
        fault = Fault(next(self._ids), kind, target, dict(params))
        self.faults[fault.id] = fault
        lab = self.lab
        self._log.warning("fault injected", fault=fault.id, kind=kind, target=target,
                          params=params)
        duration = params.get("duration")
        if kind in ("latency", "drop"):
            lab.reinstall_handlers(target)
        elif kind == "disconnect":
            await lab.take_down(target)
            if duration is not None:
                fault._task = asyncio.get_running_loop().create_task(
                    self._restore_later(fault, float(duration)))
            return fault
        elif kind == "device_fault":
            lab.entries[target].emulator.set_fault(str(params.get("message", "injected fault")))
        elif kind == "latch":
            lab.entries[target].emulator.latch(int(params["channel"]))
        elif kind == "lose_state":
            q = params.get("qubit")
            lab.entries[target].emulator.lose_state(None if q is None else int(q))
            fault.active = False
        elif kind == "clock_slip":
            lab.world.node_clock(target).slip(float(params["offset"]), lab.clock.now_ps())
            fault.active = False
        elif kind == "phase_unlock":
            lab.entries[target].emulator.unlock()
            fault.active = False
        if duration is not None and fault.active:
            if kind in ("latch", "device_fault"):
                fault._timer = lab.clock.call_at(
                    lab.clock.now_ps() + to_ps(float(duration)),
                    lambda: self._clear_soon(fault.id))
            else:
                fault._wall = asyncio.get_running_loop().call_later(
                    float(duration), lambda: self._clear_soon(fault.id))
        return fault

    def _clear_soon(self, fault_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self.clear(fault_id))
        self.lab.track(task)

    async def _restore_later(self, fault: Fault, seconds: float) -> None:
        await asyncio.sleep(seconds)
        fault._task = None
        await self.clear(fault.id)

    async def clear(self, fault_id: int | None = None) -> list[int]:
        """Clear fault ``fault_id`` (``None``: all); returns the ids cleared."""
        ids = list(self.faults) if fault_id is None else [fault_id]
        if fault_id is not None and fault_id not in self.faults:
            raise FaultError(f"no fault {fault_id}")
        lab = self.lab
        for i in ids:
            fault = self.faults.pop(i)
            for handle in (fault._timer, fault._wall):
                if handle is not None:
                    handle.cancel()
            if fault._task is not None and fault._task is not asyncio.current_task():
                fault._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fault._task
            if not fault.active:
                continue
            fault.active = False
            if fault.kind in ("latency", "drop"):
                lab.reinstall_handlers(fault.target)
            elif fault.kind == "disconnect":
                await lab.bring_up(fault.target)
            elif fault.kind == "device_fault":
                lab.entries[fault.target].emulator.set_fault(None)
            elif fault.kind == "latch":
                lab.entries[fault.target].emulator.unlatch(int(fault.params["channel"]))
            self._log.warning("fault cleared", fault=i, kind=fault.kind, target=fault.target)
        return ids

    def describe(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self.faults.values()]

    async def close(self) -> None:
        """Cancel timers and tasks (the lab is stopping; nothing is restored)."""
        for f in self.faults.values():
            for handle in (f._timer, f._wall):
                if handle is not None:
                    handle.cancel()
            if f._task is not None:
                f._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await f._task


__all__ = ["TRANSPORT_FAULTS", "Fault", "FaultError", "FaultInjector"]
