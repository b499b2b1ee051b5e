"""Repeater primitives: entanglement swapping, distillation (BBPSSW, DEJMPS), rate bounds.

Bell-diagonal coefficients use the order ``[Phi+, Phi-, Psi+, Psi-]`` (index ``2x + z``).

* Swapping two Bell-diagonal pairs with a perfect Bell measurement and Pauli correction is
  the XOR-convolution ``r[k] = sum_{i XOR j = k} p[i] q[j]``; for Werner inputs
  ``F' = F1 F2 + (1 - F1)(1 - F2)/3``.
* Bilateral CNOT (pair 1 controls pair 2), then both target qubits measured in Z and the
  pair kept iff the results agree: in the bits ``(x, z)`` of the Bell index, ``x2 ^= x1`` and
  ``z1 ^= z2``; success iff ``x1 = x2``; output ``(x1, z1 ^ z2)``.
  - BBPSSW (Bennett et al., PRL 76, 722, 1996): inputs twirled to Werner states;
    ``p = F1 F2 + F1 (1-F2)/3 + (1-F1) F2/3 + 5 (1-F1)(1-F2)/9``,
    ``F' = (F1 F2 + (1-F1)(1-F2)/9) / p``.
  - DEJMPS (Deutsch et al., PRL 77, 2818, 1996): Alice applies ``Rx(pi/2)``, Bob
    ``Rx(-pi/2)`` to each of their qubits first, which exchanges the ``Phi-`` and ``Psi-``
    coefficients; with ``(A, B, C, D) = (Phi+, Psi-, Psi+, Phi-)``:
    ``N = (A + B)^2 + (C + D)^2``, ``A' = (A^2 + B^2)/N``, ``B' = 2CD/N``, ``C' = (C^2 + D^2)/N``,
    ``D' = 2AB/N``.
* PLOB bound (Pirandola, Laurenza, Ottaviani & Banchi, Nat. Commun. 8, 15043, 2017): no
  repeaterless protocol over a pure-loss channel of transmissivity ``eta`` distributes more
  than ``-log2(1 - eta)`` ebits per channel use.
* Hashing bound: a Bell-diagonal state yields at least ``1 - H(p)`` ebits per copy
  (Bennett et al., PRA 54, 3824, 1996).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._tensor import apply_unitary_density
from ._types import ComplexArray, FloatArray
from .channels import PAULI
from .errors import ShapeError
from .states import BELL_BASIS, bell_diagonal, check_density_matrix, werner, xor_convolve

__all__ = [
    "DistillationResult",
    "SwapResult",
    "bbpssw",
    "bbpssw_werner",
    "bilateral_cnot",
    "dejmps",
    "distill_density",
    "hashing_bound",
    "plob_bound",
    "swap_bell_diagonal",
    "swap_density",
    "werner_swap_fidelity",
]

_PAULI_BY_INDEX = [PAULI["I"], PAULI["Z"], PAULI["X"], PAULI["Y"]]


def plob_bound(eta: float | ArrayLike) -> FloatArray:
    """Repeaterless capacity ``-log2(1 - eta)`` (ebits per channel use) of a pure-loss channel."""
    e = v.probability_array("eta", eta)
    with np.errstate(divide="ignore"):
        return np.asarray(-np.log2(1.0 - e))


def hashing_bound(coefficients: ArrayLike) -> FloatArray:
    """``max(0, 1 - H(p))`` ebits per pair, achievable by hashing on Bell-diagonal pairs."""
    p = bell_diagonal(coefficients)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(p > 0, p * np.log2(p), 0.0), axis=-1)
    return np.asarray(np.maximum(0.0, 1.0 - h))


def werner_swap_fidelity(f1: float, f2: float) -> float:
    """``F1 F2 + (1 - F1)(1 - F2)/3``."""
    a = v.probability("f1", f1)
    b = v.probability("f2", f2)
    return a * b + (1 - a) * (1 - b) / 3.0


def swap_bell_diagonal(p: ArrayLike, q: ArrayLike) -> FloatArray:
    """Bell-diagonal pair after swapping pairs ``p`` (A-B) and ``q`` (C-D) at B-C."""
    return xor_convolve(bell_diagonal(p), bell_diagonal(q))


@dataclass(frozen=True)
class SwapResult:
    """Outcome probabilities of the Bell measurement (index 0..3) and the corrected A-D state."""

    probabilities: FloatArray
    state: ComplexArray


def swap_density(rho_ab: ArrayLike, rho_cd: ArrayLike) -> SwapResult:
    """Swap two-qubit states: Bell measurement on B and C, Pauli correction on D.

    The corrected A-D state is the same for every outcome when the inputs are Bell
    diagonal; in general :attr:`SwapResult.state` is the outcome-averaged corrected state.
    """
    r1 = check_density_matrix(rho_ab, 2)
    r2 = check_density_matrix(rho_cd, 2)
    t = np.kron(r1, r2).reshape((2,) * 8)  # axes a b c d | a' b' c' d'
    bell = BELL_BASIS.T.reshape(4, 2, 2)  # bell[k, b, c] = <bc|B_k>
    probs = np.empty(4)
    out = np.zeros((4, 4), dtype=np.complex128)
    for k in range(4):
        rho_ad = np.einsum("bc,abcdefgh,fg->adeh", bell[k].conj(), t, bell[k]).reshape(4, 4)
        probs[k] = np.trace(rho_ad).real
        corr = np.kron(np.eye(2), _PAULI_BY_INDEX[k])
        out += corr @ rho_ad @ corr.conj().T
    return SwapResult(probs, out)


def bilateral_cnot(p: ArrayLike, q: ArrayLike) -> tuple[float, FloatArray]:
    """Success probability and output of the bilateral-CNOT step on Bell-diagonal pairs
    (no local rotations): control pair ``p``, target pair ``q``."""
    a = bell_diagonal(p).reshape(2, 2)  # [x, z]
    b = bell_diagonal(q).reshape(2, 2)
    out = np.zeros((2, 2))
    for x in range(2):
        for z1 in range(2):
            for z2 in range(2):
                out[x, z1 ^ z2] += a[x, z1] * b[x, z2]
    succ = float(out.sum())
    return succ, np.asarray((out / succ).reshape(4))


def bbpssw_werner(f1: float, f2: float | None = None) -> tuple[float, float]:
    """BBPSSW on Werner pairs: ``(success probability, output fidelity)``."""
    a = v.probability("f1", f1)
    b = a if f2 is None else v.probability("f2", f2)
    succ, out = bilateral_cnot(werner(a), werner(b))
    return succ, float(out[0])


def bbpssw(p: ArrayLike, q: ArrayLike | None = None) -> tuple[float, FloatArray]:
    """BBPSSW on Bell-diagonal pairs: inputs twirled to Werner, output twirled to Werner."""
    pa = bell_diagonal(p)
    qa = pa if q is None else bell_diagonal(q)
    succ, f = bbpssw_werner(float(pa[0]), float(qa[0]))
    return succ, werner(f)


_DEJMPS_PERM = [0, 3, 2, 1]  # Rx(pi/2) x Rx(-pi/2) exchanges Phi- and Psi-


def dejmps(p: ArrayLike, q: ArrayLike | None = None) -> tuple[float, FloatArray]:
    """DEJMPS on Bell-diagonal pairs: ``(success probability, output coefficients)``."""
    pa = bell_diagonal(p)
    qa = pa if q is None else bell_diagonal(q)
    return bilateral_cnot(pa[_DEJMPS_PERM], qa[_DEJMPS_PERM])


@dataclass(frozen=True)
class DistillationResult:
    """Probabilities of the four target-measurement outcomes ``(m_A, m_B)`` (index
    ``2 m_A + m_B``), success probability, and the kept pair's normalized state."""

    outcome_probabilities: FloatArray
    success_probability: float
    state: ComplexArray


