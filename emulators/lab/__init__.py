"""The emulated lab: one physical world, virtual or wall time, devices served over the
protocol (see ``docs/lab.md``).

Submodules: :mod:`~emulators.lab.time` (the lab clock), :mod:`~emulators.lab.clocks` (node
clock domains), :mod:`~emulators.lab.quantum` (the qubit registry), :mod:`~emulators.lab.world`
(optics, photons, heralded links), :mod:`~emulators.lab.config` (TOML lab configs),
:mod:`~emulators.lab.lab` (building and running a lab), :mod:`~emulators.lab.faults` (fault
injection), :mod:`~emulators.lab.timeservice` (how scripts wait, portably).

The names below are loaded on first use, so that device emulators can import the lab's core
modules without importing the lab builder (which imports them).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Lab": "emulators.lab.lab",
    "start_lab": "emulators.lab.lab",
    "LabConfig": "emulators.lab.config",
    "ConfigError": "emulators.lab.config",
    "load_config": "emulators.lab.config",
    "parse_config": "emulators.lab.config",
    "LabTime": "emulators.lab.timeservice",
    "World": "emulators.lab.world",
    "VirtualClock": "emulators.lab.time",
    "WallClock": "emulators.lab.time",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emulators.lab' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_LAZY)
