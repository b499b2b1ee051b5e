"""Quantum memories: T1/T2 decay while stored, gate and readout errors, ensemble efficiency.

* Stored qubit: amplitude damping ``1 - exp(-t/T1)`` and coherence
  :func:`~emulators.physics.channels.coherence_factor` ``c(t)`` (exponential ``exp(-t/T2)``
  or Gaussian ``exp(-t/2T1 - (t/T2*)^2)``).
* A Bell pair with one qubit stored for ``t``: ``F = (1 + exp(-t/T1) + 2 c(t)) / 4``,
  i.e. ``(1 + exp(-t/T1) + 2 exp(-t/T2)) / 4`` for exponential dephasing.
* Bell-diagonal fast path: the decay is replaced by its Pauli twirl
  ``p_x = p_y = (1 - exp(-t/T1))/4``, ``p_z = (1 - c)/2 - p_x``, which keeps the fidelity
  exact (the twirl preserves the Bell-state overlap) but drops the non-Pauli part.
* Gate error: depolarizing with probability ``p`` after the gate.
* Readout: asymmetric flips, ``P(read 1 | 0) = e0``, ``P(read 0 | 1) = e1``
  (readout fidelities ``F0 = 1 - e0``, ``F1 = 1 - e1``).
* Ensemble memories (atomic ensembles, rare-earth AFC): retrieval efficiency
  ``eta(t) = eta0 exp(-(t/tau)^2)`` (Gaussian: motional/inhomogeneous dephasing of the spin
  wave) or ``eta0 exp(-t/tau)`` (exponential).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._types import BoolArray, ComplexArray, FloatArray, UInt8Array
from .channels import apply_kraus, coherence_factor, coherence_factors, relaxation_kraus
from .errors import ParameterError
from .states import bell_diagonal, xor_convolve

__all__ = [
    "MemoryModel",
    "decay",
    "decay_bell_diagonal",
    "ensemble_efficiency",
    "sample_readout",
    "sample_retrieval",
    "stored_bell_fidelity",
]


def stored_bell_fidelity(t: float, t1: float, t2: float, dephasing: str = "exponential") -> float:
    """Fidelity of a Bell pair after one qubit is stored for ``t`` seconds."""
    c = coherence_factor(t, t1, t2, dephasing)
    p1 = math.exp(-t / t1) if math.isfinite(t1) else 1.0
    return (1.0 + p1 + 2.0 * c) / 4.0


def decay(
    rho: ArrayLike,
    t: float,
    t1: float,
    t2: float,
    qubits: tuple[int, ...] | list[int] = (0,),
    dephasing: str = "exponential",
) -> ComplexArray:
    """Density matrix after the listed qubits (tensor-factor positions) are stored for ``t``."""
    kraus = relaxation_kraus(t, t1, t2, dephasing)
    out = np.asarray(rho, dtype=np.complex128)
    for q in qubits:
        out = apply_kraus(out, kraus, [q])
    return out


def decay_bell_diagonal(
    coefficients: ArrayLike,
    t: float | ArrayLike,
    t1: float,
    t2: float,
    dephasing: str = "exponential",
) -> FloatArray:
    """Bell-diagonal pair(s) after one qubit is stored for ``t`` (Pauli-twirled decay).

    ``t`` may be an array broadcast against the leading axes of ``coefficients``; call twice
    for two stored qubits.
    """
    p = bell_diagonal(coefficients)
    ts = v.float_array("t", t)
    c = coherence_factors(ts, t1, t2, dephasing)
    p1 = np.exp(-ts / t1)  # t1 = inf gives 1
    px = (1.0 - p1) / 4.0
    pz = (1.0 - c) / 2.0 - px
    q = np.stack([1.0 - 2.0 * px - pz, pz, px, px], axis=-1)
    return xor_convolve(p, q)


def sample_readout(
    rng: np.random.Generator, true_bits: ArrayLike, e0: float, e1: float
) -> UInt8Array:
    """Readout of qubits whose projective outcomes are ``true_bits`` (0/1), with flips
    ``P(1|0) = e0`` and ``P(0|1) = e1``."""
    rng = v.generator(rng)
    b = np.asarray(true_bits)
    if b.size and not np.all((b == 0) | (b == 1)):
        raise ParameterError("true_bits must contain only 0 and 1")
    e0 = v.probability("e0", e0)
    e1 = v.probability("e1", e1)
    flip = rng.random(b.shape) < np.where(b == 1, e1, e0)
    return np.asarray(np.where(flip, 1 - b, b).astype(np.uint8))


def ensemble_efficiency(
    t: float | ArrayLike, eta0: float, lifetime_s: float, shape: str = "gaussian"
) -> FloatArray:
    """Retrieval efficiency after storage time ``t`` (s) of an ensemble memory."""
    ts = v.float_array("t", t)
    if ts.size and ts.min() < 0:
        raise ParameterError("storage times must be >= 0")
    e = v.probability("eta0", eta0)
    tau = v.positive("lifetime_s", lifetime_s, allow_inf=True)
    kind = v.choice("shape", shape, ("gaussian", "exponential"))
    x = ts / tau
    return np.asarray(e * (np.exp(-(x**2)) if kind == "gaussian" else np.exp(-x)))


def sample_retrieval(
    rng: np.random.Generator,
    storage_times_s: ArrayLike,
    eta0: float,
    lifetime_s: float,
    shape: str = "gaussian",
) -> BoolArray:
    """Whether each stored excitation is retrieved, one Bernoulli draw per storage time."""
    rng = v.generator(rng)
    eff = ensemble_efficiency(storage_times_s, eta0, lifetime_s, shape)
    return np.asarray(rng.random(eff.shape) < eff)


@dataclass(frozen=True)
class MemoryModel:
    """Parameters of a memory qubit (times in seconds; errors are probabilities)."""

    t1_s: float = math.inf
    t2_s: float = math.inf
    dephasing: str = "exponential"
    gate_error: float = 0.0
    readout_error_0: float = 0.0
    readout_error_1: float = 0.0

    def __post_init__(self) -> None:
        coherence_factor(0.0, self.t1_s, self.t2_s, self.dephasing)
        v.probability("gate_error", self.gate_error)
        v.probability("readout_error_0", self.readout_error_0)
        v.probability("readout_error_1", self.readout_error_1)

    def coherence(self, t: float) -> float:
        """Coherence factor after storing for ``t`` seconds."""
        return coherence_factor(t, self.t1_s, self.t2_s, self.dephasing)

    def stored_bell_fidelity(self, t: float) -> float:
        """Fidelity of a Bell pair whose half in this memory was stored for ``t``."""
        return stored_bell_fidelity(t, self.t1_s, self.t2_s, self.dephasing)
