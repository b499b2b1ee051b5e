"""QPU simulators: the OpenQASM 2 subset on the state vector (20 qubits) and the density
matrix (10 qubits), with T1/T2, gate and readout errors against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulators.physics import DensityMatrix, QPUNoise, StateVector, run_circuit
from emulators.physics.errors import PhysicsError
from emulators.physics.gates import GATES, gate_matrix

METHODS = ["statevector", "density_matrix"]


def _params(name: str) -> list[float]:
    return [0.3, -1.1, 2.0][: GATES[name][1]]


@pytest.mark.parametrize("name", sorted(GATES))
def test_every_gate_is_unitary(name: str) -> None:
    u = gate_matrix(name, _params(name))
    assert u.shape == (2 ** GATES[name][0],) * 2
    assert np.allclose(u.conj().T @ u, np.eye(u.shape[0]))


def _same_up_to_phase(a: np.ndarray, b: np.ndarray) -> bool:
    k = np.argmax(np.abs(b))
    phase = a.flat[k] / b.flat[k]
    return bool(abs(abs(phase) - 1) < 1e-12 and np.allclose(a, phase * b))


def test_gate_identities() -> None:
    g = gate_matrix
    assert np.allclose(g("sx") @ g("sx"), g("x"))
    assert np.allclose(g("sxdg"), g("sx").conj().T)
    assert np.allclose(g("s") @ g("s"), g("z"))
    assert np.allclose(g("t") @ g("t"), g("s"))
    assert np.allclose(g("h") @ g("x") @ g("h"), g("z"))
    assert np.allclose(g("u2", [0.4, 0.7]), g("u3", [math.pi / 2, 0.4, 0.7]))
    assert np.allclose(g("u", [0.1, 0.2, 0.3]), g("u3", [0.1, 0.2, 0.3]))
    assert np.allclose(g("p", [0.5]), g("u1", [0.5]))
    assert _same_up_to_phase(g("rz", [0.5]), g("u1", [0.5]))
    assert np.allclose(g("u3", [0.8, -math.pi / 2, math.pi / 2]), g("rx", [0.8]))
    assert np.allclose(g("u3", [0.8, 0.0, 0.0]), g("ry", [0.8]))
    assert np.allclose(g("cz"), np.kron(np.eye(2), g("h")) @ g("cx") @ np.kron(np.eye(2), g("h")))


def test_controls_come_first_and_qubit_zero_is_least_significant() -> None:
    sv = StateVector(3)
    sv.apply("x", [0])
    sv.apply("cx", [0, 2])  # control 0, target 2
    assert np.argmax(sv.probabilities()) == 0b101
    sv.apply("x", [1])
    sv.apply("ccx", [0, 2, 1])  # both controls set: flips qubit 1
    assert np.argmax(sv.probabilities()) == 0b101
    sv.apply("swap", [0, 1])
    assert np.argmax(sv.probabilities()) == 0b110
    r = run_circuit([("x", [0], []), ("measure", [0], [], [1])], 2, 10, np.random.default_rng(0))
    assert r.counts == {"10": 10}  # key is c[1] c[0]


@pytest.mark.parametrize("method", METHODS)
def test_bell_pair_statistics(method: str, stat: object) -> None:
    ins = [("h", [0], []), ("cx", [0, 1], []), ("measure", [0], [], [0]), ("measure", [1], [], [1])]
    n = 20_000
    r = run_circuit(ins, 2, n, np.random.default_rng(111), method=method)
    assert set(r.counts) == {"00", "11"}
    stat.binomial(r.counts["00"], n, 0.5)  # type: ignore[attr-defined]
    assert r.memory.shape == (n, 2)
    assert sum(r.counts.values()) == n
    assert r.bitstrings().count("11") == r.counts["11"]


def _ghz(n: int) -> list[tuple[str, list[int], list[float], list[int]]]:
    ins = [("h", [0], [], [])] + [("cx", [i, i + 1], [], []) for i in range(n - 1)]
    return ins + [("measure", [i], [], [i]) for i in range(n)]


def test_ghz_20_qubits_state_vector(stat: object) -> None:
    n, shots = 20, 2000
    r = run_circuit(_ghz(n), n, shots, np.random.default_rng(112))
    assert set(r.counts) <= {"0" * n, "1" * n}
    stat.binomial(r.counts.get("0" * n, 0), shots, 0.5)  # type: ignore[attr-defined]


def test_ghz_10_qubits_density_matrix_with_readout_error(stat: object) -> None:
    n, shots = 10, 20_000
    p01, p10 = 0.02, 0.05
    noise = QPUNoise(readout_p01=p01, readout_p10=p10)
    for method in METHODS:
        r = run_circuit(_ghz(n), n, shots, np.random.default_rng(113), method=method, noise=noise)
        p_zeros = 0.5 * (1 - p01) ** n + 0.5 * p10**n
        p_ones = 0.5 * (1 - p10) ** n + 0.5 * p01**n
        stat.binomial(r.counts.get("0" * n, 0), shots, p_zeros)  # type: ignore[attr-defined]
        stat.binomial(r.counts.get("1" * n, 0), shots, p_ones)  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", METHODS)
def test_t1_and_t2_during_idle_gates(method: str, stat: object) -> None:
    t1, t2, gate_time, k = 50e-6, 40e-6, 1e-6, 30
    noise = QPUNoise(t1_s=t1, t2_s=t2, gate_time_1q_s=gate_time)
    idle = [("id", [0], [])] * k
    n = 20_000
    rng = np.random.default_rng(114)
    # population: X, idle, measure: P(1) = exp(-t/T1) (the X itself also takes one gate time)
    t = (k + 1) * gate_time
    r = run_circuit(
        [("x", [0], []), *idle, ("measure", [0], [])], 1, n, rng, method=method, noise=noise
    )
    stat.binomial(r.counts.get("1", 0), n, math.exp(-t / t1))  # type: ignore[attr-defined]
    # Ramsey: H, idle, H: P(0) = (1 + exp(-t/T2)) / 2 with t from the first H to the second
    ins = [("h", [0], []), *idle, ("h", [0], []), ("measure", [0], [])]
    r = run_circuit(ins, 1, n, rng, method=method, noise=noise)
    t = (k + 1) * gate_time
    stat.binomial(r.counts.get("0", 0), n, (1 + math.exp(-t / t2)) / 2)  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", METHODS)
def test_depolarizing_gate_errors(method: str, stat: object) -> None:
    p1, p2, n = 0.1, 0.2, 20_000
    noise = QPUNoise(p_1q=p1, p_2q=p2)
    rng = np.random.default_rng(115)
    r = run_circuit([("x", [0], []), ("measure", [0], [])], 1, n, rng, method=method, noise=noise)
    stat.binomial(r.counts.get("0", 0), n, p1 / 2)  # type: ignore[attr-defined]
    ins = [("cx", [0, 1], []), ("measure", [0], []), ("measure", [1], [])]
    r = run_circuit(ins, 2, n, rng, method=method, noise=noise)
    stat.binomial(r.counts.get("00", 0), n, 1 - 3 * p2 / 4)  # type: ignore[attr-defined]


def test_state_vector_and_density_matrix_agree_on_a_noisy_circuit() -> None:
    noise = QPUNoise(
        t1_s=30e-6,
        t2_s=20e-6,
        gate_time_1q_s=1e-6,
        gate_time_2q_s=3e-6,
        measure_time_s=2e-6,
        p_1q=0.02,
        p_2q=0.05,
        readout_p01=0.03,
        readout_p10=0.06,
    )
    ins = [
        ("h", [0], []),
        ("cx", [0, 1], []),
        ("measure", [0], [], [0]),
        ("ry", [2], [0.7]),
        ("cx", [1, 2], []),
        ("reset", [0], []),
        ("h", [0], []),
        ("measure", [0], [], [1]),
        ("measure", [1], [], [2]),
        ("measure", [2], [], [3]),
    ]
    n = 20_000
    a = run_circuit(ins, 3, n, np.random.default_rng(116), n_clbits=4, noise=noise)
    b = run_circuit(
        ins, 3, n, np.random.default_rng(117), n_clbits=4, noise=noise, method="density_matrix"
    )
    for key in set(a.counts) | set(b.counts):
        pa, pb = a.counts.get(key, 0) / n, b.counts.get(key, 0) / n
        p = (pa + pb) / 2
        se = math.sqrt(max(p * (1 - p), 1 / n) * 2 / n)  # two independent samples
        assert abs(pa - pb) <= 5 * se, key


@pytest.mark.parametrize("method", METHODS)
def test_mid_circuit_measurement_and_reset(method: str, stat: object) -> None:
    ins = [
        ("h", [0], []),
        ("measure", [0], [], [0]),
        ("cx", [0, 1], []),
        ("reset", [0], []),
        ("measure", [0], [], [2]),
        ("measure", [1], [], [1]),
        ("barrier", [0, 1], []),
    ]
    n = 10_000
    r = run_circuit(ins, 2, n, np.random.default_rng(118), n_clbits=3, method=method)
    assert set(r.counts) <= {"000", "011"}
    stat.binomial(r.counts.get("011", 0), n, 0.5)  # type: ignore[attr-defined]
    assert np.array_equal(r.memory[:, 0], r.memory[:, 1])  # per-shot records stay correlated


@pytest.mark.parametrize("method", METHODS)
def test_last_measurement_into_a_clbit_wins(method: str) -> None:
    # q0 is measured last in time into c0 only if it is the last writer
    ins = [("x", [0], []), ("measure", [0], [], [0]), ("measure", [1], [], [0]), ("x", [1], [])]
    r = run_circuit(ins, 2, 50, np.random.default_rng(119), n_clbits=1, method=method)
    assert r.counts == {"0": 50}
    ins = [("measure", [1], [], [0]), ("x", [1], []), ("x", [0], []), ("measure", [0], [], [0])]
    r = run_circuit(ins, 2, 50, np.random.default_rng(119), n_clbits=1, method=method)
    assert r.counts == {"1": 50}


def test_density_matrix_register_and_channels() -> None:
    dm = DensityMatrix(2)
    dm.apply("h", [0])
    dm.apply("cx", [0, 1])
    m = dm.matrix()
    assert m[0, 3] == pytest.approx(0.5) and np.trace(m) == pytest.approx(1.0)
    dm.apply_channel([np.diag([1, 0]), np.diag([0, 1])], [0])  # full dephasing of qubit 0
    assert dm.matrix()[0, 3] == pytest.approx(0.0)
    assert dm.probabilities() == pytest.approx([0.5, 0, 0, 0.5])
    with pytest.raises(PhysicsError):
        dm.apply_channel([np.eye(2) * 2], [0])  # not trace preserving
    with pytest.raises(PhysicsError):
        dm.apply_channel([np.eye(2)], [5])


def test_same_seed_same_memory() -> None:
    noise = QPUNoise(p_1q=0.05, p_2q=0.05)
    a = run_circuit(_ghz(4), 4, 500, np.random.default_rng(3), noise=noise)
    b = run_circuit(_ghz(4), 4, 500, np.random.default_rng(3), noise=noise)
    assert np.array_equal(a.memory, b.memory)


@pytest.mark.parametrize(
    "call",
    [
        lambda: run_circuit([("foo", [0], [])], 1, 1, np.random.default_rng(0)),
        lambda: run_circuit([("cx", [0], [])], 2, 1, np.random.default_rng(0)),
        lambda: run_circuit([("cx", [0, 0], [])], 2, 1, np.random.default_rng(0)),
        lambda: run_circuit([("x", [3], [])], 2, 1, np.random.default_rng(0)),
        lambda: run_circuit([("rx", [0], [])], 1, 1, np.random.default_rng(0)),
        lambda: run_circuit([("rx", [0], [float("nan")])], 1, 1, np.random.default_rng(0)),
        lambda: run_circuit([("measure", [0], [], [5])], 1, 1, np.random.default_rng(0)),
        lambda: run_circuit([], 27, 1, np.random.default_rng(0)),
        lambda: run_circuit([], 14, 1, np.random.default_rng(0), method="density_matrix"),
        lambda: run_circuit([], 1, 0, np.random.default_rng(0)),
        lambda: run_circuit([], 1, 1, 42),
        lambda: run_circuit([], 1, 1, np.random.default_rng(0), method="mps"),
        lambda: QPUNoise(p_1q=1.5),
        lambda: QPUNoise(t1_s=1e-6, t2_s=5e-6),
    ],
)
def test_bad_input(call: object) -> None:
    with pytest.raises(PhysicsError):
        call()  # type: ignore[operator]
