"""QPU emulator: conformance over tcp, and physics against closed forms.

Tolerances are 5 standard deviations of the estimate for the sample size used.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from emulators.devices.env import EmulatorEnv, standalone_env
from emulators.devices.qpu import LiveRegister, QPUEmulator, circuit_duration, start_qpu
from qnhw.devices.qasm import parse
from qnhw.devices.qpu import QPU
from qnhw.errors import BadParams, DeviceFault
from qnhw.testing import conformance

HEAD = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
BELL = HEAD + "qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0], q[1];\nmeasure q -> c;\n"
IDEAL: dict[str, Any] = {"t1": math.inf, "t2": math.inf, "gate_error_1q": 0.0,
                         "gate_error_2q": 0.0, "readout_error": 0.0}


def virtual_env(name: str, seed: int) -> EmulatorEnv:
    """Virtual lab time: ``spend`` advances the clock at once (sequential tests only)."""
    now = [0.0]

    async def spend(seconds: float) -> None:
        now[0] += max(0.0, seconds)
        await asyncio.sleep(0)

    return EmulatorEnv(name, np.random.default_rng(seed), f"{name}.clock",
                       lambda: round(now[0] * 1e12), lambda: now[0], spend)


def within(k: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """``k`` successes of ``n`` agree with probability ``p`` within ``sigmas`` binomial sd."""
    sd = math.sqrt(n * p * (1 - p))
    return abs(k - n * p) <= sigmas * sd + 1e-9


# --- conformance --------------------------------------------------------------------------


@pytest.mark.parametrize("case", conformance.cases("QPU"), ids=str)
async def test_qpu_conforms(case: conformance.Case) -> None:
    server = await start_qpu(standalone_env("qpu", seed=3), "tcp://127.0.0.1:0")
    try:
        await case.run(server.address)
    finally:
        await server.stop()


async def test_qpu_without_live_register_conforms() -> None:
    """12 qubits exceed the live register: the feature is not offered and the kit adapts."""
    emu = QPUEmulator(standalone_env("big", seed=1), n_qubits=12, coupling_map=[[0, 1]])
    assert emu.features == []
    server = await emu.serve("tcp://127.0.0.1:0")
    try:
        for case in conformance.cases("QPU", checks=("describe", "capabilities",
                                                     "unknown_command", "exercise")):
            await case.run(server.address)
    finally:
        await server.stop()


# --- physics ------------------------------------------------------------------------------


async def test_bell_on_noiseless_qpu_over_the_wire() -> None:
    emu = QPUEmulator(standalone_env("qpu", seed=7), repetition_delay=0.0, **IDEAL)
    server = await emu.serve()
    try:
        async with QPU.connect(server.address) as qpu:
            res = await qpu.run(BELL, shots=4000, memory=True)
    finally:
        await server.stop()
    assert set(res.counts) <= {"00", "11"}
    assert sum(res.counts.values()) == 4000
    assert within(res.counts.get("11", 0), 4000, 0.5)
    assert res.memory is not None and res.memory.shape == (4000, 2)
    assert (res.memory[:, 0] == res.memory[:, 1]).all()
    assert res.bitstrings().count("11") == res.counts.get("11", 0)
    assert res.time.domain == "qpu.clock"


@pytest.mark.parametrize("method", ["density_matrix", "statevector"])
def test_readout_error_flips_with_binomial_rate(method: str) -> None:
    p01, p10, n = 0.07, 0.15, 20_000
    emu = QPUEmulator(virtual_env("q", 11), n_qubits=2, method=method, **{
        **IDEAL, "readout_p01": [p01, 0.0], "readout_p10": [0.0, p10]})
    prog = parse(HEAD + "qreg q[2];\ncreg c[2];\nx q[1];\nmeasure q -> c;\n")
    mem = emu.simulate(prog, n, np.random.default_rng(5))
    assert within(int(mem[:, 0].sum()), n, p01)  # qubit 0 prepared 0, reads 1 w.p. p01
    assert within(int((mem[:, 1] == 0).sum()), n, p10)  # qubit 1 prepared 1, reads 0 w.p. p10


def test_t1_decay_during_idle_gates() -> None:
    t1, tg, k, n = 2e-6, 100e-9, 9, 20_000
    emu = QPUEmulator(virtual_env("q", 1), n_qubits=1, t1=t1, t2=2 * t1, gate_error_1q=0.0,
                      readout_error=0.0, gate_time_1q=tg, readout_duration=0.0)
    prog = parse(HEAD + "qreg q[1];\ncreg c[1];\nx q[0];\n" + "id q[0];\n" * k
                 + "measure q[0] -> c[0];\n")
    mem = emu.simulate(prog, n, np.random.default_rng(2))
    assert within(int(mem.sum()), n, math.exp(-(k + 1) * tg / t1))


def test_ramsey_dephasing() -> None:
    t2, tg, k, n = 1e-6, 100e-9, 6, 20_000
    emu = QPUEmulator(virtual_env("q", 1), n_qubits=1, t1=math.inf, t2=t2, gate_error_1q=0.0,
                      readout_error=0.0, gate_time_1q=tg, readout_duration=0.0)
    prog = parse(HEAD + "qreg q[1];\ncreg c[1];\nh q[0];\n" + "id q[0];\n" * k
                 + "h q[0];\nmeasure q[0] -> c[0];\n")
    mem = emu.simulate(prog, n, np.random.default_rng(3))
    p0 = (1 + math.exp(-(k + 1) * tg / t2)) / 2
    assert within(int((mem == 0).sum()), n, p0)


def test_depolarizing_gate_error_per_qubit() -> None:
    n = 20_000
    emu = QPUEmulator(virtual_env("q", 1), n_qubits=2, **{**IDEAL,
                                                            "gate_error_1q": [0.2, 0.0]})
    mem = emu.simulate(parse(HEAD + "qreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;\n"),
                       n, np.random.default_rng(4))
    assert within(int((mem == 0).sum()), n, 0.2 / 2)  # (1-p) X|0> + p I/2 reads 0 w.p. p/2


def test_per_qubit_noise_is_reduced_by_rates() -> None:
    emu = QPUEmulator(virtual_env("q", 1), n_qubits=3, t1=[1e-4, 2e-4, 1e-6],
                      t2=[1e-4, 2e-4, 1e-6], gate_error_1q=[0.01, 0.03, 0.5],
                      gate_error_2q={(0, 1): 0.02}, default_gate_error_2q=0.1)
    prog = parse(HEAD + "qreg q[2];\nh q[0];\nh q[1];\nh q[1];\ncx q[0], q[1];\n")
    noise = emu.noise_for(prog)
    assert noise.t1_s == pytest.approx(1 / ((1e4 + 5e3) / 2))
    assert noise.p_1q == pytest.approx((0.01 + 0.03 + 0.03) / 3)
    assert noise.p_2q == pytest.approx(0.02)
    assert emu.pair_error(1, 2) == 0.1


async def test_large_state_vector_run_in_a_worker_thread() -> None:
    n = 20
    emu = QPUEmulator(virtual_env("q", 6), n_qubits=n, basis_gates=["h", "cx"], **IDEAL)
    ghz = HEAD + f"qreg q[{n}];\ncreg c[{n}];\nh q[0];\n" + "".join(
        f"cx q[{k}], q[{k + 1}];\n" for k in range(n - 1)) + "measure q -> c;\n"
    assert emu.live is None and emu._expensive(parse(ghz))
    res = await emu.run(ghz, shots=400)
    assert set(res["counts"]) <= {"0" * n, "1" * n}
    assert within(res["counts"].get("1" * n, 0), 400, 0.5)


def test_circuit_duration_is_the_critical_path() -> None:
    prog = parse(HEAD + "qreg q[3];\ncreg c[3];\nh q[0];\nx q[2];\nx q[2];\nx q[2];\n"
                 "cx q[0], q[1];\nbarrier q;\nmeasure q[1] -> c[1];\nreset q[0];\n")
    d = circuit_duration(prog.instructions, gate_time_1q=10.0, gate_time_2q=100.0,
                         readout_duration=1000.0, reset_time=7.0)
    # q0, q1: h (10) + cx (100) = 110; q2: 3 x = 30; barrier -> 110; then measure 1000
    assert d == pytest.approx(110 + 1000)


async def test_run_spends_the_duration_of_the_shots() -> None:
    env = virtual_env("q", 1)
    emu = QPUEmulator(env, n_qubits=2, gate_time_1q=40e-9, gate_time_2q=300e-9,
                      readout_duration=2e-6, repetition_delay=50e-6)
    before = env.lab_now()
    res = await emu.run(BELL, shots=100, memory=True)
    expected = 100 * (40e-9 + 300e-9 + 2e-6 + 50e-6)
    assert res["duration"] == pytest.approx(expected)
    assert env.lab_now() - before == pytest.approx(expected)
    assert res["time"].ps == round(env.lab_now() * 1e12)
    assert res["memory"].shape == (100, 2) and res["memory"].dtype == np.uint8


# --- live register and hooks --------------------------------------------------------------


async def test_live_register_keeps_a_bell_pair_between_calls() -> None:
    emu = QPUEmulator(standalone_env("qpu", seed=9), n_qubits=2, **IDEAL)
    server = await emu.serve()
    prepare = HEAD + "qreg q[2];\nh q[0];\ncx q[0], q[1];\n"
    ones = 0
    try:
        async with QPU.connect(server.address) as qpu:
            assert qpu.has_feature("live_register")
            for _ in range(40):
                await qpu.reset()
                await qpu.run(prepare, shots=1, initial_state="live")
                a, b = (await qpu.measure([0, 1]))["outcomes"]
                assert a == b
                ones += a
    finally:
        await server.stop()
    assert within(ones, 40, 0.5)


async def test_live_register_decoheres_with_lab_time() -> None:
    t1, wait, n = 1e-3, 0.7e-3, 1500
    env = virtual_env("q", 21)
    emu = QPUEmulator(env, n_qubits=1, t1=t1, t2=2 * t1, gate_error_1q=0.0, readout_error=0.0,
                      readout_duration=0.0, reset_time=0.0)
    ones = 0
    for _ in range(n):
        emu.deliver_state([0], np.diag([0.0, 1.0]))
        await env.spend(wait)  # the software thinks; the qubit relaxes
        ones += (await emu.measure([0]))["outcomes"][0]
    assert within(ones, n, math.exp(-wait / t1))


async def test_excite_for_transduction_hands_over_the_excitation() -> None:
    env = virtual_env("q", 2)
    emu = QPUEmulator(env, n_qubits=2, communication_qubits=[1], **IDEAL)
    theta = 1.1
    await emu.run(HEAD + f"qreg q[2];\nry({theta}) q[1];\n", shots=1, initial_state="live")
    ex = emu.excite_for_transduction(1)
    assert ex.p_photon == pytest.approx(math.sin(theta / 2) ** 2)
    assert abs(ex.rho[0, 1]) == pytest.approx(math.sin(theta) / 2)
    assert emu.reduced_state([1]) == pytest.approx(np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match="not a communication qubit"):
        emu.excite_for_transduction(0)


async def test_ground_run_resets_only_the_declared_qubits() -> None:
    emu = QPUEmulator(virtual_env("q", 3), n_qubits=3, **IDEAL)
    emu.deliver_state([2, 0], np.diag([0.0, 0.0, 0.0, 1.0]))  # |1>|1> on qubits 2 and 0
    await emu.run(HEAD + "qreg q[2];\ncreg c[2];\nx q[1];\nmeasure q -> c;\n", shots=10)
    assert emu.reduced_state([2]) == pytest.approx(np.diag([0.0, 1.0]))
    assert emu.reduced_state([0, 1]) == pytest.approx(np.diag([1.0, 0, 0, 0]))


class CountingRegister(LiveRegister):
    """A register the lab could inject; counts the calls the QPU makes through it."""

    calls = 0

    def apply_gate(self, name: str, qubits: Sequence[int], params: Sequence[float] = ()) -> None:
        self.calls += 1
        super().apply_gate(name, qubits, params)


async def test_an_injected_register_holds_the_live_qubits() -> None:
    env = virtual_env("q", 4)
    shared = CountingRegister(2, [math.inf] * 2, [math.inf] * 2, "exponential", 0.0)
    emu = QPUEmulator(env, n_qubits=2, live_register_qubits=0, register=shared, **IDEAL)
    assert emu.features == ["live_register"]
    await emu.run(HEAD + "qreg q[2];\nh q[0];\ncx q[0], q[1];\n", shots=1,
                  initial_state="live")
    assert shared.calls == 2
    bell = np.zeros((4, 4))
    bell[0, 0] = bell[0, 3] = bell[3, 0] = bell[3, 3] = 0.5
    assert shared.reduced_state([1, 0]) == pytest.approx(bell)  # the world sees the pair
    with pytest.raises(ValueError, match="register"):
        QPUEmulator(env, n_qubits=3, register=shared)


async def test_calibration_drifts_per_interval_and_runs_use_it() -> None:
    env = virtual_env("q", 8)
    emu = QPUEmulator(env, n_qubits=2, t1_fluctuation=0.3, calibration_interval=1.0)
    first = emu.calibration()
    await env.spend(1.5)
    second = emu.calibration()
    t1a = [q["t1"] for q in first["qubits"]]
    t1b = [q["t1"] for q in second["qubits"]]
    assert t1a != t1b
    assert second["time"].ps == 10**12  # the interval began at lab second 1
    nominal = [q["t1"] for q in emu.capabilities()["target"]["qubits"]]
    assert nominal == [150e-6, 150e-6]
    prog = parse(HEAD + "qreg q[2];\nx q[0];\nx q[1];\n")
    assert emu.noise_for(prog).t1_s == pytest.approx(2 / sum(1 / t for t in t1b))
    again = QPUEmulator(virtual_env("q", 8), n_qubits=2, t1_fluctuation=0.3,
                        calibration_interval=1.0)
    assert [q["t1"] for q in again.calibration()["qubits"]] == t1a  # seeded


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "name"), [
    ({"n_qubits": 0}, "n_qubits"),
    ({"t1": 1e-5, "t2": 3e-5}, "2 t1"),
    ({"t1": [1e-4, 1e-4]}, "t1"),
    ({"readout_error": 1.5}, "readout_error"),
    ({"coupling_map": [[0, 9]]}, "coupling_map"),
    ({"gate_error_2q": {(0, 0): 0.1}}, "gate_error_2q"),
    ({"basis_gates": ["h", "magic"]}, "basis_gates"),
    ({"method": "tensor"}, "method"),
    ({"communication_qubits": [7]}, "communication_qubits"),
    ({"gate_time_1q": -1.0}, "gate_time_1q"),
])
def test_bad_parameters_name_themselves(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        QPUEmulator(virtual_env("q", 0), **params)


async def test_handlers_refuse_invalid_requests() -> None:
    emu = QPUEmulator(virtual_env("q", 0), n_qubits=3, basis_gates=["h", "cx", "x"],
                      coupling_map=[[0, 1], [1, 2]], max_shots=50)
    with pytest.raises(BadParams, match="not native"):
        await emu.run(HEAD + "qreg q[1];\ny q[0];\n")
    with pytest.raises(BadParams, match="not coupled"):
        await emu.run(HEAD + "qreg q[3];\ncx q[0], q[2];\n")
    with pytest.raises(BadParams, match="maximum"):
        await emu.run(BELL, shots=51)
    with pytest.raises(BadParams, match="exactly one shot"):
        await emu.run(BELL, shots=2, initial_state="live")
    with pytest.raises(BadParams, match="does not exist"):
        await emu.measure([3])


async def test_injected_fault_reaches_the_client() -> None:
    emu = QPUEmulator(standalone_env("qpu", seed=1))
    server = await emu.serve()
    try:
        async with QPU.connect(server.address) as qpu:
            emu.set_fault("dilution refrigerator warming up")
            with pytest.raises(DeviceFault, match="warming"):
                await qpu.run(BELL, shots=10)
            emu.set_fault(None)
            assert sum((await qpu.run(BELL, shots=10)).counts.values()) == 10
    finally:
        await server.stop()
