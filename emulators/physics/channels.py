"""Single-qubit noise channels and their application to registers.

Kraus lists are lists of ``2 x 2`` complex arrays. A channel is applied to a density
matrix with :func:`apply_kraus`; a Pauli channel also acts on Bell-diagonal pairs with
:func:`pauli_on_bell_diagonal`.

Formulas (Nielsen & Chuang, ch. 8):
* amplitude damping ``gamma``: ``K0 = [[1, 0], [0, sqrt(1-gamma)]]``,
  ``K1 = [[0, sqrt(gamma)], [0, 0]]``;
* dephasing (phase flip) with probability ``p``: coherence multiplied by ``1 - 2p``;
* depolarizing ``p``: ``rho -> (1-p) rho + p I/2`` (Pauli probabilities ``p/4`` each);
* relaxation over ``t``: populations relax as ``exp(-t/T1)``; coherence as ``exp(-t/T2)``
  (exponential, Markovian) or ``exp(-t/2T1) exp(-(t/T2*)^2)`` (Gaussian, quasi-static noise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._tensor import apply_channel
from ._types import ComplexArray, FloatArray
from .errors import ParameterError, ShapeError
from .states import bell_diagonal, xor_convolve

__all__ = [
    "PAULI",
    "amplitude_damping_kraus",
    "apply_kraus",
    "check_kraus",
    "coherence_factor",
    "coherence_factors",
    "dephasing_kraus",
    "depolarizing_kraus",
    "multi_qubit_depolarizing_kraus",
    "pauli_kraus",
    "pauli_on_bell_diagonal",
    "pauli_twirl",
    "relaxation_kraus",
]

PAULI: dict[str, ComplexArray] = {
    "I": np.eye(2, dtype=np.complex128),
    "X": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    "Z": np.array([[1, 0], [0, -1]], dtype=np.complex128),
}


def pauli_kraus(p_x: float, p_y: float, p_z: float) -> list[ComplexArray]:
    """General Pauli channel ``rho -> (1-px-py-pz) rho + px X rho X + py Y rho Y + pz Z rho Z``."""
    px = v.probability("p_x", p_x)
    py = v.probability("p_y", p_y)
    pz = v.probability("p_z", p_z)
    p_i = 1.0 - px - py - pz
    if p_i < -1e-12:
        raise ParameterError(f"Pauli probabilities must sum to <= 1, got {px + py + pz}")
    probs = {"I": max(p_i, 0.0), "X": px, "Y": py, "Z": pz}
    return [math.sqrt(p) * PAULI[k] for k, p in probs.items() if p > 0.0]


def depolarizing_kraus(p: float) -> list[ComplexArray]:
    """Depolarizing channel ``rho -> (1-p) rho + p I/2``."""
    p = v.probability("p", p)
    return pauli_kraus(p / 4.0, p / 4.0, p / 4.0)


def multi_qubit_depolarizing_kraus(p: float, n_qubits: int) -> list[ComplexArray]:
    """``n``-qubit depolarizing ``rho -> (1-p) rho + p I/2^n`` as ``4^n`` Pauli-string Kraus ops."""
    p = v.probability("p", p)
    n = v.count("n_qubits", n_qubits, minimum=1)
    paulis = [PAULI[k] for k in "IXYZ"]
    ops: list[ComplexArray] = [np.ones((1, 1), dtype=np.complex128)]
    for _ in range(n):
        ops = [np.asarray(np.kron(a, b), dtype=np.complex128) for a in ops for b in paulis]
    weight_rest = p / 4**n
    out = [math.sqrt(1.0 - p + weight_rest) * ops[0]]
    if weight_rest > 0.0:
        out += [math.sqrt(weight_rest) * o for o in ops[1:]]
    return out


def dephasing_kraus(p_z: float) -> list[ComplexArray]:
    """Phase flip with probability ``p_z``: coherence multiplied by ``1 - 2 p_z``."""
    return pauli_kraus(0.0, 0.0, p_z)


def amplitude_damping_kraus(gamma: float) -> list[ComplexArray]:
    """Amplitude damping ``|1> -> |0>`` with probability ``gamma``."""
    g = v.probability("gamma", gamma)
    k0 = np.array([[1.0, 0.0], [0.0, math.sqrt(1.0 - g)]], dtype=np.complex128)
    k1 = np.array([[0.0, math.sqrt(g)], [0.0, 0.0]], dtype=np.complex128)
    return [k0, k1] if g > 0.0 else [k0]


def coherence_factors(
    t: ArrayLike, t1: float, t2: float, dephasing: str = "exponential"
) -> FloatArray:
    """Factor ``|rho_01(t)| / |rho_01(0)|`` of a qubit stored for times ``t`` (s), vectorized.

    ``exponential``: ``exp(-t/T2)`` (requires ``T2 <= 2 T1``; ``T2`` is the total coherence time).
    ``gaussian``: ``exp(-t/(2 T1)) exp(-(t/T2)^2)`` with ``T2`` the Gaussian pure-dephasing
    time ``T2*`` of quasi-static noise (a detuning spread sigma gives ``T2* = sqrt(2)/sigma``).
    ``T1``/``T2`` may be ``inf``.
    """
    ts = v.float_array("t", t)
    if ts.size and ts.min() < 0.0:
        raise ParameterError("storage times must be >= 0")
    t1 = v.positive("t1", t1, allow_inf=True)
    t2 = v.positive("t2", t2, allow_inf=True)
    kind = v.choice("dephasing", dephasing, ("exponential", "gaussian"))
    if kind == "exponential":
        if t2 > 2.0 * t1 * (1 + 1e-12):
            raise ParameterError(f"T2 ({t2} s) cannot exceed 2 T1 ({2 * t1} s)")
        return np.asarray(np.exp(-ts / t2))
    return np.asarray(np.exp(-ts / (2.0 * t1) - (ts / t2) ** 2))


def coherence_factor(t: float, t1: float, t2: float, dephasing: str = "exponential") -> float:
    """Scalar form of :func:`coherence_factors`."""
    return float(coherence_factors(v.nonnegative("t", t), t1, t2, dephasing))


def relaxation_kraus(
    t: float, t1: float, t2: float, dephasing: str = "exponential"
) -> list[ComplexArray]:
    """Kraus operators of T1 relaxation (towards ``|0>``) plus dephasing over ``t`` seconds.

    Amplitude damping ``gamma = 1 - exp(-t/T1)`` followed by a phase flip that brings the
    coherence to :func:`coherence_factor`.
    """
    c = coherence_factor(t, t1, t2, dephasing)
    gamma = 1.0 - math.exp(-t / t1) if math.isfinite(t1) else 0.0
    c_ad = math.sqrt(1.0 - gamma)
    extra = c / c_ad if c_ad > 0.0 else 0.0
    p_z = (1.0 - min(extra, 1.0)) / 2.0
    ad = amplitude_damping_kraus(gamma)
    if p_z <= 0.0:
        return ad
    return [z @ k for z in dephasing_kraus(p_z) for k in ad]


def check_kraus(kraus: Sequence[ArrayLike], n_qubits: int) -> list[ComplexArray]:
    """Kraus operators as complex ``2^n x 2^n`` arrays, checked for ``sum K^dagger K = I``."""
    ks = [np.asarray(k, dtype=np.complex128) for k in kraus]
    d = 2**n_qubits
    if not ks or any(k.shape != (d, d) for k in ks):
        raise ShapeError(f"Kraus operators must be {d}x{d} for {n_qubits} qubit(s)")
    completeness = sum(k.conj().T @ k for k in ks)
    if not np.allclose(completeness, np.eye(d), atol=1e-9):
        raise ShapeError("Kraus operators must satisfy sum K^dagger K = I")
    return ks


def apply_kraus(rho: ArrayLike, kraus: Sequence[ArrayLike], qubits: Sequence[int]) -> ComplexArray:
    """Apply a ``k``-qubit channel (Kraus ops ``2^k x 2^k``) to qubits of an ``n``-qubit ``rho``.

    ``qubits`` are tensor-factor positions (0 = leftmost); the Kraus matrices' index bits
    follow the order of ``qubits``.
    """
    r = np.asarray(rho, dtype=np.complex128)
    dim = r.shape[0]
    n = dim.bit_length() - 1
    if r.ndim != 2 or r.shape[1] != dim or 2**n != dim or n < 1:
        raise ShapeError(f"rho must be 2^n x 2^n, got {r.shape}")
    qs = [v.count("qubit", q) for q in qubits]
    if len(set(qs)) != len(qs) or any(q >= n for q in qs):
        raise ParameterError(f"qubits must be distinct and in 0..{n - 1}, got {list(qubits)}")
    ks = check_kraus(kraus, len(qs))
    out = apply_channel(r.reshape((2,) * (2 * n)), ks, qs, n)
    return np.asarray(out.reshape(dim, dim))


def pauli_twirl(kraus: Sequence[ArrayLike]) -> FloatArray:
    """Pauli-twirl probabilities ``(p_I, p_Z, p_X, p_Y)`` (XOR-index order) of a 1-qubit channel.

    ``p_P = sum_k |Tr(P K_k)/2|^2``; the twirled channel is the Pauli channel nearest in
    the sense of preserving the process fidelity.
    """
    ks = [np.asarray(k, dtype=np.complex128) for k in kraus]
    if any(k.shape != (2, 2) for k in ks):
        raise ShapeError("pauli_twirl expects 2x2 Kraus operators")
    out = np.array(
        [sum(abs(np.trace(PAULI[p].conj().T @ k) / 2.0) ** 2 for k in ks) for p in "IZXY"],
        dtype=np.float64,
    )
    return np.asarray(out / out.sum())


def pauli_on_bell_diagonal(
    coefficients: ArrayLike, p_x: float, p_y: float, p_z: float
) -> FloatArray:
    """Pauli channel on one qubit of Bell-diagonal pair(s): an XOR-convolution."""
    p = bell_diagonal(coefficients)
    px = v.probability("p_x", p_x)
    py = v.probability("p_y", p_y)
    pz = v.probability("p_z", p_z)
    if px + py + pz > 1.0 + 1e-12:
        raise ParameterError("Pauli probabilities must sum to <= 1")
    q = np.array([max(1.0 - px - py - pz, 0.0), pz, px, py])
    return xor_convolve(p, q)
