"""Suite-wide guards: no test may leave asyncio tasks or ZeroMQ sockets behind."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import zmq


def open_sockets() -> set[zmq.Socket]:  # type: ignore[type-arg]
    """Sockets of the shared context that are still open."""
    gc.collect()
    return {s for s in list(zmq.Context.instance()._sockets) if not s.closed}


@pytest_asyncio.fixture(autouse=True)
async def no_leaked_tasks_or_sockets(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Fail a test that leaves tasks running or sockets open once it has finished."""
    tasks_before = set(asyncio.all_tasks())
    sockets_before = open_sockets()
    yield
    current = asyncio.current_task()
    leaked: set[asyncio.Task[object]] = set()
    for _ in range(50):  # bounded grace period (0.5 s) for tasks that are finishing
        leaked = {t for t in asyncio.all_tasks() - tasks_before if t is not current
                  and not t.done()}
        if not leaked:
            break
        await asyncio.sleep(0.01)
    for task in leaked:
        task.cancel()
    sockets = open_sockets() - sockets_before
    for sock in sockets:
        sock.close(linger=0)
    problems = []
    if leaked:
        problems.append(f"leaked tasks: {sorted(t.get_name() + ' ' + repr(t.get_coro()) for t in leaked)}")
    if sockets:
        problems.append(f"leaked {len(sockets)} zmq sockets: "
                        f"{sorted(zmq.SocketType(s.type).name for s in sockets)}")
    if problems:
        pytest.fail("; ".join(problems))
