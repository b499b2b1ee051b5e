"""Gate matrices of the QPU contract's OpenQASM 2 subset (qelib1.inc).

``id x y z h s sdg t tdg sx sxdg rx ry rz p u1 u2 u3 u cx cy cz swap ccx``. Matrices use
the first listed qubit as the most significant bit (controls first), as in the
OpenQASM 2 specification (Cross et al., arXiv:1707.03429):

``u3(theta, phi, lam) = [[cos(theta/2), -e^{i lam} sin(theta/2)],
[e^{i phi} sin(theta/2), e^{i(phi+lam)} cos(theta/2)]]``, ``u2(phi, lam) = u3(pi/2, phi, lam)``,
``u1(lam) = p(lam) = diag(1, e^{i lam})``, ``u = u3``, ``rz(phi) = diag(e^{-i phi/2}, e^{i phi/2})``
(qelib1 defines ``rz`` as ``u1``, equal up to a global phase).
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Sequence

import numpy as np

from . import _validate as v
from ._types import ComplexArray
from .errors import ParameterError

__all__ = ["GATES", "gate_matrix"]

GATES: dict[str, tuple[int, int]] = {
    "id": (1, 0), "x": (1, 0), "y": (1, 0), "z": (1, 0), "h": (1, 0),
    "s": (1, 0), "sdg": (1, 0), "t": (1, 0), "tdg": (1, 0), "sx": (1, 0), "sxdg": (1, 0),
    "rx": (1, 1), "ry": (1, 1), "rz": (1, 1), "p": (1, 1), "u1": (1, 1), "u2": (1, 2),
    "u3": (1, 3), "u": (1, 3),
    "cx": (2, 0), "cy": (2, 0), "cz": (2, 0), "swap": (2, 0), "ccx": (3, 0),
}  # fmt: skip
"""Gate name -> (number of qubits, number of parameters)."""


def _u3(theta: float, phi: float, lam: float) -> ComplexArray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array(
        [[c, -cmath.exp(1j * lam) * s], [cmath.exp(1j * phi) * s, cmath.exp(1j * (phi + lam)) * c]],
        dtype=np.complex128,
    )


def _controlled(u: ComplexArray) -> ComplexArray:
    d = u.shape[0]
    out = np.eye(2 * d, dtype=np.complex128)
    out[d:, d:] = u
    return out


_FIXED: dict[str, ComplexArray] = {
    "id": np.eye(2, dtype=np.complex128),
    "x": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "y": np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    "z": np.diag([1, -1]).astype(np.complex128),
    "h": np.array([[1, 1], [1, -1]], dtype=np.complex128) / math.sqrt(2),
    "s": np.diag([1, 1j]).astype(np.complex128),
    "sdg": np.diag([1, -1j]).astype(np.complex128),
    "t": np.diag([1, cmath.exp(1j * math.pi / 4)]).astype(np.complex128),
    "tdg": np.diag([1, cmath.exp(-1j * math.pi / 4)]).astype(np.complex128),
    "sx": np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]], dtype=np.complex128) / 2,
    "sxdg": np.array([[1 - 1j, 1 + 1j], [1 + 1j, 1 - 1j]], dtype=np.complex128) / 2,
    "swap": np.eye(4, dtype=np.complex128)[[0, 2, 1, 3]],
}
_FIXED["cx"] = _controlled(_FIXED["x"])
_FIXED["cy"] = _controlled(_FIXED["y"])
_FIXED["cz"] = _controlled(_FIXED["z"])
_FIXED["ccx"] = _controlled(_FIXED["cx"])


def gate_matrix(name: str, params: Sequence[float] = ()) -> ComplexArray:
    """Unitary of a gate of the subset, given its parameters (radians)."""
    if name not in GATES:
        raise ParameterError(f"unknown gate {name!r}; supported: {' '.join(GATES)}")
    n_params = GATES[name][1]
    if len(params) != n_params:
        raise ParameterError(f"gate {name!r} takes {n_params} parameter(s), got {len(params)}")
    ps = [v.finite(f"{name} parameter", x) for x in params]
    if name in _FIXED:
        return np.array(_FIXED[name])
    if name in ("u3", "u"):
        return _u3(*ps)
    if name == "u2":
        return _u3(math.pi / 2, ps[0], ps[1])
    if name in ("u1", "p"):
        return np.diag([1, cmath.exp(1j * ps[0])]).astype(np.complex128)
    theta = ps[0]
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    if name == "rx":
        return np.array([[c, -1j * s], [-1j * s, c]], dtype=np.complex128)
    if name == "ry":
        return np.array([[c, -s], [s, c]], dtype=np.complex128)
    return np.diag([cmath.exp(-1j * theta / 2), cmath.exp(1j * theta / 2)]).astype(np.complex128)
