"""``Service``: the backend side. Calls, publishes to and opens streams on edges by
id; serves methods and topics edges reach through the gateway; assigns edge ids and
hears edges come and go through hooks."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable, Iterable

import msgpack

from frontier.wire.errors import InvalidArgument
from frontier.wire.events import (
    HOOK_EDGE_OFFLINE, HOOK_EDGE_ONLINE, HOOK_GET_EDGE_ID, HOOK_METHOD_PREFIX, PROTOCOL_VERSION, ROLE_SERVICE,
    Hello, Publish, Request, Welcome,
)

from .client import Client, Registrations, _data, _nothing
from .payload import Data
from .stream import Stream
from .transport import Address


class ServiceHooks(Registrations):
    """The service hooks, for :class:`Service` and ``ClusterService`` alike: kept in
    ``_hooks`` and sent with ``_register(hooks=...)``."""

    _hooks: dict[str, Callable[..., Any]]

    def register_get_edge_id(self, fn: Callable[[bytes], int]) -> None:
        """Assign ids to connecting edges: ``fn(meta) -> int``; raising refuses the edge."""
        self._set_hook(HOOK_GET_EDGE_ID, fn)

    def register_edge_online(self, fn: Callable[[int, bytes, str], Any]) -> None:
        """``fn(edge_id, meta, addr)`` runs before an edge is admitted; raising refuses it
        (its ``Edge(...)`` raises ``Refused``)."""
        self._set_hook(HOOK_EDGE_ONLINE, fn)

    def register_edge_offline(self, fn: Callable[[int, bytes, str], Any]) -> None:
        """``fn(edge_id, meta, addr)`` runs after an edge went offline."""
        self._set_hook(HOOK_EDGE_OFFLINE, fn)

    def _set_hook(self, hook: str, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise InvalidArgument(f"the {hook} hook must be callable")
        self._hooks[hook] = fn
        self._register(hooks=(hook,))


class Service(ServiceHooks, Client):
    """A service connection to a frontier gateway; connects on construction.

    ``name`` lets edges open streams to this service; ``topics`` are the topics whose
    edge messages this service receives. ``credentials`` is the service secret when
    the gateway requires one (``servicebound.auth``). Other keyword options
    (``ssl_context``, ``tls_ca``, ``tls_cert``, ``tls_key``, ``tls_server_name``,
    ``handler_threads``, ``max_pending``, ``receive_buffer``, ``stream_window``,
    ``stream_accept_timeout``, ``backoff_max``) are those of
    :class:`~frontier.sdk.client.Client`.
    """

    role = ROLE_SERVICE

    def __init__(self, addr: Address, *, name: str | None = None, topics: Iterable[str] = (), timeout: float = 30.0,
                 reconnect: bool = True, **options: Any) -> None:
        self.name = name or ""
        self.topics = tuple(topics)
        self._hooks: dict[str, Callable[..., Any]] = {}
        self._service_id = 0
        super().__init__(addr, timeout=timeout, reconnect=reconnect, **options)

    @property
    def service_id(self) -> int:
        """The id the gateway gave this connection (changes on reconnect)."""
        return self._service_id

    def _hello(self) -> Hello:
        return Hello(PROTOCOL_VERSION, ROLE_SERVICE, self.name, self.topics, tuple(self._handlers), tuple(self._hooks),
                     b"", None, self._hello_credentials())

    def _on_welcome(self, welcome: Welcome) -> None:
        self._service_id = welcome.id

    # -- reaching edges --------------------------------------------------------------------

    def call(self, edge_id: int, method: str, data: Data, timeout: float | None = None) -> bytes:
        """Call ``method`` on edge ``edge_id`` and return its answer."""
        return self._call(None, method, data, timeout, edge_id, 0)

    def publish(self, edge_id: int, data: Data, topic: str = "", timeout: float | None = None) -> None:
        """Deliver a message to edge ``edge_id``; returns after the edge's ``done()``."""
        self._publish(None, topic, data, timeout, edge_id, 0)

    def call_async(self, edge_id: int, method: str, data: Data, timeout: float | None = None) -> "Future[bytes]":
        """``call`` without waiting: a ``concurrent.futures.Future`` whose ``result()``
        is the edge's answer or raises what ``call`` would (``Timeout`` at the deadline)."""
        return self._deliver_async(Request, method, data, timeout, edge_id, _data)

    def publish_async(self, edge_id: int, data: Data, topic: str = "", timeout: float | None = None) -> "Future[None]":
        """``publish`` without waiting: a future that resolves to None once the edge
        called ``done()``, or raises what ``publish`` would."""
        return self._deliver_async(Publish, topic, data, timeout, edge_id, _nothing)

    def open_stream(self, edge_id: int, timeout: float | None = None) -> Stream:
        """Open a stream to edge ``edge_id`` (it must ``accept_stream``)."""
        return self._open_stream(timeout, edge_id=edge_id)

    def _hook_call(self, method: str, data: bytes) -> bytes:
        hook = method[len(HOOK_METHOD_PREFIX):]
        fn = self._hooks.get(hook)
        if fn is None:
            raise InvalidArgument(f"no {hook} hook is registered")
        args = msgpack.unpackb(data)
        if hook == HOOK_GET_EDGE_ID:
            edge_id = fn(args["meta"])
            if not isinstance(edge_id, int) or isinstance(edge_id, bool) or edge_id < 0:
                raise TypeError(f"get_edge_id must return a non-negative int, not {edge_id!r}")
            return msgpack.packb(edge_id)
        fn(args["edge_id"], args["meta"], args["addr"])
        return b""
