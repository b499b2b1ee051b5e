"""QuantumMemory: NV centres, trapped ions, neutral atoms, atomic ensembles, rare-earth crystals.

Modelled on the QDevice instruction set of QNodeOS (Delle Donne et al., Nature 2025):
initialize, single- and two-qubit gates, measure, spin-photon emission and batched,
neighbour-synchronized entanglement attempts; plus store/retrieve between a communication
qubit and a memory slot (NV carbon spins, ensemble spin waves). Qubit 0..n-1 index every qubit
of the device; the capabilities say which are *communication* qubits (with an optical
interface) and give per-qubit T1/T2 and per-gate durations and errors, like Qiskit's
``Target``.

Optional features: ``gates`` (``gate``), ``emit`` (``emit``), ``storage`` (``store``,
``retrieve``), ``entangle`` (``entangle``). An ensemble memory may offer only ``storage``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypedDict

from qnhw.contract.spec import Command, Contract, Field, Param, StreamSpec
from qnhw.devices._schema import FANOUT, FEATURES_FIELD, Instant, Mode, Number, ts_field, ts_param
from qnhw.devices.base import Driver
from qnhw.errors import BadParams
from qnhw.protocol.types import Timestamp
from qnhw.runtime.streams import Subscription

#: Gate names a QuantumMemory contract knows; a device offers a subset (``gates``).
MEMORY_GATES: tuple[str, ...] = (
    "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz",
    "cx", "cz", "crx", "cry", "swap",
)  # fmt: skip
#: Gates that take an angle.
ROTATIONS: frozenset[str] = frozenset({"rx", "ry", "rz", "crx", "cry"})
#: Gates that act on two qubits (the others act on one).
TWO_QUBIT_GATES: frozenset[str] = frozenset({"cx", "cz", "crx", "cry", "swap"})
BELL_STATES: tuple[str, ...] = ("phi+", "phi-", "psi+", "psi-")
QUBIT_STATES: tuple[str, ...] = ("uninitialized", "initialized", "measured", "emitted",
                                 "stored", "entangled", "busy")
STATE_EVENTS: tuple[str, ...] = ("initialized", "gate", "measured", "emitted", "stored",
                                 "retrieved", "entangled", "entangle_failed")

def check_gate(name: str, qubits: Sequence[int], angle: float) -> bool:
    """The device side of ``gate``'s argument checks, for implementations of this contract:
    the number of qubits fits the gate, a two-qubit gate's qubits differ, only rotations take an
    angle. Raises :class:`BadParams` naming the parameter; returns whether the gate acts on two
    qubits. (Whether the device offers ``name`` and has those qubits is its own check.)"""
    two = name in TWO_QUBIT_GATES
    if len(qubits) != (2 if two else 1):
        raise BadParams(f"gate {name!r} acts on {2 if two else 1} qubit(s)", {"param": "qubits"})
    if two and qubits[0] == qubits[1]:
        raise BadParams("a two-qubit gate needs two different qubits", {"param": "qubits"})
    if name not in ROTATIONS and angle != 0.0:
        raise BadParams(f"gate {name!r} takes no angle", {"param": "angle"})
    return two


_QUBIT = Param("qubit", "int", "qubit index (0-based)", min=0, max=4095)
_SLOT = Param("slot", "int", "memory slot index (0-based)", min=0, max=4095)

CONTRACT = Contract(
    name="QuantumMemory",
    version="1.0",
    doc=("A qubit register with optical interfaces: initialize, gates, measure, spin-photon "
         "emission, storage in memory slots and batched heralded entanglement attempts "
         "(QNodeOS QDevice-like). Communication qubits are named in the capabilities."),
    features=("gates", "emit", "storage", "entangle"),
    feature_docs=(
        ("gates", "native single- and two-qubit gates (`gate`)"),
        ("emit", "spin-photon entanglement by emitting a photon (`emit`)"),
        ("storage", "moving a qubit to a memory slot and back (`store`, `retrieve`)"),
        ("entangle", "batched heralded entanglement attempts with a neighbour (`entangle`)"),
    ),
    commands=(
        Command("initialize", (_QUBIT,),
                "Prepare `qubit` in |0>. Blocks for the initialization time.",
                ),
        Command("gate", (
            Param("name", "str", "gate name; the device offers `capabilities.gates`",
                  choices=MEMORY_GATES),
            Param("qubits", "list", "qubits the gate acts on (control first)", min=1, max=2,
                  items=Param("qubit", "int", min=0, max=4095)),
            Param("angle", "float", "rotation angle for rx ry rz crx cry (must be 0 for "
                  "fixed gates)", unit="rad", min=-4 * math.pi, max=4 * math.pi, default=0.0),
        ), "Apply a native gate. Blocks for the gate duration.", feature="gates"),
        Command("measure", (
            _QUBIT,
            Param("basis", "str", "measurement basis", choices=("z", "x", "y"), default="z"),
        ), "Measure `qubit` projectively; the qubit is left in the measured eigenstate.",
            returns="outcome and time of the readout",
            result=(Field("outcome", "int", "0 or 1", choices=(0, 1)),
                    ts_field("time", "end of the readout"))),
        Command("emit", (
            _QUBIT,
            Param("alpha", "float", "bright-state population of the spin before emission "
                  "(single-click scheme; 0.5 for Barrett-Kok)", min=0.0, max=1.0, default=0.5),
        ), "Entangle communication qubit `qubit` with an emitted photon (spin-photon).",
            returns="emission time and photon id", feature="emit",
            result=(ts_field("time", "emission time"),
                    Field("photon", "int", "id of the emitted photon (per device, increasing)"))),
        Command("store", (_QUBIT, _SLOT),
                "Move the state of `qubit` into memory `slot` (e.g. NV electron to carbon, "
                "photon into an ensemble spin wave).", returns="time the state was stored",
                feature="storage", result=(ts_field("time", "time the state was stored"),)),
        Command("retrieve", (_SLOT, _QUBIT),
                "Move the state in memory `slot` back to `qubit` (or re-emit it).",
                returns="retrieval time, storage duration and expected efficiency",
                feature="storage",
                result=(ts_field("time", "time of retrieval"),
                        Field("stored_for", "float", "storage duration", unit="s"),
                        Field("efficiency", "float", "expected retrieval efficiency (1 for "
                              "deterministic transfers)"))),
        Command("entangle", (
            _QUBIT,
            Param("remote", "str", "name of the neighbour node the attempts are synchronized "
                  "with", min=1, max=256),
            Param("attempts", "int", "maximum attempts in this batch", min=1, max=10**9),
            Param("attempt_period", "float", "time between attempts", unit="s", min=1e-9,
                  max=1.0, default=1e-6),
            ts_param("start", "first attempt (device domain; null: as soon as possible)",
                     nullable=True, default=None),
            Param("alpha", "float", "bright-state population per attempt (single-click)",
                  min=0.0, max=1.0, default=0.1),
        ), "Run a batch of heralded entanglement attempts with `remote` on `qubit`; returns at "
           "the first success or when the batch is exhausted.",
            returns="whether and when a herald came, and the Bell state produced",
            feature="entangle",
            result=(Field("success", "bool", "a herald arrived"),
                    Field("attempts", "int", "attempts used"),
                    ts_field("time", "herald time (success) or end of the batch"),
                    Field("bell_state", "str", "Bell state heralded (null on failure)",
                          choices=BELL_STATES, nullable=True))),
        Command("status", (), "Report every qubit's state. Does not block.",
                returns="per-qubit state",
                result=(Field("qubits", "list", "one entry per qubit", items=Field(
                    "qubit", "dict", fields=(
                        Field("qubit", "int", "index"),
                        Field("state", "str", "last operation's outcome", choices=QUBIT_STATES),
                        ts_field("since", "when it entered that state", nullable=True),
                    ))),
                        Field("busy", "bool", "an operation is in progress"))),
    ),
    streams=(
        StreamSpec("state_changes", "one event per state change of a qubit", "map",
                   fields=(Field("qubit", "int", "qubit index"),
                           Field("event", "str", "what happened", choices=STATE_EVENTS),
                           Field("state", "str", "the qubit's new state",
                                 choices=QUBIT_STATES))),
    ),
    capabilities=(
        Field("platform", "str", "physical platform",
              choices=("nv", "ion", "neutral_atom", "ensemble", "rare_earth", "quantum_dot",
                       "other")),
        Field("qubits", "int", "number of qubits (indices 0..qubits-1)"),
        Field("slots", "int", "number of memory slots for store/retrieve (0 without storage)"),
        Field("communication_qubits", "list", "qubits with an optical interface",
              items=Field("qubit", "int")),
        Field("gates", "list", "native gates (subset of the contract's gate names)",
              items=Field("gate", "str", choices=MEMORY_GATES)),
        Field("qubit_properties", "list", "per-qubit coherence and readout", items=Field(
            "qubit", "dict", fields=(
                Field("qubit", "int", "index"),
                Field("role", "str", "communication or memory",
                      choices=("communication", "memory")),
                Field("t1", "float", "energy relaxation time", unit="s"),
                Field("t2", "float", "coherence time", unit="s"),
                Field("dephasing", "str", "decay shape", choices=("exponential", "gaussian")),
                Field("readout_error_0", "float", "P(read 1 | 0)"),
                Field("readout_error_1", "float", "P(read 0 | 1)"),
            ))),
        Field("gate_properties", "list", "per-gate duration and error (Qiskit Target-like)",
              items=Field("gate", "dict", fields=(
                  Field("gate", "str", "gate name"),
                  Field("qubits", "list", "qubits", items=Field("qubit", "int")),
                  Field("duration", "float", "duration", unit="s"),
                  Field("error", "float", "depolarizing error probability"),
              ))),
        Field("wavelength", "float", "emission wavelength (null without an optical "
              "interface)", unit="m", nullable=True),
        Field("neighbours", "list", "nodes this memory can run `entangle` with",
              items=Field("node", "str")),
        FEATURES_FIELD,
    ),
)


class MeasureResult(TypedDict):
    """Result of :meth:`QuantumMemory.measure`."""

    outcome: int
    time: Timestamp


class EmitResult(TypedDict):
    """Result of :meth:`QuantumMemory.emit`."""

    time: Timestamp
    photon: int


class StoreResult(TypedDict):
    """Result of :meth:`QuantumMemory.store`."""

    time: Timestamp


class RetrieveResult(TypedDict):
    """Result of :meth:`QuantumMemory.retrieve`: ``stored_for`` in seconds."""

    time: Timestamp
    stored_for: float
    efficiency: float


class EntangleResult(TypedDict):
    """Result of :meth:`QuantumMemory.entangle`."""

    success: bool
    attempts: int
    time: Timestamp
    bell_state: str | None


class QubitStatus(TypedDict):
    """One qubit in :class:`MemoryStatus`."""

    qubit: int
    state: str
    since: Timestamp | None


class MemoryStatus(TypedDict):
    """Result of :meth:`QuantumMemory.status`."""

    qubits: list[QubitStatus]
    busy: bool


class QuantumMemory(Driver):
    """Async driver of a QuantumMemory device (contract ``QuantumMemory`` 1.0).

    ``async with QuantumMemory.connect("tcp://127.0.0.1:5601") as mem:`` then
    ``mem.capabilities["qubits"]``, ``await mem.initialize(0)``. Every method validates its
    arguments before sending (:class:`qnhw.BadParams`), waits at most ``timeout`` seconds
    (default: the client's) and raises the device's typed errors.
    """

    CONTRACT = CONTRACT

    async def initialize(self, qubit: int, *, timeout: float | None = None) -> None:
        """Prepare ``qubit`` (0-based index) in |0>; returns when done."""
        await self._call("initialize", timeout, qubit=qubit)

    async def gate(self, name: str, qubits: Sequence[int], angle: Number = 0.0, *,
                   timeout: float | None = None) -> None:
        """Apply native gate ``name`` to ``qubits`` (control first); ``angle`` in rad for
        rx ry rz crx cry, else 0. Returns when the gate is done. Feature ``gates``."""
        await self._call("gate", timeout, name=name, qubits=qubits, angle=angle)

    async def measure(self, qubit: int, basis: str = "z", *,
                      timeout: float | None = None) -> MeasureResult:
        """Measure ``qubit`` in ``basis`` (z, x or y); returns ``outcome`` 0/1 and the
        readout ``time``."""
        result: MeasureResult = await self._call("measure", timeout, qubit=qubit, basis=basis)
        return result

    async def emit(self, qubit: int, alpha: float = 0.5, *,
                   timeout: float | None = None) -> EmitResult:
        """Emit a photon entangled with communication qubit ``qubit``; ``alpha``: bright-state
        population (0..1). Returns the emission ``time`` and ``photon`` id. Feature ``emit``."""
        result: EmitResult = await self._call("emit", timeout, qubit=qubit, alpha=alpha)
        return result

    async def store(self, qubit: int, slot: int, *,
                    timeout: float | None = None) -> StoreResult:
        """Move the state of ``qubit`` into memory ``slot``; returns the store ``time``.
        Feature ``storage``."""
        result: StoreResult = await self._call("store", timeout, qubit=qubit, slot=slot)
        return result

    async def retrieve(self, slot: int, qubit: int, *,
                       timeout: float | None = None) -> RetrieveResult:
        """Move the state in ``slot`` back to ``qubit``; returns the ``time``, ``stored_for``
        (s) and the expected retrieval ``efficiency``. Feature ``storage``."""
        result: RetrieveResult = await self._call("retrieve", timeout, slot=slot, qubit=qubit)
        return result

    async def entangle(self, qubit: int, remote: str, attempts: int,
                       attempt_period: Number = 1e-6, start: Instant | None = None,
                       alpha: float = 0.1, *, timeout: float | None = None) -> EntangleResult:
        """Run up to ``attempts`` heralded entanglement attempts of communication qubit
        ``qubit`` with node ``remote``, one
        every ``attempt_period`` (s), from ``start`` (ps in the device domain; ``None``: now),
        with bright-state population ``alpha``. Blocks until the first herald or the end of
        the batch; pass a ``timeout`` longer than ``attempts * attempt_period``.
        Feature ``entangle``."""
        result: EntangleResult = await self._call(
            "entangle", timeout, qubit=qubit, remote=remote, attempts=attempts,
            attempt_period=attempt_period, start=start, alpha=alpha)
        return result

    async def status(self, *, timeout: float | None = None) -> MemoryStatus:
        """Every qubit's state and whether the device is busy. Does not block."""
        result: MemoryStatus = await self._call("status", timeout)
        return result

    def state_changes(self, *, mode: Mode = FANOUT, maxsize: int = 4096,
                      credit: int = 64) -> Subscription:
        """Subscribe to ``state_changes``: ``{"qubit", "event", "state"}`` per change,
        timestamped in the device domain. Use with ``async with`` / ``async for``."""
        return self._subscribe("state_changes", mode, maxsize, credit)


__all__ = [
    "BELL_STATES",
    "CONTRACT",
    "MEMORY_GATES",
    "ROTATIONS",
    "TWO_QUBIT_GATES",
    "EmitResult",
    "EntangleResult",
    "MeasureResult",
    "MemoryStatus",
    "QuantumMemory",
    "QubitStatus",
    "RetrieveResult",
    "StoreResult",
    "check_gate",
]
