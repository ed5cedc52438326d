"""Dialling the gateway: address parsing, TCP (and TLS) connect with a deadline,
and the client TLS context the SDK's ``tls_*`` options build.

TLS runs in memory (:class:`TLSSocket`: an ``ssl.SSLObject`` between two
``MemoryBIO`` buffers over the plain socket) rather than on an ``ssl.SSLSocket``: a
connection is read by one thread while others write to it, and OpenSSL does not
allow one ``SSL`` object to be read and written by two threads at once. Here every
TLS operation happens under a short lock and never waits on the network; only the
plain socket's ``recv`` and ``sendall`` wait.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any, Union

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


def format_address(addr: Address) -> str:
    """``addr`` as ``host:port`` text, for messages."""
    if isinstance(addr, tuple):
        host, port = addr
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(addr)


def tls_context(*, ca: str | None = None, cert: str | None = None, key: str | None = None,
                insecure_skip_verify: bool = False) -> ssl.SSLContext:
    """A client TLS context: trust the CA certificates in ``ca`` (a PEM file; the
    system's store when None), present ``cert``/``key`` (PEM files) when the gateway
    requires mTLS, or verify nothing with ``insecure_skip_verify`` (tests only).
    TLS 1.2 at least, as the gateway."""
    try:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key)
        elif key:
            raise InvalidArgument("a TLS key was given without its certificate (tls_cert)")
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load the TLS files: {exc}") from None
    return ctx


def dial(addr: Address, timeout: float, ssl_context: ssl.SSLContext | None = None,
         server_hostname: str | None = None) -> socket.socket:
    """Connect to ``addr`` within ``timeout`` seconds (the TLS handshake included);
    raise ``Timeout`` or ``ConnectionClosed``. ``server_hostname`` is the name the
    certificate must carry (default: the host of ``addr``)."""
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
            tls = TLSSocket(sock, ssl_context, server_hostname or host)
            tls.handshake()
        except socket.timeout:
            sock.close()
            raise Timeout(f"the TLS handshake with {host}:{port} took longer than {timeout}s") from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            sock.close()
            hint = ""
            if getattr(exc, "reason", None) in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
                hint = "; the peer does not speak TLS (a frontier listener without TLS? then connect without tls=/tls_ca=)"
            raise ConnectionClosed(f"TLS handshake with {host}:{port} failed: {exc}{hint}") from None
        return tls  # type: ignore[return-value]
    return sock


class TLSSocket:
    """The client end of a TLS connection over a plain socket, safe for one reading
    thread and any number of writing threads (see the module docstring).

    It has the few socket methods the SDK uses (``recv``, ``sendall``,
    ``settimeout``, ``shutdown``, ``close``) plus ``getpeercert``, ``version`` and
    ``cipher`` of an ``ssl.SSLSocket``.
    """

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None) -> None:
        self.sock = sock
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=False, server_hostname=server_hostname)
        self._tls_lock = threading.Lock()  # the SSLObject and its BIOs; never held while waiting on I/O
        self._send_lock = threading.Lock()  # ciphertext leaves in the order it was made (taken first)

    def handshake(self) -> None:
        """Run the TLS handshake (within the socket's timeout)."""
        while True:
            with self._tls_lock:
                try:
                    self._obj.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
            self._flush()
            if done:
                return
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionClosed("the gateway closed the connection during the TLS handshake")
            with self._tls_lock:
                self._in.write(data)

    def _flush(self) -> None:
        """Send whatever TLS produced (handshake messages, records, alerts) in order."""
        with self._send_lock:
            with self._tls_lock:
                data = self._out.read()
            if data:
                self.sock.sendall(data)

    def sendall(self, data: bytes) -> None:
        """Encrypt and send ``data`` whole."""
        with self._send_lock:
            with self._tls_lock:
                self._obj.write(data)
                out = self._out.read()
            self.sock.sendall(out)

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` decrypted bytes; ``b""`` when the peer closed. Waits (and
        times out) as the plain socket does."""
        while True:
            with self._tls_lock:
                try:
                    data = self._obj.read(bufsize)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    data = b""
                pending = self._out.pending
            if pending:  # e.g. an answer to a key update: keep it in order with other writes
                self._flush()
            if data is not None:
                return data
            raw = self.sock.recv(max(bufsize, 1 << 14))
            with self._tls_lock:
                if raw:
                    self._in.write(raw)
                else:
                    self._in.write_eof()

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def detach(self) -> int:
        return self.sock.detach()

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self._obj.getpeercert(binary_form)

    def version(self) -> str | None:
        return self._obj.version()

    def cipher(self) -> tuple | None:
        return self._obj.cipher()
