"""Heralded entanglement between two NV nodes, single click, through drivers only.

The experiment (:func:`run_experiment`) talks to three devices through their typed drivers and
nothing else -- the same code runs against the emulated lab, a lab started elsewhere with
``qnhw emulate``, or real hardware:

1. configure the midpoint station for single-click heralding and lock its interferometer phase;
2. repeat: both memories run a batch of entanglement attempts together (``entangle``); after a
   herald, both measure their communication qubit in the same basis (X, Y, Z in turn);
3. estimate the heralding rate (heralds per attempt over the attempt period) and the fidelity
   of the delivered state with Psi+ from the correlations ``F = (1 + <XX> + <YY> - <ZZ>)/4``
   (Psi- heralds corrected by a Z on one side; readout errors from the memories' capabilities
   undone by inverting the readout matrix);
4. print both beside the analytic values of the physics core for the link's parameters
   (heralding probability ``p`` and the delivered state after the herald delay,
   :class:`emulators.physics.HeraldedLink`), with their standard errors.

Agreement criterion: each estimate within 3 standard errors of the analytic value (the
errors are computed from the sample: binomial for the rate, multinomial per basis for the
fidelity). The lab is seeded, so a run is reproducible in virtual time.

Run: ``python examples/heralded_entanglement.py`` (starts ``examples/labs/nv_link.toml``
in-process), ``--pairs 1500`` for tighter errors, ``--time wall`` for real-time pacing, or
``--connect alice.memory=tcp://...,bob.memory=tcp://...,mid.bsm=tcp://... [--admin tcp://...]``
for a lab that runs elsewhere (the admin endpoint provides the analytic comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qnhw.devices import HeraldingStation, QuantumMemory
from qnhw.runtime import Client

HERE = Path(__file__).resolve().parent
DEFAULT_LAB = HERE / "labs" / "nv_link.toml"
Z_TOLERANCE = 3.0
BASES = ("x", "y", "z")
_SIGN = np.array([1.0, -1.0, -1.0, 1.0])  # parity of outcomes 00, 01, 10, 11


@dataclass
class Experiment:
    """What the drivers measured."""

    alpha: float
    attempt_period: float
    pairs: int = 0
    attempts: int = 0
    batches: int = 0
    counts: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    readout: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))
    t1_t2: tuple[float, float] = (math.inf, math.inf)
    lab_seconds: float = 0.0

    def add(self, basis: str, bell: str, a: int, b: int) -> None:
        self.counts.setdefault((basis, bell), np.zeros(4))[2 * a + b] += 1


def _readout_matrix(e0: float, e1: float) -> np.ndarray:
    """Column = true outcome, row = read outcome."""
    return np.array([[1 - e0, e1], [e0, 1 - e1]])


def correlator(counts: np.ndarray, m_a: np.ndarray, m_b: np.ndarray) -> tuple[float, float]:
    """Readout-corrected ``<PP>`` and its standard error from 4-outcome counts."""
    n = counts.sum()
    p = counts / n
    w = _SIGN @ np.linalg.inv(np.kron(m_a, m_b))
    cov = (np.diag(p) - np.outer(p, p)) / n
    return float(w @ p), float(math.sqrt(max(w @ cov @ w, 0.0)))


def fidelity_estimate(exp: Experiment) -> tuple[float, float, dict[str, float]]:
    """``F`` with Psi+ and its standard error; also the corrected correlators."""
    (a0, a1), (b0, b1) = exp.readout
    m_a, m_b = _readout_matrix(a0, a1), _readout_matrix(b0, b1)
    values: dict[str, float] = {}
    var = 0.0
    for basis in BASES:
        parts = []
        for bell in ("psi+", "psi-"):
            c = exp.counts.get((basis, bell))
            if c is None or c.sum() == 0:
                continue
            e, se = correlator(c, m_a, m_b)
            sign = -1.0 if bell == "psi-" and basis != "z" else 1.0
            parts.append((c.sum(), sign * e, se))
        total = sum(n for n, _, _ in parts)
        values[basis] = sum(n * e for n, e, _ in parts) / total
        var += sum((n / total * se) ** 2 for n, _, se in parts)
    f = (1 + values["x"] + values["y"] - values["z"]) / 4
    return f, math.sqrt(var) / 4, values


async def run_experiment(alice: str, bob: str, station: str, *, pairs: int = 900,
                         alpha: float = 0.1, attempt_period: float = 5e-6,
                         attempts_per_batch: int = 200_000,
                         progress: bool = True) -> Experiment:
    """The experiment, through drivers only (module docstring)."""
    exp = Experiment(alpha, attempt_period)
    async with QuantumMemory.connect(alice) as ma, QuantumMemory.connect(bob) as mb, \
            HeraldingStation.connect(station) as bsm:
        qa = ma.capabilities["communication_qubits"][0]
        qb = mb.capabilities["communication_qubits"][0]
        pa = ma.capabilities["qubit_properties"][qa]
        pb = mb.capabilities["qubit_properties"][qb]
        exp.readout = ((pa["readout_error_0"], pa["readout_error_1"]),
                       (pb["readout_error_0"], pb["readout_error_1"]))
        exp.t1_t2 = (pa["t1"], pa["t2"])
        node_a = mb.capabilities["neighbours"][0]
        node_b = ma.capabilities["neighbours"][0]
        await bsm.configure("single_click", window=25e-9, attempt_period=attempt_period)
        await bsm.lock_phase(0.0)
        await bsm.reset_statistics()
        timeout = attempts_per_batch * attempt_period * 2 + 10.0
        start = (await ma.ping())["time_ps"]
        while exp.pairs < pairs:
            ra, rb = await asyncio.gather(
                ma.entangle(qa, node_b, attempts_per_batch, attempt_period, alpha=alpha,
                            timeout=timeout),
                mb.entangle(qb, node_a, attempts_per_batch, attempt_period, alpha=alpha,
                            timeout=timeout))
            exp.batches += 1
            exp.attempts += ra["attempts"]
            if not ra["success"]:
                continue
            if ra["bell_state"] != rb["bell_state"]:
                raise RuntimeError(f"the two sides disagree on the Bell state: {ra}, {rb}")
            basis = BASES[exp.pairs % 3]
            oa, ob = await asyncio.gather(ma.measure(qa, basis), mb.measure(qb, basis))
            exp.add(basis, ra["bell_state"], oa["outcome"], ob["outcome"])
            exp.pairs += 1
            if progress and exp.pairs % 100 == 0:
                print(f"  {exp.pairs:5d} pairs, {exp.attempts:9d} attempts", flush=True)
        exp.lab_seconds = ((await ma.ping())["time_ps"] - start) * 1e-12
    return exp


@dataclass
class Analytic:
    """Closed-form expectations for the link (from the physics core)."""

    p: float
    fidelity: float


def analytic(link: dict[str, Any], alpha: float, t1: float, t2: float) -> Analytic:
    """Heralding probability and delivered fidelity from the link's parameters."""
    from emulators.lab.world import LinkParameters
    from emulators.physics import HeraldedLink
    from emulators.physics.states import bell_ket

    params = LinkParameters(**link)
    outcomes = params.outcomes(alpha, alpha)
    delay = max(params.herald_delay_s)
    hl = HeraldedLink(outcomes, 1.0, herald_delay_s=delay, memory_t1_s=t1, memory_t2_s=t2)
    psi = bell_ket("psi+")
    f_k = [float(np.real(psi.conj() @ rho @ psi)) for rho in hl.delivered_states]
    w = outcomes.probabilities / outcomes.success_probability
    return Analytic(outcomes.success_probability, float(np.dot(w, f_k)))


