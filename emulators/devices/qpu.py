"""Emulated QPU: the ``QPU`` contract on the physics core's state-vector / density-matrix
simulators, with per-qubit noise, a Target-like descriptor and communication qubits.

Model (see :mod:`emulators.physics.qpu` and ``docs/physics.md`` section 12):

* A circuit is parsed by :func:`qnhw.devices.qasm.parse`, checked against the device
  (qubit count, native gates, coupling map, size limits), then run by
  :func:`emulators.physics.qpu.run_circuit` for all shots at once (shots are sampled, not
  looped). ``method="auto"`` uses the density matrix up to ``density_matrix_qubits`` qubits
  (exact noise) and the state vector above (noise channels branch the shots).
* Noise: depolarizing after every gate with the gate's error probability, T1/T2 relaxation
  of every qubit for its idle and gate time under an as-soon-as-possible schedule, and
  asymmetric readout error. The physics core takes *one* noise setting per circuit, so the
  per-qubit values are reduced over the qubits (and gates) the circuit uses: decay *rates*
  ``1/T1``, ``1/T2`` are averaged (which keeps ``T2 <= 2 T1``) and gate errors are averaged
  over the gate applications. Readout error is applied exactly, per measured qubit.
* Duration: the critical path of the as-soon-as-possible schedule (per-qubit clocks, barriers
  synchronise, gate/readout/reset durations of the parameters) per shot, plus
  ``repetition_delay`` (qubit re-initialisation) per shot. ``run`` lets that much lab time
  pass (``env.spend``) before it replies: it blocks for ``shots * (critical path +
  repetition_delay)``, counting the time the simulation itself took. A large simulation
  (above :data:`THREAD_THRESHOLD` amplitude updates) runs in a worker thread so the event
  loop keeps serving other clients; runs, ``measure`` and ``reset`` execute one at a time (a
  queue, not :class:`qnhw.Busy`).
* Calibration drift (optional): with ``t1_fluctuation > 0`` every qubit's T1 and T2 are
  multiplied, per calibration interval of lab time, by a log-normal factor of that relative
  spread (two-level-system fluctuations); ``calibration`` reports the values in force and
  runs use them. ``capabilities.target`` keeps the nominal values.

Live register (feature ``live_register``, offered when ``n_qubits <= live_register_qubits``
or a ``register`` is given, see :class:`QuantumRegister`): standalone, an exact density
matrix of every device qubit that persists between calls and decoheres with each qubit's own
T1/T2 for the lab time that passes (memories decohere while your software thinks).
``run(..., initial_state="live")`` executes one shot on it with per-qubit gate errors and
relaxation; ``measure``/``reset`` act on it. A ``ground`` run re-initialises the qubits its
circuit declares (they end in ``|0>``); the other qubits keep their state.

Hooks for the lab world (plain methods, no I/O; they act on the live register):

* :meth:`QPUEmulator.excite_for_transduction` -- swap a communication qubit's excitation into
  its microwave photon mode for the transducer: returns an :class:`Excitation` with the
  photon-number state (``rho`` in the ``{|0>, |1>}`` photon basis) and the emission
  probability ``p_photon``; the qubit is left in ``|0>``. The world passes ``p_photon`` (or a
  sampled photon number) to the transducer's ``convert``.
* :meth:`QPUEmulator.deliver_state` -- place a state (e.g. half of a heralded pair, a local
  pair) on qubits of the live register, replacing what they held.
* :meth:`QPUEmulator.reduced_state`, :meth:`QPUEmulator.apply_kraus` -- read a reduced state
  and apply a channel (herald back-action, extra noise).
* :meth:`QPUEmulator.set_fault` -- device-fault injection: every command fails with
  :class:`qnhw.DeviceFault` until cleared.

Parameters are representative of IBM Eagle/Heron-class transmon processors (published
backend properties, 2023-2024); :mod:`emulators.physics.profiles` has no QPU profile.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from emulators.devices.common import ForegroundEmulator, count, nonnegative, positive, probability
from emulators.devices.env import EmulatorEnv
from emulators.physics import qpu as phys_qpu
from emulators.physics.channels import multi_qubit_depolarizing_kraus, relaxation_kraus
from emulators.physics.errors import PhysicsError
from emulators.physics.gates import GATES
from qnhw.devices import qpu as qpu_contract
from qnhw.devices.qasm import DIRECTIVES, QELIB1_GATES, Instruction, Program, parse
from qnhw.errors import BadParams, DeviceFault
from qnhw.log import get_logger
from qnhw.protocol.types import Timestamp
from qnhw.runtime.server import DeviceServer

__all__ = ["Excitation", "LiveRegister", "QPUEmulator", "QuantumRegister", "circuit_duration",
           "start_qpu"]

#: Dephasing laws accepted for ``dephasing``.
DEPHASING = ("exponential", "gaussian")
#: Simulation methods accepted for ``method``.
METHODS = ("auto", "statevector", "density_matrix")

#: Amplitude updates above which ``run`` simulates in a worker thread (cheaper circuits run
#: inline: deterministic ordering, no thread hand-off).
THREAD_THRESHOLD = 1 << 22

_RESET_KRAUS = [np.array([[1, 0], [0, 0]], dtype=np.complex128),
                np.array([[0, 1], [0, 0]], dtype=np.complex128)]

FloatSeq = float | Sequence[float]


# --- parameter checks (ValueError naming the parameter) -----------------------------------


def _per_qubit(name: str, value: Any, n: int, check: Any) -> list[float]:
    """A scalar for every qubit, or a sequence of exactly ``n`` values."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [check(name, value)] * n
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != n:
        raise ValueError(f"{name} must be a number or a sequence of {n} numbers (one per qubit)")
    return [check(f"{name}[{i}]", x) for i, x in enumerate(value)]


