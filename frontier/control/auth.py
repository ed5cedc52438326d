"""Optional bearer-token authentication, shared by the REST and gRPC front ends."""

from __future__ import annotations

import hmac
from typing import Iterable, Optional

#: environment variable with a bearer token: the gateway accepts it (besides
#: ``controlplane.auth.bearer_tokens``) and the CLI sends it
TOKEN_ENV = "FRONTIER_CONTROLPLANE_TOKEN"

#: REST paths that answer without a token (probes and scrapers carry none)
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: gRPC services that answer without a token (the standard health service, for probes)
EXEMPT_GRPC_SERVICES = frozenset({"grpc.health.v1.Health"})


class BearerTokens:
    """The accepted tokens; with none configured, authentication is off.

    Tokens are compared in constant time. ``check`` takes the raw
    ``Authorization`` header (or gRPC ``authorization`` metadata) value.
    """

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self._tokens = tuple(t.encode("utf-8") for t in tokens if t)

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a token."""
        return bool(self._tokens)

    def check(self, authorization: Optional[str]) -> bool:
        """True if auth is off, or ``authorization`` is ``Bearer <a configured token>``."""
        if not self._tokens:
            return True
        if not authorization:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        given = token.strip().encode("utf-8", "replace")
        ok = False
        for expected in self._tokens:  # no early exit: timing does not tell which token
            ok |= hmac.compare_digest(given, expected)
        return ok