def report(exp: Experiment, theory: Analytic | None, wall: float) -> bool:
    """Print the results; returns whether they agree with theory within tolerance."""
    p_hat = exp.pairs / exp.attempts
    se_p = p_hat * math.sqrt((1 - p_hat) / exp.pairs)
    rate, se_rate = p_hat / exp.attempt_period, se_p / exp.attempt_period
    f, se_f, corr = fidelity_estimate(exp)
    print(f"\n{exp.pairs} heralded pairs in {exp.attempts} attempts "
          f"({exp.batches} batches); lab time {exp.lab_seconds:.3f} s, wall {wall:.2f} s")
    print("correlators (readout-corrected): " +
          ", ".join(f"<{b.upper()}{b.upper()}> = {v:+.3f}" for b, v in corr.items()))
    print(f"\n{'':22}{'measured':>20}{'analytic':>14}{'deviation':>12}")
    ok = True
    rows = [("heralding rate (1/s)", rate, se_rate,
             None if theory is None else theory.p / exp.attempt_period),
            ("fidelity with Psi+", f, se_f, None if theory is None else theory.fidelity)]
    for label, value, se, expected in rows:
        if expected is None:
            print(f"{label:22}{value:12.4g} +- {se:<8.2g}{'n/a':>12}")
            continue
        z = (value - expected) / se if se > 0 else 0.0
        ok &= abs(z) <= Z_TOLERANCE
        print(f"{label:22}{value:12.4g} +- {se:<8.2g}{expected:12.4g}{z:+10.2f} sigma")
    if theory is not None:
        verdict = "agree" if ok else "DISAGREE"
        print(f"\nmeasured and analytic values {verdict} within {Z_TOLERANCE:g} standard "
              "errors")
    return ok


async def _admin_link(admin: str, a: str, b: str) -> dict[str, Any]:
    async with Client(admin) as client:
        result: dict[str, Any] = await client.call("link", a=a, b=b)
        return result


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", default=str(DEFAULT_LAB), help="lab config (TOML)")
    parser.add_argument("--pairs", type=int, default=900, help="heralded pairs to collect")
    parser.add_argument("--alpha", type=float, default=0.1, help="bright-state population")
    parser.add_argument("--time", choices=("virtual", "wall"), help="override the time mode")
    parser.add_argument("--transport", choices=("tcp", "ipc", "inproc"), default="tcp")
    parser.add_argument("--seed", type=int, help="override the lab seed")
    parser.add_argument("--connect", help="name=address,... of alice.memory, bob.memory, "
                        "mid.bsm: use a lab running elsewhere")
    parser.add_argument("--admin", help="admin endpoint of that lab (analytic values)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    names = ("alice.memory", "bob.memory", "mid.bsm")
    t0 = time.perf_counter()
    if args.connect:
        addr = dict(item.split("=", 1) for item in args.connect.split(","))
        exp = await run_experiment(*(addr[n] for n in names), pairs=args.pairs,
                                   alpha=args.alpha, progress=not args.quiet)
        link = await _admin_link(args.admin, names[0], names[1]) if args.admin else None
    else:
        from emulators.lab import Lab

        lab = Lab.from_file(args.lab, time=args.time, transport=args.transport,
                            seed=args.seed)
        async with lab:
            print(f"lab {lab.config.name!r} ({lab.config.time} time, seed "
                  f"{lab.config.seed}):\n{lab.table()}\n")
            exp = await run_experiment(*(lab.address(n) for n in names), pairs=args.pairs,
                                       alpha=args.alpha, progress=not args.quiet)
            params = lab.link_parameters(names[0], names[1])
            link = None if params is None else params.__dict__
    theory = None if link is None else analytic(link, args.alpha, *exp.t1_t2)
    ok = report(exp, theory, time.perf_counter() - t0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