# --- scheduling ---------------------------------------------------------------------------


def _instruction_time(ins: Instruction, t_1q: float, t_2q: float, t_meas: float,
                      t_reset: float) -> float:
    if ins.name == "measure":
        return t_meas
    if ins.name == "reset":
        return t_reset
    if ins.name == "barrier":
        return 0.0
    return t_1q if len(ins.qubits) == 1 else t_2q


def circuit_duration(instructions: Iterable[Instruction], *, gate_time_1q: float,
                     gate_time_2q: float, readout_duration: float, reset_time: float) -> float:
    """Critical path (s) of one shot under an as-soon-as-possible schedule.

    Every qubit has its own clock; an instruction starts when all its qubits are free and
    occupies them for its duration (2- and 3-qubit gates take ``gate_time_2q``); a barrier
    aligns the clocks of its qubits. This is the schedule the physics core decoheres under.
    """
    clock: dict[int, float] = {}
    for ins in instructions:
        start = max((clock.get(q, 0.0) for q in ins.qubits), default=0.0)
        end = start + _instruction_time(ins, gate_time_1q, gate_time_2q, readout_duration,
                                        reset_time)
        for q in ins.qubits:
            clock[q] = end
    return max(clock.values(), default=0.0)


# --- the live register --------------------------------------------------------------------


@dataclass(frozen=True)
class Excitation:
    """What :meth:`QPUEmulator.excite_for_transduction` hands to the world.

    ``rho``: 2x2 density matrix of the microwave photon mode in the photon-number basis
    ``{|0>, |1>}`` (the qubit's state just before the swap); ``p_photon``: probability that
    the mode holds one photon (``rho[1, 1]``); ``time_ps``: when, in the device's clock
    domain; ``lab_time``: when, in lab seconds.
    """

    qubit: int
    rho: npt.NDArray[np.complex128]
    p_photon: float
    time_ps: int
    lab_time: float


class QuantumRegister(Protocol):
    """What the QPU needs of its live register (lab times in s, durations in s).

    :class:`LiveRegister` is the standalone implementation; the lab core can pass another
    (e.g. one whose communication qubits live in the lab's shared qubit registry, so they can
    be entangled with qubits of other devices) as ``QPUEmulator(register=...)``. Qubit 0 is
    the least significant bit; multi-qubit operators take the first listed qubit as the most
    significant bit.
    """

    n: int

    def idle_to(self, t: float) -> None:
        """Decohere every qubit up to lab time ``t`` (no-op if not later)."""

    def relax(self, qubit: int, dt: float) -> None:
        """Decohere ``qubit`` for ``dt`` seconds within the present instant (gate or
        readout time of a circuit executed at once)."""

    def mark_time(self, t: float) -> None:
        """Every qubit is up to date until lab time ``t`` (decay in between was applied
        with :meth:`relax`)."""

    def apply_gate(self, name: str, qubits: Sequence[int],
                   params: Sequence[float] = ()) -> None:
        """Apply an ideal gate of the OpenQASM subset."""

    def apply_kraus(self, kraus: Sequence[npt.NDArray[np.complex128]],
                    qubits: Sequence[int]) -> None:
        """Apply a channel given by Kraus operators."""

    def measure(self, qubit: int, rng: np.random.Generator) -> int:
        """Projective Z measurement; returns the true outcome."""
        raise NotImplementedError

    def reset(self, qubit: int) -> None:
        """Reset ``qubit`` to ``|0>``."""

    def reduced_state(self, qubits: Sequence[int]) -> npt.NDArray[np.complex128]:
        """Reduced density matrix of ``qubits``."""
        raise NotImplementedError

    def replace(self, qubits: Sequence[int], rho: npt.NDArray[np.complex128]) -> None:
        """Replace the state of ``qubits`` by ``rho``."""


