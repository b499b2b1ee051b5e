"""Swapping and distillation on Bell-diagonal states and density matrices; PLOB bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.physics import fiber, heralding, repeater, states
from emulators.physics.errors import PhysicsError


@pytest.mark.parametrize(("f1", "f2"), [(0.9, 0.9), (0.95, 0.7), (0.6, 0.5)])
def test_werner_swap_formula(f1: float, f2: float) -> None:
    closed = f1 * f2 + (1 - f1) * (1 - f2) / 3
    assert repeater.werner_swap_fidelity(f1, f2) == pytest.approx(closed)
    assert repeater.swap_bell_diagonal(states.werner(f1), states.werner(f2))[0] == pytest.approx(
        closed
    )
    res = repeater.swap_density(
        states.bell_diagonal_to_density(states.werner(f1)),
        states.bell_diagonal_to_density(states.werner(f2)),
    )
    assert states.bell_fidelity(res.state, 0) == pytest.approx(closed)


def test_swap_density_matches_bell_diagonal_and_outcomes_are_uniform(stat: object) -> None:
    rng = np.random.default_rng(101)
    p, q = rng.dirichlet([6, 1, 2, 1]), rng.dirichlet([5, 2, 1, 1])
    res = repeater.swap_density(
        states.bell_diagonal_to_density(p), states.bell_diagonal_to_density(q)
    )
    assert states.density_to_bell_diagonal(res.state) == pytest.approx(
        repeater.swap_bell_diagonal(p, q)
    )
    assert res.probabilities == pytest.approx([0.25] * 4)
    n = 100_000
    outcomes = rng.choice(4, size=n, p=res.probabilities)
    stat.binomial(int(np.sum(outcomes == 0)), n, 0.25)  # type: ignore[attr-defined]
    # a pure product input swaps to a pure Bell pair
    phi = states.ket_to_density(states.bell_ket(0))
    assert states.bell_fidelity(repeater.swap_density(phi, phi).state, 0) == pytest.approx(1.0)


@pytest.mark.parametrize(("f1", "f2"), [(0.8, 0.8), (0.7, 0.9), (0.55, 0.6)])
def test_bbpssw_closed_form_and_circuit(f1: float, f2: float, stat: object) -> None:
    p = f1 * f2 + f1 * (1 - f2) / 3 + (1 - f1) * f2 / 3 + 5 * (1 - f1) * (1 - f2) / 9
    f_out = (f1 * f2 + (1 - f1) * (1 - f2) / 9) / p
    succ, f = repeater.bbpssw_werner(f1, f2)
    assert (succ, f) == pytest.approx((p, f_out))
    # circuit on a non-Werner input: BBPSSW twirls first, so only the fidelity matters
    rng = np.random.default_rng(102)
    a = rng.dirichlet([1, 1, 1, 1]) * (1 - f1)
    rho1 = states.bell_diagonal_to_density([f1, *a[:3] / a[:3].sum() * (1 - f1)])
    rho2 = states.bell_diagonal_to_density(states.werner(f2))
    res = repeater.distill_density(rho1, rho2, "bbpssw")
    assert res.success_probability == pytest.approx(p)
    assert states.bell_fidelity(res.state, 0) == pytest.approx(f_out)
    # sampled target measurements: success when both sides see the same bit
    n = 100_000
    outcome = rng.choice(4, size=n, p=res.outcome_probabilities / res.outcome_probabilities.sum())
    stat.binomial(int(np.sum((outcome == 0) | (outcome == 3))), n, p)  # type: ignore[attr-defined]


def test_dejmps_matches_the_paper_map_and_the_circuit() -> None:
    rng = np.random.default_rng(103)
    for _ in range(5):
        x = rng.dirichlet([6, 1, 1, 1])
        y = rng.dirichlet([6, 2, 1, 1])
        # Deutsch et al. 1996 with identical pairs: A = Phi+, B = Psi-, C = Psi+, D = Phi-
        a, b, c, d = x[0], x[3], x[2], x[1]
        n = (a + b) ** 2 + (c + d) ** 2
        succ, out = repeater.dejmps(x)
        assert succ == pytest.approx(n)
        assert out == pytest.approx(
            [(a * a + b * b) / n, 2 * a * b / n, (c * c + d * d) / n, 2 * c * d / n]
        )
        succ, out = repeater.dejmps(x, y)
        res = repeater.distill_density(
            states.bell_diagonal_to_density(x), states.bell_diagonal_to_density(y)
        )
        assert res.success_probability == pytest.approx(succ)
        assert states.density_to_bell_diagonal(res.state) == pytest.approx(out)


def test_dejmps_and_bbpssw_improve_a_werner_pair() -> None:
    pair = states.werner(0.8)
    assert repeater.dejmps(pair)[1][0] > 0.8
    assert repeater.bbpssw(pair)[1][0] > 0.8
    assert repeater.bbpssw(states.werner(0.5))[1][0] == pytest.approx(0.5)  # no gain at F = 1/2


def _hashing_rate(o: heralding.HeraldOutcomes) -> float:
    """Distillable ebits per attempt guaranteed by hashing the twirled heralded pairs."""
    return float(np.dot(o.probabilities, repeater.hashing_bound(o.bell_diagonal)))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    length_km=st.floats(1.0, 300.0),
    alpha_a=st.floats(0.001, 0.999),
    alpha_b=st.floats(0.001, 0.999),
    eta_local=st.floats(0.05, 1.0),
    visibility=st.floats(0.5, 1.0),
    p_dark=st.sampled_from([0.0, 1e-6, 1e-3]),
)
def test_no_emulated_repeaterless_link_beats_plob(
    length_km: float,
    alpha_a: float,
    alpha_b: float,
    eta_local: float,
    visibility: float,
    p_dark: float,
) -> None:
    # Repeaterless: the heralding station sits at node B; only A's photon crosses the
    # channel, a fiber of transmissivity eta at 0.2 dB/km.
    eta = fiber.transmission(length_km * 1e3, 0.2)
    bound = float(repeater.plob_bound(eta))
    sc = heralding.single_click(
        alpha_a,
        eta_local * eta,
        eta_local,
        alpha_b=alpha_b,
        visibility=visibility,
        dark_count_probability=p_dark,
    )
    bk = heralding.barrett_kok(
        eta_local * eta, eta_local, visibility=visibility, dark_count_probability=p_dark
    )
    assert _hashing_rate(sc) <= bound
    assert _hashing_rate(bk) <= bound
    if p_dark == 0.0:  # even counting every BK herald as a full ebit (dark counts herald noise)
        assert bk.success_probability <= bound
    # A midpoint station is a relay: each arm obeys the bound for its own transmissivity
    # (Pirandola et al., Commun. Phys. 2, 51, 2019). The end-to-end PLOB bound can be
    # beaten this way, as twin-field QKD does; that is physics, not an emulator bug.
    arm = fiber.transmission(length_km * 1e3 / 2, 0.2)
    mid = heralding.single_click(
        alpha_a,
        eta_local * arm,
        eta_local * arm,
        alpha_b=alpha_b,
        visibility=visibility,
        dark_count_probability=p_dark,
    )
    assert _hashing_rate(mid) <= float(repeater.plob_bound(arm))


def test_sampled_direct_transmission_stays_below_plob(stat: object) -> None:
    # half of a Bell pair sent through 100 km: at most one ebit per surviving photon
    f = fiber.Fiber(100e3, 0.2)
    rng = np.random.default_rng(104)
    n = 1_000_000
    k = int(f.survivors(rng, n).sum())
    stat.binomial(k, n, f.transmission)  # type: ignore[attr-defined]
    assert k / n <= float(repeater.plob_bound(f.transmission))


def test_plob_values() -> None:
    assert float(repeater.plob_bound(0.5)) == pytest.approx(1.0)
    assert float(repeater.plob_bound(fiber.transmission(100e3, 0.2))) == pytest.approx(
        -np.log2(1 - 0.01)
    )
    assert repeater.hashing_bound([1.0, 0, 0, 0]) == pytest.approx(1.0)
    assert repeater.hashing_bound(states.werner(0.5)) == pytest.approx(0.0)


def test_bad_input() -> None:
    with pytest.raises(PhysicsError):
        repeater.plob_bound(1.2)
    with pytest.raises(PhysicsError):
        repeater.distill_density(np.eye(4) / 4, np.eye(4) / 4, "recurrence")
    with pytest.raises(PhysicsError):
        repeater.swap_density(np.eye(2) / 2, np.eye(4) / 4)
