"""States and channels: Bell-diagonal algebra against explicit density matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulators.physics import channels, states
from emulators.physics.errors import ParameterError, PhysicsError, ShapeError


def test_bell_basis_is_orthonormal_and_labelled() -> None:
    b = states.BELL_BASIS
    assert np.allclose(b.conj().T @ b, np.eye(4))
    phi_plus = np.array([1, 0, 0, 1]) / math.sqrt(2)
    psi_minus = np.array([0, 1, -1, 0]) / math.sqrt(2)
    assert np.allclose(states.bell_ket("phi+"), phi_plus)
    assert np.allclose(states.bell_ket(3), psi_minus)


@pytest.mark.parametrize("pauli", ["I", "Z", "X", "Y"])
def test_pauli_on_one_qubit_is_xor_of_bell_index(pauli: str) -> None:
    for k in range(4):
        rho = states.ket_to_density(states.bell_ket(k))
        for qubit in (0, 1):
            out = channels.apply_kraus(rho, [channels.PAULI[pauli]], [qubit])
            expected = k ^ states.PAULI_INDEX[pauli]
            assert states.bell_fidelity(out, expected) == pytest.approx(1.0)


def test_pauli_channel_on_bell_diagonal_matches_density_matrix() -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4))
    px, py, pz = 0.05, 0.1, 0.2
    fast = channels.pauli_on_bell_diagonal(p, px, py, pz)
    rho = states.bell_diagonal_to_density(p)
    slow = channels.apply_kraus(rho, channels.pauli_kraus(px, py, pz), [0])
    assert np.allclose(states.density_to_bell_diagonal(slow), fast)


def test_werner_and_conversions_round_trip() -> None:
    p = states.werner(0.8)
    assert p == pytest.approx([0.8, 0.2 / 3, 0.2 / 3, 0.2 / 3])
    rho = states.bell_diagonal_to_density(p)
    states.check_density_matrix(rho, 2)
    assert states.density_to_bell_diagonal(rho) == pytest.approx(p)
    assert states.fidelity(rho, states.ket_to_density(states.bell_ket(0))) == pytest.approx(0.8)


def test_partial_trace_and_log_negativity_of_bell_state() -> None:
    rho = states.ket_to_density(states.bell_ket("psi-"))
    assert np.allclose(states.partial_trace(rho, [1]), np.eye(2) / 2)
    assert states.log_negativity(rho) == pytest.approx(1.0)
    assert states.log_negativity(np.eye(4) / 4) == pytest.approx(0.0, abs=1e-12)


def test_amplitude_damping_and_dephasing_closed_forms() -> None:
    plus = states.ket_to_density(np.array([1, 1]) / math.sqrt(2))
    out = channels.apply_kraus(plus, channels.amplitude_damping_kraus(0.3), [0])
    assert out[1, 1].real == pytest.approx(0.5 * 0.7)
    assert abs(out[0, 1]) == pytest.approx(0.5 * math.sqrt(0.7))
    out = channels.apply_kraus(plus, channels.dephasing_kraus(0.1), [0])
    assert abs(out[0, 1]) == pytest.approx(0.5 * 0.8)
    out = channels.apply_kraus(plus, channels.depolarizing_kraus(0.4), [0])
    assert out == pytest.approx(0.6 * plus + 0.4 * np.eye(2) / 2)


@pytest.mark.parametrize("kind", ["exponential", "gaussian"])
def test_relaxation_kraus_gives_requested_populations_and_coherence(kind: str) -> None:
    t, t1, t2 = 0.4, 1.0, 0.7
    one = np.diag([0.0, 1.0]).astype(complex)
    plus = np.full((2, 2), 0.5, dtype=complex)
    k = channels.relaxation_kraus(t, t1, t2, kind)
    assert channels.apply_kraus(one, k, [0])[1, 1].real == pytest.approx(math.exp(-t / t1))
    expected = math.exp(-t / t2) if kind == "exponential" else math.exp(-t / 2 / t1 - (t / t2) ** 2)
    assert abs(channels.apply_kraus(plus, k, [0])[0, 1]) == pytest.approx(0.5 * expected)
    assert channels.coherence_factor(t, t1, t2, kind) == pytest.approx(expected)


def test_pauli_twirl_of_relaxation() -> None:
    t, t1, t2 = 0.3, 1.0, 0.5
    p_i, p_z, p_x, p_y = channels.pauli_twirl(channels.relaxation_kraus(t, t1, t2))
    assert p_x == pytest.approx((1 - math.exp(-t / t1)) / 4)
    assert p_y == pytest.approx(p_x)
    assert p_z == pytest.approx((1 - math.exp(-t / t2)) / 2 - p_x)
    assert p_i + p_z + p_x + p_y == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: states.bell_diagonal([0.5, 0.5, 0.5, -0.5]),
        lambda: states.bell_diagonal([0.2, 0.2, 0.2]),
        lambda: states.werner(1.2),
        lambda: states.check_density_matrix(np.eye(4)),
        lambda: states.check_density_matrix(np.ones((3, 3)) / 3),
        lambda: channels.amplitude_damping_kraus(-0.1),
        lambda: channels.pauli_kraus(0.5, 0.4, 0.3),
        lambda: channels.coherence_factor(1.0, 1.0, 3.0),
        lambda: channels.apply_kraus(np.eye(4) / 4, [np.eye(2) * 2], [0]),
        lambda: channels.apply_kraus(np.eye(4) / 4, [np.eye(2)], [2]),
        lambda: states.bell_ket("phi"),
    ],
)
def test_bad_input_raises_typed_error(call: object) -> None:
    with pytest.raises(PhysicsError):
        call()  # type: ignore[operator]
    assert issubclass(ParameterError, ValueError) and issubclass(ShapeError, ValueError)