class LiveRegister:
    """An exact density matrix of ``n`` qubits with per-qubit T1/T2, kept in lab time.

    Qubit 0 is the least significant bit (as in OpenQASM). Operators on several qubits take
    the first listed qubit as the most significant bit of their index (as
    :meth:`emulators.physics.qpu.DensityMatrix.apply_channel`). ``idle_to(t)`` decoheres
    every qubit from the register's time to lab time ``t`` (s); nothing else moves time.
    """

    def __init__(self, n: int, t1: Sequence[float], t2: Sequence[float], dephasing: str,
                 t0: float) -> None:
        self.n = n
        self.t1 = list(t1)
        self.t2 = list(t2)
        self.dephasing = dephasing
        self.time = t0
        self.dm = phys_qpu.DensityMatrix(n)

    # axes: qubit q is row axis n-1-q, column axis 2n-1-q
    def _axes(self, q: int) -> tuple[int, int]:
        return self.n - 1 - q, 2 * self.n - 1 - q

    def relax(self, qubit: int, dt: float) -> None:
        """Decohere ``qubit`` for ``dt`` seconds (its own T1, T2)."""
        if dt > 0.0 and (math.isfinite(self.t1[qubit]) or math.isfinite(self.t2[qubit])):
            self.dm.apply_channel(relaxation_kraus(dt, self.t1[qubit], self.t2[qubit],
                                                   self.dephasing), [qubit])

    def idle_to(self, t: float) -> None:
        """Let every qubit decohere until lab time ``t`` (no-op if ``t`` is not later)."""
        dt = t - self.time
        if dt <= 0.0:
            return
        for q in range(self.n):
            self.relax(q, dt)
        self.time = t

    def mark_time(self, t: float) -> None:
        """The register is up to date until lab time ``t``."""
        self.time = max(self.time, t)

    def apply_gate(self, name: str, qubits: Sequence[int], params: Sequence[float] = ()) -> None:
        """Apply an ideal gate of the OpenQASM subset."""
        self.dm.apply(name, qubits, params)

    def apply_kraus(self, kraus: Sequence[npt.NDArray[np.complex128]],
                    qubits: Sequence[int]) -> None:
        """Apply a channel given by Kraus operators (``sum K^dagger K = I``)."""
        self.dm.apply_channel(kraus, qubits)

    def p1(self, qubit: int) -> float:
        """Probability that ``qubit`` reads 1 (no readout error)."""
        pops = self.dm.probabilities()
        mask = ((np.arange(pops.size) >> qubit) & 1).astype(bool)
        return float(np.clip(pops[mask].sum(), 0.0, 1.0))

    def project(self, qubit: int, bit: int) -> None:
        """Project ``qubit`` onto ``|bit>`` and renormalise."""
        r, c = self._axes(qubit)
        data = np.array(self.dm.data)
        for axis in (r, c):
            sl: list[Any] = [slice(None)] * (2 * self.n)
            sl[axis] = 1 - bit
            data[tuple(sl)] = 0.0
        d = 2**self.n
        trace = float(np.real(np.trace(data.reshape(d, d))))
        self.dm.data = data / trace if trace > 0 else data

    def measure(self, qubit: int, rng: np.random.Generator) -> int:
        """Projective Z measurement; returns the true outcome."""
        bit = int(rng.random() < self.p1(qubit))
        self.project(qubit, bit)
        return bit

    def reset(self, qubit: int) -> None:
        """Reset ``qubit`` to ``|0>`` (a channel: no outcome is recorded)."""
        self.dm.apply_channel(_RESET_KRAUS, [qubit])

    def reduced_state(self, qubits: Sequence[int]) -> npt.NDArray[np.complex128]:
        """Reduced density matrix of ``qubits`` (first listed = most significant bit)."""
        n = self.n
        letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        row = [letters[a] for a in range(n)]
        col = [letters[a + n] for a in range(n)]
        keep_axes = [n - 1 - q for q in qubits]
        for a in range(n):
            if a not in keep_axes:
                col[a] = row[a]  # trace this qubit out
        out = "".join(row[a] for a in keep_axes) + "".join(col[a] for a in keep_axes)
        reduced = np.einsum("".join(row) + "".join(col) + "->" + out, self.dm.data)
        d = 2 ** len(qubits)
        return np.asarray(reduced.reshape(d, d), dtype=np.complex128)

    def replace(self, qubits: Sequence[int], rho: npt.NDArray[np.complex128]) -> None:
        """Replace the state of ``qubits`` by ``rho`` (tracing out what they held).

        The replacement channel ``sigma -> Tr_qubits(sigma) (x) rho``, with Kraus operators
        ``sqrt(l_i) |psi_i><j|`` from the eigen-decomposition of ``rho``.
        """
        k = len(qubits)
        vals, vecs = np.linalg.eigh(rho)
        kraus: list[npt.NDArray[np.complex128]] = []
        for lam, vec in zip(vals, vecs.T, strict=True):
            if lam <= 1e-15:
                continue
            for j in range(2**k):
                op = np.zeros((2**k, 2**k), dtype=np.complex128)
                op[:, j] = math.sqrt(float(lam)) * vec
                kraus.append(op)
        # absorb rounding so the completeness check passes exactly
        total = sum(float(lam) for lam in vals if lam > 1e-15)
        kraus = [op / math.sqrt(total) for op in kraus]
        self.dm.apply_channel(kraus, qubits)


# --- the emulator -------------------------------------------------------------------------


