"""Dialling the gateway: address parsing, TCP (and TLS) connect with a deadline."""

from __future__ import annotations

import socket
import ssl
from typing import Union

from frontier.wire.errors import ConnectionClosed, InvalidArgument, Timeout

Address = Union[str, tuple[str, int]]


def parse_address(addr: Address) -> tuple[str, int]:
    """``"host:port"`` or ``(host, port)`` -> ``(host, port)``; ``[::1]:80`` works too."""
    if isinstance(addr, tuple):
        host, port = addr
        return str(host), int(port)
    if not isinstance(addr, str) or ":" not in addr:
        raise InvalidArgument(f"address must be 'host:port' or (host, port), not {addr!r}")
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        return host, int(port)
    except ValueError:
        raise InvalidArgument(f"bad port in address {addr!r}") from None


def dial(addr: Address, timeout: float, ssl_context: ssl.SSLContext | None = None) -> socket.socket:
    """Connect to ``addr`` within ``timeout`` seconds; raise ``Timeout`` or ``ConnectionClosed``."""
    host, port = parse_address(addr)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        raise Timeout(f"connecting to {host}:{port} took longer than {timeout}s") from None
    except OSError as exc:
        raise ConnectionClosed(f"cannot connect to {host}:{port}: {exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ssl_context is not None:
        try:
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            raise ConnectionClosed(f"TLS handshake with {host}:{port} failed: {exc}") from None
    return sock