def _rx(theta: float) -> ComplexArray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -1j * s], [-1j * s, c]], dtype=np.complex128)


_CNOT = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=np.complex128)


def distill_density(
    rho1: ArrayLike, rho2: ArrayLike, protocol: str = "dejmps"
) -> DistillationResult:
    """Run one distillation round as a circuit on the 4-qubit density matrix.

    Qubit order ``(A1, B1, A2, B2)``; pair 1 is kept. ``protocol``: ``"dejmps"`` (local
    rotations, no twirl) or ``"bbpssw"`` (inputs twirled to Werner states first).
    """
    kind = v.choice("protocol", protocol, ("dejmps", "bbpssw"))
    r1 = check_density_matrix(rho1, 2)
    r2 = check_density_matrix(rho2, 2)
    if kind == "bbpssw":
        phi = BELL_BASIS[:, 0]
        twirl = [np.einsum("i,ij,j->", phi.conj(), r, phi).real for r in (r1, r2)]
        r1, r2 = (_werner_density(f) for f in twirl)
    t: ComplexArray = np.asarray(np.kron(r1, r2), dtype=np.complex128).reshape((2,) * 8)
    if kind == "dejmps":
        for axis, theta in (
            (0, math.pi / 2),
            (2, math.pi / 2),
            (1, -math.pi / 2),
            (3, -math.pi / 2),
        ):
            t = apply_unitary_density(t, _rx(theta), [axis], 4)
    t = apply_unitary_density(t, _CNOT, [0, 2], 4)  # Alice: A1 controls A2
    t = apply_unitary_density(t, _CNOT, [1, 3], 4)  # Bob: B1 controls B2
    probs = np.empty(4)
    kept = np.zeros((4, 4), dtype=np.complex128)
    for ma in range(2):
        for mb in range(2):
            block = t[:, :, ma, mb, :, :, ma, mb].reshape(4, 4)
            probs[2 * ma + mb] = np.trace(block).real
            if ma == mb:
                kept += block
    succ = float(probs[0] + probs[3])
    if succ <= 0.0:
        raise ShapeError("distillation cannot succeed on these inputs")
    return DistillationResult(probs, succ, kept / succ)


def _werner_density(f: float) -> ComplexArray:
    return np.asarray(
        np.einsum("ik,k,jk->ij", BELL_BASIS, werner(min(max(f, 0.0), 1.0)), BELL_BASIS.conj())
    )
