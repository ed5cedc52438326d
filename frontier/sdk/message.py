"""What a handler or a receiver gets: an incoming call (``Request``) or ``Message``."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from frontier.wire.errors import ErrorCode, FrontierError
from frontier.wire.events import Ack

if TYPE_CHECKING:
    from .link import Link


class Request:
    """An incoming RPC call, passed to a registered handler.

    ``edge_id`` is the calling edge (on a service; None on an edge); ``stream`` is the
    stream it rode, if any.
    """

    __slots__ = ("data", "method", "edge_id", "stream")

    def __init__(self, data: bytes, method: str, edge_id: int | None, stream: Any = None) -> None:
        self.data = data
        self.method = method
        self.edge_id = edge_id
        self.stream = stream

    def __repr__(self) -> str:
        return f"Request(method={self.method!r}, edge_id={self.edge_id}, {len(self.data)} bytes)"


class Message:
    """A received message. Call exactly one of :meth:`done` or :meth:`error`; the
    publisher's ``publish`` returns (or raises) only then."""

    __slots__ = ("data", "topic", "edge_id", "stream", "_link", "_msg_id", "_answered", "_lock")

    def __init__(self, data: bytes, topic: str, edge_id: int | None, link: "Link", msg_id: int, stream: Any = None) -> None:
        self.data = data
        self.topic = topic
        self.edge_id = edge_id
        self.stream = stream
        self._link = link
        self._msg_id = msg_id
        self._answered = False
        self._lock = threading.Lock()

    def done(self) -> None:
        """Acknowledge: the publisher's ``publish`` returns."""
        self._answer(ErrorCode.OK, "")

    def error(self, reason: str | BaseException) -> None:
        """Reject: the publisher's ``publish`` raises ``RemoteError(reason)``."""
        self._answer(ErrorCode.REMOTE_ERROR, str(reason))

    def _answer(self, code: int, reason: str) -> None:
        with self._lock:
            if self._answered:
                raise FrontierError("this message was already answered")
            self._answered = True
        self._link.send(Ack(self._msg_id, code, reason))

    def __repr__(self) -> str:
        return f"Message(topic={self.topic!r}, edge_id={self.edge_id}, {len(self.data)} bytes)"
