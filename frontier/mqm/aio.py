"""Run asyncio client libraries (nats-py) inside a gevent process.

One asyncio event loop runs in a greenlet on the hub's thread. Under
``gevent.monkey.patch_all()`` ``asyncio.new_event_loop()`` gets gevent's selector, so
while the loop waits for I/O other greenlets run. Greenlets hand coroutines to the
loop with :meth:`AsyncioBridge.call` and wait on a gevent ``AsyncResult``; only the
calling greenlet blocks.

CPython keeps the running loop per OS thread, not per greenlet, so there can be only
one such loop per process: everything asyncio in the gateway must go through
:func:`bridge`. (A real thread for the loop was tried elsewhere and breaks hostname
resolution under gevent.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, TypeVar

import gevent
from gevent.event import AsyncResult

T = TypeVar("T")
log = logging.getLogger("frontier.mqm")


class AsyncioBridge:
    """An asyncio loop in a greenlet, and a way for greenlets to await on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._greenlet = gevent.spawn(self._run)
        self._greenlet.name = "mqm-asyncio-loop"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        except BaseException as exc:  # a greenlet that dies says why
            log.error("mqm asyncio loop stopped: %r", exc)
            raise

    def alive(self) -> bool:
        """True while the loop's greenlet runs."""
        return not self._greenlet.dead and not self.loop.is_closed()

    def spawn(self, factory: Callable[[], Awaitable[Any]]) -> None:
        """Start ``factory()`` as a task on the loop and do not wait for it."""

        def start() -> None:
            self.loop.create_task(factory())

        self.loop.call_soon_threadsafe(start)

    def call(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run ``factory()`` on the loop; block this greenlet until it finishes.

        No timeout here: wrap the call in ``gevent.Timeout``. If the waiting greenlet
        is interrupted (deadline, kill), the task is cancelled on the loop.
        """
        result: AsyncResult = AsyncResult()
        state: dict[str, Any] = {"task": None, "abandoned": False}

        def done(task: asyncio.Task) -> None:
            if task.cancelled():
                result.set_exception(RuntimeError("the task was cancelled on the asyncio loop"))
            elif task.exception() is not None:
                result.set_exception(task.exception())
            else:
                result.set(task.result())

        def start() -> None:
            if state["abandoned"]:
                return
            task = self.loop.create_task(factory())
            state["task"] = task
            task.add_done_callback(done)

        def cancel() -> None:
            state["abandoned"] = True
            if state["task"] is not None:
                state["task"].cancel()

        self.loop.call_soon_threadsafe(start)
        try:
            return result.get()
        finally:
            if not result.ready():
                self.loop.call_soon_threadsafe(cancel)


_bridge: AsyncioBridge | None = None


def bridge() -> AsyncioBridge:
    """The process's one :class:`AsyncioBridge`, started on first use."""
    global _bridge
    if _bridge is None or not _bridge.alive():
        _bridge = AsyncioBridge()
    return _bridge
