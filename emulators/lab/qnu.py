"""QPUs on the network: a QPU's live register in the lab's qubit registry, and its
transducer (the QNU's microwave-optical interface) as an emitter on a heralded link.

* :class:`WorldLiveRegister` replaces a :class:`~emulators.devices.qpu.QPUEmulator`'s live
  register by the same interface backed by the lab's :class:`~emulators.lab.quantum.QubitRegistry`,
  so a pair heralded between two QPUs is one joint state that circuits on either QPU act on.
  The QPU keeps scheduling its own relaxation (``relax``/``idle_to`` with each qubit's T1/T2),
  so the registry qubits carry no decay of their own; each qubit remembers up to when it has
  been relaxed, so a pair delivered mid-way is not relaxed for time before it existed.
* :class:`TransducerEmitter` makes ``(transducer, QPU communication qubit)`` an emitter for
  :class:`~emulators.lab.world.World`: the "collection efficiency" of the spin-photon interface
  is the transducer's conversion probability in force (0 while disabled), the photon's wave
  packet lasts about ``1 / (2 pi bandwidth)``, and the transducer's added noise gives each
  attempt a probability of a noise photon (``n / (1 + n)`` for thermal noise of mean
  ``n = eta N_add``), which the link counts like dark counts at the detectors it reaches.

Attempts on such a link are driven by the heralding station (``arm``): the QNUs prepare their
communication qubits with bright population ``qnu_alpha`` (a station parameter) for every
attempt; after a herald the station disarms, so the delivered pair is not overwritten.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from emulators.physics.channels import relaxation_kraus
from emulators.physics.gates import gate_matrix
from emulators.physics.memory import MemoryModel

from .quantum import Qubit, QubitRegistry
from .world import EmitterModel

ComplexArray = npt.NDArray[np.complex128]


class WorldLiveRegister:
    """The live register of a QPU, held in the lab's qubit registry (module docstring): the
    :class:`emulators.devices.qpu.QuantumRegister` protocol, passed as
    ``QPUEmulator(register=...)``. Qubit ``q`` is registry qubit ``"<device>:q<q>"``;
    operators on several qubits take the first listed as the most significant bit."""

    def __init__(self, registry: QubitRegistry, device: str, n: int, t1: Sequence[float],
                 t2: Sequence[float], dephasing: str, t0: float,
                 now_ps: Callable[[], int] | None = None) -> None:
        self.n = n
        self.t1 = list(t1)
        self.t2 = list(t2)
        self.dephasing = dephasing
        self._registry = registry
        self._now_ps: Callable[[], int] = now_ps or (lambda: 0)
        ideal = MemoryModel()  # the QPU applies relaxation itself
        self.qubits: list[Qubit] = [registry.add(f"{device}:q{q}", ideal, round(t0 * 1e12))
                                    for q in range(n)]
        self._times = [t0] * n

    @property
    def time(self) -> float:
        """Every qubit has been relaxed up to this lab time (s)."""
        return min(self._times)

    def mark_time(self, t: float) -> None:
        self._times = [max(x, t) for x in self._times]

    def _q(self, qubits: Sequence[int]) -> list[Qubit]:
        return [self.qubits[q] for q in qubits]

    def relax(self, qubit: int, dt: float) -> None:
        if dt > 0.0 and (math.isfinite(self.t1[qubit]) or math.isfinite(self.t2[qubit])):
            self._registry.channel(relaxation_kraus(dt, self.t1[qubit], self.t2[qubit],
                                                    self.dephasing), self._q([qubit]),
                                   self._now_ps())

    def idle_to(self, t: float) -> None:
        for q in range(self.n):
            self.relax(q, t - self._times[q])
            self._times[q] = max(self._times[q], t)

    def apply_gate(self, name: str, qubits: Sequence[int],
                   params: Sequence[float] = ()) -> None:
        self._registry.unitary(gate_matrix(name, list(params)), self._q(qubits),
                               self._now_ps())

    def apply_kraus(self, kraus: Sequence[ComplexArray], qubits: Sequence[int]) -> None:
        self._registry.channel(list(kraus), self._q(qubits), self._now_ps())

    def p1(self, qubit: int) -> float:
        return self._registry.probability_one(self.qubits[qubit], "z", self._now_ps())

    def project(self, qubit: int, bit: int) -> None:
        m = np.zeros((2, 2), dtype=np.complex128)
        m[bit, bit] = 1.0
        self._registry.schur(self._q([qubit]), m, self._now_ps())

    def measure(self, qubit: int, rng: np.random.Generator) -> int:
        return self._registry.measure(self.qubits[qubit], "z", self._now_ps(), rng)

    def reset(self, qubit: int) -> None:
        self._registry.reset(self.qubits[qubit], self._now_ps())

    def reduced_state(self, qubits: Sequence[int]) -> ComplexArray:
        return self._registry.density(self._q(qubits), self._now_ps())

    def replace(self, qubits: Sequence[int], rho: ComplexArray) -> None:
        self._registry.set_joint(self._q(qubits), np.asarray(rho, dtype=np.complex128),
                                 self._now_ps())

    def delivered(self, qubit: int, lab_time: float) -> None:
        """A heralded state reached ``qubit`` at ``lab_time`` (s): no relaxation before it."""
        self._times[qubit] = max(self._times[qubit], lab_time)


class TransducerEmitter:
    """``(transducer, QPU, communication qubit)`` as an emitter of the world (module
    docstring)."""

    def __init__(self, transducer: Any, qpu: Any, qubit: int) -> None:
        self.transducer = transducer
        self.qpu = qpu
        self.qubit = qubit

    @property
    def register(self) -> WorldLiveRegister:
        live = self.qpu.live
        if not isinstance(live, WorldLiveRegister):
            raise RuntimeError("the QPU's live register is not in the lab's registry")
        return live

    def registry_qubit(self) -> Qubit:
        return self.register.qubits[self.qubit]

    def _on(self) -> bool:
        return bool(getattr(self.transducer, "enabled", False))

    def emitter_model(self) -> EmitterModel:
        eta = float(self.transducer.conversion_probability()) if self._on() else 0.0
        bandwidth = float(getattr(self.transducer, "bandwidth", 10e6))
        wavelength = float(getattr(self.transducer, "optical_wavelength", 1550e-9))
        return EmitterModel(min(max(eta, 0.0), 1.0), 1.0 / (2 * math.pi * bandwidth),
                            wavelength)

    def noise_probability(self) -> float:
        """Probability that an attempt carries at least one noise photon."""
        if not self._on():
            return 0.0
        n = float(self.transducer.noise_photons())
        return n / (1.0 + n)


__all__ = ["TransducerEmitter", "WorldLiveRegister"]
