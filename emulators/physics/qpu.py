"""QPU simulators: state vector (>= 20 qubits) and density matrix (>= 10 qubits).

Instructions are ``(name, qubits, params)`` or ``(name, qubits, params, clbits)`` tuples
(or :class:`Instruction`) with names from :data:`~emulators.physics.gates.GATES` plus
``measure`` (one qubit, one clbit; the clbit defaults to the qubit index), ``reset`` and
``barrier``. Qubit and clbit ``0`` are the least significant bits, as in OpenQASM/Qiskit:
the counts key of ``c[n-1] ... c[0]`` is written left to right.

Noise (:class:`QPUNoise`): depolarizing after each gate (``p_1q``; ``p_2q`` for 2- and
3-qubit gates, acting on all of the gate's qubits), T1/T2 relaxation of every qubit for
the time it spends idle or in a gate under an as-soon-as-possible schedule
(``gate_time_*``), and asymmetric readout error.

Shots are not simulated one by one. Measurements that are followed by nothing else on
their qubit ("terminal") are sampled jointly from the final distribution; mid-circuit
measurements, resets and (state-vector only) noise channels *branch* the simulation,
splitting the remaining shots multinomially between the outcomes, depth first, so the
cost grows with the number of distinct branches (at most the number of shots), not
with the number of shots. The density-matrix method applies noise channels exactly
and only branches on mid-circuit measurements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _validate as v
from ._sampling import sample_categorical
from ._tensor import apply_channel, apply_matrix, apply_unitary_density
from ._types import ComplexArray, FloatArray, UInt8Array
from .channels import (
    check_kraus,
    coherence_factor,
    multi_qubit_depolarizing_kraus,
    relaxation_kraus,
)
from .errors import ParameterError
from .gates import GATES, gate_matrix

__all__ = [
    "MAX_DENSITY_MATRIX_QUBITS",
    "MAX_STATEVECTOR_QUBITS",
    "DensityMatrix",
    "Instruction",
    "QPUNoise",
    "RunResult",
    "StateVector",
    "run_circuit",
]

MAX_STATEVECTOR_QUBITS = 26
"""Largest state-vector register (2^26 amplitudes = 1 GiB)."""
MAX_DENSITY_MATRIX_QUBITS = 13
"""Largest density-matrix register (4^13 entries = 1 GiB)."""


@dataclass(frozen=True)
class Instruction:
    """One instruction: gate/measure/reset/barrier name, qubits, parameters, clbits."""

    name: str
    qubits: tuple[int, ...]
    params: tuple[float, ...] = ()
    clbits: tuple[int, ...] = ()


@dataclass(frozen=True)
class QPUNoise:
    """Noise of a QPU. Times in seconds; error terms are probabilities."""

    t1_s: float = math.inf
    t2_s: float = math.inf
    dephasing: str = "exponential"
    gate_time_1q_s: float = 0.0
    gate_time_2q_s: float = 0.0
    measure_time_s: float = 0.0
    reset_time_s: float = 0.0
    p_1q: float = 0.0
    p_2q: float = 0.0
    readout_p01: float = 0.0
    """P(read 1 | prepared 0)."""
    readout_p10: float = 0.0
    """P(read 0 | prepared 1)."""

    def __post_init__(self) -> None:
        coherence_factor(0.0, self.t1_s, self.t2_s, self.dephasing)
        for name in ("gate_time_1q_s", "gate_time_2q_s", "measure_time_s", "reset_time_s"):
            v.nonnegative(name, getattr(self, name))
        for name in ("p_1q", "p_2q", "readout_p01", "readout_p10"):
            v.probability(name, getattr(self, name))

    @property
    def decoheres(self) -> bool:
        """Whether T1 or T2 is finite."""
        return math.isfinite(self.t1_s) or math.isfinite(self.t2_s)


@dataclass(frozen=True)
class RunResult:
    """Counts per bitstring and the per-shot memory ``(shots, n_clbits)`` (column j = c[j])."""

    counts: dict[str, int]
    memory: UInt8Array = field(repr=False)

    def bitstrings(self) -> list[str]:
        """Per-shot bitstrings ``c[n-1] ... c[0]``."""
        return ["".join(str(b) for b in row[::-1]) for row in self.memory]


def _parse(instructions: Sequence[Any], n_qubits: int, n_clbits: int) -> list[Instruction]:
    out: list[Instruction] = []
    for pos, raw in enumerate(instructions):
        if isinstance(raw, Instruction):
            ins = raw
        else:
            if not isinstance(raw, tuple | list) or len(raw) not in (3, 4):
                raise ParameterError(
                    f"instruction {pos}: expected (name, qubits, params[, clbits])"
                )
            clb = tuple(raw[3]) if len(raw) == 4 else ()
            ins = Instruction(str(raw[0]), tuple(raw[1]), tuple(raw[2]), clb)
        qs = tuple(v.count(f"instruction {pos} qubit", q) for q in ins.qubits)
        if len(set(qs)) != len(qs) or any(q >= n_qubits for q in qs):
            raise ParameterError(
                f"instruction {pos} ({ins.name}): qubits must be distinct and < {n_qubits}"
            )
        name = ins.name
        if name == "barrier":
            out.append(Instruction(name, qs))
            continue
        if name in ("measure", "reset"):
            if len(qs) != 1 or ins.params:
                raise ParameterError(f"instruction {pos}: {name} takes one qubit and no parameters")
            clb = ins.clbits if name == "measure" else ()
            if name == "measure" and not clb:
                clb = (qs[0],)
            if len(clb) > 1 or any(v.count("clbit", c) >= n_clbits for c in clb):
                raise ParameterError(f"instruction {pos}: measure needs one clbit < {n_clbits}")
            out.append(Instruction(name, qs, (), tuple(int(c) for c in clb)))
            continue
        if name not in GATES:
            raise ParameterError(f"instruction {pos}: unknown gate {name!r}")
        if len(qs) != GATES[name][0]:
            raise ParameterError(
                f"instruction {pos}: {name} acts on {GATES[name][0]} qubit(s), got {len(qs)}"
            )
        out.append(Instruction(name, qs, tuple(float(p) for p in ins.params)))
    return out


# --- micro-operations ------------------------------------------------------------------
# ("unitary", qubits, U) | ("channel", qubits, kraus) | ("measure", (q,), clbit)
# ("reset", (q,), None)

_Micro = tuple[str, tuple[int, ...], Any]


def _compile(
    ops: list[Instruction], n: int, noise: QPUNoise | None
) -> tuple[list[_Micro], list[tuple[int, int]]]:
    """Flatten instructions into micro-operations; return them and the terminal measurements."""
    touched_later: set[int] = set()
    terminal = [False] * len(ops)
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if op.name == "barrier":
            continue
        if op.name == "measure" and op.qubits[0] not in touched_later:
            terminal[i] = True
        touched_later.update(op.qubits)
    last_write = {op.clbits[0]: i for i, op in enumerate(ops) if op.name == "measure"}
    clock = [0.0] * n
    micro: list[_Micro] = []
    final: list[tuple[int, int]] = []
    for i, op in enumerate(ops):
        if op.name == "barrier":
            t = max((clock[q] for q in op.qubits), default=0.0)
            for q in op.qubits:
                clock[q] = t
            continue
        after: list[_Micro] = []
        if noise is not None:
            if op.name == "measure":
                dur = noise.measure_time_s
            elif op.name == "reset":
                dur = noise.reset_time_s
            else:
                dur = noise.gate_time_1q_s if len(op.qubits) == 1 else noise.gate_time_2q_s
            t_start = max(clock[q] for q in op.qubits)
            for q in op.qubits:
                idle = t_start - clock[q]
                if noise.decoheres and idle > 0.0:
                    micro.append(("channel", (q,), _relax(idle, noise)))
                clock[q] = t_start + dur
            if noise.decoheres and dur > 0.0:
                relax: list[_Micro] = [("channel", (q,), _relax(dur, noise)) for q in op.qubits]
                if op.name in ("measure", "reset"):
                    micro.extend(relax)  # decay during readout acts before the projection
                else:
                    after = relax
        if op.name == "measure":
            if terminal[i]:
                # deferred to the end; skipped if a later measurement overwrites the clbit
                if last_write[op.clbits[0]] == i:
                    final.append((op.qubits[0], op.clbits[0]))
            else:
                micro.append(("measure", op.qubits, op.clbits[0]))
        elif op.name == "reset":
            micro.append(("reset", op.qubits, None))
        else:
            micro.append(("unitary", op.qubits, gate_matrix(op.name, op.params)))
            p = 0.0 if noise is None else (noise.p_1q if len(op.qubits) == 1 else noise.p_2q)
            if p > 0.0:
                micro.append(
                    ("channel", op.qubits, multi_qubit_depolarizing_kraus(p, len(op.qubits)))
                )
            micro.extend(after)
    return micro, final


def _relax(dt: float, noise: QPUNoise) -> list[ComplexArray]:
    return relaxation_kraus(dt, noise.t1_s, noise.t2_s, noise.dephasing)


# --- backends ----------------------------------------------------------------------------


class _Backend:
    """Operations on a raw register tensor; the subclasses fix the representation."""

    exact_channels = False

    def __init__(self, n: int) -> None:
        self.n = n

    def ax(self, qubits: Sequence[int]) -> list[int]:
        return [self.n - 1 - q for q in qubits]

    def initial(self) -> ComplexArray:
        raise NotImplementedError

    def unitary(self, st: ComplexArray, qubits: Sequence[int], u: ComplexArray) -> ComplexArray:
        raise NotImplementedError

    def channel(
        self, st: ComplexArray, qubits: Sequence[int], kraus: list[ComplexArray]
    ) -> ComplexArray:
        raise NotImplementedError

    def diagonal(self, st: ComplexArray) -> FloatArray:
        """Populations as a ``(2,) * n`` tensor."""
        raise NotImplementedError

    def project(self, st: ComplexArray, q: int, bit: int, prob: float) -> ComplexArray:
        raise NotImplementedError

    def marginal(self, st: ComplexArray, qubits: Sequence[int]) -> FloatArray:
        """Joint distribution of ``qubits`` (first listed = most significant index bit)."""
        pops = self.diagonal(st)
        keep = self.ax(qubits)
        other = tuple(a for a in range(self.n) if a not in keep)
        m = pops.sum(axis=other) if other else pops
        # remaining axes are in increasing axis order; reorder to the requested order
        order = [sorted(keep).index(a) for a in keep]
        m = np.transpose(m, order).reshape(-1)
        m = np.clip(m, 0.0, None)
        return np.asarray(m / m.sum())


class _SV(_Backend):
    def initial(self) -> ComplexArray:
        st = np.zeros((2,) * self.n, dtype=np.complex128)
        st[(0,) * self.n] = 1.0
        return st

    def unitary(self, st: ComplexArray, qubits: Sequence[int], u: ComplexArray) -> ComplexArray:
        return apply_matrix(st, u, self.ax(qubits))

    def diagonal(self, st: ComplexArray) -> FloatArray:
        return np.asarray(np.abs(st) ** 2)

    def project(self, st: ComplexArray, q: int, bit: int, prob: float) -> ComplexArray:
        out = np.array(st)
        sl: list[Any] = [slice(None)] * self.n
        sl[self.n - 1 - q] = 1 - bit
        out[tuple(sl)] = 0.0
        return np.asarray(out / math.sqrt(prob))


class _DM(_Backend):
    exact_channels = True

    def initial(self) -> ComplexArray:
        st = np.zeros((2,) * (2 * self.n), dtype=np.complex128)
        st[(0,) * (2 * self.n)] = 1.0
        return st

    def unitary(self, st: ComplexArray, qubits: Sequence[int], u: ComplexArray) -> ComplexArray:
        return apply_unitary_density(st, u, self.ax(qubits), self.n)

    def channel(
        self, st: ComplexArray, qubits: Sequence[int], kraus: list[ComplexArray]
    ) -> ComplexArray:
        return apply_channel(st, kraus, self.ax(qubits), self.n)

    def diagonal(self, st: ComplexArray) -> FloatArray:
        d = 2**self.n
        return np.asarray(st.reshape(d, d).diagonal().real.reshape((2,) * self.n))

    def project(self, st: ComplexArray, q: int, bit: int, prob: float) -> ComplexArray:
        out = np.array(st)
        a = self.n - 1 - q
        for axis in (a, a + self.n):
            sl: list[Any] = [slice(None)] * (2 * self.n)
            sl[axis] = 1 - bit
            out[tuple(sl)] = 0.0
        return np.asarray(out / prob)


_X = gate_matrix("x")


def _is_scaled_unitary(k: ComplexArray) -> bool:
    g = k.conj().T @ k
    return bool(np.allclose(g, g[0, 0] * np.eye(k.shape[0]), atol=1e-12))


# A child of a branching step: (kind, qubits, payload) with kind "unitary" (payload: the
# unitary), "state" (payload: the child state itself), "project" or "reset" (payload:
# (bit, probability)).
_Child = tuple[str, tuple[int, ...], Any]


def _make_child(backend: _Backend, st: ComplexArray, child: _Child) -> ComplexArray:
    kind, qubits, payload = child
    if kind == "unitary":
        return backend.unitary(st, qubits, payload)
    if kind == "state":
        out: ComplexArray = payload
        return out
    bit, prob = payload
    s = backend.project(st, qubits[0], bit, prob)
    if kind == "reset" and bit == 1:
        s = backend.unitary(s, qubits, _X)
    return s


def _branches(
    backend: _Backend, st: ComplexArray, kind: str, qubits: tuple[int, ...], arg: Any
) -> list[tuple[float, _Child, int | None]]:
    """Possible children of a branching micro-operation: (weight, child, recorded bit)."""
    out: list[tuple[float, _Child, int | None]] = []
    if kind == "channel":
        ops: list[ComplexArray] = arg
        if all(_is_scaled_unitary(k) for k in ops):
            for k in ops:  # weights do not depend on the state
                w = float((k.conj().T @ k)[0, 0].real)
                out.append((w, ("unitary", qubits, k / math.sqrt(w)), None))
        else:
            for k in ops:
                ks = backend.unitary(st, qubits, k)
                w = float(np.vdot(ks, ks).real)
                if w > 0.0:
                    out.append((w, ("state", qubits, ks / math.sqrt(w)), None))
        return out
    p1 = float(backend.marginal(st, list(qubits))[1])
    for bit, w in ((0, 1.0 - p1), (1, p1)):
        if w > 1e-15:
            out.append((w, (kind, qubits, (bit, w)), bit if kind == "measure" else None))
    return out


@dataclass
class _Branch:
    index: int
    state: ComplexArray
    shots: int
    bits: UInt8Array
    pending: _Child | None = None


_RESET_KRAUS = [
    np.array([[1, 0], [0, 0]], dtype=np.complex128),
    np.array([[0, 1], [0, 0]], dtype=np.complex128),
]


def _simulate(
    backend: _Backend,
    micro: list[_Micro],
    final: list[tuple[int, int]],
    shots: int,
    n_clbits: int,
    rng: np.random.Generator,
) -> tuple[UInt8Array, set[int]]:
    """Depth-first traversal of the branches; returns per-shot memory and written clbits."""
    rows: list[UInt8Array] = []
    written = {int(c) for kind, _, c in micro if kind == "measure"} | {c for _, c in final}
    stack = [_Branch(0, backend.initial(), shots, np.zeros(n_clbits, dtype=np.uint8))]
    while stack:
        br = stack.pop()
        st = br.state if br.pending is None else _make_child(backend, br.state, br.pending)
        i = br.index
        while i < len(micro):
            kind, qubits, arg = micro[i]
            i += 1
            if kind == "unitary":
                st = backend.unitary(st, qubits, arg)
                continue
            if backend.exact_channels and kind in ("channel", "reset"):
                st = backend.channel(st, qubits, arg if kind == "channel" else _RESET_KRAUS)
                continue
            children = _branches(backend, st, kind, qubits, arg)
            weights = np.array([c[0] for c in children])
            counts = rng.multinomial(br.shots, weights / weights.sum())
            live = [(c, int(n)) for c, n in zip(children, counts, strict=True) if n > 0]
            for (_, child, rec), n in live[1:]:
                bits = br.bits.copy()
                if rec is not None:
                    bits[arg] = rec
                stack.append(_Branch(i, st, n, bits, child))
            (_, child, rec), n = live[0]
            if rec is not None:
                br.bits = br.bits.copy()
                br.bits[arg] = rec
            br.shots = n
            st = _make_child(backend, st, child)
        block = np.repeat(br.bits[None, :], br.shots, axis=0)
        if final:
            probs = backend.marginal(st, [q for q, _ in final])
            idx = sample_categorical(rng, probs, br.shots)
            n_final = len(final)
            for j, (_, c) in enumerate(final):
                block[:, c] = (idx >> (n_final - 1 - j)) & 1
        rows.append(block)
    memory = np.concatenate(rows) if rows else np.zeros((0, n_clbits), dtype=np.uint8)
    return memory, written


def run_circuit(
    instructions: Sequence[Any],
    n_qubits: int,
    shots: int,
    rng: np.random.Generator,
    *,
    n_clbits: int | None = None,
    method: str = "statevector",
    noise: QPUNoise | None = None,
) -> RunResult:
    """Run a circuit for ``shots`` shots; return counts and per-shot memory.

    ``method``: ``"statevector"`` (up to :data:`MAX_STATEVECTOR_QUBITS`) or
    ``"density_matrix"`` (up to :data:`MAX_DENSITY_MATRIX_QUBITS`). ``n_clbits``
    defaults to ``n_qubits``.
    """
    rng = v.generator(rng)
    kind = v.choice("method", method, ("statevector", "density_matrix"))
    limit = MAX_STATEVECTOR_QUBITS if kind == "statevector" else MAX_DENSITY_MATRIX_QUBITS
    n = v.count("n_qubits", n_qubits, minimum=1)
    if n > limit:
        raise ParameterError(f"{kind} supports at most {limit} qubits, got {n}")
    nc = n if n_clbits is None else v.count("n_clbits", n_clbits)
    s = v.count("shots", shots, minimum=1)
    ops = _parse(instructions, n, nc)
    micro, final = _compile(ops, n, noise)
    backend: _Backend = _SV(n) if kind == "statevector" else _DM(n)
    memory, written = _simulate(backend, micro, final, s, nc, rng)
    if noise is not None and (noise.readout_p01 > 0 or noise.readout_p10 > 0) and written:
        cols = sorted(written)
        b = memory[:, cols]
        flip = rng.random(b.shape) < np.where(b == 1, noise.readout_p10, noise.readout_p01)
        memory[:, cols] = np.where(flip, 1 - b, b)
    memory = memory[rng.permutation(memory.shape[0])]
    keys, counts = np.unique(memory[:, ::-1], axis=0, return_counts=True)
    table = {"".join(map(str, k)): int(c) for k, c in zip(keys, counts, strict=True)}
    return RunResult(table, memory)


class _Register:
    _backend: _Backend

    def __init__(self, n_qubits: int) -> None:
        self.n_qubits = n_qubits
        self.data: ComplexArray = self._backend.initial()

    def apply(self, name: str, qubits: Sequence[int], params: Sequence[float] = ()) -> None:
        """Apply one gate of the subset in place."""
        (ins,) = _parse([(name, tuple(qubits), tuple(params))], self.n_qubits, 0)
        if ins.name in GATES:
            self.data = self._backend.unitary(
                self.data, ins.qubits, gate_matrix(ins.name, ins.params)
            )
        elif ins.name != "barrier":
            raise ParameterError(f"apply() takes gates only, got {name!r}")

    def probabilities(self) -> FloatArray:
        """Populations of the computational basis, index ``sum_q b_q 2^q``."""
        return np.asarray(self._backend.diagonal(self.data).reshape(-1))


class StateVector(_Register):
    """A pure register of ``n`` qubits (``data``: tensor of shape ``(2,) * n``)."""

    def __init__(self, n_qubits: int) -> None:
        n = v.count("n_qubits", n_qubits, minimum=1)
        if n > MAX_STATEVECTOR_QUBITS:
            raise ParameterError(f"at most {MAX_STATEVECTOR_QUBITS} qubits")
        self._backend = _SV(n)
        super().__init__(n)

    def vector(self) -> ComplexArray:
        """Amplitudes, index ``sum_q b_q 2^q``."""
        return np.asarray(self.data.reshape(-1))


class DensityMatrix(_Register):
    """A mixed register of ``n`` qubits (``data``: tensor of shape ``(2,) * 2n``)."""

    def __init__(self, n_qubits: int) -> None:
        n = v.count("n_qubits", n_qubits, minimum=1)
        if n > MAX_DENSITY_MATRIX_QUBITS:
            raise ParameterError(f"at most {MAX_DENSITY_MATRIX_QUBITS} qubits")
        self._backend = _DM(n)
        super().__init__(n)

    def matrix(self) -> ComplexArray:
        """``2^n x 2^n`` matrix, index ``sum_q b_q 2^q``."""
        d = 2**self.n_qubits
        return np.asarray(self.data.reshape(d, d))

    def apply_channel(self, kraus: Sequence[ComplexArray], qubits: Sequence[int]) -> None:
        """Apply a channel (Kraus operators, first listed qubit most significant) in place."""
        qs = [v.count("qubit", q) for q in qubits]
        if not qs or len(set(qs)) != len(qs) or any(q >= self.n_qubits for q in qs):
            raise ParameterError(
                f"qubits must be distinct and < {self.n_qubits}, got {list(qubits)}"
            )
        self.data = self._backend.channel(self.data, qs, check_kraus(kraus, len(qs)))
