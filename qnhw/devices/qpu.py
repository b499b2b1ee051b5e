"""QPU: a quantum processor that runs OpenQASM 2 circuits, with communication qubits.

Circuits are OpenQASM 2.0 text in the subset of :mod:`qnhw.devices.qasm` (qelib1 gates
``id x y z h s sdg t tdg sx sxdg rx ry rz p u1 u2 u3 u cx cy cz swap ccx``, ``measure``,
``reset``, ``barrier``; no ``gate``/``opaque``/``if``). Results are counts per bitstring
(``c[n-1] ... c[0]``, as in Qiskit) and, on request, per-shot memory. The capability
``target`` follows Qiskit's ``BackendV2.target``: per-instruction, per-qubit-tuple duration
and error, and per-qubit T1, T2, frequency and readout error; the qubits with an optical or
microwave link to a transducer are *communication qubits*, named as such in the capabilities
and in the target's qubit roles.

Optional feature: ``live_register`` -- the register persists between calls, so a circuit can
act on entanglement delivered to communication qubits (``run(..., initial_state="live")``
with one shot), and ``measure`` / ``reset`` act on it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from qnhw.contract.spec import Command, Contract, Field, Param
from qnhw.devices._schema import FEATURES_FIELD, int_list, ts_field
from qnhw.devices.base import Driver
from qnhw.devices.qasm import QELIB1_GATES
from qnhw.protocol.types import Timestamp

INITIAL_STATES = ("ground", "live")
ROLES = ("compute", "communication")

_INSTRUCTION_PROPS = Field("instruction", "dict", fields=(
    Field("name", "str", "gate name, measure or reset"),
    Field("qubits", "list", "qubits it acts on", items=Field("qubit", "int")),
    Field("duration", "float", "duration", unit="s"),
    Field("error", "float", "average error probability"),
))
_QUBIT_PROPS = Field("qubit", "dict", fields=(
    Field("qubit", "int", "index"),
    Field("role", "str", "compute or communication", choices=ROLES),
    Field("t1", "float", "energy relaxation time", unit="s"),
    Field("t2", "float", "coherence time", unit="s"),
    Field("frequency", "float", "qubit frequency (null when not applicable)", unit="Hz",
          nullable=True),
    Field("readout_error", "float", "average readout assignment error"),
    Field("readout_duration", "float", "readout time", unit="s"),
))
_TARGET_FIELDS = (
    Field("num_qubits", "int", "qubits"),
    Field("dt", "float", "control time step (null when not applicable)", unit="s",
          nullable=True),
    Field("instructions", "list", "per instruction and qubit tuple", items=_INSTRUCTION_PROPS),
    Field("qubits", "list", "per qubit", items=_QUBIT_PROPS),
)

CONTRACT = Contract(
    name="QPU",
    version="1.0",
    doc=("A quantum processor: run OpenQASM 2 circuits (qnhw subset) for counts and per-shot "
         "memory; a Qiskit-Target-like descriptor of gates, errors and durations; named "
         "communication qubits; optionally a live register for networked operation."),
    features=("live_register",),
    feature_docs=(("live_register", "the register persists between calls: circuits on "
                   "delivered entanglement (`initial_state=\"live\"`), `measure`, `reset`"),),
    commands=(
        Command("run", (
            Param("circuit", "str", "OpenQASM 2.0 program (qnhw subset)", min=1,
                  max=1 << 20),
            Param("shots", "int", "repetitions (at most `capabilities.max_shots`)", min=1,
                  max=10**7, default=1024),
            Param("memory", "bool", "also return every shot's bits", default=False),
            Param("initial_state", "str", "ground: every shot starts in |0...0>; live: one "
                  "shot on the live register (feature live_register)",
                  choices=INITIAL_STATES, default="ground"),
        ), "Run a circuit; blocks until every shot is done.",
            returns="counts, optional per-shot memory, completion time and duration",
            result=(Field("counts", "dict", "shots per bitstring c[n-1]...c[0]"),
                    Field("memory", "array", "per-shot bits, shape (shots, clbits), column j "
                          "= c[j] (null unless memory=true)", dtype="uint8", nullable=True),
                    Field("shots", "int", "shots run"),
                    ts_field("time", "completion time"),
                    Field("duration", "float", "execution time on the device", unit="s"))),
        Command("calibration", (), "The current calibration as a Target (may drift from "
                "`capabilities.target`). Does not block.", returns="the target",
                result=(*_TARGET_FIELDS, ts_field("time", "when it was calibrated"))),
        Command("reset", (
            int_list("qubits", "qubits to reset (empty: all)", item="qubit", max=4096,
                     default=()),
        ), "Reset qubits of the live register to |0>.", feature="live_register"),
        Command("measure", (
            int_list("qubits", "qubits to measure", item="qubit", min=1, max=4096),
        ), "Measure qubits of the live register in Z (they keep the outcome).",
            returns="the outcomes", feature="live_register",
            result=(Field("outcomes", "list", "0 or 1 per qubit, in request order",
                          items=Field("bit", "int", choices=(0, 1))),
                    ts_field("time", "end of the readout"))),
    ),
    streams=(),
    capabilities=(
        Field("n_qubits", "int", "qubits"),
        Field("basis_gates", "list", "native gates (subset of the OpenQASM subset's qelib1 "
              "gates)", items=Field("gate", "str", choices=tuple(QELIB1_GATES))),
        Field("coupling_map", "list", "qubit pairs allowing two-qubit gates (null: "
              "all-to-all)", nullable=True,
              items=Field("pair", "list", items=Field("qubit", "int"))),
        Field("communication_qubits", "list", "qubits linked to a transducer",
              items=Field("qubit", "int")),
        Field("max_shots", "int", "most shots per run"),
        Field("max_instructions", "int", "most instructions per circuit"),
        Field("qasm", "str", "circuit language (\"OpenQASM 2.0 qnhw subset\")"),
        Field("target", "dict", "Qiskit-Target-like descriptor", fields=_TARGET_FIELDS),
        FEATURES_FIELD,
    ),
)


@dataclass(frozen=True)
class CircuitResult:
    """Result of :meth:`QPU.run`.

    ``counts``: shots per bitstring ``c[n-1] ... c[0]``; ``memory``: uint8 array
    ``(shots, n_clbits)`` with column ``j`` = ``c[j]`` (``None`` unless requested);
    ``time``: completion time; ``duration``: execution time in s.
    """

    counts: dict[str, int]
    memory: npt.NDArray[np.uint8] | None
    shots: int
    time: Timestamp
    duration: float = field(default=0.0)

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> CircuitResult:
        memory = reply.get("memory")
        return cls({str(k): int(v) for k, v in reply["counts"].items()},
                   None if memory is None else np.asarray(memory, dtype=np.uint8),
                   int(reply["shots"]), reply["time"], float(reply["duration"]))

    def bitstrings(self) -> list[str]:
        """Per-shot bitstrings ``c[n-1] ... c[0]`` (needs ``memory=True``)."""
        if self.memory is None:
            raise ValueError("run with memory=True to get per-shot results")
        return ["".join(str(int(b)) for b in row[::-1]) for row in self.memory]

    def probabilities(self) -> dict[str, float]:
        """Relative frequency of each bitstring."""
        total = sum(self.counts.values())
        return {k: v / total for k, v in self.counts.items()} if total else {}


class InstructionProperties(TypedDict):
    """Duration (s) and error of one instruction on one qubit tuple."""

    name: str
    qubits: list[int]
    duration: float
    error: float


class QubitProperties(TypedDict):
    """Per-qubit properties (``t1``, ``t2``, ``readout_duration`` in s, ``frequency`` Hz)."""

    qubit: int
    role: str
    t1: float
    t2: float
    frequency: float | None
    readout_error: float
    readout_duration: float


class Calibration(TypedDict):
    """Result of :meth:`QPU.calibration`: a Target-like descriptor."""

    num_qubits: int
    dt: float | None
    instructions: list[InstructionProperties]
    qubits: list[QubitProperties]
    time: Timestamp


class Outcomes(TypedDict):
    """Result of :meth:`QPU.measure`."""

    outcomes: list[int]
    time: Timestamp


class QPU(Driver):
    """Async driver of a QPU (contract ``QPU`` 1.0).

    ``res = await qpu.run(BELL, shots=1000)``; ``res.counts`` like ``{"00": 507, "11": 493}``.
    ``qpu.capabilities["communication_qubits"]`` names the networked qubits.
    """

    CONTRACT = CONTRACT

    async def run(self, circuit: str, shots: int = 1024, memory: bool = False,
                  initial_state: str = "ground", *,
                  timeout: float | None = None) -> CircuitResult:
        """Run OpenQASM 2 ``circuit`` for ``shots`` shots; ``memory``: keep per-shot bits;
        ``initial_state`` "live" (one shot, feature ``live_register``) acts on the live
        register. Blocks until done: pass a ``timeout`` fitting the circuit."""
        reply = await self._call("run", timeout, circuit=circuit, shots=shots, memory=memory,
                                 initial_state=initial_state)
        return CircuitResult.from_reply(reply)

    async def calibration(self, *, timeout: float | None = None) -> Calibration:
        """The current Target-like calibration (durations in s, errors as probabilities)."""
        result: Calibration = await self._call("calibration", timeout)
        return result

    async def reset(self, qubits: Sequence[int] = (), *, timeout: float | None = None) -> None:
        """Reset ``qubits`` (empty: all) of the live register. Feature ``live_register``."""
        await self._call("reset", timeout, qubits=qubits)

    async def measure(self, qubits: Sequence[int], *,
                      timeout: float | None = None) -> Outcomes:
        """Measure ``qubits`` of the live register in Z; returns ``outcomes`` in order.
        Feature ``live_register``."""
        result: Outcomes = await self._call("measure", timeout, qubits=qubits)
        return result


__all__ = [
    "CONTRACT",
    "INITIAL_STATES",
    "QPU",
    "ROLES",
    "Calibration",
    "CircuitResult",
    "InstructionProperties",
    "Outcomes",
    "QubitProperties",
]