class QPUEmulator(ForegroundEmulator):
    """A QPU with noisy simulation, a Target-like descriptor and communication qubits.

    Parameters (SI units; a "per-qubit" value is a number for every qubit or a sequence of
    ``n_qubits`` numbers; every parameter is a keyword; a bad value raises ``ValueError``
    naming it):

    ``n_qubits`` (5; at most 26) -- qubits. ``communication_qubits`` ((0,)) -- qubits linked
    to a transducer. ``t1`` (150e-6 s, per-qubit), ``t2`` (100e-6 s, per-qubit, at most
    ``2 t1`` for exponential dephasing), ``dephasing`` ("exponential" or "gaussian").
    ``gate_error_1q`` (2.5e-4, per-qubit), ``gate_error_2q`` (8e-3, or a mapping
    ``{(a, b): error}`` over coupled pairs, either order; pairs not listed get
    ``default_gate_error_2q``). ``gate_time_1q`` (35.5e-9 s), ``gate_time_2q`` (300e-9 s;
    also the 3-qubit ``ccx``), ``readout_duration`` (1.5e-6 s), ``reset_time`` (1e-6 s),
    ``repetition_delay`` (100e-6 s between shots). ``readout_error`` (1.5e-2, per-qubit,
    symmetric) or the asymmetric ``readout_p01`` (P(read 1 | 0)) and ``readout_p10``
    (P(read 0 | 1)), per-qubit, overriding it. ``qubit_frequency`` (5e9 Hz, per-qubit, or
    None). ``coupling_map`` (None: all-to-all; else ``[[a, b], ...]``, either direction).
    ``basis_gates`` (None: every qelib1 gate of the subset). ``dt`` (2.2222e-10 s or None).
    ``max_shots`` (100000), ``max_instructions`` (100000). ``method`` ("auto",
    "statevector", "density_matrix"), ``density_matrix_qubits`` (8: "auto" switches to the
    state vector above). ``live_register_qubits`` (10: the live register is offered up to
    this many device qubits). ``t1_fluctuation`` (0.0: relative log-normal spread of T1/T2
    per calibration), ``calibration_interval`` (3600 s). ``register`` (None: a
    :class:`LiveRegister` of the device's own; or any :class:`QuantumRegister` of
    ``n_qubits`` qubits, e.g. one backed by the lab's shared qubit registry, which then owns
    the qubits' T1/T2; the live register is offered whatever the size).
    """

    CONTRACT = qpu_contract.CONTRACT

    def __init__(self, env: EmulatorEnv, *, n_qubits: int = 5,
                 communication_qubits: Sequence[int] = (0,),
                 t1: FloatSeq = 150e-6, t2: FloatSeq = 100e-6, dephasing: str = "exponential",
                 gate_error_1q: FloatSeq = 2.5e-4,
                 gate_error_2q: float | Mapping[tuple[int, int], float] = 8e-3,
                 default_gate_error_2q: float = 8e-3,
                 gate_time_1q: float = 35.5e-9, gate_time_2q: float = 300e-9,
                 readout_duration: float = 1.5e-6, reset_time: float = 1e-6,
                 repetition_delay: float = 100e-6,
                 readout_error: FloatSeq = 1.5e-2, readout_p01: FloatSeq | None = None,
                 readout_p10: FloatSeq | None = None,
                 qubit_frequency: FloatSeq | None = 5e9,
                 coupling_map: Sequence[Sequence[int]] | None = None,
                 basis_gates: Sequence[str] | None = None, dt: float | None = 2.2222e-10,
                 max_shots: int = 100_000, max_instructions: int = 100_000,
                 method: str = "auto", density_matrix_qubits: int = 8,
                 live_register_qubits: int = 10, t1_fluctuation: float = 0.0,
                 calibration_interval: float = 3600.0,
                 register: QuantumRegister | None = None) -> None:
        self.env = env
        n = count("n_qubits", n_qubits, 1, phys_qpu.MAX_STATEVECTOR_QUBITS)
        self.n_qubits = n
        comm = list(communication_qubits)
        for q in comm:
            count("communication_qubits", q, 0, n - 1)
        if len(set(comm)) != len(comm):
            raise ValueError("communication_qubits must not repeat a qubit")
        self.communication_qubits = comm
        if dephasing not in DEPHASING:
            raise ValueError(f"dephasing must be one of {DEPHASING}, got {dephasing!r}")
        self.dephasing = dephasing

        def t_check(name: str, x: Any) -> float:
            return positive(name, x, allow_inf=True)

        self.t1 = _per_qubit("t1", t1, n, t_check)
        self.t2 = _per_qubit("t2", t2, n, t_check)
        if dephasing == "exponential":
            for q in range(n):
                if self.t2[q] > 2 * self.t1[q] * (1 + 1e-12):
                    raise ValueError(f"t2 of qubit {q} ({self.t2[q]} s) exceeds 2 t1 "
                                     f"({2 * self.t1[q]} s)")
        self.gate_error_1q = _per_qubit("gate_error_1q", gate_error_1q, n, probability)
        self.default_gate_error_2q = probability("default_gate_error_2q",
                                                  default_gate_error_2q)
        self.gate_time_1q = nonnegative("gate_time_1q", gate_time_1q)
        self.gate_time_2q = nonnegative("gate_time_2q", gate_time_2q)
        self.readout_duration = nonnegative("readout_duration", readout_duration)
        self.reset_time = nonnegative("reset_time", reset_time)
        self.repetition_delay = nonnegative("repetition_delay", repetition_delay)
        sym = _per_qubit("readout_error", readout_error, n, probability)
        self.readout_p01 = sym if readout_p01 is None else _per_qubit(
            "readout_p01", readout_p01, n, probability)
        self.readout_p10 = sym if readout_p10 is None else _per_qubit(
            "readout_p10", readout_p10, n, probability)
        self.qubit_frequency: list[float | None] = [None] * n if qubit_frequency is None \
            else list(_per_qubit("qubit_frequency", qubit_frequency, n, positive))
        self.coupling_map: list[list[int]] | None = None
        if coupling_map is not None:
            pairs: list[list[int]] = []
            for pair in coupling_map:
                p = list(pair)
                if len(p) != 2 or p[0] == p[1]:
                    raise ValueError(f"coupling_map entries must be two different qubits, "
                                     f"got {pair!r}")
                for q in p:
                    count("coupling_map", q, 0, n - 1)
                pairs.append([int(p[0]), int(p[1])])
            self.coupling_map = pairs
        self._coupled = None if self.coupling_map is None else {
            frozenset(p) for p in self.coupling_map}
        self.gate_error_2q: dict[frozenset[int], float] = {}
        if isinstance(gate_error_2q, Mapping):
            for key, err in gate_error_2q.items():
                pair = tuple(key)
                if len(pair) != 2 or pair[0] == pair[1]:
                    raise ValueError(f"gate_error_2q keys must be qubit pairs, got {key!r}")
                for q in pair:
                    count("gate_error_2q", q, 0, n - 1)
                fs = frozenset(int(q) for q in pair)
                if self._coupled is not None and fs not in self._coupled:
                    raise ValueError(f"gate_error_2q lists uncoupled pair {list(pair)}")
                self.gate_error_2q[fs] = probability(f"gate_error_2q[{key}]", err)
        else:
            self.default_gate_error_2q = probability("gate_error_2q", gate_error_2q)
        if basis_gates is None:
            self.basis_gates = list(QELIB1_GATES)
        else:
            unknown = [g for g in basis_gates if g not in QELIB1_GATES or g not in GATES]
            if unknown or not basis_gates:
                raise ValueError(f"basis_gates must be non-empty names from "
                                 f"{list(QELIB1_GATES)}; unknown {unknown}")
            self.basis_gates = list(dict.fromkeys(basis_gates))
        self.dt = None if dt is None else positive("dt", dt)
        self.max_shots = count("max_shots", max_shots, 1, 10**7)
        self.max_instructions = count("max_instructions", max_instructions, 1,
                                       1_000_000)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.density_matrix_qubits = count("density_matrix_qubits", density_matrix_qubits, 0,
                                            phys_qpu.MAX_DENSITY_MATRIX_QUBITS)
        if method == "density_matrix" and n > phys_qpu.MAX_DENSITY_MATRIX_QUBITS:
            raise ValueError(f"method 'density_matrix' supports at most "
                             f"{phys_qpu.MAX_DENSITY_MATRIX_QUBITS} qubits; n_qubits is {n}")
        self.live_register_qubits = count("live_register_qubits", live_register_qubits, 0,
                                           12)
        self.t1_fluctuation = nonnegative("t1_fluctuation", t1_fluctuation)
        self.calibration_interval = positive("calibration_interval", calibration_interval)

        self._drift_seed = int(env.rng.integers(2**63))
        self._cal_index = -1
        self._cal_t1 = list(self.t1)
        self._cal_t2 = list(self.t2)
        self.live: QuantumRegister | None = None
        if register is not None:
            if getattr(register, "n", None) != n:
                raise ValueError(f"register must hold n_qubits = {n} qubits")
            self.live = register
        elif n <= self.live_register_qubits:
            self.live = LiveRegister(n, self.t1, self.t2, dephasing, env.lab_now())
        self._lock = asyncio.Lock()
        self._fault: str | None = None
        self.server: DeviceServer | None = None
        self._log = get_logger("emulator", device=env.name, contract="QPU")

    # --- descriptor -----------------------------------------------------------------------

    @property
    def features(self) -> list[str]:
        """Optional contract features this emulator offers."""
        return ["live_register"] if self.live is not None else []

    def _coupled_pair(self, a: int, b: int) -> bool:
        return self._coupled is None or frozenset((a, b)) in self._coupled

    def pair_error(self, a: int, b: int) -> float:
        """Error probability of a two-qubit gate on ``a``, ``b``."""
        return self.gate_error_2q.get(frozenset((a, b)), self.default_gate_error_2q)

    def _gate_error(self, qubits: Sequence[int]) -> float:
        if len(qubits) == 1:
            return self.gate_error_1q[qubits[0]]
        pairs = [(a, b) for i, a in enumerate(qubits) for b in qubits[i + 1:]]
        return sum(self.pair_error(a, b) for a, b in pairs) / len(pairs)

    def _readout_error(self, q: int) -> float:
        return (self.readout_p01[q] + self.readout_p10[q]) / 2

    def target(self, t1: Sequence[float] | None = None,
               t2: Sequence[float] | None = None) -> dict[str, Any]:
        """The Qiskit-Target-like descriptor (durations in s; errors as probabilities).

        ``t1``/``t2``: the values to report (default: nominal). Infinite T1/T2 are reported
        as ``1e300`` s (msgpack carries no infinities in capabilities portably).
        """
        n = self.n_qubits
        t1 = self.t1 if t1 is None else t1
        t2 = self.t2 if t2 is None else t2
        instructions: list[dict[str, Any]] = []
        for g in self.basis_gates:
            arity = QELIB1_GATES[g][0]
            if arity == 1:
                instructions += [{"name": g, "qubits": [q], "duration": self.gate_time_1q,
                                  "error": self.gate_error_1q[q]} for q in range(n)]
            elif arity == 2:
                instructions += [{"name": g, "qubits": [a, b], "duration": self.gate_time_2q,
                                  "error": self.pair_error(a, b)}
                                 for a in range(n) for b in range(n)
                                 if a != b and self._coupled_pair(a, b)]
            else:
                instructions += [{"name": g, "qubits": [a, b, c],
                                  "duration": self.gate_time_2q,
                                  "error": self._gate_error((a, b, c))}
                                 for a in range(n) for b in range(n) for c in range(n)
                                 if len({a, b, c}) == 3 and self._coupled_pair(a, b)
                                 and self._coupled_pair(a, c) and self._coupled_pair(b, c)]
        instructions += [{"name": "measure", "qubits": [q], "duration": self.readout_duration,
                          "error": self._readout_error(q)} for q in range(n)]
        instructions += [{"name": "reset", "qubits": [q], "duration": self.reset_time,
                          "error": 0.0} for q in range(n)]
        qubits = [{"qubit": q,
                   "role": "communication" if q in self.communication_qubits else "compute",
                   "t1": min(t1[q], 1e300), "t2": min(t2[q], 1e300),
                   "frequency": self.qubit_frequency[q],
                   "readout_error": self._readout_error(q),
                   "readout_duration": self.readout_duration} for q in range(n)]
        return {"num_qubits": n, "dt": self.dt, "instructions": instructions, "qubits": qubits}

    def capabilities(self) -> dict[str, Any]:
        """The capability map of the ``QPU`` contract."""
        return {"n_qubits": self.n_qubits, "basis_gates": list(self.basis_gates),
                "coupling_map": None if self.coupling_map is None
                else [list(p) for p in self.coupling_map],
                "communication_qubits": list(self.communication_qubits),
                "max_shots": self.max_shots, "max_instructions": self.max_instructions,
                "qasm": "OpenQASM 2.0 qnhw subset", "target": self.target()}

    # --- calibration drift ----------------------------------------------------------------

    def _calibrate_now(self) -> int:
        """Bring the drifted T1/T2 up to the current calibration interval; return its index."""
        k = int(self.env.lab_now() // self.calibration_interval)
        if k != self._cal_index:
            self._cal_index = k
            if self.t1_fluctuation > 0.0:
                rng = np.random.default_rng([self._drift_seed, max(k, 0)])
                s = self.t1_fluctuation
                factors = np.exp(rng.normal(-s * s / 2, s, size=self.n_qubits))
                self._cal_t1 = [t * float(f) for t, f in zip(self.t1, factors, strict=True)]
                self._cal_t2 = [t * float(f) for t, f in zip(self.t2, factors, strict=True)]
            if isinstance(self.live, LiveRegister):  # an injected register keeps its own
                self.live.idle_to(self.env.lab_now())
                self.live.t1, self.live.t2 = list(self._cal_t1), list(self._cal_t2)
        return k

    # --- helpers --------------------------------------------------------------------------

    def _ts(self, ps: int | None = None) -> Timestamp:
        return Timestamp(int(self.env.now_ps() if ps is None else ps), self.env.domain)

    def _check_fault(self) -> None:
        if self._fault is not None:
            raise DeviceFault(f"{self.env.name}: {self._fault}", {"fault": self._fault})

    def _check_qubits(self, qubits: Sequence[int]) -> None:
        for q in qubits:
            if not 0 <= q < self.n_qubits:
                raise BadParams(f"qubit {q} does not exist (this QPU has {self.n_qubits})",
                                {"param": "qubits", "value": q})

    def _need_live(self, what: str) -> QuantumRegister:
        if self.live is None or "live_register" not in self._offered():
            raise BadParams(f"{what} needs the live_register feature, which this QPU does not "
                            "offer", {"param": "initial_state"})
        return self.live

    def _offered(self) -> list[str]:
        if self.server is None:
            return self.features
        feats = self.server.capabilities.get("features", [])
        return [f for f in feats if isinstance(f, str)]

    def duration(self, program: Program) -> float:
        """Critical path of one shot of ``program`` (s), see :func:`circuit_duration`."""
        return circuit_duration(program.instructions, gate_time_1q=self.gate_time_1q,
                                gate_time_2q=self.gate_time_2q,
                                readout_duration=self.readout_duration,
                                reset_time=self.reset_time)

    def noise_for(self, program: Program) -> phys_qpu.QPUNoise:
        """The circuit-wide :class:`~emulators.physics.qpu.QPUNoise` of ``program``.

        Rates ``1/T1``, ``1/T2`` averaged over the qubits the program uses; gate errors
        averaged over its gate applications (1-qubit and multi-qubit separately); readout
        error zero (applied per qubit afterwards).
        """
        used = sorted({q for ins in program.instructions for q in ins.qubits}) or [0]
        r1 = sum(1.0 / self._cal_t1[q] for q in used) / len(used)
        r2 = sum(1.0 / self._cal_t2[q] for q in used) / len(used)
        e1 = [self.gate_error_1q[i.qubits[0]] for i in program.instructions
              if i.name not in DIRECTIVES and len(i.qubits) == 1]
        e2 = [self._gate_error(i.qubits) for i in program.instructions
              if i.name not in DIRECTIVES and len(i.qubits) > 1]
        return phys_qpu.QPUNoise(
            t1_s=1.0 / r1 if r1 > 0 else math.inf, t2_s=1.0 / r2 if r2 > 0 else math.inf,
            dephasing=self.dephasing, gate_time_1q_s=self.gate_time_1q,
            gate_time_2q_s=self.gate_time_2q, measure_time_s=self.readout_duration,
            reset_time_s=self.reset_time, p_1q=sum(e1) / len(e1) if e1 else 0.0,
            p_2q=sum(e2) / len(e2) if e2 else 0.0)

    def _expensive(self, program: Program) -> bool:
        """Whether a simulation is worth a worker thread: more than about 2^22 amplitude
        updates (state-vector branching on noise counted once per instruction)."""
        n = max(program.n_qubits, 1)
        size: int = 4**n if self._method(n) == "density_matrix" else 2**n
        return size * max(len(program.instructions), 1) > THREAD_THRESHOLD

    def _method(self, n: int) -> str:
        if self.method != "auto":
            return self.method
        return "density_matrix" if n <= self.density_matrix_qubits else "statevector"

    def _flip_readout(self, memory: npt.NDArray[np.uint8], program: Program,
                      rng: np.random.Generator) -> None:
        """Per-qubit asymmetric readout error on the clbits measurements wrote (in place)."""
        writer: dict[int, int] = {}
        for ins in program.instructions:
            if ins.name == "measure":
                writer[ins.clbits[0]] = ins.qubits[0]
        for c, q in sorted(writer.items()):
            col = memory[:, c]
            p = np.where(col == 1, self.readout_p10[q], self.readout_p01[q])
            flip = rng.random(col.shape) < p
            memory[:, c] = np.where(flip, 1 - col, col)

    @staticmethod
    def _counts(memory: npt.NDArray[np.uint8]) -> dict[str, int]:
        if memory.shape[0] == 0:
            return {}
        keys, counts = np.unique(memory[:, ::-1], axis=0, return_counts=True)
        return {"".join(str(int(b)) for b in k): int(c) for k, c in
                zip(keys, counts, strict=True)}

    def simulate(self, program: Program, shots: int,
                 rng: np.random.Generator) -> npt.NDArray[np.uint8]:
        """Per-shot memory ``(shots, n_clbits)`` of ``program`` from ``|0...0>`` (blocking,
        CPU-bound; no lab time passes). Raises :class:`DeviceFault` if the simulator fails."""
        n = max(program.n_qubits, 1)
        method = self._method(n)
        try:
            result = phys_qpu.run_circuit(
                [tuple(i) for i in program.instructions], n, shots, rng,
                n_clbits=program.n_clbits, method=method, noise=self.noise_for(program))
        except PhysicsError as exc:
            raise DeviceFault(f"simulator failed: {exc}", {"method": method}) from exc
        memory = np.array(result.memory, dtype=np.uint8)
        self._flip_readout(memory, program, rng)
        return memory

    def _run_live(self, live: QuantumRegister, program: Program,
                  rng: np.random.Generator) -> npt.NDArray[np.uint8]:
        """One shot on the live register with exact per-qubit noise (ASAP schedule)."""
        start = self.env.lab_now()
        live.idle_to(start)
        clock = [start] * live.n
        bits = np.zeros((1, program.n_clbits), dtype=np.uint8)
        for ins in program.instructions:
            qs = ins.qubits
            t0 = max(clock[q] for q in qs) if qs else start
            for q in qs:
                live.relax(q, t0 - clock[q])
            if ins.name == "barrier":
                for q in qs:
                    clock[q] = t0
                continue
            dur = _instruction_time(ins, self.gate_time_1q, self.gate_time_2q,
                                    self.readout_duration, self.reset_time)
            if ins.name == "measure":
                q = qs[0]
                live.relax(q, dur)
                bit = live.measure(q, rng)
                p = self.readout_p10[q] if bit else self.readout_p01[q]
                bits[0, ins.clbits[0]] = bit ^ int(rng.random() < p)
            elif ins.name == "reset":
                live.relax(qs[0], dur)
                live.reset(qs[0])
            else:
                live.apply_gate(ins.name, qs, ins.params)
                err = self._gate_error(qs)
                if err > 0.0:
                    live.apply_kraus(multi_qubit_depolarizing_kraus(err, len(qs)), qs)
                for q in qs:
                    live.relax(q, dur)
            for q in qs:
                clock[q] = t0 + dur
        end = max(clock)
        for q in range(live.n):
            live.relax(q, end - clock[q])
        live.mark_time(end)
        return bits

    async def _pass_time(self, seconds: float, started: float) -> None:
        """Spend what is left of ``seconds`` of lab time counted from ``started``."""
        left = seconds - (self.env.lab_now() - started)
        if left > 0.0:
            await self.env.spend(left)

    # --- contract commands ----------------------------------------------------------------

    async def run(self, circuit: str, shots: int = 1024, memory: bool = False,
                  initial_state: str = "ground") -> dict[str, Any]:
        """Run ``circuit`` for ``shots`` shots. Blocks (lab time) for ``shots * (critical
        path + repetition_delay)`` on ``ground``, the critical path on ``live``; queued
        behind other runs."""
        self._check_fault()
        program = parse(circuit)
        program.check_target(self.n_qubits, self.basis_gates, self.coupling_map)
        if shots > self.max_shots:
            raise BadParams(f"shots {shots} above this device's maximum {self.max_shots}",
                            {"param": "shots", "value": shots})
        if len(program.instructions) > self.max_instructions:
            raise BadParams(f"circuit has {len(program.instructions)} instructions; the "
                            f"maximum is {self.max_instructions}", {"param": "circuit"})
        live = initial_state == "live"
        if live:
            self._need_live("initial_state 'live'")
            if shots != 1:
                raise BadParams("initial_state 'live' runs exactly one shot",
                                {"param": "shots", "value": shots})
        one_shot = self.duration(program)
        async with self._lock:
            self._check_fault()
            self._calibrate_now()
            started = self.env.lab_now()
            rng = self.env.rng
            if live:
                assert self.live is not None
                mem = self._run_live(self.live, program, rng)
                total = one_shot
            else:
                if self._expensive(program):  # keep the loop serving other clients
                    mem = await asyncio.to_thread(self.simulate, program, shots, rng)
                else:
                    mem = self.simulate(program, shots, rng)
                total = shots * (one_shot + self.repetition_delay)
            await self._pass_time(total, started)
            if not live and self.live is not None:
                self.live.idle_to(self.env.lab_now())
                for q in range(program.n_qubits):
                    self.live.reset(q)
            self._log.debug("circuit run", shots=shots, duration=total, live=live,
                            instructions=len(program.instructions))
            return {"counts": self._counts(mem), "memory": mem if memory else None,
                    "shots": shots, "time": self._ts(), "duration": total}

    def calibration(self) -> dict[str, Any]:
        """The calibration in force (drifted T1/T2 when ``t1_fluctuation > 0``). Does not
        block."""
        self._check_fault()
        k = self._calibrate_now()
        since = self.env.lab_now() - k * self.calibration_interval
        at = max(0, self.env.now_ps() - round(since * 1e12))
        return {**self.target(self._cal_t1, self._cal_t2), "time": self._ts(at)}

    async def reset(self, qubits: list[int]) -> None:
        """Reset ``qubits`` (empty: all) of the live register; blocks for ``reset_time``."""
        self._check_fault()
        live = self._need_live("reset")
        self._check_qubits(qubits)
        async with self._lock:
            self._calibrate_now()
            started = self.env.lab_now()
            live.idle_to(started)
            targets = set(qubits or range(self.n_qubits))
            for q in range(self.n_qubits):
                if q in targets:
                    live.reset(q)
                else:
                    live.relax(q, self.reset_time)
            live.mark_time(started + self.reset_time)
            await self._pass_time(self.reset_time, started)

    async def measure(self, qubits: list[int]) -> dict[str, Any]:
        """Measure ``qubits`` of the live register in Z (with readout error); blocks for
        ``readout_duration`` (the readouts run in parallel)."""
        self._check_fault()
        live = self._need_live("measure")
        self._check_qubits(qubits)
        if len(set(qubits)) != len(qubits):
            raise BadParams("a qubit is listed twice", {"param": "qubits"})
        async with self._lock:
            self._calibrate_now()
            started = self.env.lab_now()
            live.idle_to(started)
            rng = self.env.rng
            for q in range(self.n_qubits):  # decay during the readout acts before it
                live.relax(q, self.readout_duration)
            outcomes: list[int] = []
            for q in qubits:
                bit = live.measure(q, rng)
                p = self.readout_p10[q] if bit else self.readout_p01[q]
                outcomes.append(bit ^ int(rng.random() < p))
            live.mark_time(started + self.readout_duration)
            await self._pass_time(self.readout_duration, started)
            return {"outcomes": outcomes, "time": self._ts()}

    # --- hooks for the lab world ----------------------------------------------------------

    def _live_or_error(self) -> QuantumRegister:
        if self.live is None:
            raise ValueError(f"{self.env.name} has no live register (n_qubits "
                             f"{self.n_qubits} > live_register_qubits "
                             f"{self.live_register_qubits})")
        self._calibrate_now()
        self.live.idle_to(self.env.lab_now())
        return self.live

    def excite_for_transduction(self, qubit: int) -> Excitation:
        """Swap communication ``qubit``'s excitation into its microwave photon mode.

        The qubit's state ``a|0> + b|1>`` (after decoherence up to now) becomes the photon
        state ``a|0_ph> + b|1_ph>``; the qubit is left in ``|0>``. Coherence between the photon
        and other qubits of the register is not carried (the register keeps its part, traced
        over the qubit). Does not block; no lab time passes (the swap is instantaneous on
        the world's scale). Raises ``ValueError`` for a qubit that is not a communication
        qubit or without a live register.
        """
        if qubit not in self.communication_qubits:
            raise ValueError(f"qubit {qubit} is not a communication qubit "
                             f"({self.communication_qubits})")
        live = self._live_or_error()
        rho = live.reduced_state([qubit])
        live.reset(qubit)
        p = float(np.clip(rho[1, 1].real, 0.0, 1.0))
        return Excitation(qubit, rho, p, int(self.env.now_ps()), self.env.lab_now())

    def deliver_state(self, qubits: Sequence[int], rho: npt.ArrayLike) -> None:
        """Replace the state of ``qubits`` of the live register by ``rho``
        (``2^k x 2^k``, first listed qubit most significant). Raises ``ValueError`` for a bad
        state or qubit."""
        live = self._live_or_error()
        qs = list(qubits)
        if not qs or len(set(qs)) != len(qs) or any(not 0 <= q < self.n_qubits for q in qs):
            raise ValueError(f"qubits must be distinct qubits of 0..{self.n_qubits - 1}")
        r = np.asarray(rho, dtype=np.complex128)
        d = 2 ** len(qs)
        if r.shape != (d, d) or not np.allclose(r, r.conj().T, atol=1e-9) \
                or abs(np.trace(r) - 1) > 1e-9 or np.linalg.eigvalsh(r).min() < -1e-9:
            raise ValueError(f"rho must be a {d}x{d} density matrix")
        live.replace(qs, r)

    def reduced_state(self, qubits: Sequence[int]) -> npt.NDArray[np.complex128]:
        """Reduced density matrix of live ``qubits`` now (first listed most significant)."""
        return self._live_or_error().reduced_state(list(qubits))

    def apply_kraus(self, qubits: Sequence[int],
                    kraus: Sequence[npt.NDArray[np.complex128]]) -> None:
        """Apply a channel (Kraus operators, first listed qubit most significant) to the
        live register now."""
        self._live_or_error().apply_kraus(kraus, list(qubits))

    def set_fault(self, message: str | None) -> None:
        """Inject a device fault (every command fails with :class:`qnhw.DeviceFault`) or
        clear it with ``None``."""
        self._fault = message


async def start_qpu(env: EmulatorEnv, address: str = "tcp://127.0.0.1:0", *,
                    features: Sequence[str] | None = None, name: str | None = None,
                    **params: Any) -> DeviceServer:
    """Create a :class:`QPUEmulator` from ``params`` and serve it at ``address``.

    Returns the started server; ``await server.stop()`` ends it.
    """
    return await QPUEmulator(env, **params).serve(address, features=features, name=name)
