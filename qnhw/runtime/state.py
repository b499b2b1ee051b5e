"""The connection state a client exposes, and a small helper to watch it change."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator


class ConnectionState(enum.Enum):
    """Where a :class:`qnhw.runtime.Client` connection stands."""

    IDLE = "idle"  # created, connect() not called yet
    CONNECTING = "connecting"  # first handshake in progress
    CONNECTED = "connected"  # handshake done, calls flow
    RECONNECTING = "reconnecting"  # peer lost; handshaking again (calls wait or fail)
    CLOSED = "closed"  # close() called, or a fatal handshake error


class StateCell:
    """Holds a :class:`ConnectionState`; lets coroutines wait for or iterate over changes."""

    def __init__(self) -> None:
        self.value = ConnectionState.IDLE
        self._changed = asyncio.Event()

    def set(self, state: ConnectionState) -> None:
        if state is self.value:
            return
        self.value = state
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, *states: ConnectionState) -> ConnectionState:
        """Wait until the state is one of ``states``; returns it. Cancellable; no timeout."""
        while self.value not in states:
            await self._changed.wait()
        return self.value

    async def watch(self) -> AsyncIterator[ConnectionState]:
        """Yield the current state, then every new one, until CLOSED has been yielded."""
        last = None
        while True:
            if self.value is not last:
                last = self.value
                yield last
                if last is ConnectionState.CLOSED:
                    return
            else:
                await self._changed.wait()
