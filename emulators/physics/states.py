"""Quantum states: density matrices of small registers and Bell-diagonal pairs.

Conventions
-----------
* Tensor-factor order: in an ``n``-qubit density matrix, qubit 0 is the leftmost factor
  (the most significant bit of the basis index). For a two-memory state, qubit 0 is
  memory A and qubit 1 is memory B: ``|b_A b_B>``, index ``2 b_A + b_B``.
* Bell basis order ``[Phi+, Phi-, Psi+, Psi-]``: the index ``2 x + z`` names the Pauli
  ``X^x Z^z`` that maps ``Phi+`` to that Bell state when applied to one qubit. A Pauli on
  either qubit therefore permutes Bell-diagonal coefficients by XOR of indices
  (Pauli index I=0, Z=1, X=2, Y=3), which makes swapping and Pauli noise XOR-convolutions.
* A Bell-diagonal state is a float array of shape ``(..., 4)`` of non-negative
  coefficients summing to 1, so batches of pairs are one array.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._types import ComplexArray, FloatArray
from .errors import ParameterError, ShapeError

__all__ = [
    "BELL_BASIS",
    "BELL_LABELS",
    "PAULI_INDEX",
    "bell_diagonal",
    "bell_diagonal_to_density",
    "bell_fidelity",
    "bell_ket",
    "check_density_matrix",
    "density_to_bell_diagonal",
    "fidelity",
    "ket_to_density",
    "log_negativity",
    "partial_trace",
    "partial_transpose",
    "pauli_frame_correct",
    "werner",
    "xor_convolve",
]

BELL_LABELS: tuple[str, str, str, str] = ("phi+", "phi-", "psi+", "psi-")
"""Labels of the Bell basis in the order used throughout (index ``2 x + z``)."""

PAULI_INDEX: dict[str, int] = {"I": 0, "Z": 1, "X": 2, "Y": 3}
"""Index of a Pauli in the XOR algebra of Bell indices."""

_S = 1.0 / np.sqrt(2.0)
BELL_BASIS: ComplexArray = np.array(
    [
        [_S, _S, 0.0, 0.0],  # |00>
        [0.0, 0.0, _S, _S],  # |01>
        [0.0, 0.0, _S, -_S],  # |10>
        [_S, -_S, 0.0, 0.0],  # |11>
    ],
    dtype=np.complex128,
)
"""Columns are ``|Phi+>, |Phi->, |Psi+>, |Psi->`` in the computational basis ``|b_A b_B>``."""


def bell_ket(which: int | str) -> ComplexArray:
    """State vector of a Bell state, by index 0..3 or label (``"phi+"``, ..., ``"psi-"``)."""
    if isinstance(which, str):
        if which not in BELL_LABELS:
            raise ParameterError(f"unknown Bell state {which!r}; use one of {BELL_LABELS}")
        idx = BELL_LABELS.index(which)
    else:
        idx = v.count("which", which)
        if idx > 3:
            raise ParameterError(f"Bell index must be 0..3, got {idx}")
    return np.array(BELL_BASIS[:, idx])


def bell_diagonal(coefficients: ArrayLike, *, atol: float = 1e-9) -> FloatArray:
    """Validate Bell-diagonal coefficients ``(..., 4)``: non-negative, summing to 1.

    Sums within ``atol`` of 1 are renormalized; anything else raises.
    """
    p = v.float_array("coefficients", coefficients)
    if p.ndim == 0 or p.shape[-1] != 4:
        raise ShapeError(f"Bell-diagonal coefficients need a last axis of length 4, got {p.shape}")
    if np.any(p < -atol):
        raise ParameterError("Bell-diagonal coefficients must be non-negative")
    total = p.sum(axis=-1, keepdims=True)
    if np.any(np.abs(total - 1.0) > atol):
        raise ParameterError("Bell-diagonal coefficients must sum to 1")
    out: FloatArray = np.clip(p, 0.0, None) / total
    return out


def werner(fidelity: float | ArrayLike) -> FloatArray:
    """Werner state ``F |Phi+><Phi+| + (1-F)/3 (other Bell states)`` as coefficients."""
    f = v.probability_array("fidelity", fidelity)
    rest = (1.0 - f) / 3.0
    return np.stack([f, rest, rest, rest], axis=-1)


def xor_convolve(p: FloatArray, q: FloatArray) -> FloatArray:
    """``r[k] = sum_{i XOR j = k} p[i] q[j]`` over the last axis (length 4), broadcasting.

    This is the Bell-index algebra: Pauli noise with probabilities ``q`` (order I, Z, X, Y)
    on a Bell-diagonal state ``p``, or entanglement swapping of two Bell-diagonal pairs.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(p.shape, q.shape), dtype=np.float64)
    for i in range(4):
        for j in range(4):
            out[..., i ^ j] += p[..., i] * q[..., j]
    return out


