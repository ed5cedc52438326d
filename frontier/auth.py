"""Who may connect: edge tokens and service secrets, checked at the handshake.

Edge tokens are HMAC-SHA256 signed strings, carried in ``Hello.credentials``::

    fe1.<edge id, or * for any id>.<expiry, unix seconds; 0: never>.<signature>

The signature (base64url, no padding) covers everything before it, so an edge can
read its own token but cannot change the id or the expiry. Mint them where edges are
provisioned with :func:`mint_edge_token` or ``frontier-gevent token mint``; the
gateway verifies them with :class:`EdgeTokenAuthenticator` against
``edgebound.auth.secrets`` (the first secret mints, all verify, so a secret can be
rotated without cutting anyone off). Services present one of
``servicebound.auth.secrets`` verbatim (:class:`SharedSecretAuthenticator`); send it
over TLS.

Every failure raises :class:`~frontier.wire.errors.Unauthorized`: the gateway answers
``Refuse(UNAUTHORIZED)`` and counts it in ``frontier_connections_refused_total``.
Standard library only, no gevent: provisioning scripts may import it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol

from frontier.wire.errors import Unauthorized
from frontier.wire.events import ROLE_EDGE, ROLE_SERVICE, Hello

#: first field of every edge token: the format's version
TOKEN_PREFIX = "fe1"
#: longest credentials looked at; longer ones are refused before any work
MAX_CREDENTIALS = 512
#: environment variable ``token mint`` reads the secret from when no file is given
SECRET_ENV = "FRONTIER_EDGE_TOKEN_SECRET"
_U64 = 2**64


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def _sign(key: bytes, body: str) -> str:
    mac = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def mint_edge_token(secret: str | bytes, edge_id: int | None, ttl: float | None, *, now: float | None = None) -> str:
    """A token for edge ``edge_id`` (None: any id) valid for ``ttl`` seconds (None: no
    expiry, which only rotating the secret ends; avoid it)."""
    if edge_id is not None and (type(edge_id) is not int or not 0 <= edge_id < _U64):
        raise ValueError(f"edge_id must be an unsigned 64-bit int or None, not {edge_id!r}")
    if ttl is not None and not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
    expires = 0 if ttl is None else math.ceil((time.time() if now is None else now) + ttl)
    body = f"{TOKEN_PREFIX}.{'*' if edge_id is None else edge_id}.{expires}"
    return f"{body}.{_sign(_key(secret), body)}"


@dataclass(frozen=True, slots=True)
class EdgeClaims:
    """What a valid edge token says."""

    edge_id: int | None  #: the only id the edge may use; None: any
    expires: int  #: unix seconds; 0: never


def verify_edge_token(token: str | bytes, secrets: Iterable[str | bytes], *, now: float | None = None) -> EdgeClaims:
    """Check a token's form, signature (against each secret) and expiry; raise
    ``Unauthorized`` saying which failed."""
    if not token:
        raise Unauthorized("this gateway requires an edge token in the credentials")
    if len(token) > MAX_CREDENTIALS:
        raise Unauthorized("the edge token is malformed")
    try:
        text = token.decode("ascii") if isinstance(token, (bytes, bytearray)) else str(token)
    except UnicodeDecodeError:
        raise Unauthorized("the edge token is malformed") from None
    parts = text.split(".")
    if len(parts) != 4 or parts[0] != TOKEN_PREFIX:
        raise Unauthorized("the edge token is malformed")
    _, who, expiry, given = parts
    if not (who == "*" or (who.isdigit() and who.isascii() and len(who) <= 20)) or not (expiry.isdigit() and expiry.isascii() and len(expiry) <= 12):
        raise Unauthorized("the edge token is malformed")
    body = text[: -len(given) - 1]
    given_bytes = given.encode("ascii")
    valid = False
    for secret in secrets:  # no early exit: timing does not tell which secret matched
        valid |= hmac.compare_digest(_sign(_key(secret), body).encode("ascii"), given_bytes)
    if not valid:
        raise Unauthorized("the edge token's signature is not valid")
    edge_id = None if who == "*" else int(who)
    if edge_id is not None and edge_id >= _U64:
        raise Unauthorized("the edge token is malformed")
    expires = int(expiry)
    if expires and (time.time() if now is None else now) >= expires:
        raise Unauthorized(f"the edge token expired at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))}")
    return EdgeClaims(edge_id, expires)


class Authenticator(Protocol):
    """Checks a ``Hello`` before anything else of the handshake runs."""

    def authenticate(self, hello: Hello) -> EdgeClaims | None:
        """Raise ``Unauthorized`` to refuse; return what the credentials grant (the
        edge id they bind the connection to, when they expire), or None."""
        ...


class EdgeTokenAuthenticator:
    """Edges must present a valid token; a token bound to an id gives the edge that id
    (a ``Hello`` asking for another id is refused)."""

    def __init__(self, secrets: Iterable[str | bytes]) -> None:
        self._secrets = tuple(_key(s) for s in secrets)
        if not self._secrets:
            raise ValueError("at least one secret is needed")

    def authenticate(self, hello: Hello) -> EdgeClaims:
        claims = verify_edge_token(hello.credentials, self._secrets)
        if claims.edge_id is not None and hello.edge_id is not None and hello.edge_id != claims.edge_id:
            raise Unauthorized(f"the edge token is for edge {claims.edge_id}, not {hello.edge_id}")
        return claims


class SharedSecretAuthenticator:
    """Peers must present one of the configured secrets verbatim (compared in constant time)."""

    def __init__(self, secrets: Iterable[str | bytes], role: str = ROLE_SERVICE) -> None:
        self._secrets = tuple(_key(s) for s in secrets)
        self._role = role
        if not self._secrets:
            raise ValueError("at least one secret is needed")

    def authenticate(self, hello: Hello) -> EdgeClaims | None:
        given = hello.credentials
        if not given:
            raise Unauthorized(f"this gateway requires a {self._role} secret in the credentials")
        ok = False
        for secret in self._secrets:
            ok |= hmac.compare_digest(given, secret)
        if not ok:
            raise Unauthorized(f"the {self._role} secret is wrong")
        return None


def authenticators(config: Any) -> Mapping[str, Authenticator]:
    """The authenticators a gateway's config turns on, by role."""
    out: dict[str, Authenticator] = {}
    if config.edgebound.auth.enable:
        out[ROLE_EDGE] = EdgeTokenAuthenticator(config.edgebound.auth.secrets)
    if config.servicebound.auth.enable:
        out[ROLE_SERVICE] = SharedSecretAuthenticator(config.servicebound.auth.secrets)
    return out


