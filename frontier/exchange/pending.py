"""One call or publish the gateway forwarded and is waiting to answer."""

from __future__ import annotations

from typing import Any


class Pending:
    """A request/publish sent to ``target`` under the gateway's id ``gid``, on behalf
    of ``origin``'s id ``origin_id`` (``origin`` None: the gateway's own hook call,
    answered through ``waiter``). ``timer`` is the libev deadline watcher."""

    __slots__ = ("origin", "origin_id", "target", "gid", "is_publish", "direction", "started", "timer", "waiter")

    def __init__(
        self, origin: Any, origin_id: int, target: Any, gid: int, is_publish: bool,
        direction: str, started: float, timer: Any, waiter: Any = None,
    ) -> None:
        self.origin = origin
        self.origin_id = origin_id
        self.target = target
        self.gid = gid
        self.is_publish = is_publish
        self.direction = direction
        self.started = started
        self.timer = timer
        self.waiter = waiter
