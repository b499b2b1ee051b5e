"""How a lab script waits -- the same code in virtual time, in wall time and on real hardware.

A script never needs ``asyncio.sleep`` to let physics happen. Three ways to wait, in order of
preference:

1. **Blocking commands** take their duration of lab time: ``entangle`` blocks until the herald
   (the attempts' time), ``count``/``histogram`` for their duration, gates and readouts for
   theirs. On hardware they block for real; in virtual time they cost no wall time.
2. **The node's timing card** (:func:`wait_for_trigger`): schedule an output trigger at an
   absolute time of the card's domain and await its event on the ``triggers`` stream. Real
   White Rabbit hardware does exactly this; in virtual time the lab sees that everyone is
   waiting and jumps to the trigger.
3. **The lab time service** (:class:`LabTime`): ``await lab_time.sleep(s)`` lets ``s`` seconds
   of lab time pass through the lab's admin endpoint (virtual time: at once); with no admin
   address (real hardware) it falls back to ``asyncio.sleep``. Use it for "wait a while".

This module only imports :mod:`qnhw` (it could move there).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from qnhw.devices.timing import TimingCard
from qnhw.runtime import Client


class LabTime:
    """Lab time for a script: through the lab's admin endpoint ``admin`` (an emulated lab),
    or the host's monotonic clock when ``admin`` is ``None`` (real hardware).

    ``async with LabTime(address) as t: await t.sleep(0.5); print(await t.now())``.
    """

    def __init__(self, admin: str | None = None, *, timeout: float = 60.0) -> None:
        self.admin = admin
        self._timeout = timeout
        self._client: Client | None = None
        self._t0 = time.monotonic()

    async def connect(self) -> LabTime:
        if self.admin is not None and self._client is None:
            self._client = await Client(self.admin, timeout=self._timeout,
                                        name="lab-time").connect()
        return self

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> LabTime:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def emulated(self) -> bool:
        """Whether lab time comes from an emulated lab."""
        return self.admin is not None

    async def now(self) -> float:
        """Lab time, seconds (emulated: since the lab started; else since this object)."""
        if self._client is None:
            return time.monotonic() - self._t0
        result: dict[str, Any] = await self._client.call("time")
        return float(result["lab_time"])

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of lab time pass (virtual time: at once)."""
        if self._client is None:
            await asyncio.sleep(seconds)
            return
        await self._client.call("advance", seconds=float(seconds),
                                timeout=self._timeout + seconds)


async def wait_for_trigger(card: TimingCard, at_ps: int, channel: int | None = None, *,
                           timeout: float = 60.0) -> int:
    """Block until ``card``'s domain reaches ``at_ps`` (int ps): schedule a trigger there and
    await it on the ``triggers`` stream. Portable to real timing cards; in virtual time the
    lab jumps to the trigger once everybody waits. Returns the trigger's time stamp (ps)."""
    out = channel if channel is not None else int(card.capabilities["outputs"][0])
    async with card.triggers(mode="lossless") as sub:
        tid = (await card.schedule_trigger(at_ps, out))["trigger_id"]
        async with asyncio.timeout(timeout):
            async for ev in sub:
                if ev.payload.get("trigger_id") == tid:
                    return ev.ts_ps
    raise RuntimeError("the triggers stream ended before the trigger fired")


__all__ = ["LabTime", "wait_for_trigger"]
