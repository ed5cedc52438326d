"""Byte pipes to backends, one shape for all: ``sendall(data, timeout)``,
``recv(n, timeout)``, ``shutdown_write()``, ``close()``; failures are typed
(:class:`~frontier.wire.errors.Timeout`, :class:`~frontier.wire.errors.ConnectionClosed`).

An edge's service is reached through a
:class:`~frontier.exchange.gateway_stream.GatewayStream` (same shape); a plain HTTP
upstream through a :class:`SocketPipe`.
"""

from __future__ import annotations

import socket
import ssl
from typing import Protocol

from frontier.sdk.transport import dial
from frontier.wire.errors import ConnectionClosed, Timeout


class Pipe(Protocol):
    """What the proxy needs from a connection to a backend."""

    def sendall(self, data: bytes, timeout: float | None = None) -> None:
        """Send every byte within ``timeout``."""

    def recv(self, bufsize: int, timeout: float | None = None) -> bytes:
        """Some bytes, ``b""`` at the end; ``Timeout`` after ``timeout`` seconds."""

    def shutdown_write(self) -> None:
        """Half-close."""

    def close(self) -> None:
        """Release the pipe."""


class SocketPipe:
    """A (gevent) socket as a :class:`Pipe`."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.bytes_in = 0
        self.bytes_out = 0

    @classmethod
    def connect(cls, host: str, port: int, timeout: float) -> "SocketPipe":
        """Connect within ``timeout``; ``Timeout`` or ``ConnectionClosed`` on failure."""
        return cls(dial((host, port), timeout), f"{host}:{port}")

    def sendall(self, data: bytes, timeout: float | None = None) -> None:
        """Send every byte within ``timeout`` seconds (per blocking write)."""
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(data)
            self.bytes_out += len(data)
        except socket.timeout:
            raise Timeout(f"{self.peer} did not read in time") from None
        except OSError as exc:
            raise ConnectionClosed(f"writing to {self.peer} failed: {exc.strerror or exc}") from None

    def recv(self, bufsize: int, timeout: float | None = None) -> bytes:
        """Some bytes (``b""`` at the end) within ``timeout`` seconds."""
        try:
            self.sock.settimeout(timeout)
            data = self.sock.recv(bufsize)
        except socket.timeout:
            raise Timeout(f"no data from {self.peer} in time") from None
        except OSError as exc:
            raise ConnectionClosed(f"reading from {self.peer} failed: {exc.strerror or exc}") from None
        self.bytes_in += len(data)
        return data

    def shutdown_write(self) -> None:
        """Half-close the socket (not a TLS one: its shutdown would drop the TLS layer
        under the other direction; it is closed whole when the connection ends)."""
        if isinstance(self.sock, ssl.SSLSocket):
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        """Close the socket."""
        try:
            self.sock.close()
        except OSError:
            pass
