"""Linear optics: beam splitter, two-photon (Hong-Ou-Mandel) interference, linear-optics BSM.

* Beam splitter of reflectivity ``R`` (transmissivity ``T = 1 - R``), real convention
  ``a -> r c + t d``, ``b -> t c - r d``.
* Two single photons of mode overlap ``M = |<a|b>|^2`` (the HOM visibility for ``R = 1/2``):
  ``P(coincidence) = R^2 + T^2 - 2 R T M``; ``P(both in c) = P(both in d) = R T (1 + M)``.
  At ``R = 1/2``: ``P(coincidence) = (1 - V)/2``.
* Lorentzian (exponentially decaying) photons with decay rates ``G_a, G_b`` (1/lifetime),
  angular detuning ``Delta`` and arrival delay ``dt``:
  ``M = G_a G_b exp(-G_early |dt|) / (((G_a + G_b)/2)^2 + Delta^2)``, where ``G_early`` is
  the decay rate of the photon that arrives first. Equal rates:
  ``M = exp(-|dt|/tau) / (1 + (Delta tau)^2)`` (Legero et al., Appl. Phys. B 77, 797, 2003).
* Linear-optics polarization BSM (beam splitter, then a polarizing beam splitter and two
  threshold detectors in each output): identifies only ``Psi+`` (two clicks in one output)
  and ``Psi-`` (one click in each output), so its success probability on a uniformly
  random Bell state is at most 1/2 (Luetkenhaus, Calsamiglia & Suominen, PRA 59, 3295, 1999).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._types import FloatArray, IntArray
from .errors import ParameterError

__all__ = [
    "BSM_FAILED",
    "beam_splitter_unitary",
    "hom_probabilities",
    "lorentzian_overlap",
    "sample_hom",
    "sample_linear_optics_bsm",
]

BSM_FAILED = -1
"""Outcome code of :func:`sample_linear_optics_bsm` for an unsuccessful measurement."""


def beam_splitter_unitary(reflectivity: float = 0.5) -> FloatArray:
    """Mode transformation ``[[r, t], [t, -r]]`` (rows: outputs c, d; columns: inputs a, b)."""
    r_pow = v.probability("reflectivity", reflectivity)
    r, t = math.sqrt(r_pow), math.sqrt(1.0 - r_pow)
    return np.array([[r, t], [t, -r]])


def hom_probabilities(overlap: float, reflectivity: float = 0.5) -> tuple[float, float, float]:
    """``(P(coincidence), P(both in c), P(both in d))`` for one photon in each input.

    ``overlap`` is ``M = |<a|b>|^2`` (1 = indistinguishable, 0 = distinguishable).
    """
    m = v.probability("overlap", overlap)
    r = v.probability("reflectivity", reflectivity)
    t = 1.0 - r
    bunch = r * t * (1.0 + m)
    return (r * r + t * t - 2.0 * r * t * m, bunch, bunch)


def lorentzian_overlap(
    lifetime_a_s: float,
    lifetime_b_s: float | None = None,
    detuning_hz: float = 0.0,
    delay_s: float = 0.0,
) -> float:
    """Mode overlap ``|<a|b>|^2`` (= HOM visibility) of two exponentially decaying photons.

    Lifetimes in seconds, detuning in Hz (cyclic; ``Delta = 2 pi detuning_hz``), ``delay_s`` =
    arrival time of b minus a.
    """
    ta = v.positive("lifetime_a_s", lifetime_a_s)
    tb = ta if lifetime_b_s is None else v.positive("lifetime_b_s", lifetime_b_s)
    ga, gb = 1.0 / ta, 1.0 / tb
    delta = 2.0 * math.pi * v.finite("detuning_hz", detuning_hz)
    dt = v.finite("delay_s", delay_s)
    g_early = ga if dt >= 0 else gb
    return ga * gb * math.exp(-g_early * abs(dt)) / (((ga + gb) / 2.0) ** 2 + delta**2)


def sample_hom(
    rng: np.random.Generator, n_pairs: int, overlap: float, reflectivity: float = 0.5
) -> IntArray:
    """Photon numbers ``(n_pairs, 2)`` in outputs (c, d) for photon pairs at a beam splitter.

    Each pair is, with probability ``M``, in the symmetric two-photon mode (bosonic
    interference, amplitudes from the permanents of the beam-splitter matrix) and
    otherwise in distinguishable modes (each photon routed independently).
    """
    rng = v.generator(rng)
    n = v.count("n_pairs", n_pairs)
    m = v.probability("overlap", overlap)
    u = beam_splitter_unitary(reflectivity)
    # indistinguishable: |1,1> -> amplitudes of |2,0>, |1,1>, |0,2> from permanents
    p_ind = np.array(
        [
            2 * (u[0, 0] * u[0, 1]) ** 2,
            (u[0, 0] * u[1, 1] + u[0, 1] * u[1, 0]) ** 2,
            2 * (u[1, 0] * u[1, 1]) ** 2,
        ]
    )
    same = rng.random(n) < m
    out = np.empty((n, 2), dtype=np.int64)
    k = rng.choice(3, size=n, p=p_ind / p_ind.sum())
    out[:, 0] = np.array([2, 1, 0])[k]
    # distinguishable: photon a to c with prob |u[0,0]|^2, photon b to c with |u[0,1]|^2
    a_c = rng.random(n) < u[0, 0] ** 2
    b_c = rng.random(n) < u[0, 1] ** 2
    out[:, 0] = np.where(same, out[:, 0], a_c.astype(np.int64) + b_c.astype(np.int64))
    out[:, 1] = 2 - out[:, 0]
    return out


def sample_linear_optics_bsm(
    rng: np.random.Generator,
    bell_indices: ArrayLike,
    overlap: float = 1.0,
    efficiency: float = 1.0,
) -> IntArray:
    """Outcomes of a linear-optics polarization BSM on photon pairs in given Bell states.

    ``bell_indices``: input Bell state of each pair (0..3 = Phi+, Phi-, Psi+, Psi-).
    ``overlap``: mode overlap ``M`` of the two photons apart from polarization.
    ``efficiency``: detection probability of each photon (threshold detectors).
    Returns the identified Bell index (2 = Psi+, 3 = Psi-) or :data:`BSM_FAILED`.

    The spatial-temporal part of the pair is symmetric with probability ``(1+M)/2`` and
    antisymmetric otherwise; bosonic symmetry then fixes whether the photons leave in the
    same output (bunch) or in different outputs.
    """
    rng = v.generator(rng)
    b = np.asarray(bell_indices, dtype=np.int64).reshape(-1)
    if b.size and (b.min() < 0 or b.max() > 3):
        raise ParameterError("bell_indices must be in 0..3")
    m = v.probability("overlap", overlap)
    eta = v.probability("efficiency", efficiency)
    n = b.size
    pol_antisym = b == 3  # only Psi- is antisymmetric in polarization
    mode_sym = rng.random(n) < (1.0 + m) / 2.0
    split = pol_antisym == mode_sym  # total symmetry: path antisymmetric <=> outputs differ
    orthogonal_pol = b >= 2  # Psi states carry one H and one V photon
    detected = rng.random((n, 2)) < eta
    both = detected.all(axis=1)
    out = np.full(n, BSM_FAILED, dtype=np.int64)
    ok = both & orthogonal_pol
    out[ok & split] = 3
    out[ok & ~split] = 2
    return out
