"""Backend-wide authentication of an app: ``none``, ``bearer`` or ``basic``.

bcrypt is slow on purpose (tens of milliseconds per check). Checks run in the hub's
thread pool (bcrypt releases the GIL), at most :data:`BCRYPT_AT_ONCE` at a time, so
a flood of guesses cannot stall the event loop; a password that was verified is
remembered (by a keyed hash, for :data:`VERIFIED_TTL` seconds) so a browser that
sends it with every request pays the cost once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time

import bcrypt
import gevent
from gevent.lock import BoundedSemaphore

from frontier.config import AppAuth

#: bcrypt checks running at once (in the thread pool)
BCRYPT_AT_ONCE = 2
#: seconds a verified user:password stays verified without another bcrypt check
VERIFIED_TTL = 300.0
#: verified entries kept at most
VERIFIED_MAX = 4096

_bcrypt_slots = BoundedSemaphore(BCRYPT_AT_ONCE)
_cache_key = os.urandom(32)
_verified: dict[bytes, float] = {}


class AppAuthenticator:
    """Checks the ``Authorization`` header of requests to one app."""

    def __init__(self, auth: AppAuth, realm: str) -> None:
        self.kind = auth.kind
        self.realm = realm
        self._tokens = [token.encode() for token in auth.tokens]
        self._users: dict[bytes, bytes] = {}
        for line in auth.users:
            user, _, hashed = line.partition(":")
            self._users[user.encode()] = hashed.encode()

    @property
    def required(self) -> bool:
        """False for ``none``: requests pass untouched."""
        return self.kind != "none"

    def challenge(self) -> tuple[str, str]:
        """The ``WWW-Authenticate`` header of a 401."""
        scheme = "Basic" if self.kind == "basic" else "Bearer"
        return ("www-authenticate", f'{scheme} realm="{self.realm}"' + (', charset="UTF-8"' if scheme == "Basic" else ""))

    def check(self, authorization: bytes | None) -> bool:
        """True when the header carries valid credentials for this app."""
        if self.kind == "none":
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(b" ")
        value = value.strip()
        if self.kind == "bearer":
            if scheme.lower() != b"bearer":
                return False
            ok = False
            for token in self._tokens:  # compare with every token: no early exit timing
                ok |= hmac.compare_digest(token, value)
            return ok
        if scheme.lower() != b"basic":
            return False
        try:
            user, sep, password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        hashed = self._users.get(user)
        if not sep or hashed is None:
            return False
        return _bcrypt_check(password, hashed)


def _bcrypt_check(password: bytes, hashed: bytes) -> bool:
    key = hmac.new(_cache_key, hashed + b"\0" + password, hashlib.sha256).digest()
    now = time.monotonic()
    until = _verified.get(key)
    if until is not None and until > now:
        return True
    with _bcrypt_slots:
        try:
            ok = gevent.get_hub().threadpool.apply(bcrypt.checkpw, (password, hashed))
        except ValueError:
            return False
    if ok:
        if len(_verified) >= VERIFIED_MAX:
            for stale in [k for k, t in _verified.items() if t <= now] or list(_verified)[: VERIFIED_MAX // 4]:
                _verified.pop(stale, None)
        _verified[key] = now + VERIFIED_TTL
    return ok