# -- command line: frontier-gevent token mint|verify --------------------------------------


def add_token_parser(commands: Any) -> None:
    """Add ``token mint`` and ``token verify`` to ``frontier-gevent``'s subcommands."""
    token = commands.add_parser("token", help="mint or check edge tokens (edgebound.auth)")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    mint = actions.add_parser(
        "mint", help="print a signed edge token",
        description="Print an edge token signed with the secret from --secret-file, "
        f"${SECRET_ENV}, or the first of edgebound.auth.secrets in --config (in that order).",
    )
    who = mint.add_mutually_exclusive_group(required=True)
    who.add_argument("--edge-id", type=int, metavar="ID", help="the only edge id the token allows")
    who.add_argument("--any-edge", action="store_true", help="a token for any edge id (the id is assigned as usual)")
    mint.add_argument("--ttl", type=float, default=86400.0, metavar="SECONDS",
                      help="seconds the token is valid (default: one day; 0: never expires)")
    _add_secret_arguments(mint)
    mint.set_defaults(func=_mint)
    verify = actions.add_parser("verify", help="check a token and print what it allows",
                                description="Exit 0 and print the claims if TOKEN is valid, 1 if not.")
    verify.add_argument("token", metavar="TOKEN")
    _add_secret_arguments(verify)
    verify.set_defaults(func=_verify)


def _add_secret_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret-file", metavar="FILE", help="file holding the secret (surrounding whitespace ignored)")
    parser.add_argument("--config", metavar="FILE", help="frontier.yaml whose edgebound.auth.secrets to use")


def _secrets(args: argparse.Namespace) -> list[str]:
    from frontier.wire.errors import ConfigError

    if args.secret_file:
        try:
            with open(args.secret_file, encoding="utf-8") as handle:
                return [handle.read().strip()]
        except OSError as exc:
            raise ConfigError(f"{args.secret_file}: cannot read the secret: {exc.strerror or exc}") from None
    if os.environ.get(SECRET_ENV):
        return [os.environ[SECRET_ENV]]
    if args.config:
        from frontier.config import load_config

        secrets = list(load_config(args.config, warn=lambda message: None).edgebound.auth.secrets)
        if secrets:
            return secrets
        raise ConfigError(f"{args.config}: edgebound.auth.secrets is empty; put a secret of at least 16 characters "
                          "there (openssl rand -hex 16) and turn on edgebound.auth.enable for the gateway, "
                          f"or give the secret with --secret-file or {SECRET_ENV}")
    raise ConfigError(f"no secret: give --secret-file, set {SECRET_ENV}, or give --config")


def _mint(args: argparse.Namespace) -> int:
    from frontier.wire.errors import ConfigError

    try:
        secret = _secrets(args)[0]
        token = mint_edge_token(secret, None if args.any_edge else args.edge_id, args.ttl or None)
    except (ConfigError, ValueError) as exc:
        print(f"frontier-gevent: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from frontier.wire.errors import ConfigError

    try:
        claims = verify_edge_token(args.token.strip(), _secrets(args))
    except ConfigError as exc:
        print(f"frontier-gevent: {exc}", file=sys.stderr)
        return 2
    except Unauthorized as exc:
        print(f"invalid: {exc.message}")
        return 1
    expires = "never" if not claims.expires else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims.expires))
    print(f"valid: edge {'any' if claims.edge_id is None else claims.edge_id}, expires {expires}")
    return 0
