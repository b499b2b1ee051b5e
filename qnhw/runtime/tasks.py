"""Background tasks a component owns: tracked until they end, failures logged, cancelled
together when the component stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from typing import Any


class BackgroundTasks:
    """A set of tasks owned by one client, server, device or lab.

    :meth:`spawn` starts a coroutine on the running loop and keeps its task until it ends; a task
    that ends with an exception is logged on ``log`` (a structlog logger). :meth:`cancel_all`
    cancels every task and waits for all of them. ``len()`` is the number still running.
    """

    def __init__(self, log: Any) -> None:
        self._log = log
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None,
              ) -> asyncio.Task[Any]:
        """Run ``coro`` as a task (named ``name``) on the running loop; returns the task.
        Does not block."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.track(task)
        return task

    def track(self, task: asyncio.Task[Any]) -> None:
        """Own an existing task until it ends."""
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("background task failed", error=repr(task.exception()))

    async def cancel_all(self) -> None:
        """Cancel every task and wait until each has ended (their errors are swallowed)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))
