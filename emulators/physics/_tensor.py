"""Tensor helpers: apply a small operator to chosen axes of a qubit tensor.

A register of ``n`` qubits is an array of shape ``(2,) * n`` (state vector) or
``(2,) * 2n`` (density matrix: ``n`` row axes then ``n`` column axes). A ``k``-qubit
matrix acts on ``k`` axes; its row/column index bits follow the order of ``axes``,
the first axis being the most significant bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._types import ComplexArray


def apply_matrix(tensor: ComplexArray, matrix: ComplexArray, axes: Sequence[int]) -> ComplexArray:
    """Contract ``matrix`` (``2^k x 2^k``) into ``tensor`` over ``axes`` (``k`` axes of size 2)."""
    k = len(axes)
    m = np.asarray(matrix).reshape((2,) * (2 * k))
    out = np.tensordot(m, tensor, axes=(list(range(k, 2 * k)), list(axes)))
    return np.moveaxis(out, list(range(k)), list(axes))


def superoperator(kraus: Sequence[ComplexArray]) -> ComplexArray:
    """Superoperator ``S = sum_k K_k (x) conj(K_k)`` on ``vec(rho)`` (row bits, then columns)."""
    return np.asarray(sum(np.kron(k, np.conj(k)) for k in kraus), dtype=np.complex128)


def apply_channel(
    rho_tensor: ComplexArray, kraus: Sequence[ComplexArray], qubit_axes: Sequence[int], n: int
) -> ComplexArray:
    """Apply a channel given by Kraus operators to a density-matrix tensor of ``n`` qubits.

    ``qubit_axes`` are the row axes (0..n-1) of the target qubits; the matching column axes
    are ``axis + n``. One tensor contraction with the superoperator.
    """
    axes = list(qubit_axes) + [a + n for a in qubit_axes]
    return apply_matrix(rho_tensor, superoperator(kraus), axes)


def apply_unitary_density(
    rho_tensor: ComplexArray, unitary: ComplexArray, qubit_axes: Sequence[int], n: int
) -> ComplexArray:
    """``U rho U^dagger`` on a density-matrix tensor of ``n`` qubits."""
    out = apply_matrix(rho_tensor, unitary, qubit_axes)
    return apply_matrix(out, np.conj(unitary), [a + n for a in qubit_axes])