def pauli_frame_correct(coefficients: ArrayLike, index: int) -> FloatArray:
    """Apply the Pauli of XOR-index ``index`` to one qubit: ``p'[k] = p[k XOR index]``."""
    p = bell_diagonal(coefficients)
    idx = v.count("index", index)
    if idx > 3:
        raise ParameterError(f"Pauli index must be 0..3, got {idx}")
    out: FloatArray = p[..., [k ^ idx for k in range(4)]]
    return out


def bell_diagonal_to_density(coefficients: ArrayLike) -> ComplexArray:
    """``rho = sum_k p_k |B_k><B_k|`` as a ``(..., 4, 4)`` complex array."""
    p = bell_diagonal(coefficients)
    return np.asarray(np.einsum("ik,...k,jk->...ij", BELL_BASIS, p, BELL_BASIS.conj()))


def density_to_bell_diagonal(rho: ArrayLike) -> FloatArray:
    """Diagonal of a two-qubit ``rho`` (``(..., 4, 4)``) in the Bell basis.

    Equals the Bell-diagonal state obtained by twirling ``rho``; its first entry is the
    fidelity with ``Phi+``.
    """
    r = np.asarray(rho, dtype=np.complex128)
    if r.shape[-2:] != (4, 4):
        raise ShapeError(f"a two-qubit density matrix must be 4x4, got {r.shape}")
    d = np.einsum("ik,...ij,jk->...k", BELL_BASIS.conj(), r, BELL_BASIS).real
    return np.asarray(np.clip(d, 0.0, None) / np.clip(d.sum(axis=-1, keepdims=True), 1e-300, None))


def check_density_matrix(
    rho: ArrayLike, n_qubits: int | None = None, *, atol: float = 1e-8
) -> ComplexArray:
    """Return ``rho`` as a complex array after checking it is a density matrix.

    Square ``2^n x 2^n``, Hermitian, unit trace, positive semidefinite (within ``atol``).
    """
    r = np.asarray(rho, dtype=np.complex128)
    if r.ndim != 2 or r.shape[0] != r.shape[1]:
        raise ShapeError(f"density matrix must be square, got shape {r.shape}")
    dim = r.shape[0]
    n = dim.bit_length() - 1
    if dim < 2 or 2**n != dim:
        raise ShapeError(f"density matrix dimension must be a power of 2 (>= 2), got {dim}")
    if n_qubits is not None and n != n_qubits:
        raise ShapeError(f"expected a {n_qubits}-qubit density matrix, got {n} qubits")
    if not np.allclose(r, r.conj().T, atol=atol):
        raise ShapeError("density matrix must be Hermitian")
    if abs(np.trace(r).real - 1.0) > atol:
        raise ShapeError(f"density matrix must have unit trace, got {np.trace(r).real:.6g}")
    if np.linalg.eigvalsh(r).min() < -atol:
        raise ShapeError("density matrix must be positive semidefinite")
    return r


def ket_to_density(ket: ArrayLike) -> ComplexArray:
    """``|psi><psi|`` of a normalized state vector."""
    k = np.asarray(ket, dtype=np.complex128).reshape(-1)
    norm = np.vdot(k, k).real
    if not np.isclose(norm, 1.0, atol=1e-8):
        raise ShapeError(f"state vector must be normalized, got norm^2 = {norm:.6g}")
    return np.asarray(np.outer(k, k.conj()))


