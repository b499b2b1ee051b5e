"""Heralded entanglement between two memories: single-click and Barrett-Kok.

Physical model
--------------
Memories A and B (qubit 0 = A, qubit 1 = B) each have a *bright* state ``|1>`` that emits
one photon into its fiber and a dark state ``|0>`` that emits none. The photons meet at a
50:50 beam splitter with outputs to threshold detectors D+ and D-. Per photon:
``eta_a``/``eta_b`` = total detection probability (collection x fiber x detector);
``visibility`` V = ``|<a|b>|^2``, the mode overlap of the two photons (their HOM
visibility); the optical phase difference is Gaussian with mean ``phase_mean`` and rms
``phase_sigma``; each detector has a dark-count probability ``p_d`` per detection window.

A herald ``s`` in {+1, -1} is "D_s clicks, D_-s does not". Because every Kraus operator of
this measurement is diagonal in the spin basis, its action on the two-spin density
matrix is an elementwise (Schur) product ``rho -> M_s * rho`` (unnormalized), with

* ``M[00,00] = p_d (1 - p_d)``                          (no photon: dark count only)
* ``M[10,10] = (1 - p_d) eta_a / 2 + (1 - eta_a) p_d (1 - p_d)``  (and A <-> B for 01)
* ``M[11,11] = (1 - p_d) [(eta_a (1 - eta_b) + eta_b (1 - eta_a)) / 2 + eta_a eta_b (1 + V) / 4]
  + (1 - eta_a)(1 - eta_b) p_d (1 - p_d)``              (two photons: HOM bunching)
* ``M[10,01] = s (1 - p_d) sqrt(eta_a eta_b V) exp(-sigma^2 / 2) exp(-i phase_mean) / 2``

and all other entries 0. The probability of the herald is ``Tr(M_s * rho)`` and the
memories are left in ``M_s * rho / Tr``: the state follows from the parameters.

* Single click (Cabrillo et al., PRA 59, 1025, 1999; Humphreys et al., Nature 558, 268,
  2018): both spins start in ``sqrt(1 - alpha)|0> + sqrt(alpha)|1>``, one round. For
  ``eta_a = eta_b = eta``, ``V = 1``, ``p_d = 0``:
  ``p = 2 alpha (1 - alpha) eta + alpha^2 (2 eta - eta^2)`` and the state is ``Psi+-``
  with fidelity ``F = (1 - alpha) / (1 - alpha eta / 2) ~ 1 - alpha``.
* Barrett-Kok (Barrett & Kok, PRA 71, 060310(R), 2005): spins in ``|+>``, one round, a
  pi pulse on both spins (X x X), a second round; success needs one click in each round,
  ``p = eta_a eta_b / 2``; equal detectors give ``Psi+``, different give ``Psi-``,
  with fidelity ``(1 + V)/2``. The optical phase is taken as stable over the two rounds,
  where it cancels.

After a herald the memories can be corrected to ``Psi+`` by a local Z (``s = -1``) and a
known phase ``phase_mean`` by a local Rz; :attr:`HeraldOutcomes.corrected` holds those states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _validate as v
from ._sampling import attempts_until_success, sample_categorical, success_indices
from ._tensor import apply_channel
from ._types import ComplexArray, FloatArray, IntArray
from .channels import relaxation_kraus
from .errors import ParameterError
from .fiber import sample_phase_drift
from .states import BELL_BASIS, density_to_bell_diagonal

__all__ = [
    "HeraldOutcomes",
    "HeraldedLink",
    "LinkSample",
    "barrett_kok",
    "barrett_kok_probability",
    "click_instrument",
    "drifted_phase_sigma",
    "single_click",
    "single_click_probability",
]

_X2 = np.kron(np.array([[0, 1], [1, 0]]), np.array([[0, 1], [1, 0]])).astype(np.complex128)
_Z_A = np.diag([1, 1, -1, -1]).astype(np.complex128)  # Z on memory A
_PSI_PLUS = BELL_BASIS[:, 2]


def single_click_probability(alpha: float, eta: float) -> float:
    """Closed form ``2 alpha (1 - alpha) eta + alpha^2 (2 eta - eta^2)`` (symmetric, ideal)."""
    a = v.probability("alpha", alpha)
    e = v.probability("eta", eta)
    return 2 * a * (1 - a) * e + a * a * (2 * e - e * e)


def barrett_kok_probability(eta_a: float, eta_b: float | None = None) -> float:
    """Closed form ``eta_a eta_b / 2`` (``eta^2 / 2`` when symmetric)."""
    ea = v.probability("eta_a", eta_a)
    eb = ea if eta_b is None else v.probability("eta_b", eta_b)
    return ea * eb / 2.0


def drifted_phase_sigma(
    phase_sigma: float, diffusion_rad2_per_s: float, time_since_stabilization_s: float
) -> float:
    """rms phase ``sqrt(sigma0^2 + 2 D tau)`` of an interferometer stabilized ``tau`` ago.

    ``sigma0``: residual rms error right after stabilization; ``D``: phase diffusion of the
    optical phase *difference* of the two arms (the sum of the arms' diffusions, rad^2/s);
    the difference is a Wiener process (:func:`emulators.physics.fiber.sample_phase_drift`),
    so its variance grows by ``2 D tau``. Averaged over that Gaussian phase, the single-click
    coherence is multiplied by ``exp(-sigma^2 / 2)``.
    """
    s0 = v.nonnegative("phase_sigma", phase_sigma)
    d = v.nonnegative("diffusion_rad2_per_s", diffusion_rad2_per_s)
    tau = v.nonnegative("time_since_stabilization_s", time_since_stabilization_s)
    if d == 0.0 or tau == 0.0:
        return s0
    return math.sqrt(s0 * s0 + 2.0 * d * tau)


def click_instrument(
    sign: int,
    eta_a: float,
    eta_b: float,
    visibility: float = 1.0,
    dark_count_probability: float = 0.0,
    phase_mean: float = 0.0,
    phase_sigma: float = 0.0,
) -> ComplexArray:
    """Schur multiplier ``M_s`` (4x4) of the herald "detector ``s`` clicks alone" (module doc)."""
    if sign not in (1, -1):
        raise ParameterError(f"sign must be +1 or -1, got {sign!r}")
    ea = v.probability("eta_a", eta_a)
    eb = v.probability("eta_b", eta_b)
    vis = v.probability("visibility", visibility)
    pd = v.probability("dark_count_probability", dark_count_probability)
    sigma = v.nonnegative("phase_sigma", phase_sigma)
    phi = v.finite("phase_mean", phase_mean)
    dark_only = pd * (1.0 - pd)
    m = np.zeros((4, 4), dtype=np.complex128)
    m[0, 0] = dark_only
    m[2, 2] = (1 - pd) * ea / 2 + (1 - ea) * dark_only  # |10>: A bright
    m[1, 1] = (1 - pd) * eb / 2 + (1 - eb) * dark_only  # |01>: B bright
    m[3, 3] = (1 - pd) * ((ea * (1 - eb) + eb * (1 - ea)) / 2 + ea * eb * (1 + vis) / 4)
    m[3, 3] += (1 - ea) * (1 - eb) * dark_only
    coh = sign * (1 - pd) * math.sqrt(ea * eb * vis) * math.exp(-(sigma**2) / 2) / 2
    m[2, 1] = coh * np.exp(-1j * phi)
    m[1, 2] = np.conj(m[2, 1])
    return m


def _spin_state(alpha_a: float, alpha_b: float) -> ComplexArray:
    ka = np.array([math.sqrt(1 - alpha_a), math.sqrt(alpha_a)], dtype=np.complex128)
    kb = np.array([math.sqrt(1 - alpha_b), math.sqrt(alpha_b)], dtype=np.complex128)
    k = np.kron(ka, kb)
    return np.asarray(np.outer(k, k.conj()))


def _rz_a(phi: float) -> ComplexArray:
    """Diagonal unitary adding phase ``phi`` to ``|1>`` of memory A."""
    return np.diag(np.exp(1j * phi * np.array([0, 0, 1, 1]))).astype(np.complex128)


@dataclass(frozen=True)
class HeraldOutcomes:
    """Heralding outcomes of one attempt: labels, probabilities, conditional states.

    ``states[k]`` is the normalized two-memory state after outcome ``k``; ``corrected[k]``
    is the same state after the local correction towards ``Psi+``.
    """

    labels: tuple[str, ...]
    probabilities: FloatArray
    states: ComplexArray
    corrected: ComplexArray

    @property
    def success_probability(self) -> float:
        """Probability that an attempt heralds (any outcome)."""
        return float(self.probabilities.sum())

    @property
    def fidelity(self) -> float:
        """Average fidelity of the corrected state with ``Psi+``, over heralded outcomes."""
        if self.success_probability <= 0.0:
            raise ParameterError("no herald is possible, so there is no heralded state")
        f = np.einsum("i,kij,j->k", _PSI_PLUS.conj(), self.corrected, _PSI_PLUS).real
        return float(np.dot(self.probabilities, f) / self.success_probability)

    @property
    def bell_diagonal(self) -> FloatArray:
        """Bell-diagonal coefficients ``(k, 4)`` of the corrected states (twirled)."""
        return density_to_bell_diagonal(self.corrected)


def _outcomes(
    labels: tuple[str, ...], unnormalized: list[ComplexArray], corrections: list[ComplexArray]
) -> HeraldOutcomes:
    probs = np.array([np.trace(r).real for r in unnormalized])
    states = np.stack(
        [r / p if p > 0 else np.eye(4) / 4 for r, p in zip(unnormalized, probs, strict=True)]
    )
    corrected = np.stack([u @ s @ u.conj().T for u, s in zip(corrections, states, strict=True)])
    return HeraldOutcomes(
        labels, probs, states.astype(np.complex128), corrected.astype(np.complex128)
    )


def single_click(
    alpha: float,
    eta_a: float,
    eta_b: float | None = None,
    *,
    alpha_b: float | None = None,
    visibility: float = 1.0,
    phase_mean: float = 0.0,
    phase_sigma: float = 0.0,
    dark_count_probability: float = 0.0,
) -> HeraldOutcomes:
    """Single-click heralding: outcomes ``("+", "-")`` and the resulting memory states."""
    aa = v.probability("alpha", alpha)
    ab = aa if alpha_b is None else v.probability("alpha_b", alpha_b)
    eb = eta_a if eta_b is None else eta_b
    rho0 = _spin_state(aa, ab)
    raw, corr = [], []
    for s in (1, -1):
        m = click_instrument(
            s, eta_a, eb, visibility, dark_count_probability, phase_mean, phase_sigma
        )
        raw.append(m * rho0)
        u = _rz_a(phase_mean)
        corr.append(u @ _Z_A if s == -1 else u)
    return _outcomes(("+", "-"), raw, corr)


def barrett_kok(
    eta_a: float,
    eta_b: float | None = None,
    *,
    visibility: float = 1.0,
    dark_count_probability: float = 0.0,
) -> HeraldOutcomes:
    """Barrett-Kok double-click heralding: outcomes ``("++", "+-", "-+", "--")``."""
    eb = eta_a if eta_b is None else eta_b
    rho0 = np.full((4, 4), 0.25, dtype=np.complex128)  # |+>|+>
    ms = {s: click_instrument(s, eta_a, eb, visibility, dark_count_probability) for s in (1, -1)}
    raw, corr, labels = [], [], []
    for s1 in (1, -1):
        r1 = _X2 @ (ms[s1] * rho0) @ _X2
        for s2 in (1, -1):
            raw.append(ms[s2] * r1)
            corr.append(np.eye(4, dtype=np.complex128) if s1 == s2 else _Z_A)
            labels.append(("+" if s1 == 1 else "-") + ("+" if s2 == 1 else "-"))
    return _outcomes(tuple(labels), raw, corr)


@dataclass(frozen=True)
class LinkSample:
    """Heralded pairs delivered by :meth:`HeraldedLink.sample`.

    ``attempt_indices``: 0-based attempt of each herald; ``times_s``: herald time at the
    memories (attempt time + herald delay); ``outcomes``: index into the link's outcome
    labels; ``bell_diagonal``: ``(n, 4)`` Bell-diagonal coefficients of each corrected pair
    (``[Phi+, Phi-, Psi+, Psi-]``, target ``Psi+``); ``phases``: optical phase of each pair
    (rad; zero unless the link has phase drift).
    """

    attempt_indices: IntArray
    times_s: FloatArray
    outcomes: IntArray
    bell_diagonal: FloatArray
    phases: FloatArray

    def __len__(self) -> int:
        return int(self.attempt_indices.size)


class HeraldedLink:
    """A heralded link attempting at a fixed rate; pairs are sampled, never looped.

    ``outcomes``: from :func:`single_click` or :func:`barrett_kok`. ``herald_delay_s``: time
    from an attempt until the memories learn the herald (photon flight + classical return);
    the memories decohere meanwhile with ``memory_t1_s``/``memory_t2_s``. A nonzero
    ``phase_drift_rad2_per_s`` makes the optical phase a Wiener process across attempts,
    so each pair carries its own (uncorrected) phase.
    """

    def __init__(
        self,
        outcomes: HeraldOutcomes,
        attempt_rate_hz: float,
        *,
        herald_delay_s: float = 0.0,
        memory_t1_s: float = math.inf,
        memory_t2_s: float = math.inf,
        memory_dephasing: str = "exponential",
        phase_drift_rad2_per_s: float = 0.0,
    ) -> None:
        self.outcomes = outcomes
        self.attempt_rate_hz = v.positive("attempt_rate_hz", attempt_rate_hz)
        self.herald_delay_s = v.nonnegative("herald_delay_s", herald_delay_s)
        self.phase_drift_rad2_per_s = v.nonnegative(
            "phase_drift_rad2_per_s", phase_drift_rad2_per_s
        )
        kraus = relaxation_kraus(self.herald_delay_s, memory_t1_s, memory_t2_s, memory_dephasing)
        states = []
        for rho in outcomes.corrected:
            t = apply_channel(rho.reshape(2, 2, 2, 2), kraus, [0], 2)
            states.append(apply_channel(t, kraus, [1], 2).reshape(4, 4))
        self.delivered_states: ComplexArray = np.stack(states)
        """Corrected two-memory state of each outcome after the herald delay, ``(k, 4, 4)``."""
        if outcomes.success_probability <= 0.0:
            raise ParameterError("these heralding parameters never herald (success probability 0)")
        self._probs = outcomes.probabilities / outcomes.success_probability
        self._bd = density_to_bell_diagonal(self.delivered_states)

    @property
    def success_probability(self) -> float:
        """Heralding probability per attempt."""
        return self.outcomes.success_probability

    @property
    def rate_hz(self) -> float:
        """Analytic mean rate of heralded pairs, ``p * attempt_rate``."""
        return self.success_probability * self.attempt_rate_hz

    def attempts_until_success(self, rng: np.random.Generator, size: int | None = None) -> IntArray:
        """Attempts up to and including the first herald (geometric)."""
        return attempts_until_success(rng, self.success_probability, size)

    def sample(
        self, rng: np.random.Generator, n_attempts: int, first_attempt: int = 0
    ) -> LinkSample:
        """Every heralded pair among ``n_attempts`` consecutive attempts (cost ~ pairs)."""
        rng = v.generator(rng)
        idx = success_indices(rng, n_attempts, self.success_probability) + v.count(
            "first_attempt", first_attempt
        )
        k = sample_categorical(rng, self._probs, idx.size)
        times = idx / self.attempt_rate_hz + self.herald_delay_s
        if self.phase_drift_rad2_per_s > 0.0 and idx.size:
            phases = sample_phase_drift(rng, times, self.phase_drift_rad2_per_s)
            rho = self.delivered_states[k]
            u = np.exp(1j * phases[:, None] * np.array([0, 0, 1, 1]))
            rho = u[:, :, None] * rho * u.conj()[:, None, :]
            bd = density_to_bell_diagonal(rho)
        else:
            phases = np.zeros(idx.size)
            bd = self._bd[k]
        return LinkSample(idx, times, k, bd, phases)
