"""``Edge``: the device/agent side. Calls services by method, publishes by topic,
opens streams to services by name, and serves methods services call on it."""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from frontier.wire.events import PROTOCOL_VERSION, ROLE_EDGE, Hello, Publish, Request, StreamOpen, Welcome

from .client import Client, _data, _nothing
from .expose import Exposed
from .payload import Data, as_bytes
from .stream import Stream
from .transport import Address

if TYPE_CHECKING:
    from .link import Link


class Edge(Client):
    """An edge connection to a frontier gateway; connects on construction.

    ``meta`` (bytes, or str as UTF-8) travels to services (hooks, streams); ``edge_id`` asks for a specific id
    (a ``get_edge_id`` service, if online, decides instead). The id the gateway
    assigned is kept across reconnects. ``addr`` may be a list of gateways, tried in
    turn when one is lost or drains. ``credentials`` is the edge token when the
    gateway requires one (a callable is asked again at each reconnect); the TLS
    options (``tls_ca``, ``tls_cert``, ``tls_key``, ``ssl_context``...) are those of
    :class:`~frontier.sdk.client.Client`.

    ``expose`` maps names to local ``host:port`` services the gateway's HTTP ingress
    may reach (``{"ui": "127.0.0.1:8080"}``); it can reach nothing else on the edge.
    """

    role = ROLE_EDGE

    def __init__(self, addr: Address | Sequence[Address], *, meta: Data = b"", edge_id: int | None = None,
                 timeout: float = 30.0, reconnect: bool = True, expose: Mapping[str, str] | None = None,
                 **options: Any) -> None:
        self.meta = as_bytes(meta, "Edge(meta=...)")
        #: the local services the gateway may reach (an allow-list; empty: none)
        self.exposed = Exposed(expose or {})
        self._edge_id = edge_id
        super().__init__(addr, timeout=timeout, reconnect=reconnect, **options)

    @property
    def edge_id(self) -> int:
        """This edge's id, as assigned by the gateway."""
        assert self._edge_id is not None
        return self._edge_id

    def _hello(self) -> Hello:
        return Hello(PROTOCOL_VERSION, ROLE_EDGE, "", (), tuple(self._handlers), (), self.meta, self._edge_id,
                     self._hello_credentials())

    def _on_welcome(self, welcome: Welcome) -> None:
        self._edge_id = welcome.id

    def call(self, method: str, data: Data, timeout: float | None = None) -> bytes:
        """Call ``method`` on the service the gateway picks for it."""
        return self._call(None, method, data, timeout, None, 0)

    def publish(self, topic: str, data: Data, timeout: float | None = None) -> None:
        """Publish to ``topic``; returns after a service's ``done()`` or an MQ's ack."""
        self._publish(None, topic, data, timeout, None, 0)

    def call_async(self, method: str, data: Data, timeout: float | None = None) -> "Future[bytes]":
        """``call`` without waiting: a ``concurrent.futures.Future`` whose ``result()``
        is the answer or raises what ``call`` would (``Timeout`` at the deadline)."""
        return self._deliver_async(Request, method, data, timeout, None, _data)

    def publish_async(self, topic: str, data: Data, timeout: float | None = None) -> "Future[None]":
        """``publish`` without waiting: a future that resolves to None once the
        message is acknowledged, or raises what ``publish`` would."""
        return self._deliver_async(Publish, topic, data, timeout, None, _nothing)

    def _on_stream_open(self, link: "Link", ev: StreamOpen) -> None:
        if Exposed.wants(ev):
            self.exposed.open(self, link, ev)
        else:
            super()._on_stream_open(link, ev)

    def open_stream(self, service_name: str, timeout: float | None = None) -> Stream:
        """Open a stream to a service named ``service_name``."""
        return self._open_stream(timeout, service=service_name)
