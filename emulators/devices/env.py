"""What an emulated device receives from its lab: randomness, its clock, lab time, the world.

Every emulator takes an :class:`EmulatorEnv` and nothing else from its surroundings, so the same
emulator runs standalone (:func:`standalone_env`, wall time) or inside an emulated lab (virtual
or wall time, coupled to other devices through ``world``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class EmulatorEnv:
    """The device's view of its lab.

    ``rng``: the device's own seeded generator (every random draw comes from it).
    ``domain``: name of the device's clock domain; ``now_ps()``: current time in that domain,
    integer picoseconds. ``lab_now()``: true lab time in seconds (no clock errors; for physics
    such as decoherence). ``spend(seconds)``: let that much lab time pass -- in virtual time it
    advances the lab clock at once, in wall time it sleeps. ``world``: the coupling hub of the
    lab (photons, fibers, heralds), ``None`` when standalone.
    """

    name: str
    rng: np.random.Generator
    domain: str
    now_ps: Callable[[], int]
    lab_now: Callable[[], float]
    spend: Callable[[float], Awaitable[None]]
    world: object | None = None


def standalone_env(name: str, seed: int = 0, domain: str | None = None) -> EmulatorEnv:
    """An environment in wall time with a perfect clock counting from now; no world."""
    t0 = time.monotonic()

    def lab_now() -> float:
        return time.monotonic() - t0

    def now_ps() -> int:
        return round(lab_now() * 1e12)

    async def spend(seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    return EmulatorEnv(name, np.random.default_rng(seed), domain or f"{name}.clock", now_ps,
                       lab_now, spend)
