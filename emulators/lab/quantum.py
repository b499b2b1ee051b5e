"""The lab's qubits: joint density matrices of entangled clusters, decaying over lab time.

Every qubit of every emulated memory (and QPU communication qubit) is a :class:`Qubit` in the
lab's one :class:`QubitRegistry`. Qubits that have never interacted live alone; operations
that entangle them (a herald, a two-qubit gate) merge their *clusters* into one density
matrix. A memory device holds references to its qubits; the state of an entangled pair lives
here, shared by both memories.

Decay is lazy: each qubit remembers up to which lab time its relaxation has been applied, and
every operation first brings the qubits it touches up to the present. Between ``t0`` and
``t1`` a qubit undergoes amplitude damping ``1 - exp(-(t1 - t0)/T1)`` and the phase flip that
multiplies its coherence by ``c(t1 - s)/c(t0 - s)``, where ``c`` is the coherence factor of
:func:`emulators.physics.channels.coherence_factor` and ``s`` the time its coherence began
(its last preparation): exact for exponential dephasing (a semigroup) and for Gaussian
dephasing of a qubit left alone since ``s`` (quasi-static noise: the decay depends on the total
time since preparation, not on how often it is looked at).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from emulators.physics.channels import (
    amplitude_damping_kraus,
    apply_kraus,
    coherence_factor,
    dephasing_kraus,
    depolarizing_kraus,
    multi_qubit_depolarizing_kraus,
)
from emulators.physics.memory import MemoryModel
from emulators.physics.states import partial_trace

from .time import PS_PER_S

ComplexArray = npt.NDArray[np.complex128]

_H = np.array([[1, 1], [1, -1]], dtype=np.complex128) / math.sqrt(2)
_SDG = np.diag([1, -1j]).astype(np.complex128)
#: Unitary taking each basis' eigenstates to |0>, |1> (outcome 0 = the +1 eigenstate).
BASIS_ROTATION: dict[str, ComplexArray] = {
    "z": np.eye(2, dtype=np.complex128),
    "x": _H,
    "y": _H @ _SDG,
}


class ClusterTooLarge(RuntimeError):
    """An operation would entangle more qubits than the registry simulates jointly."""


@dataclass(eq=False)
class Qubit:
    """One physical qubit. ``name``: ``"node.device:q0"``-like; ``model``: T1/T2 and shape."""

    name: str
    model: MemoryModel
    cluster: Cluster = field(repr=False)
    synced_ps: int = 0
    coherent_since_ps: int = 0


@dataclass(eq=False)
class Cluster:
    """Qubits sharing one density matrix (tensor order = ``qubits`` order)."""

    qubits: list[Qubit]
    rho: ComplexArray


def _ket_rho(bit: int) -> ComplexArray:
    rho = np.zeros((2, 2), dtype=np.complex128)
    rho[bit, bit] = 1.0
    return rho


class QubitRegistry:
    """All qubits of a lab. ``max_cluster``: most qubits simulated in one density matrix."""

    def __init__(self, max_cluster: int = 10) -> None:
        self.max_cluster = max_cluster
        self.qubits: dict[str, Qubit] = {}

    # --- creation -------------------------------------------------------------------------

    def add(self, name: str, model: MemoryModel, t_ps: int = 0) -> Qubit:
        """A new qubit in ``|0>`` at lab time ``t_ps``."""
        if name in self.qubits:
            raise ValueError(f"qubit {name!r} exists")
        cluster = Cluster([], _ket_rho(0))
        q = Qubit(name, model, cluster, t_ps, t_ps)
        cluster.qubits.append(q)
        self.qubits[name] = q
        return q

    # --- decay ----------------------------------------------------------------------------

    @staticmethod
    def _decay_kraus(q: Qubit, t0: int, t1: int) -> list[ComplexArray] | None:
        m = q.model
        dt = (t1 - t0) / PS_PER_S
        if dt <= 0 or (math.isinf(m.t1_s) and math.isinf(m.t2_s)):
            return None
        gamma = 0.0 if math.isinf(m.t1_s) else -math.expm1(-dt / m.t1_s)
        a = (t0 - q.coherent_since_ps) / PS_PER_S
        b = (t1 - q.coherent_since_ps) / PS_PER_S
        c0 = coherence_factor(max(a, 0.0), m.t1_s, m.t2_s, m.dephasing)
        c1 = coherence_factor(max(b, 0.0), m.t1_s, m.t2_s, m.dephasing)
        ratio = c1 / c0 if c0 > 0 else 0.0
        keep = math.sqrt(1.0 - gamma)
        extra = min(1.0, ratio / keep) if keep > 0 else 0.0
        p_z = (1.0 - extra) / 2.0
        kraus = amplitude_damping_kraus(gamma)
        if p_z > 0:
            kraus = [z @ k for z in dephasing_kraus(p_z) for k in kraus]
        return kraus

    def sync(self, qubits: Sequence[Qubit], t_ps: int) -> None:
        """Apply every pending decay of the clusters of ``qubits`` up to lab time ``t_ps``."""
        seen: set[int] = set()
        for q in qubits:
            c = q.cluster
            if id(c) in seen:
                continue
            seen.add(id(c))
            for i, member in enumerate(c.qubits):
                if t_ps <= member.synced_ps:
                    continue
                kraus = self._decay_kraus(member, member.synced_ps, t_ps)
                if kraus is not None:
                    c.rho = apply_kraus(c.rho, kraus, [i])
                member.synced_ps = t_ps

    # --- structure ------------------------------------------------------------------------

    def _merge(self, qubits: Sequence[Qubit]) -> Cluster:
        clusters: list[Cluster] = []
        for q in qubits:
            if all(q.cluster is not c for c in clusters):
                clusters.append(q.cluster)
        if len(clusters) == 1:
            return clusters[0]
        size = sum(len(c.qubits) for c in clusters)
        if size > self.max_cluster:
            raise ClusterTooLarge(f"operation would entangle {size} qubits; the lab simulates "
                                  f"at most {self.max_cluster} jointly")
        rho = clusters[0].rho
        members = list(clusters[0].qubits)
        for c in clusters[1:]:
            rho = np.asarray(np.kron(rho, c.rho), dtype=np.complex128)
            members += c.qubits
        merged = Cluster(members, np.asarray(rho, dtype=np.complex128))
        for q in members:
            q.cluster = merged
        return merged

    def _detach(self, q: Qubit) -> None:
        """Trace ``q`` out of its cluster (the others keep their reduced state)."""
        c = q.cluster
        if len(c.qubits) == 1:
            return
        i = c.qubits.index(q)
        keep = [k for k in range(len(c.qubits)) if k != i]
        c.rho = partial_trace(c.rho, keep)
        c.qubits.remove(q)
        q.cluster = Cluster([q], _ket_rho(0))

    def entangled(self, q: Qubit) -> bool:
        """Whether ``q`` shares a density matrix with other qubits."""
        return len(q.cluster.qubits) > 1

    # --- operations ---------------------------------------------------------------------

    def prepare(self, q: Qubit, rho: ComplexArray, t_ps: int) -> None:
        """Discard ``q``'s state (tracing it out of any cluster) and set it to ``rho``."""
        self.sync([q], t_ps)
        self._detach(q)
        q.cluster.rho = np.asarray(rho, dtype=np.complex128)
        q.synced_ps = t_ps
        q.coherent_since_ps = t_ps

    def reset(self, q: Qubit, t_ps: int, bit: int = 0) -> None:
        """Prepare ``q`` in ``|bit>``."""
        self.prepare(q, _ket_rho(bit), t_ps)

    def set_joint(self, qubits: Sequence[Qubit], rho: ComplexArray, t_ps: int) -> None:
        """Give ``qubits`` (detached from their clusters) the joint state ``rho`` prepared at
        lab time ``t_ps`` (which may lie ahead of the present: decay starts there)."""
        if len(qubits) > self.max_cluster:
            raise ClusterTooLarge(f"{len(qubits)} qubits exceed the joint limit")
        for q in qubits:
            self._detach(q)
        cluster = Cluster(list(qubits), np.asarray(rho, dtype=np.complex128))
        for q in qubits:
            q.cluster = cluster
            q.synced_ps = t_ps
            q.coherent_since_ps = t_ps

    def _positions(self, qubits: Sequence[Qubit], t_ps: int) -> tuple[Cluster, list[int]]:
        self.sync(qubits, t_ps)
        cluster = self._merge(qubits)
        return cluster, [cluster.qubits.index(q) for q in qubits]

    def unitary(self, u: ComplexArray, qubits: Sequence[Qubit], t_ps: int) -> None:
        """Apply unitary ``u`` (first qubit = most significant bit) to ``qubits``."""
        cluster, pos = self._positions(qubits, t_ps)
        cluster.rho = apply_kraus(cluster.rho, [u], pos)

    def channel(self, kraus: Sequence[ComplexArray], qubits: Sequence[Qubit],
                t_ps: int) -> None:
        """Apply a channel given by Kraus operators to ``qubits``."""
        cluster, pos = self._positions(qubits, t_ps)
        cluster.rho = apply_kraus(cluster.rho, list(kraus), pos)

    def depolarize(self, qubits: Sequence[Qubit], p: float, t_ps: int) -> None:
        """Depolarizing noise of probability ``p`` on ``qubits`` jointly (1 or 2 qubits)."""
        if p <= 0:
            return
        kraus = depolarizing_kraus(p) if len(qubits) == 1 else \
            multi_qubit_depolarizing_kraus(p, len(qubits))
        self.channel(kraus, qubits, t_ps)

    def probability_one(self, q: Qubit, basis: str, t_ps: int) -> float:
        """Probability that measuring ``q`` in ``basis`` gives outcome 1 (no collapse)."""
        self.sync([q], t_ps)
        rho = partial_trace(q.cluster.rho, [q.cluster.qubits.index(q)]) if \
            len(q.cluster.qubits) > 1 else q.cluster.rho
        r = BASIS_ROTATION[basis]
        return float(np.clip((r @ rho @ r.conj().T)[1, 1].real, 0.0, 1.0))

    def measure(self, q: Qubit, basis: str, t_ps: int, rng: np.random.Generator) -> int:
        """Projective measurement of ``q`` in ``basis`` (z, x, y): returns the true outcome
        (0 = +1 eigenstate) and leaves ``q`` alone in that eigenstate."""
        r = BASIS_ROTATION[basis]
        cluster, pos = self._positions([q], t_ps)
        i = pos[0]
        n = len(cluster.qubits)
        rho = apply_kraus(cluster.rho, [r], [i]) if basis != "z" else cluster.rho
        dim = 2**n
        bit_of = (np.arange(dim) >> (n - 1 - i)) & 1
        p1 = float(np.clip(np.real(np.diag(rho))[bit_of == 1].sum(), 0.0, 1.0))
        outcome = int(rng.random() < p1)
        p = p1 if outcome else 1.0 - p1
        mask = bit_of == outcome
        rho = np.where(np.outer(mask, mask), rho, 0.0)
        if p > 0:
            rho = rho / p
        cluster.rho = np.asarray(rho, dtype=np.complex128)
        self._detach(q)
        ket = r.conj().T[:, outcome]
        q.cluster.rho = np.asarray(np.outer(ket, ket.conj()), dtype=np.complex128)
        q.coherent_since_ps = t_ps
        return outcome

    def schur(self, qubits: Sequence[Qubit], multiplier: ComplexArray, t_ps: int,
              normalize: bool = True) -> float:
        """Apply a diagonal-Kraus instrument given by its Schur multiplier on ``qubits``
        (``rho[i, j] *= M[a(i), a(j)]`` with ``a`` the index of ``qubits`` within ``i``).

        Returns the probability of the outcome; with ``normalize`` the state is renormalized.
        """
        cluster, pos = self._positions(qubits, t_ps)
        n = len(cluster.qubits)
        idx = np.arange(2**n)
        sub = np.zeros(2**n, dtype=np.int64)
        for p in pos:
            sub = (sub << 1) | ((idx >> (n - 1 - p)) & 1)
        m = multiplier[np.ix_(sub, sub)]
        rho = cluster.rho * m
        prob = float(np.real(np.trace(rho)))
        if normalize and prob > 0:
            rho = rho / prob
        cluster.rho = np.asarray(rho, dtype=np.complex128)
        return prob

    def swap(self, a: Qubit, b: Qubit) -> None:
        """Exchange the states of ``a`` and ``b`` exactly (a relabelling of the physics)."""
        ca, cb = a.cluster, b.cluster
        ia, ib = ca.qubits.index(a), cb.qubits.index(b)
        ca.qubits[ia], cb.qubits[ib] = b, a
        a.cluster, b.cluster = cb, ca
        a.synced_ps, b.synced_ps = b.synced_ps, a.synced_ps
        a.coherent_since_ps, b.coherent_since_ps = b.coherent_since_ps, a.coherent_since_ps

    def density(self, qubits: Sequence[Qubit], t_ps: int) -> ComplexArray:
        """The reduced density matrix of ``qubits`` (in that order) at lab time ``t_ps``,
        without changing anything (a copy; for tests and analysis)."""
        self.sync(qubits, t_ps)
        clusters: list[Cluster] = []
        for q in qubits:
            if all(q.cluster is not c for c in clusters):
                clusters.append(q.cluster)
        rho = clusters[0].rho
        members = list(clusters[0].qubits)
        for c in clusters[1:]:
            rho = np.asarray(np.kron(rho, c.rho), dtype=np.complex128)
            members += c.qubits
        keep = [members.index(q) for q in qubits]
        if keep == list(range(len(members))):
            return np.array(rho)
        return partial_trace(rho, keep)


__all__ = ["BASIS_ROTATION", "Cluster", "ClusterTooLarge", "Qubit", "QubitRegistry"]
