"""One HTTPS request naming a server (SNI), for the TLS tests of the ingress."""

from __future__ import annotations

import socket
import ssl

from cryptography import x509


def https_get(port: int, cafile: str, server_name: str, path: str) -> tuple[int, bytes]:
    """(serial of the verified certificate served for ``server_name``, raw response)."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            serial = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    return serial, data
