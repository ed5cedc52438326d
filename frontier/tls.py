"""TLS for the gateway's listeners: contexts built from a ``tls`` block, re-read when
the certificate files change.

A :class:`ServerTLS` belongs to one listener. :meth:`ServerTLS.context` is asked once
per accepted connection and returns the context to wrap it with; at most once per
:attr:`ServerTLS.check_interval` it looks at the files' modification times (a few
``stat`` calls, never per frame) and, when any changed, builds a new context. A new
context only serves new connections; open ones keep theirs. A rebuild that fails (a
key written after its certificate, say) keeps the old context and is retried.

Several ``certs`` pairs: the first is the default; a client that names a host (SNI)
gets the first pair whose certificate covers that name, as Go's ``tls.Config``
picks among its ``Certificates``. As in Go, TLS 1.2 is the oldest version accepted.

Standard library only; under the gateway's monkey-patched process ``ssl`` is
gevent's, so handshakes are cooperative.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from typing import Sequence

from frontier.config import TLS
from frontier.wire.errors import ConfigError

log = logging.getLogger("frontier.tls")


def _names(certfile: str) -> tuple[str, ...]:
    """DNS names (and IP addresses) a certificate covers, lower-cased; () if unknown."""
    try:
        decoded = ssl._ssl._test_decode_cert(certfile)  # type: ignore[attr-defined]
    except Exception:  # the private helper is missing or the file is odd: no SNI match
        return ()
    names = [value.lower() for kind, value in decoded.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]
    if not names:
        for rdn in decoded.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    names.append(value.lower())
    return tuple(names)


def _covers(pattern: str, name: str) -> bool:
    """Does a certificate name (``*.example.com`` allowed) cover ``name``?"""
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return False


def build_server_context(tls: TLS, *, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A server context for an enabled ``tls`` block (raises ``ssl.SSLError``/``OSError``
    when a file is unreadable or a key does not match its certificate)."""
    contexts: list[tuple[ssl.SSLContext, tuple[str, ...]]] = []
    for pair in tls.certs:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(pair.cert, pair.key)
        if tls.mtls:
            ctx.verify_mode = ssl.CERT_REQUIRED
            for ca in tls.ca_certs:
                ctx.load_verify_locations(ca)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        contexts.append((ctx, _names(pair.cert)))
    if not contexts:
        raise ConfigError("tls.certs: expected at least one cert/key pair")
    main = contexts[0][0]
    if len(contexts) > 1:

        def pick(sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            if not server_name:
                return None
            wanted = server_name.lower()
            for ctx, names in contexts:
                if any(_covers(pattern, wanted) for pattern in names):
                    if ctx is not main:
                        sock.context = ctx
                    return None
            return None

        main.sni_callback = pick
    return main


class ServerTLS:
    """The TLS of one listener: its current context, rebuilt when its files change."""

    #: seconds between looks at the certificate files' modification times
    check_interval = 1.0

    def __init__(self, tls: TLS, where: str, *, alpn: Sequence[str] = ()) -> None:
        self.tls = tls
        self.where = where  #: the listener, for log lines (``edgebound``)
        self._alpn = tuple(alpn)
        self._files = [name for pair in tls.certs for name in (pair.cert, pair.key)]
        if tls.mtls:
            self._files += list(tls.ca_certs)
        self._signature = self._stat()
        self._failed: tuple | None = None
        try:
            self._context = build_server_context(tls, alpn=self._alpn)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{where}.listen.tls: cannot load the certificates: {exc}") from None
        self._checked = time.monotonic()
        #: how many times the files were re-read successfully
        self.reloads = 0

    def _stat(self) -> tuple:
        out = []
        for name in self._files:
            try:
                st = os.stat(name)
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def context(self) -> ssl.SSLContext:
        """The context for a connection accepted now."""
        now = time.monotonic()
        if now - self._checked >= self.check_interval:
            self._checked = now
            self.refresh()
        return self._context

    def refresh(self) -> bool:
        """Rebuild the context if a file changed; True if a new context is in use."""
        signature = self._stat()
        if signature == self._signature:
            return False
        try:
            context = build_server_context(self.tls, alpn=self._alpn)
        except (OSError, ssl.SSLError, ConfigError) as exc:
            if signature != self._failed:  # once per state of the files
                self._failed = signature
                log.warning("%s: cannot reload the TLS certificates (%s); still serving the previous ones", self.where, exc)
            return False
        self._context, self._signature, self._failed = context, signature, None
        self.reloads += 1
        log.info("%s: TLS certificates reloaded; new connections get them", self.where)
        return True