def bell_fidelity(rho: ArrayLike, which: int | str = "phi+") -> float:
    """Fidelity ``<B|rho|B>`` of a two-qubit state with a Bell state."""
    b = bell_ket(which)
    r = np.asarray(rho, dtype=np.complex128)
    if r.shape != (4, 4):
        raise ShapeError(f"expected a 4x4 density matrix, got {r.shape}")
    return float(np.real(np.vdot(b, r @ b)))


def _psd_sqrt(m: ComplexArray) -> ComplexArray:
    w, u = np.linalg.eigh(m)
    return np.asarray((u * np.sqrt(np.clip(w, 0.0, None))) @ u.conj().T)


def fidelity(rho: ArrayLike, sigma: ArrayLike) -> float:
    """Uhlmann fidelity ``(Tr sqrt(sqrt(rho) sigma sqrt(rho)))^2`` (squared convention)."""
    r = np.asarray(rho, dtype=np.complex128)
    s = np.asarray(sigma, dtype=np.complex128)
    if r.shape != s.shape or r.ndim != 2:
        raise ShapeError(
            f"fidelity needs two square matrices of equal shape, got {r.shape}, {s.shape}"
        )
    sr = _psd_sqrt(r)
    w = np.linalg.eigvalsh(sr @ s @ sr)
    return float(np.sum(np.sqrt(np.clip(w, 0.0, None))) ** 2)


def _n_qubits_of(r: ComplexArray) -> int:
    dim = int(r.shape[0])
    n = dim.bit_length() - 1
    if r.ndim != 2 or r.shape[1] != dim or 2**n != dim or n < 1:
        raise ShapeError(f"expected a 2^n x 2^n matrix, got {r.shape}")
    return n


def partial_trace(rho: ArrayLike, keep: Sequence[int]) -> ComplexArray:
    """Reduced density matrix of the qubits ``keep`` (tensor-factor positions, in that order)."""
    r = np.asarray(rho, dtype=np.complex128)
    n = _n_qubits_of(r)
    keep = [v.count("keep", q) for q in keep]
    if len(set(keep)) != len(keep) or any(q >= n for q in keep):
        raise ParameterError(f"keep must list distinct qubits in 0..{n - 1}, got {keep}")
    t = r.reshape((2,) * (2 * n))
    traced = [q for q in range(n) if q not in keep]
    letters = "abcdefghijklmnopqrstuvwxyz"
    if 2 * n > 52:
        raise ShapeError("partial_trace supports at most 26 qubits")
    letters = letters + letters.upper()
    row = [letters[q] for q in range(n)]
    col = [letters[q + n] if q not in traced else letters[q] for q in range(n)]
    out = "".join(letters[q] for q in keep) + "".join(letters[q + n] for q in keep)
    reduced = np.einsum("".join(row) + "".join(col) + "->" + out, t)
    d = 2 ** len(keep)
    return np.asarray(reduced.reshape(d, d))


def partial_transpose(rho: ArrayLike, qubits: Sequence[int]) -> ComplexArray:
    """Partial transpose on the given tensor-factor positions."""
    r = np.asarray(rho, dtype=np.complex128)
    n = _n_qubits_of(r)
    t = r.reshape((2,) * (2 * n))
    perm = list(range(2 * n))
    for q in qubits:
        q = v.count("qubit", q)
        if q >= n:
            raise ParameterError(f"qubit {q} out of range for {n} qubits")
        perm[q], perm[q + n] = perm[q + n], perm[q]
    return np.asarray(t.transpose(perm).reshape(2**n, 2**n))


def log_negativity(rho: ArrayLike, qubits: Sequence[int] = (1,)) -> float:
    """Logarithmic negativity ``log2 ||rho^{T_B}||_1`` across the cut ``qubits`` | rest.

    An upper bound on the distillable entanglement (Vidal & Werner, PRA 65, 032314, 2002).
    """
    pt = partial_transpose(rho, qubits)
    w = np.linalg.eigvalsh(pt)
    return float(np.log2(np.sum(np.abs(w))))
