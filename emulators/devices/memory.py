"""Emulated quantum memory: the ``QuantumMemory`` contract on the lab's qubit registry.

Model (defaults: an NV centre, ``nv-delft`` profile values where the profile has them;
``docs/lab.md`` lists the others and why):

* Qubit 0.. ``communication_qubits`` have an optical interface (the NV electron spin); the
  other qubits (NV 13C nuclear spins) and the storage ``slots`` are memory qubits. Every qubit
  is a :class:`~emulators.lab.quantum.Qubit` of the lab's registry with its own T1, T2 and
  dephasing shape (exponential or Gaussian); it decays over *lab time*, whether or not anyone
  looks -- in wall time, while the client thinks.
* Gates are exact unitaries followed by depolarizing noise of the gate's error probability;
  each takes its duration of lab time.
* ``measure`` rotates the basis ideally and reads out with asymmetric errors
  ``P(1|0) = readout_error_0``, ``P(0|1) = readout_error_1``; the qubit is left in the
  measured eigenstate.
* ``emit`` prepares ``sqrt(1-alpha)|0> + sqrt(alpha)|1>`` and the bright state emits one
  photon into the optical port, which the world routes (to a heralding station, where a
  photon from the other side within the detection window gives a herald and the joint
  state, see :meth:`emulators.lab.world.World.emit`).
* ``entangle`` runs heralded attempts with a neighbour through the world
  (:meth:`emulators.lab.world.World.entangle`): rate and state follow from the link's
  parameters; the call takes the lab time of the attempts until the herald.
* ``store``/``retrieve`` swap a qubit's state into a storage slot and back (deterministic
  transfer with depolarizing error ``store_error``).

Faults (:meth:`lose_state`): a qubit that loses its state (NV ionization) becomes maximally
mixed -- its entangled partner's half too -- and every command on it fails with
:class:`qnhw.DeviceFault` until ``initialize`` prepares it again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from emulators.devices.common import (
    Emulator,
    count,
    nonnegative,
    positive,
    probability,
)
from emulators.devices.env import EmulatorEnv
from emulators.lab.quantum import ClusterTooLarge, Qubit
from emulators.lab.world import EmitterModel
from emulators.physics.gates import gate_matrix
from emulators.physics.memory import MemoryModel
from qnhw.devices import memory as memory_contract
from qnhw.errors import BadParams, Busy, DeviceFault

__all__ = ["QuantumMemoryEmulator"]

ComplexArray = npt.NDArray[np.complex128]
DEPHASING = ("exponential", "gaussian")


def _controlled(u: ComplexArray) -> ComplexArray:
    out = np.eye(4, dtype=np.complex128)
    out[2:, 2:] = u
    return out


def gate_unitary(name: str, angle: float) -> ComplexArray:
    """The unitary of a memory gate (control first, most significant)."""
    if name in ("crx", "cry"):
        return _controlled(gate_matrix(name[1:], [angle]))
    if name in ("rx", "ry", "rz"):
        return gate_matrix(name, [angle])
    return gate_matrix(name)


class QuantumMemoryEmulator(Emulator):
    """A quantum memory (module docstring).

    Parameters (keywords; SI units; a bad value raises ``ValueError`` naming it):
    ``platform`` ("nv"); ``qubits`` (2); ``communication_qubits`` ((0,)); ``slots`` (1);
    ``t1``, ``t2``, ``dephasing`` of communication qubits (3600 s, 1.58 s, "exponential");
    ``memory_t1``, ``memory_t2``, ``memory_dephasing`` of memory qubits and slots (3600 s,
    1.0 s, "exponential"); ``readout_error_0`` (0.05), ``readout_error_1`` (0.005);
    ``gate_error_1q`` (1e-3), ``gate_error_2q`` (2e-2); ``gate_time_1q`` (1e-7 s),
    ``gate_time_2q`` (5e-4 s); ``init_time`` (2e-6 s); ``readout_time`` (1e-5 s);
    ``store_time`` (1e-3 s), ``store_error`` (1e-2); ``collection_efficiency`` (0.003: the
    probability that a bright state's photon enters the fiber); ``optical_lifetime``
    (12e-9 s); ``wavelength`` (637e-9 m); ``gates`` (every contract gate).
    """

    CONTRACT = memory_contract.CONTRACT
    KIND = "memory"

    def __init__(self, env: EmulatorEnv, *, platform: str = "nv", qubits: int = 2,
                 communication_qubits: Sequence[int] = (0,), slots: int = 1,
                 t1: float = 3600.0, t2: float = 1.58, dephasing: str = "exponential",
                 memory_t1: float = 3600.0, memory_t2: float = 1.0,
                 memory_dephasing: str = "exponential", readout_error_0: float = 0.05,
                 readout_error_1: float = 0.005, gate_error_1q: float = 1e-3,
                 gate_error_2q: float = 2e-2, gate_time_1q: float = 1e-7,
                 gate_time_2q: float = 5e-4, init_time: float = 2e-6,
                 readout_time: float = 1e-5, store_time: float = 1e-3,
                 store_error: float = 1e-2, collection_efficiency: float = 0.003,
                 optical_lifetime: float = 12e-9, wavelength: float = 637e-9,
                 gates: Sequence[str] | None = None) -> None:
        super().__init__(env)
        platforms = ("nv", "ion", "neutral_atom", "ensemble", "rare_earth", "quantum_dot",
                     "other")
        if platform not in platforms:
            raise ValueError(f"platform must be one of {platforms}, got {platform!r}")
        self.platform = platform
        self.n = count("qubits", qubits, 1, 64)
        comm = [count("communication_qubits[]", q, 0, self.n - 1)
                for q in communication_qubits]
        if len(set(comm)) != len(comm):
            raise ValueError("communication_qubits lists a qubit twice")
        self.communication = comm
        self.n_slots = count("slots", slots, 0, 64)
        for name, value in (("dephasing", dephasing), ("memory_dephasing", memory_dephasing)):
            if value not in DEPHASING:
                raise ValueError(f"{name} must be one of {DEPHASING}, got {value!r}")
        try:
            self.comm_model = MemoryModel(positive("t1", t1, allow_inf=True),
                                          positive("t2", t2, allow_inf=True), dephasing)
            self.memory_model = MemoryModel(positive("memory_t1", memory_t1, allow_inf=True),
                                            positive("memory_t2", memory_t2, allow_inf=True),
                                            memory_dephasing)
        except ValueError as exc:
            raise ValueError(f"t1/t2: {exc}") from None
        self.readout_error_0 = probability("readout_error_0", readout_error_0)
        self.readout_error_1 = probability("readout_error_1", readout_error_1)
        self.gate_error_1q = probability("gate_error_1q", gate_error_1q)
        self.gate_error_2q = probability("gate_error_2q", gate_error_2q)
        self.gate_time_1q = nonnegative("gate_time_1q", gate_time_1q)
        self.gate_time_2q = nonnegative("gate_time_2q", gate_time_2q)
        self.init_time = nonnegative("init_time", init_time)
        self.readout_time = nonnegative("readout_time", readout_time)
        self.store_time = nonnegative("store_time", store_time)
        self.store_error = probability("store_error", store_error)
        self.collection_efficiency = probability("collection_efficiency",
                                                 collection_efficiency)
        self.optical_lifetime = positive("optical_lifetime", optical_lifetime)
        self.wavelength = positive("wavelength", wavelength)
        names = list(memory_contract.MEMORY_GATES) if gates is None else list(gates)
        bad = [g for g in names if g not in memory_contract.MEMORY_GATES]
        if bad:
            raise ValueError(f"gates {bad} are not QuantumMemory gates")
        self.gates = names
        t0 = self.lab_ps()
        self.qubits: list[Qubit] = [
            self.registry.add(f"{env.name}:q{i}", self.comm_model if i in comm
                              else self.memory_model, t0) for i in range(self.n)]
        self.slot_qubits: list[Qubit] = [
            self.registry.add(f"{env.name}:slot{s}", self.memory_model, t0)
            for s in range(self.n_slots)]
        self.stored_at: dict[int, int] = {}
        self.states = ["uninitialized"] * self.n
        self.since: list[int | None] = [None] * self.n
        self.lost: set[int] = set()
        self._busy: set[int] = set()
        self.photons = 0
        self._neighbours: list[str] | None = None

    # --- world hooks ----------------------------------------------------------------------

    def emitter_model(self) -> EmitterModel:
        return EmitterModel(self.collection_efficiency, self.optical_lifetime, self.wavelength)

    @property
    def neighbours(self) -> list[str]:
        """Nodes this memory can run ``entangle`` with (through a heralding station)."""
        if self._neighbours is None:
            self._neighbours = [] if self.world is None else self.world.neighbours(self.name)
        return self._neighbours

    def lose_state(self, qubit: int | None = None) -> None:
        """Fault: ``qubit`` (default: every qubit) loses its state (maximally mixed, partner
        halves too); commands on it fail with DeviceFault until ``initialize``."""
        targets = range(self.n) if qubit is None else [qubit]
        now = self.lab_ps()
        for q in targets:
            self.registry.prepare(self.qubits[q], np.eye(2, dtype=np.complex128) / 2, now)
            self.lost.add(q)

    # --- helpers --------------------------------------------------------------------------

    def _qubit(self, q: int, *, operate: bool = True) -> Qubit:
        if not 0 <= q < self.n:
            raise BadParams(f"qubit {q} does not exist (this memory has {self.n})",
                            {"param": "qubit", "value": q})
        if operate:
            self.check_fault()
            if q in self._busy:
                raise Busy(f"qubit {q} is busy with another operation")
            if q in self.lost:
                raise DeviceFault(f"{self.name}: qubit {q} lost its state; initialize it",
                                  {"fault": "state_lost", "qubit": q})
        return self.qubits[q]

    def _comm(self, q: int) -> None:
        if q not in self.communication:
            raise BadParams(f"qubit {q} is not a communication qubit ({self.communication})",
                            {"param": "qubit", "value": q})

    def _changed(self, q: int, event: str, state: str, lab_ps: int | None = None) -> int:
        t = self.lab_ps() if lab_ps is None else lab_ps
        self.states[q] = state
        self.since[q] = t
        self.publish_nowait("state_changes", {"qubit": q, "event": event, "state": state},
                            self.to_domain(t))
        return t

    async def _hold(self, qubits: Sequence[int], seconds: float) -> None:
        """Mark ``qubits`` busy for ``seconds`` of lab time."""
        self._busy.update(qubits)
        try:
            await self.spend(seconds)
        finally:
            self._busy.difference_update(qubits)

    # --- contract commands ----------------------------------------------------------------

    async def initialize(self, qubit: int) -> None:
        """Prepare ``qubit`` in |0>; takes ``init_time``."""
        self._qubit(qubit, operate=False)
        self.check_fault()
        if qubit in self._busy:
            raise Busy(f"qubit {qubit} is busy with another operation")
        self.lost.discard(qubit)
        await self._hold([qubit], self.init_time)
        self.registry.reset(self.qubits[qubit], self.lab_ps())
        self._changed(qubit, "initialized", "initialized")

    async def gate(self, name: str, qubits: list[int], angle: float) -> None:
        """Apply gate ``name``; takes its duration."""
        if name not in self.gates:
            raise BadParams(f"gate {name!r} is not native here ({self.gates})",
                            {"param": "name", "value": name})
        two = memory_contract.check_gate(name, qubits, angle)
        qs = [self._qubit(q) for q in qubits]
        now = self.lab_ps()
        try:
            self.registry.unitary(gate_unitary(name, angle), qs, now)
        except ClusterTooLarge as exc:
            raise DeviceFault(f"{self.name}: {exc}", {"fault": "capacity"}) from None
        self.registry.depolarize(qs, self.gate_error_2q if two else self.gate_error_1q, now)
        await self._hold(qubits, self.gate_time_2q if two else self.gate_time_1q)
        for q in qubits:
            state = "entangled" if self.registry.entangled(self.qubits[q]) else \
                ("initialized" if self.states[q] == "uninitialized" else self.states[q])
            self._changed(q, "gate", state)

    async def measure(self, qubit: int, basis: str) -> dict[str, Any]:
        """Measure ``qubit`` in ``basis``; takes ``readout_time``."""
        q = self._qubit(qubit)
        true = self.registry.measure(q, basis, self.lab_ps(), self.env.rng)
        flip = self.readout_error_1 if true else self.readout_error_0
        outcome = true ^ int(self.env.rng.random() < flip)
        await self._hold([qubit], self.readout_time)
        t = self._changed(qubit, "measured", "measured")
        return {"outcome": outcome, "time": self.ts(t)}

    async def emit(self, qubit: int, alpha: float) -> dict[str, Any]:
        """Spin-photon emission from communication ``qubit`` with bright population
        ``alpha``."""
        q = self._qubit(qubit)
        self._comm(qubit)
        now = self.lab_ps()
        ket = np.array([math.sqrt(1 - alpha), math.sqrt(alpha)], dtype=np.complex128)
        self.registry.prepare(q, np.outer(ket, ket.conj()), now)
        if self.world is not None:
            self.world.emit(self.name, q, now, self.env.rng, qubit)
        else:  # no optical path: the photon is lost, which dephases the spin
            self.registry.prepare(q, np.diag([1 - alpha, alpha]).astype(np.complex128), now)
        photon = self.photons
        self.photons += 1
        await asyncio.sleep(0)
        self._changed(qubit, "emitted", "emitted", now)
        return {"time": self.ts(now), "photon": photon}

    def _slot(self, slot: int) -> Qubit:
        if not 0 <= slot < self.n_slots:
            raise BadParams(f"slot {slot} does not exist (this memory has {self.n_slots})",
                            {"param": "slot", "value": slot})
        return self.slot_qubits[slot]

    async def store(self, qubit: int, slot: int) -> dict[str, Any]:
        """Move ``qubit``'s state into ``slot``; takes ``store_time``."""
        q = self._qubit(qubit)
        s = self._slot(slot)
        if slot in self.stored_at:
            raise BadParams(f"slot {slot} already holds a state", {"param": "slot"})
        now = self.lab_ps()
        self.registry.sync([q, s], now)
        self.registry.swap(q, s)  # the states trade places: the slot now holds the qubit's
        self.registry.depolarize([s], self.store_error, now)
        self.registry.reset(q, now)
        await self._hold([qubit], self.store_time)
        t = self.lab_ps()
        self.stored_at[slot] = t
        self._changed(qubit, "stored", "stored")
        return {"time": self.ts(t)}

    async def retrieve(self, slot: int, qubit: int) -> dict[str, Any]:
        """Move the state in ``slot`` back to ``qubit``; takes ``store_time``."""
        s = self._slot(slot)
        q = self._qubit(qubit)
        if slot not in self.stored_at:
            raise BadParams(f"slot {slot} holds no state", {"param": "slot"})
        now = self.lab_ps()
        self.registry.sync([q, s], now)
        self.registry.swap(q, s)
        self.registry.depolarize([q], self.store_error, now)
        self.registry.reset(s, now)
        await self._hold([qubit], self.store_time)
        t = self.lab_ps()
        stored_for = (t - self.stored_at.pop(slot)) / 1e12
        state = "entangled" if self.registry.entangled(q) else "initialized"
        self._changed(qubit, "retrieved", state)
        return {"time": self.ts(t), "stored_for": stored_for, "efficiency": 1.0}

    async def entangle(self, qubit: int, remote: str, attempts: int, attempt_period: float,
                       start: int | None, alpha: float) -> dict[str, Any]:
        """Heralded attempts with node ``remote`` until the first herald or the end of the
        batch (see :meth:`emulators.lab.world.World.entangle`)."""
        q = self._qubit(qubit)
        self._comm(qubit)
        if remote not in self.neighbours:
            raise BadParams(f"no neighbour {remote!r} (neighbours: {self.neighbours})",
                            {"param": "remote", "value": remote})
        assert self.world is not None
        now = self.lab_ps()
        start_lab = now if start is None else self.to_lab(start)
        if start_lab < now:
            raise BadParams("start is in the past", {"param": "start"})
        self._busy.add(qubit)
        self.states[qubit] = "busy"
        try:
            result = await self.world.entangle(self.name, q, remote, attempts, attempt_period,
                                               start_lab, alpha, qubit)
        except asyncio.CancelledError:
            self.world.cancel_requests(self.name)
            raise
        finally:
            self._busy.discard(qubit)
        if result.success:
            self._changed(qubit, "entangled", "entangled", result.lab_ps)
        else:
            self._changed(qubit, "entangle_failed", "initialized", result.lab_ps)
        return {"success": result.success, "attempts": result.attempts,
                "time": self.ts(result.lab_ps), "bell_state": result.bell_state}

    def status(self) -> dict[str, Any]:
        """Every qubit's state (does not block)."""
        qubits = []
        for q in range(self.n):
            since = self.since[q]
            qubits.append({"qubit": q, "state": self.states[q],
                           "since": None if since is None else self.ts(since)})
        return {"qubits": qubits, "busy": bool(self._busy)}

    # --- server ---------------------------------------------------------------------------

    @property
    def features(self) -> list[str]:
        feats = ["gates", "emit"]
        if self.n_slots > 0:
            feats.append("storage")
        if self.neighbours:
            feats.append("entangle")
        return feats

    def capabilities(self) -> dict[str, Any]:
        props = []
        for q in range(self.n):
            comm = q in self.communication
            m = self.comm_model if comm else self.memory_model
            props.append({"qubit": q, "role": "communication" if comm else "memory",
                          "t1": m.t1_s, "t2": m.t2_s, "dephasing": m.dephasing,
                          "readout_error_0": self.readout_error_0,
                          "readout_error_1": self.readout_error_1})
        two = memory_contract.TWO_QUBIT_GATES
        gates = [{"gate": g, "qubits": [0, 1] if g in two else [0],
                  "duration": self.gate_time_2q if g in two else self.gate_time_1q,
                  "error": self.gate_error_2q if g in two else self.gate_error_1q}
                 for g in self.gates]
        return {"platform": self.platform, "qubits": self.n, "slots": self.n_slots,
                "communication_qubits": list(self.communication), "gates": list(self.gates),
                "qubit_properties": props, "gate_properties": gates,
                "wavelength": self.wavelength if self.communication else None,
                "neighbours": list(self.neighbours)}
