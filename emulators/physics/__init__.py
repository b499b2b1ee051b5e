"""qnhw emulator physics core: pure numpy models of quantum-network hardware.

No I/O, no asyncio, no global state: every function takes its parameters (SI units;
times in seconds unless a name ends in ``_ps``, time tags are int64 picoseconds) and,
where it samples, a ``numpy.random.Generator``. Same seed, same result.

Modules
-------
states      density matrices, Bell-diagonal pairs, fidelity, partial trace, negativity
channels    amplitude damping, dephasing (exponential T2, Gaussian T2*), depolarizing, Pauli
fiber       loss (dB/km), delay (group index), phase and polarization drift
optics      beam splitter, Hong-Ou-Mandel interference, linear-optics Bell measurement
detectors   efficiency, dark counts, dead time, jitter, afterpulsing -> int64 ps time tags
sources     Poissonian/thermal pair sources, heralding efficiency, g2(0), multi-pair
heralding   single-click and Barrett-Kok heralding -> two-memory states; sampled links
memory      T1/T2 storage, gate and readout errors, ensemble retrieval efficiency
transducer  microwave-optical conversion: efficiency, added noise, bandwidth
clocks      oscillator noise (offset, drift, WPM, WFM, RWFM), Allan deviation, two-way transfer
repeater    swapping, BBPSSW/DEJMPS distillation, PLOB and hashing bounds
gates, qpu  OpenQASM 2 subset on state-vector and density-matrix simulators
profiles    named hardware parameter sets with their sources

The most used names are re-exported here; see each module for the rest.
"""

from __future__ import annotations

from . import (
    channels,
    clocks,
    detectors,
    fiber,
    gates,
    heralding,
    memory,
    optics,
    profiles,
    qpu,
    repeater,
    sources,
    states,
    transducer,
)
from ._sampling import attempts_until_success, sample_categorical, success_indices
from .clocks import OscillatorModel, allan_deviation, sample_time_error, two_way_time_transfer
from .detectors import DetectorModel, TimeTags, detect
from .errors import ParameterError, PhysicsError, ShapeError
from .fiber import Fiber
from .heralding import HeraldedLink, HeraldOutcomes, LinkSample, barrett_kok, single_click
from .memory import MemoryModel
from .profiles import Param, profile
from .qpu import DensityMatrix, Instruction, QPUNoise, RunResult, StateVector, run_circuit
from .repeater import bbpssw, dejmps, plob_bound, swap_bell_diagonal
from .sources import PairSource
from .states import bell_diagonal, werner
from .transducer import Transducer

__all__ = [
    "DensityMatrix",
    "DetectorModel",
    "Fiber",
    "HeraldOutcomes",
    "HeraldedLink",
    "Instruction",
    "LinkSample",
    "MemoryModel",
    "OscillatorModel",
    "PairSource",
    "Param",
    "ParameterError",
    "PhysicsError",
    "QPUNoise",
    "RunResult",
    "ShapeError",
    "StateVector",
    "TimeTags",
    "Transducer",
    "allan_deviation",
    "attempts_until_success",
    "barrett_kok",
    "bbpssw",
    "bell_diagonal",
    "channels",
    "clocks",
    "dejmps",
    "detect",
    "detectors",
    "fiber",
    "gates",
    "heralding",
    "memory",
    "optics",
    "plob_bound",
    "profile",
    "profiles",
    "qpu",
    "repeater",
    "run_circuit",
    "sample_categorical",
    "sample_time_error",
    "single_click",
    "sources",
    "states",
    "success_indices",
    "swap_bell_diagonal",
    "transducer",
    "two_way_time_transfer",
    "werner",
]
