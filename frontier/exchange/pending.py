"""One call or publish the gateway forwarded and is waiting to answer."""

from __future__ import annotations

from frontier.sessions.session import Session
from frontier.wire.events import WireId

from .deadlines import Bucket
from .hooks import HookAnswer


class Pending:
    """A request/publish sent to ``target`` under the gateway's id ``gid``, on behalf
    of ``origin``'s id ``origin_id`` (``origin`` None: the gateway's own hook call,
    answered through ``waiter``; ``target`` None: an MQ produce's marker).
    ``deadline`` is the :class:`~frontier.exchange.deadlines.CallDeadlines` bucket its
    deadline waits in (None: it has none)."""

    __slots__ = ("origin", "origin_id", "target", "gid", "is_publish", "direction", "started", "deadline", "waiter")

    def __init__(
        self, origin: Session | None, origin_id: WireId, target: Session | None, gid: WireId, is_publish: bool,
        direction: str, started: float, deadline: Bucket | None, waiter: HookAnswer | None = None,
    ) -> None:
        self.origin = origin
        self.origin_id = origin_id
        self.target = target
        self.gid = gid
        self.is_publish = is_publish
        self.direction = direction
        self.started = started
        self.deadline = deadline
        self.waiter = waiter
