"""Certificates that keep themselves current: ACME (RFC 8555) for the apps' hostnames.

The protocol is certbot's ``acme`` package (JOSE, nonces, orders, polling); this
module decides what to issue and where to keep it:

- **Names**: every exact hostname of every app's frontends (a wildcard needs DNS-01,
  which the ingress does not do; serve those from certificate files).
- **HTTP-01**: the ingress answers ``/.well-known/acme-challenge/<token>`` itself on
  its HTTP listener. Tokens are kept in Redis too, so whichever node the CA reaches
  answers.
- **Cluster-wide**: the account key, its URL and every certificate (chain and key)
  live in Redis under ``<key_prefix>ingress:acme:``; every node loads what is there,
  so all serve the same certificate. One node issues a name at a time (a lock key).
- **Renewal**: every ``check_interval`` seconds a node loads newer certificates from
  Redis and renews those within ``renew_before`` days of expiry; new TLS connections
  get the new one, no restart.

The HTTPS listener picks a certificate by SNI: an ACME one for the name if there is
one, else the certificate files (``ingress.https.listen.tls``).
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import gevent
import josepy as jose
import redis
from acme import challenges, client, crypto_util, errors as acme_errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from frontier.config import Acme as AcmeConfig, IngressRedis, parse_addr

log = logging.getLogger("frontier.ingress.acme")

_PREFIX = "/.well-known/acme-challenge/"


class CertificateManager:
    """Issues, stores, loads and renews the ACME certificates of one ingress."""

    #: seconds one issuance may take before it is given up (and retried next check)
    issue_timeout = 90.0
    #: seconds a challenge token stays answerable
    token_ttl = 300
    #: longest wait, in seconds, before a name whose issuance keeps failing is tried again
    max_backoff = 6 * 3600.0

    def __init__(self, cfg: AcmeConfig, store_cfg: IngressRedis, hostnames: Callable[[], set[str]]) -> None:
        self.cfg = cfg
        host, port = parse_addr(store_cfg.addr, "ingress.redis.addr")
        self.redis = redis.Redis(host=host, port=port, db=store_cfg.db, username=store_cfg.username or None,
                                 password=store_cfg.password or None, socket_connect_timeout=2.0, socket_timeout=5.0)
        self.prefix = f"{store_cfg.key_prefix}ingress:acme:"
        self.hostnames = hostnames
        #: token -> key authorization, for challenges this node started
        self.tokens: dict[str, str] = {}
        self._contexts: dict[str, tuple[float, ssl.SSLContext]] = {}  # name -> (not_after, context)
        self._dir = tempfile.mkdtemp(prefix="frontier-acme-")  # ssl loads chains from files only
        os.chmod(self._dir, 0o700)
        self._greenlet: gevent.Greenlet | None = None
        #: how many certificates this node issued (renewals included)
        self.issued = 0
        #: name -> (failures in a row, monotonic time before which it is not tried again)
        self._backoff: dict[str, tuple[int, float]] = {}

    # -- life ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the check loop (the first check runs at once)."""
        self._greenlet = gevent.spawn(self._loop)

    def stop(self) -> None:
        """Stop checking; served certificates stay."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _loop(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # a bug or an unexpected answer must not end renewals
                log.exception("ACME check failed")
            gevent.sleep(self.cfg.check_interval)

    # -- what the listener asks -----------------------------------------------------------

    def context_for(self, name: str) -> ssl.SSLContext | None:
        """The context of the certificate for ``name`` (SNI), or None."""
        entry = self._contexts.get(name.lower().rstrip("."))
        return entry[1] if entry is not None else None

    def answer(self, target: str) -> str | None:
        """The key authorization for an HTTP-01 request target, else None."""
        if not target.startswith(_PREFIX):
            return None
        token = target[len(_PREFIX):].split("?", 1)[0]
        if not token or len(token) > 128:
            return None
        local = self.tokens.get(token)
        if local is not None:
            return local
        try:
            value = self.redis.get(self.prefix + "token:" + token)
        except redis.RedisError:
            return None
        return value.decode() if value else None

    # -- checking and issuing -------------------------------------------------------------

    def check(self) -> None:
        """Load certificates from Redis; issue or renew those missing or due."""
        renew_at = time.time() + self.cfg.renew_before * 86400
        for name in sorted(self.hostnames()):
            try:
                self._load(name)
                entry = self._contexts.get(name)
                failures, not_before = self._backoff.get(name, (0, 0.0))
                if (entry is None or entry[0] <= renew_at) and time.monotonic() >= not_before:
                    self._issue_locked(name)
            except (redis.RedisError, OSError, ssl.SSLError) as exc:
                log.warning("ACME: %s: %s", name, exc)

    def _load(self, name: str) -> None:
        stored = self.redis.hgetall(self.prefix + "cert:" + name)
        if not stored:
            return
        not_after = float(stored[b"not_after"])
        current = self._contexts.get(name)
        if current is not None and current[0] >= not_after:
            return
        chain, key = stored[b"chain"], stored[b"key"]
        path = os.path.join(self._dir, name)
        with open(path + ".pem", "wb") as f:
            f.write(chain)
        with open(os.open(path + ".key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.load_cert_chain(path + ".pem", path + ".key")
        self._contexts[name] = (not_after, ctx)
        log.info("ACME: serving a certificate for %s valid until %s", name,
                 datetime.fromtimestamp(not_after, timezone.utc).isoformat(timespec="seconds"))

    def _issue_locked(self, name: str) -> None:
        lock = self.prefix + "lock:" + name
        if not self.redis.set(lock, os.getpid(), nx=True, ex=int(self.issue_timeout) + 30):
            return  # another node is issuing it; its result arrives through Redis
        try:
            with gevent.Timeout(self.issue_timeout):
                chain, key_pem = self._issue(name)
        except (gevent.Timeout, acme_errors.Error, messages.Error, OSError, ValueError) as exc:
            # back off (1 min doubling to 6 h): a name that does not point here must not
            # hammer the CA (public CAs rate-limit failed validations)
            failures = self._backoff.get(name, (0, 0.0))[0] + 1
            delay = min(self.max_backoff, 60.0 * 2 ** (failures - 1))
            self._backoff[name] = (failures, time.monotonic() + delay)
            log.warning("ACME: issuing a certificate for %s failed (%s); next try in %.0fs", name, exc, delay)
            return
        finally:
            self.redis.delete(lock)
        self._backoff.pop(name, None)
        not_after = x509.load_pem_x509_certificate(chain).not_valid_after_utc.timestamp()
        self.redis.hset(self.prefix + "cert:" + name, mapping={"chain": chain, "key": key_pem, "not_after": str(not_after)})
        self.issued += 1
        self._load(name)

    def _client(self) -> client.ClientV2:
        key = self._account_key()
        verify: Any = self.cfg.ca_bundle or True
        net = client.ClientNetwork(key, user_agent="frontier-gevent", verify_ssl=verify)
        directory = client.ClientV2.get_directory(self.cfg.directory, net)
        acme_client = client.ClientV2(directory, net=net)
        url = self.redis.get(self.prefix + "account_url")
        if url:
            net.account = messages.RegistrationResource(uri=url.decode(), body=messages.Registration())
            return acme_client
        contact = messages.NewRegistration.from_data(email=self.cfg.email or None, terms_of_service_agreed=True)
        try:
            regr = acme_client.new_account(contact)
        except acme_errors.ConflictError as exc:  # the key has an account already
            regr = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
            net.account = regr
        self.redis.set(self.prefix + "account_url", regr.uri)
        return acme_client

    def _account_key(self) -> jose.JWKRSA:
        name = self.prefix + "account_key"
        pem = self.redis.get(name)
        if pem is None:
            fresh = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            candidate = fresh.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
            self.redis.set(name, candidate, nx=True)  # the first node's key wins
            pem = self.redis.get(name)
        return jose.JWKRSA(key=serialization.load_pem_private_key(pem, password=None))

    def _issue(self, name: str) -> tuple[bytes, bytes]:
        acme_client = self._client()
        cert_key = ec.generate_private_key(ec.SECP256R1())
        key_pem = cert_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        csr = crypto_util.make_csr(key_pem, [name])
        order = acme_client.new_order(csr)
        tokens: list[str] = []
        try:
            for authz in order.authorizations:
                for challb in authz.body.challenges:
                    if isinstance(challb.chall, challenges.HTTP01):
                        response, validation = challb.response_and_validation(acme_client.net.key)
                        token = challb.chall.encode("token")
                        self.tokens[token] = validation
                        self.redis.set(self.prefix + "token:" + token, validation, ex=self.token_ttl)
                        tokens.append(token)
                        acme_client.answer_challenge(challb, response)
                        break
                else:
                    raise ValueError(f"the ACME server offers no http-01 challenge for {name}")
            deadline = datetime.now() + timedelta(seconds=self.issue_timeout - 5)
            order = acme_client.poll_and_finalize(order, deadline)
        finally:
            for token in tokens:
                self.tokens.pop(token, None)
                self.redis.delete(self.prefix + "token:" + token)
        log.info("ACME: issued a certificate for %s", name)
        return order.fullchain_pem.encode(), key_pem
