"""Local services an edge exposes to the gateway's HTTP ingress (``Edge(expose=...)``).

Exposing is opt-in and an allow-list: the gateway names a target in a stream it
opens (``StreamOpen.service`` = ``$expose:<name>``); an edge that exposes ``name``
connects to the address it maps to and splices bytes both ways; any other name is
refused with ``NOT_EXPOSED``, and a local service that cannot be reached with
``BACKEND_UNREACHABLE``. Each spliced connection uses two threads; ``max_streams``
bounds how many run at once (more are refused with ``BUFFER_FULL``).
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import TYPE_CHECKING, Mapping

from frontier.wire.errors import ErrorCode, FrontierError, InvalidArgument
from frontier.wire.events import EXPOSE_PREFIX, StreamAccept, StreamOpen, StreamReset

from .stream import CHUNK, Stream
from .transport import parse_address

if TYPE_CHECKING:
    from .client import Client
    from .link import Link

log = logging.getLogger("frontier.sdk.expose")


class Exposed:
    """The allow-list of one edge: target name -> ``host:port`` of a local service."""

    #: spliced connections at once; more are refused with BUFFER_FULL
    max_streams = 256

    def __init__(self, targets: Mapping[str, str]) -> None:
        self.targets: dict[str, tuple[str, int]] = {}
        for name, addr in targets.items():
            if not name or not isinstance(name, str) or len(name) > 64:
                raise InvalidArgument(f"expose: {name!r} is not a target name (1-64 characters)")
            try:
                self.targets[name] = parse_address(addr)
            except (FrontierError, ValueError, TypeError) as exc:
                raise InvalidArgument(f"expose[{name!r}]: {addr!r} is not a host:port ({exc})") from None
        self._slots = threading.BoundedSemaphore(self.max_streams)

    @staticmethod
    def wants(ev: StreamOpen) -> bool:
        """True for a stream the gateway opened to reach an exposed target."""
        return ev.service.startswith(EXPOSE_PREFIX) and ev.edge_id is None

    def open(self, client: "Client", link: "Link", ev: StreamOpen) -> None:
        """Runs on the reader thread: refuse at once, or hand the stream to a thread
        that connects to the local service and splices."""
        name = ev.service[len(EXPOSE_PREFIX):]
        target = self.targets.get(name)
        if target is None:
            link.send_quiet(StreamReset(ev.stream_id, ErrorCode.NOT_EXPOSED, f"this edge does not expose {name!r}"))
            return
        if not self._slots.acquire(blocking=False):
            link.send_quiet(StreamReset(ev.stream_id, ErrorCode.BUFFER_FULL, f"more than {self.max_streams} exposed connections"))
            return
        stream = Stream(client, link, ev.stream_id, window=client.stream_window, addr=ev.addr, service=ev.service)
        stream._on_accept(ev.window)
        link.streams[ev.stream_id] = stream  # a reset while we connect reaches it
        timeout = ev.timeout_ms / 1000 if ev.timeout_ms else client.timeout
        try:
            threading.Thread(target=self._serve, args=(client, link, stream, name, target, timeout),
                             name=f"frontier-expose-{name}", daemon=True).start()
        except RuntimeError:
            self._slots.release()
            stream._reset(ErrorCode.BUFFER_FULL, "cannot start a thread")

    def _serve(self, client: "Client", link: "Link", stream: Stream, name: str, target: tuple[str, int], timeout: float) -> None:
        try:
            try:
                sock = socket.create_connection(target, timeout=timeout)
            except OSError as exc:
                stream._reset(ErrorCode.BACKEND_UNREACHABLE, f"{name} ({target[0]}:{target[1]}) is unreachable: {exc}")
                return
            try:
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if stream._error is not None:  # the gateway gave up while we connected
                    return
                link.send_quiet(StreamAccept(stream.stream_id, client.stream_window))
                writer = threading.Thread(target=_stream_to_socket, args=(stream, sock), name=f"frontier-expose-{name}-w", daemon=True)
                writer.start()
                _socket_to_stream(sock, stream)
                writer.join()
            finally:
                sock.close()
        finally:
            stream.close()
            self._slots.release()


def _socket_to_stream(sock: socket.socket, stream: Stream) -> None:
    """The local service's bytes to the gateway; blocks while the gateway's window is full."""
    try:
        while True:
            data = sock.recv(CHUNK)
            if not data:
                stream.shutdown_write()
                return
            stream.sendall(data)
    except OSError:
        stream._reset(ErrorCode.CONNECTION_CLOSED, "the local service's connection failed")
    except FrontierError:
        _shutdown(sock, socket.SHUT_RDWR)  # the stream is gone: stop the other direction too


def _stream_to_socket(stream: Stream, sock: socket.socket) -> None:
    """The gateway's bytes to the local service; credit flows back as it takes them."""
    try:
        while True:
            data = stream.recv(CHUNK)
            if not data:
                _shutdown(sock, socket.SHUT_WR)
                return
            sock.sendall(data)
    except FrontierError:
        _shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        stream._reset(ErrorCode.CONNECTION_CLOSED, "the local service's connection failed")
        _shutdown(sock, socket.SHUT_RDWR)


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass
