"""One schema for the gateway's configuration: YAML file, environment, validation.

The file format is the Go Frontier's ``frontier.yaml`` as it is (``etc/frontier.yaml``
is a documented example).  Every section is a frozen dataclass whose field names are
the YAML keys, so ``config.edgebound.listen.addr`` reads like the file.  ``limits`` is
our own section (the Go original has no such tunables); ``mqm`` is parsed by
:func:`frontier.mqm.config.parse_mqm`.

Precedence, lowest first: built-in defaults, the YAML file, ``FRONTIER__*``
environment variables, command-line flags (``--log-level``).

Environment overrides
    ``FRONTIER__<SECTION>__<KEY>[__<KEY>...]=<value>`` sets one key.  Double
    underscores separate the levels of nesting; names are case-insensitive; the value
    is parsed as YAML, so ``true``, ``42``, ``1.5`` and ``[a, b]`` keep their types::

        FRONTIER__EDGEBOUND__LISTEN__ADDR=0.0.0.0:4000
        FRONTIER__EXCHANGE__HASHBY=random
        FRONTIER__LIMITS__MAX_FRAME_SIZE=65536
        FRONTIER__CONTROLPLANE__AUTH__BEARER_TOKENS='[token-a, token-b]'

Numbers follow YAML 1.2: ``10:30`` and ``0123`` stay strings (no base-60, no octal).

Go's environment variables
    The variables the Go Frontier reads (and its Helm chart and operator set) keep
    their Go meaning, below the ``FRONTIER__*`` overrides: see :data:`GO_ENV`.

Errors and warnings
    A wrong value (wrong type, unknown choice, bad ``host:port``, negative limit)
    raises :class:`~frontier.wire.errors.ConfigError` whose message starts with the
    key path and says what was expected.  So does a key the schema does not know
    (:class:`UnknownKey`, naming the nearest known key), in the file or from a
    ``FRONTIER__*`` variable (then naming the variable).  A key the Go Frontier's own
    files carry that frontier-gevent does not implement (a section's ``_GO_KEYS``),
    or a Go feature that is not implemented being turned on, is accepted and
    reported through the ``warn`` callback (default: a warning on the
    ``frontier.config`` logger), naming the key path.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import logging
import math
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from frontier.control.auth import TOKEN_ENV
from frontier.goenv import LOG_GO_ENV, GoVar, apply_go_env, frontlas_addr_var, port_var, value_var
from frontier.mqm.config import MQMConfig, parse_mqm
from frontier.wire.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "GO_ENV",
    "Auth",
    "Bypass",
    "CertKey",
    "Config",
    "ConfigError",
    "ControlPlane",
    "Daemon",
    "Dao",
    "Dial",
    "EdgeAuth",
    "Edgebound",
    "Exchange",
    "Frontlas",
    "Frontend",
    "Ingress",
    "IngressApp",
    "FrontlasMetrics",
    "Limits",
    "Listen",
    "Log",
    "LogFile",
    "Observability",
    "PProf",
    "RLimit",
    "ServiceAuth",
    "Servicebound",
    "TLS",
    "UnknownKey",
    "Warn",
    "apply_env_overrides",
    "load_config",
    "parse_addr",
    "parse_app",
    "read_yaml",
]

#: A callback that reports one accepted-but-ignored key; the text starts with its path.
Warn = Callable[[str], None]

#: Environment variables with this prefix override keys (see the module docstring).
ENV_PREFIX = "FRONTIER__"

#: This variable, when set, overrides ``limits.drain_timeout`` (seconds), above every
#: other source: orchestrators set it next to their own termination grace period.
DRAIN_ENV = "FRONTIER_DRAIN_SECONDS"

_log = logging.getLogger("frontier.config")


def _log_warning(message: str) -> None:
    _log.warning("%s", message)


# -- YAML with 1.2-style numbers ------------------------------------------------------

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


class _Loader(yaml.SafeLoader):
    """SafeLoader whose numbers are YAML 1.2's: no base-60 (``10:30``), no octal (``0123``)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT_TAG,
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


# -- small helpers ----------------------------------------------------------------------


def _show(value: Any) -> str:
    """A short rendering of a wrong value for an error message."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _expected(path: str, what: str, value: Any) -> ConfigError:
    return ConfigError(f"{path}: expected {what}, got {_show(value)}")


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


class UnknownKey(ConfigError):
    """A key the schema does not know (a typo, most likely). ``path`` is where it
    was found, ``nearest`` the closest known key at that level ("" if none is close)."""

    def __init__(self, path: str, key: str, known: list[str]) -> None:
        self.path = path
        self.nearest = nearest(key, known)
        if self.nearest:
            hint = f"did you mean {self.nearest!r}?"
        else:
            hint = "known keys here: " + ", ".join(sorted(known))
        super().__init__(f"{path}: unknown key ({hint})")


def nearest(word: str, known: list[str]) -> str:
    """The known word closest to ``word`` by ``difflib``, or "" if none is close."""
    matches = difflib.get_close_matches(word.lower(), known, n=1, cutoff=0.6)
    return matches[0] if matches else ""


_ADDR_RE = re.compile(r"^(?:\[(?P<v6>[^\[\]]*)\]|(?P<host>[^:\[\]]*)):(?P<port>[0-9]{1,5})$")


def parse_addr(addr: str, path: str = "addr") -> tuple[str, int]:
    """Split ``"host:port"`` (or ``"[v6]:port"``, or ``":port"``) into ``(host, port)``.

    Port 0 is allowed (the OS picks one); an empty host means all interfaces. Raises
    :class:`ConfigError` naming ``path`` when ``addr`` is not of that form.
    """
    if not isinstance(addr, str):
        raise _expected(path, '"host:port"', addr)
    match = _ADDR_RE.match(addr.strip())
    port = int(match["port"]) if match else -1
    if not match or port > 65535:
        raise _expected(path, '"host:port" with a port in 0..65535', addr)
    host = match["v6"] if match["v6"] is not None else match["host"]
    return host, port


def _listen_addr(value: str, path: str) -> str:
    parse_addr(value, path)
    return value


def _dial_addr(value: str, path: str) -> str:
    host, port = parse_addr(value, path)
    if not host or port == 0:
        raise _expected(path, '"host:port" with a host and a port in 1..65535', value)
    return value


def _optional_dial_addr(value: str, path: str) -> str:
    return _dial_addr(value, path) if value else value


def _dial_addrs(value: tuple[str, ...], path: str) -> tuple[str, ...]:
    for index, item in enumerate(value):
        _dial_addr(item, f"{path}[{index}]")
    return value


def _non_empty_strings(value: tuple[str, ...], path: str) -> tuple[str, ...]:
    for index, item in enumerate(value):
        if not item:
            raise _expected(f"{path}[{index}]", "a non-empty string", item)
    return value


def _opt(default: Any, **checks: Any) -> Any:
    """A dataclass field with a default and validation metadata.

    ``checks`` keys: ``aliases`` (dict, other spelling -> canonical value),
    ``choices`` (allowed values, strings compared lower-cased), ``min`` (inclusive),
    ``above`` (exclusive), ``check`` (``fn(value, path) -> value``), ``hint`` (added
    to the message when a value is not among ``choices``).
    """
    if dataclasses.is_dataclass(default):
        return field(default_factory=lambda: default, metadata=checks)
    # MISSING as the default makes a required (keyword-only) field
    return field(default=default, metadata=checks)


def _check_value(value: Any, meta: Mapping[str, Any], path: str) -> Any:
    """Apply a field's metadata checks (see :func:`_opt`) to an already-typed value."""
    if "choices" in meta and isinstance(value, str):
        value = value.strip().lower()
    if "aliases" in meta:
        value = meta["aliases"].get(value, value)
    if "choices" in meta and value not in meta["choices"]:
        hint = f" ({meta['hint']})" if "hint" in meta else ""
        raise _expected(path, "one of " + ", ".join(meta["choices"]) + hint, value)
    if "min" in meta and value < meta["min"]:
        raise _expected(path, f"a number >= {meta['min']}", value)
    if "above" in meta and value <= meta["above"]:
        raise _expected(path, f"a number > {meta['above']}", value)
    if "check" in meta:
        value = meta["check"](value, path)
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(hint: Any, value: Any, path: str, current: Any, warn: Warn) -> Any:
    """Turn one raw YAML value into the field's type; ``null`` keeps the default."""
    if dataclasses.is_dataclass(hint):
        return _parse_section(hint, value, path, current, warn)
    if value is None:
        return current
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _expected(path, "true or false", value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _expected(path, "an integer", value)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _expected(path, "a finite number", value)
            return float(value)
        raise _expected(path, "a number", value)
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # as Go's yaml does for `frontier_id: 7`
        raise _expected(path, "a string (quote it)", value)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, str) and item is str:
            value = [value]  # a lone string is a list of one
        if not isinstance(value, list):
            raise _expected(path, "a list", value)
        items = []
        for index, raw in enumerate(value):
            item_path = f"{path}[{index}]"
            if dataclasses.is_dataclass(item):
                if not isinstance(raw, Mapping):
                    raise _expected(item_path, "a mapping", raw)
                items.append(_parse_section(item, raw, item_path, item(), warn))
            elif raw is None:
                raise _expected(item_path, "a value", raw)
            else:
                items.append(_coerce(item, raw, item_path, None, warn))
        return tuple(items)
    raise TypeError(f"{path}: no coercion for type {hint!r}")  # a bug in this module


def _parse_section(cls: type, raw: Any, path: str, base: Any, warn: Warn) -> Any:
    """Validate one YAML mapping into ``cls``, starting from ``base`` (its defaults)."""
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        raise _expected(path or "config", "a mapping of keys", raw)
    normalize = getattr(cls, "_normalize", None)
    if normalize is not None:
        raw = normalize(raw, path, warn)
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    go_keys: tuple[str, ...] = getattr(cls, "_GO_KEYS", ())
    for key, value in raw.items():
        key_path = _join(path, key)
        spec = fields.get(key) if isinstance(key, str) else None
        if spec is None:
            if key in go_keys:
                warn(f"{key_path}: a Go Frontier key frontier-gevent does not implement, ignored")
                continue
            raise UnknownKey(key_path, str(key), [name.removesuffix("_") for name in fields])
        typed = _coerce(hints[key], value, key_path, getattr(base, key), warn)
        changes[key] = _check_value(typed, spec.metadata, key_path)
    section = dataclasses.replace(base, **changes) if changes else base
    validate = getattr(section, "_validate", None)
    if validate is not None:
        validate(path, warn)
    return section


def _plain(value: Any) -> Any:
    """Dataclasses, tuples and mappings as plain dicts/lists, for YAML output.

    A field named with a trailing underscore because its key is a Python keyword
    (``async_``) is written under the key (``async``).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name.removesuffix("_"): _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


#: shortest shared secret accepted (HMAC keys and service secrets)
MIN_SECRET_LENGTH = 16


def _secrets(value: tuple[str, ...], path: str) -> tuple[str, ...]:
    for index, item in enumerate(value):
        if len(item) < MIN_SECRET_LENGTH:
            raise _expected(f"{path}[{index}]", f"a secret of at least {MIN_SECRET_LENGTH} characters", "<hidden>")
    return value


def _networks(value: tuple[str, ...], path: str) -> tuple[str, ...]:
    import ipaddress

    for index, item in enumerate(value):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise _expected(f"{path}[{index}]", "an IP address or CIDR network (10.0.0.0/8, ::1)", item) from None
    return value


def _check_files(paths: Mapping[str, str]) -> None:
    for path, name in paths.items():
        if not os.path.isfile(name):
            raise ConfigError(f"{path}: file not found: {name!r}")


_NO_UDP = "Go's udp is not implemented"


# -- sections shared by several places --------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CertKey:
    """One certificate and its private key (PEM file paths)."""

    cert: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TLS:
    """TLS of one listener or dialer (``...tls``), Go's ``config.TLS``.

    Files are checked to exist when ``enable`` is true.
    """

    #: turn TLS on (off by default)
    enable: bool = False
    #: listeners: require and verify a client certificate against ``ca_certs``;
    #: dialers: present ``certs[0]`` to the server
    mtls: bool = False
    #: CA certificate files (PEM): listeners verify clients with them, dialers the server
    ca_certs: tuple[str, ...] = ()
    #: certificate/key pairs (PEM); a listener may hold several and picks one by the
    #: name the client asks for (SNI), the first by default. A listener re-reads its
    #: files when they change: new connections get the new certificate, open ones stay
    certs: tuple[CertKey, ...] = ()
    #: dialers only: do not verify the server's certificate (listeners ignore it, as Go does)
    insecure_skip_verify: bool = False

    def _check(self, path: str, *, server: bool) -> None:
        """Check the files of an enabled TLS block; ``server`` for a listener."""
        if not self.enable:
            return
        if server and not self.certs:
            raise ConfigError(f"{path}.certs: expected at least one cert/key pair when {path}.enable is true")
        if self.mtls and not server and not self.certs:
            raise ConfigError(f"{path}.certs: expected a client cert/key pair when {path}.mtls is true")
        if self.mtls and server and not self.ca_certs:
            raise ConfigError(f"{path}.ca_certs: expected at least one CA file when {path}.mtls is true")
        files: dict[str, str] = {}
        for index, pair in enumerate(self.certs):
            for name in ("cert", "key"):
                item_path = f"{path}.certs[{index}].{name}"
                if not getattr(pair, name):
                    raise ConfigError(f"{item_path}: expected a file path")
                files[item_path] = getattr(pair, name)
        for index, name in enumerate(self.ca_certs):
            files[f"{path}.ca_certs[{index}]"] = name
        _check_files(files)


@dataclass(frozen=True, slots=True, kw_only=True)
class Listen:
    """Where a listener binds (``...listen``), Go's ``config.Listen``."""

    #: only ``tcp`` (Go's ``udp`` is not implemented)
    network: str = _opt("tcp", choices=("tcp",), aliases={"": "tcp"}, hint=_NO_UDP)
    #: ``host:port`` to bind; port 0 lets the OS pick one
    addr: str = _opt(dataclasses.MISSING, check=_listen_addr)
    #: ``host:port`` clients should use when it differs from ``addr`` (told to Frontlas)
    advertised_addr: str = _opt("", check=_optional_dial_addr)
    tls: TLS = _opt(TLS())

    @property
    def host_port(self) -> tuple[str, int]:
        """``addr`` split by :func:`parse_addr`."""
        return parse_addr(self.addr)

    def _validate(self, path: str, warn: Warn) -> None:
        self.tls._check(_join(path, "tls"), server=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial:
    """Where a client connects (``...dial``), Go's ``config.Dial``.

    ``addr`` (as the Go README spells it) is accepted for ``addrs``, string or list.
    """

    #: only ``tcp``
    network: str = _opt("tcp", choices=("tcp",), aliases={"": "tcp"}, hint=_NO_UDP)
    #: ``host:port`` addresses, tried in order
    addrs: tuple[str, ...] = _opt((), check=_dial_addrs)
    #: ``host:port`` this process is reachable at, when it differs from what peers see
    advertised_addr: str = _opt("", check=_optional_dial_addr)
    tls: TLS = _opt(TLS())

    @staticmethod
    def _normalize(raw: Mapping[Any, Any], path: str, warn: Warn) -> Mapping[Any, Any]:
        if "addr" not in raw:
            return raw
        out = dict(raw)
        alias = out.pop("addr")
        if out.get("addrs") is not None and alias is not None and out["addrs"] != alias:
            raise ConfigError(f"{_join(path, 'addr')}: give either addr or addrs, not both")
        if out.get("addrs") is None:
            out["addrs"] = alias
        return out

    def _validate(self, path: str, warn: Warn) -> None:
        self.tls._check(_join(path, "tls"), server=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bypass(Dial):
    """Go's legacy-gateway bypass dialer (``edgebound.bypass``): accepted, not implemented,
    so its TLS files are not checked."""

    def _validate(self, path: str, warn: Warn) -> None:
        pass


# -- the sections of frontier.yaml ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFile:
    """Log file rotation (``log.file``), used when ``log.output`` is ``file`` or ``both``."""

    #: file to write
    path: str = "/var/log/frontier/frontier.log"
    #: megabytes before the file is rotated; 0 means the default, as in Go
    max_size: int = _opt(100, min=0, aliases={0: 100})
    #: rotated files to keep; 0 means the default, as in Go
    max_backups: int = _opt(5, min=0, aliases={0: 5})
    #: days to keep rotated files; 0 keeps them regardless of age
    max_age: int = _opt(30, min=0)
    #: gzip rotated files
    compress: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Log:
    """Logging (``log``): one line per record."""

    #: ``debug``, ``info``, ``warn`` (or ``warning``), ``error``
    level: str = _opt("info", choices=("debug", "info", "warn", "error"), aliases={"warning": "warn", "": "info"})
    #: ``stdout``, ``stderr``, ``file`` or ``both`` (stdout and file)
    output: str = _opt("stdout", choices=("stdout", "stderr", "file", "both"), aliases={"": "stdout"})
    #: ``text`` or ``json`` (one JSON object per line)
    format: str = _opt("text", choices=("text", "json"), aliases={"": "text"})
    file: LogFile = _opt(LogFile())


@dataclass(frozen=True, slots=True, kw_only=True)
class RLimit:
    """Open-file limit raised at start (``daemon.rlimit``)."""

    #: Go's generated ``*_all.yaml`` files spell ``nofile`` so (Go ignores it too)
    _GO_KEYS: ClassVar[tuple[str, ...]] = ("num_file",)

    enable: bool = False
    #: soft RLIMIT_NOFILE to ask for (the hard limit is raised too when allowed)
    nofile: int = _opt(102400, above=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class PProf:
    """Go's pprof profiler (``daemon.pprof``): accepted for compatibility, not implemented."""

    enable: bool = False
    addr: str = _opt("0.0.0.0:6060", check=_listen_addr)
    cpu_profile_rate: int = _opt(0, min=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Daemon:
    """Process settings (``daemon``)."""

    rlimit: RLimit = _opt(RLimit())
    pprof: PProf = _opt(PProf())
    #: this instance's unique id within a Frontlas cluster
    frontier_id: str = ""

    def _validate(self, path: str, warn: Warn) -> None:
        if self.pprof.enable:
            warn(f"{_join(path, 'pprof.enable')}: Go's pprof profiler is not implemented in frontier-gevent, ignored")


@dataclass(frozen=True, slots=True, kw_only=True)
class _SecretsAuth:
    """``enable`` plus the shared ``secrets`` it checks against (several: rotation)."""

    enable: bool = False
    #: shared secrets, at least 16 characters each
    secrets: tuple[str, ...] = _opt((), check=_secrets)

    def _validate(self, path: str, warn: Warn) -> None:
        if self.enable and not self.secrets:
            raise ConfigError(f"{_join(path, 'secrets')}: expected at least one secret when {_join(path, 'enable')} is true")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceAuth(_SecretsAuth):
    """Who may register as a service (``servicebound.auth``; ours, not in Go).

    With ``enable``, a service must present one of ``secrets`` as its credentials
    (``Service(..., credentials=...)``); anything else is refused with
    ``UNAUTHORIZED``. Listener mTLS (``servicebound.listen.tls.mtls``) is the other
    way to keep the service port closed, and both may be on.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class Servicebound:
    """The listener services connect to (``servicebound``)."""

    listen: Listen = _opt(Listen(addr="0.0.0.0:30011"))
    auth: ServiceAuth = _opt(ServiceAuth())


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeAuth(_SecretsAuth):
    """Edge authentication (``edgebound.auth``; ours, not in Go).

    With ``enable``, an edge must present a token minted with one of ``secrets``
    (:func:`frontier.auth.mint_edge_token`, ``frontier-gevent token mint``): an
    HMAC-SHA256 over the edge id it may use and an expiry time. The token is
    checked before any service hook runs; a missing, expired, forged or
    other-edge token is refused with ``UNAUTHORIZED``. A token bound to an edge id
    gives the edge that id (``get_edge_id`` is not asked). The ``edge_online``
    service hook stays the application's own check, after this one. The first
    secret mints, all of them verify.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class Edgebound:
    """The listener edges connect to (``edgebound``)."""

    listen: Listen = _opt(Listen(addr="0.0.0.0:30012"))
    #: Go's legacy-gateway bypass: accepted, not implemented
    bypass: Bypass = _opt(Bypass())
    bypass_enable: bool = False
    #: give an edge an id from the gateway when no service answers ``get_edge_id``
    edgeid_alloc_when_no_idservice_on: bool = True
    auth: EdgeAuth = _opt(EdgeAuth())

    def _validate(self, path: str, warn: Warn) -> None:
        if self.bypass_enable:
            warn(f"{_join(path, 'bypass_enable')}: the legacy-gateway bypass is not implemented in frontier-gevent, ignored")


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    """Control-plane authentication (``controlplane.auth``; ours, not in Go)."""

    #: accepted ``Authorization: Bearer <token>`` values; empty means no authentication
    bearer_tokens: tuple[str, ...] = _opt((), check=_non_empty_strings)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (every interface) or a host name


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlPlane:
    """The REST + gRPC control plane (``controlplane``).

    On by default (Go's is off) but only on the loopback interface: a bind anyone else
    can reach needs a bearer token (``auth.bearer_tokens`` or the
    ``FRONTIER_CONTROLPLANE_TOKEN`` environment variable) or mTLS, or the gateway
    refuses to start.
    """

    #: on by default, on 127.0.0.1 only (Go: off, on 0.0.0.0)
    enable: bool = True
    listen: Listen = _opt(Listen(addr="127.0.0.1:30010"))
    auth: Auth = _opt(Auth())

    def _validate(self, path: str, warn: Warn) -> None:
        host, _ = self.listen.host_port
        if self.enable and not _is_loopback(host) and not self.auth.bearer_tokens and not self.listen.tls.mtls:
            raise ConfigError(
                f"{_join(path, 'listen.addr')}: {self.listen.addr} is reachable from other hosts, so the control "
                f"plane needs a bearer token: set {TOKEN_ENV} (or {_join(path, 'auth.bearer_tokens')}), "
                f"or bind it to 127.0.0.1"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """Routing (``exchange``)."""

    #: which service gets an edge's traffic when several can: ``edgeid`` (the same edge
    #: always lands on the same service), ``srcip`` or ``random``
    hashby: str = _opt("edgeid", choices=("edgeid", "srcip", "random"), aliases={"": "edgeid"})
    #: who hears an edge's ``get_edge_id``/``edge_online``/``edge_offline`` hooks (ours):
    #: ``one`` service picked by ``hashby`` (as Go; another one if the picked one is
    #: gone) or ``all`` that registered the hook (any refusal refuses the edge)
    edge_hooks: str = _opt("one", choices=("one", "all"), aliases={"": "one"})
    #: relay calls, publishes and their answers as field lists, with no event object per
    #: frame (ours; the same bytes on the wire). ``false``: the reference path, every
    #: frame an event through the protocol machine (slower; to rule the fast path out)
    lean_relay: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Dao:
    """The in-memory query store behind the control plane (``dao``)."""

    #: ``buntdb`` (fast in-memory index; ``memory`` is an alias) or ``sqlite3``
    #: (in-memory SQLite); both return true list counts (Go's buntdb returns -1)
    backend: str = _opt("buntdb", choices=("buntdb", "sqlite3"), aliases={"memory": "buntdb", "": "buntdb"})
    #: log every store query
    debug: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FrontlasMetrics:
    """Stats reports to Frontlas (``frontlas.metrics``)."""

    enable: bool = False
    #: seconds between reports; must be > 0 when enabled
    interval: int = _opt(0, min=0)

    def _validate(self, path: str, warn: Warn) -> None:
        if self.enable and self.interval == 0:
            raise ConfigError(f"{_join(path, 'interval')}: expected seconds > 0 when {_join(path, 'enable')} is true")


@dataclass(frozen=True, slots=True, kw_only=True)
class Frontlas:
    """The cluster registry this instance reports to (``frontlas``)."""

    enable: bool = False
    dial: Dial = _opt(Dial(addrs=("127.0.0.1:40012",)))
    metrics: FrontlasMetrics = _opt(FrontlasMetrics())

    def _validate(self, path: str, warn: Warn) -> None:
        if self.enable and not self.dial.addrs:
            raise ConfigError(f"{_join(path, 'dial.addrs')}: expected at least one host:port when {_join(path, 'enable')} is true")


@dataclass(frozen=True, slots=True, kw_only=True)
class Observability:
    """Go's separate ``/healthz``, ``/readyz``, ``/metrics`` HTTP listener (``observability``).

    On by default, as in Go, and served whether or not the control plane is on (which
    keeps its own copies of the three paths). Go turns it on even when ``enable`` is
    false; here ``enable: false`` turns it off. A port that cannot be bound is logged
    as an error and the gateway keeps serving, as Go does.
    """

    enable: bool = True
    #: ``host:port`` to listen on; port 0 lets the OS pick one
    addr: str = _opt("0.0.0.0:9091", check=_listen_addr)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Our own tunables (``limits``; not in Go). Each has one default, documented here.

    The per-IP limits are off by default: many devices behind one NAT, or every
    connection arriving from a load balancer's address, would trip any one number.
    Turn them on with values that fit where connections come from (and list load
    balancers and health checkers in ``exempt_ips``).
    """

    #: largest frame body, in bytes, a peer may send; a larger one closes the connection
    max_frame_size: int = _opt(1048576, above=0)
    #: largest frame body, in bytes, before the handshake is done (the ``Hello``);
    #: keeps what an unauthenticated connection can make the gateway buffer small
    #: (never more than ``max_frame_size``)
    max_handshake_size: int = _opt(65536, min=1024)
    #: seconds a new connection has to complete its handshake (TLS included)
    handshake_timeout: float = _opt(10.0, above=0)
    #: seconds between heartbeats; the gateway closes a connection silent for 3 intervals
    heartbeat_interval: float = _opt(15.0, above=0)
    #: initial per-stream flow-control window (credit), in bytes
    stream_window: int = _opt(1048576, above=0)
    #: streams open at once on one connection; more are reset with BufferFull
    max_streams: int = _opt(1024, above=0)
    #: calls and publishes in flight per connection before the gateway answers BufferFull
    max_inflight: int = _opt(1024, above=0)
    #: seconds the gateway waits for a service's hook (get_edge_id, edge_online, edge_offline);
    #: Go's limit
    hook_timeout: float = _opt(30.0, above=0)
    #: seconds a call may take when the caller sent no deadline
    default_call_timeout: float = _opt(30.0, above=0)
    #: seconds a client kicked by an operator is told to wait before it reconnects
    #: (Go's clients come back after about 3 s); a kick with ``reconnect=false`` says never
    kick_reconnect_delay: float = _opt(3.0, min=0)
    #: seconds a graceful stop waits for in-flight work after telling clients to go away
    #: (the environment variable ``FRONTIER_DRAIN_SECONDS`` overrides it)
    drain_timeout: float = _opt(10.0, min=0)
    #: most connections (edges and services together) at once; 0 means unlimited
    max_connections: int = _opt(0, min=0)
    #: most connections on the edge listener at once; 0 means unlimited
    max_edge_connections: int = _opt(0, min=0)
    #: most connections on the service listener at once; 0 means unlimited
    max_service_connections: int = _opt(0, min=0)
    #: most connections at once from one source IP (an IPv6 /64 counts as one); 0: off
    max_connections_per_ip: int = _opt(0, min=0)
    #: new connections per second one source IP may open, sustained; 0: off
    connect_rate_per_ip: float = _opt(0.0, min=0)
    #: new connections one source IP may open at once before ``connect_rate_per_ip`` applies
    connect_burst_per_ip: int = _opt(20, above=0)
    #: seconds an IP that exceeded ``connect_rate_per_ip`` is refused (a flapping client); 0: only the excess is refused
    ban_seconds: float = _opt(30.0, min=0)
    #: source addresses or networks the per-IP limits skip (load balancers, probes)
    exempt_ips: tuple[str, ...] = _opt((), check=_networks)
    #: bytes queued for one peer that is not reading before it is cut off (slow
    #: consumer); the queue is one buffer, so this is also what it costs in memory
    max_outgoing_bytes: int = _opt(64 * 1048576, above=0)
    #: longest deadline, in seconds, a call or publish may ask for; longer ones are cut to this
    max_call_timeout: float = _opt(3600.0, above=0)
    #: methods plus topics one connection may register (Hello and Register together)
    max_registrations: int = _opt(4096, above=0)
    #: longest method, topic or service name, in characters
    max_name_length: int = _opt(256, above=0)
    #: frames per second one edge connection may send, sustained (burst: one second's
    #: worth); over it the gateway stops reading from it for a while; 0: no limit
    edge_frames_per_second: float = _opt(20000.0, min=0)
    #: bytes per second one edge connection may send, sustained; 0: no limit
    edge_bytes_per_second: float = _opt(268435456.0, min=0)
    #: frames per second one service connection may send (services carry many edges'
    #: traffic and are authenticated backends: off by default); 0: no limit
    service_frames_per_second: float = _opt(0.0, min=0)
    #: bytes per second one service connection may send; 0: no limit
    service_bytes_per_second: float = _opt(0.0, min=0)
    #: seconds a connection may stay over its rate (throttled without a break) before
    #: it is closed with RATE_LIMITED
    rate_limit_grace: float = _opt(10.0, above=0)
    #: HTTP listeners (control plane, Frontlas): seconds a new connection has to send
    #: a whole request head, or the HTTP/2 preface
    http_header_timeout: float = _opt(10.0, above=0)
    #: HTTP listeners: seconds a keep-alive connection may sit idle between requests
    http_idle_timeout: float = _opt(60.0, above=0)
    #: HTTP listeners: connections open at once on one port; more are closed at accept
    max_http_connections: int = _opt(1024, above=0)


# -- the HTTP ingress (ours; edgerouter's application model) ---------------------------

_APP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TARGET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_UPSTREAM_RE = re.compile(r"^http://(?P<hostport>[^/?#@]+)/?$")
_BCRYPT_RE = re.compile(r"^[^:\s]+:\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$")


def _hostname_pattern(value: str, path: str) -> str:
    """An exact hostname or ``*.`` plus a hostname (one wildcard label), lower-cased."""
    host = value.strip().lower().rstrip(".")
    rest = host[2:] if host.startswith("*.") else host
    labels = rest.split(".")
    if not rest or not all(_LABEL_RE.match(label) for label in labels):
        raise _expected(path, 'a hostname ("app.example.com") or one wildcard label ("*.edges.example.com")', value)
    return host


def _path_prefix(value: str, path: str) -> str:
    if not value.startswith("/") or any(ch in value for ch in "?# \t\r\n"):
        raise _expected(path, 'a path starting with "/" (no query, no spaces)', value)
    return value


def _app_id(value: str, path: str) -> str:
    if not _APP_ID_RE.match(value):
        raise _expected(path, "an id of letters, digits, '.', '_' or '-' (1-128 characters, starting with a letter or digit)", value)
    return value


def _target_name(value: str, path: str) -> str:
    if value and not _TARGET_RE.match(value):
        raise _expected(path, "a name of letters, digits, '.', '_' or '-' (1-64 characters)", value)
    return value


def _upstreams(value: tuple[str, ...], path: str) -> tuple[str, ...]:
    for index, item in enumerate(value):
        match = _UPSTREAM_RE.match(item)
        if not match:
            raise _expected(f"{path}[{index}]", '"http://host:port" (plain HTTP, no path)', item)
        hostport = match["hostport"]
        _dial_addr(hostport if ":" in hostport.rsplit("]", 1)[-1] else hostport + ":80", f"{path}[{index}]")
    return value


def _redirect_to(value: str, path: str) -> str:
    if value and not re.match(r"^https?://[^/\s?#]+[^\s]*$", value):
        raise _expected(path, 'an absolute "http://..." or "https://..." URL', value)
    return value


def _htpasswd_lines(value: tuple[str, ...], path: str) -> tuple[str, ...]:
    for index, item in enumerate(value):
        if not _BCRYPT_RE.match(item):
            # never echo the line: it holds a password hash
            raise _expected(f"{path}[{index}]", 'an htpasswd line "user:$2y$..." with a bcrypt hash (htpasswd -nbB user pass)', "<hidden>")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Frontend:
    """Where requests come in for an app (``ingress.apps[].frontends[]``): a hostname
    (exact, or ``*.`` one wildcard label) and a path prefix."""

    #: only ``hostname``
    kind: str = _opt("hostname", choices=("hostname",), aliases={"": "hostname"})
    hostname: str = _opt("", check=_hostname_pattern)
    path_prefix: str = _opt("/", check=_path_prefix)

    def _validate(self, path: str, warn: Warn) -> None:
        if not self.hostname:
            raise ConfigError(f"{_join(path, 'hostname')}: expected a hostname")


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeHttpOpts:
    """An HTTP service an edge exposes (``backend.edge_http_opts``)."""

    #: a fixed edge id (0: not fixed; give ``edge_from`` instead)
    edge_id: int = _opt(0, min=0)
    #: ``subdomain``: the label the frontend's wildcard matched is the edge id
    edge_from: str = _opt("", choices=("", "subdomain"))
    #: the name the edge exposes it under (``Edge(..., expose={"ui": "127.0.0.1:8080"})``)
    target: str = _opt("", check=_target_name)


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerSetOpts:
    """Plain HTTP upstreams, balanced round-robin with passive health (``backend.peer_set_opts``)."""

    addrs: tuple[str, ...] = _opt((), check=_upstreams)


@dataclass(frozen=True, slots=True, kw_only=True)
class RedirectOpts:
    """Answer every request with a redirect (``backend.redirect_opts``)."""

    #: an absolute URL; the request's path and query are appended to it
    to: str = _opt("", check=_redirect_to)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppBackend:
    """What serves an app (``ingress.apps[].backend``): one of ``edge_http``,
    ``peer_set``, ``redirect``, with the options block of that kind."""

    kind: str = _opt("", choices=("edge_http", "peer_set", "redirect"))
    edge_http_opts: EdgeHttpOpts = _opt(EdgeHttpOpts())
    peer_set_opts: PeerSetOpts = _opt(PeerSetOpts())
    redirect_opts: RedirectOpts = _opt(RedirectOpts())

    def _validate(self, path: str, warn: Warn) -> None:
        if not self.kind:
            raise ConfigError(f"{_join(path, 'kind')}: expected one of edge_http, peer_set, redirect")
        if self.kind == "edge_http":
            opts, opath = self.edge_http_opts, _join(path, "edge_http_opts")
            if not opts.target:
                raise ConfigError(f"{opath}.target: expected the name the edge exposes the service under")
            if bool(opts.edge_id) == bool(opts.edge_from):
                raise ConfigError(f"{opath}: expected either edge_id (a fixed edge) or edge_from: subdomain, not {'both' if opts.edge_id else 'neither'}")
        elif self.kind == "peer_set" and not self.peer_set_opts.addrs:
            raise ConfigError(f"{_join(path, 'peer_set_opts.addrs')}: expected at least one \"http://host:port\"")
        elif self.kind == "redirect" and not self.redirect_opts.to:
            raise ConfigError(f"{_join(path, 'redirect_opts.to')}: expected the URL to redirect to")


@dataclass(frozen=True, slots=True, kw_only=True)
class AppAuth:
    """Backend-wide authentication of an app (``ingress.apps[].auth``): ``none``,
    ``bearer`` (``tokens``) or ``basic`` (``users``: htpasswd lines with bcrypt
    hashes). Credentials are removed before the request reaches the backend."""

    kind: str = _opt("none", choices=("none", "bearer", "basic"), aliases={"": "none"})
    tokens: tuple[str, ...] = _opt((), check=_non_empty_strings)
    users: tuple[str, ...] = _opt((), check=_htpasswd_lines)

    def _validate(self, path: str, warn: Warn) -> None:
        if self.kind == "bearer" and not self.tokens:
            raise ConfigError(f"{_join(path, 'tokens')}: expected at least one token when kind is bearer")
        if self.kind == "basic" and not self.users:
            raise ConfigError(f"{_join(path, 'users')}: expected at least one htpasswd line when kind is basic")


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressApp:
    """One application (edgerouter's shape): an id, frontends, one backend, auth."""

    id: str = _opt("", check=_app_id)
    frontends: tuple[Frontend, ...] = ()
    backend: AppBackend = _opt(AppBackend())
    auth: AppAuth = _opt(AppAuth())

    def _validate(self, path: str, warn: Warn) -> None:
        if not self.id:
            raise ConfigError(f"{_join(path, 'id')}: expected an app id")
        if not self.frontends:
            raise ConfigError(f"{_join(path, 'frontends')}: expected at least one frontend")
        if not self.backend.kind:
            raise ConfigError(f"{_join(path, 'backend.kind')}: expected one of edge_http, peer_set, redirect")
        if self.backend.kind == "edge_http" and self.backend.edge_http_opts.edge_from == "subdomain":
            for index, frontend in enumerate(self.frontends):
                if not frontend.hostname.startswith("*."):
                    raise ConfigError(f"{_join(path, f'frontends[{index}].hostname')}: expected a wildcard (\"*.example.com\") "
                                      "because backend.edge_http_opts.edge_from is subdomain")

    def to_dict(self) -> dict[str, Any]:
        """The app as JSON-ready dicts and lists (the control plane's shape): only the
        options block of the backend's kind, and only the auth fields its kind uses."""
        out = _plain(self)
        kind = self.backend.kind
        out["backend"] = {"kind": kind, f"{kind}_opts": out["backend"][f"{kind}_opts"]}
        auth = out["auth"]
        out["auth"] = {"kind": auth["kind"], **({"tokens": auth["tokens"]} if self.auth.kind == "bearer" else {}),
                       **({"users": auth["users"]} if self.auth.kind == "basic" else {})}
        return out


def _refuse_unknown(message: str) -> None:
    raise ConfigError(message.replace("unknown key, ignored", "unknown key"))


def parse_app(raw: Any, path: str = "") -> IngressApp:
    """Validate one app (a control-plane PUT body or a config entry); unknown keys are
    refused. Raises :class:`ConfigError` whose message starts with the field's path."""
    if not isinstance(raw, Mapping):
        raise _expected(path or "app", "a JSON object", raw)
    return _parse_section(IngressApp, raw, path, IngressApp(), _refuse_unknown)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressListener:
    """One listener of the ingress (``ingress.http`` / ``ingress.https``)."""

    listen: Listen = _opt(Listen(addr="0.0.0.0:30080"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Acme:
    """ACME (RFC 8555) certificates for the apps' hostnames (``ingress.acme``);
    an empty ``directory`` turns ACME off."""

    #: the ACME server's directory URL (e.g. https://acme-v02.api.letsencrypt.org/directory)
    directory: str = ""
    #: the account's contact address
    email: str = ""
    #: a CA file to trust for the ACME server (a private CA, e.g. a test server)
    ca_bundle: str = ""
    #: days before expiry a certificate is renewed
    renew_before: float = _opt(30.0, above=0)
    #: seconds between looks at the certificates (renewals due, certificates another node got)
    check_interval: float = _opt(60.0, above=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressRedis:
    """The cluster-wide app log (``ingress.redis``): with ``addr`` set, every change to
    an app made through any node's control plane is an entry of a Redis Stream
    (``<key_prefix>ingress:apps``) that every node applies in order, replaying from
    the start when it starts and from its last id when Redis comes back."""

    #: ``host:port`` of a standalone Redis (empty: no cluster log; apps are per node)
    addr: str = _opt("", check=_optional_dial_addr)
    username: str = ""
    password: str = ""
    db: int = _opt(0, min=0)
    #: the cluster's key prefix (Frontlas uses ``frontlas:`` by default)
    key_prefix: str = "frontlas:"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ingress:
    """The HTTP ingress (``ingress``; ours): opens edges' local web services, plain
    HTTP upstreams and redirects by hostname and path (see ``docs/ingress.md``)."""

    #: off by default
    enable: bool = False
    http: IngressListener = _opt(IngressListener(listen=Listen(addr="0.0.0.0:30080")))
    #: served when ``https.listen.tls.enable`` (certificate files, SNI, hot reload)
    https: IngressListener = _opt(IngressListener(listen=Listen(addr="0.0.0.0:30443")))
    #: seconds for a backend to start answering (504 BACKEND_TIMEOUT after)
    backend_timeout: float = _opt(30.0, above=0)
    #: largest request body in bytes; 0 = no cap (bodies are streamed, never buffered whole)
    max_body_size: int = _opt(0, min=0)
    acme: Acme = _opt(Acme())
    apps: tuple[IngressApp, ...] = ()
    #: seconds a client has to send a request's headers (slowloris); 408 after
    header_timeout: float = _opt(10.0, above=0)
    #: seconds a connection may stay silent (between requests, or mid-body) before it is closed
    idle_timeout: float = _opt(60.0, above=0)
    #: largest request head (request line and headers) in bytes; 431 beyond
    max_header_size: int = _opt(16384, min=1024)
    #: client connections open at once on each ingress listener; more are reset at accept
    max_connections: int = _opt(10000, above=0)
    #: client connections open at once from one source IP (an IPv6 /64 counts as one);
    #: more are reset at accept, so one client cannot take every slot; 0: no per-IP cap
    max_connections_per_ip: int = _opt(0, min=0)
    redis: IngressRedis = _opt(IngressRedis())
    #: Frontlas's REST ``host:port``: a request for an edge held by another frontier is
    #: relayed there (as an authenticated service, so ``servicebound.auth`` must be on
    #: with the same secrets on every node); empty: no relay (502 EDGE_NOT_ONLINE)
    relay_frontlas_api: str = _opt("", check=_optional_dial_addr)

    def _validate(self, path: str, warn: Warn) -> None:
        if self.acme.directory and not self.redis.addr:
            raise ConfigError(f"{_join(path, 'acme.directory')}: ACME needs {_join(path, 'redis.addr')} "
                              "(the account key and certificates are kept cluster-wide in Redis)")
        if self.acme.ca_bundle:
            _check_files({_join(path, "acme.ca_bundle"): self.acme.ca_bundle})
        seen: set[str] = set()
        for index, app in enumerate(self.apps):
            if app.id in seen:
                raise ConfigError(f"{_join(path, f'apps[{index}].id')}: {app.id!r} is used by an earlier app")
            seen.add(app.id)


def _ignore(message: str) -> None:
    """A ``warn`` callback that drops the message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration of one gateway process; build it with :func:`load_config`."""

    log: Log = _opt(Log())
    daemon: Daemon = _opt(Daemon())
    servicebound: Servicebound = _opt(Servicebound())
    edgebound: Edgebound = _opt(Edgebound())
    controlplane: ControlPlane = _opt(ControlPlane())
    exchange: Exchange = _opt(Exchange())
    dao: Dao = _opt(Dao())
    frontlas: Frontlas = _opt(Frontlas())
    #: external MQ sinks, as parsed by :func:`frontier.mqm.config.parse_mqm`
    mqm: MQMConfig = field(default_factory=lambda: parse_mqm(None, _ignore))
    observability: Observability = _opt(Observability())
    limits: Limits = _opt(Limits())
    ingress: Ingress = _opt(Ingress())

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, warn: Warn | None = None) -> Config:
        """Validate a parsed ``frontier.yaml`` mapping; missing keys take their defaults.

        Raises :class:`ConfigError` on a wrong value; reports unknown keys to ``warn``
        (default: a warning on the ``frontier.config`` logger).
        """
        warn = warn or _log_warning
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise _expected("config", "a mapping of sections", raw)
        rest = {key: value for key, value in raw.items() if key != "mqm"}
        config = _parse_section(cls, rest, "", cls(), warn)
        return dataclasses.replace(config, mqm=parse_mqm(raw.get("mqm"), warn))

    def _validate(self, path: str, warn: Warn) -> None:
        """Checks that span sections."""
        if self.ingress.relay_frontlas_api and not self.servicebound.auth.enable:
            raise ConfigError("ingress.relay_frontlas_api: relaying needs servicebound.auth.enable with the same "
                              "secrets on every frontier (the relay connects to the other frontier as a service)")

    def to_dict(self) -> dict[str, Any]:
        """The effective configuration as plain dicts and lists, in ``frontier.yaml`` shape."""
        out = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            to_dict = getattr(value, "to_dict", None)
            out[spec.name] = _plain(to_dict() if callable(to_dict) else value)
        return out

    def to_yaml(self) -> str:
        """The effective configuration as ``frontier.yaml`` text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)


#: the Go Frontier's environment variables, read with the Go meaning (see
#: :mod:`frontier.goenv`); ``FRONTIER_DRAIN_SECONDS`` is :data:`DRAIN_ENV`
GO_ENV: tuple[GoVar, ...] = (
    port_var("FRONTIER_SERVICEBOUND_PORT", "servicebound.listen.addr", Servicebound().listen.addr),
    port_var("FRONTIER_EDGEBOUND_PORT", "edgebound.listen.addr", Edgebound().listen.addr),
    value_var("NODE_NAME", "daemon.frontier_id", lambda v: "frontier-" + v,
              "`daemon.frontier_id` = `frontier-<NODE_NAME>`"),
    frontlas_addr_var("FRONTLAS_ADDR"),
    *LOG_GO_ENV,
)


# -- loading ----------------------------------------------------------------------------


def read_yaml(path: str) -> dict[str, Any]:
    """Read a YAML file into a mapping (an empty file is ``{}``); ConfigError if unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.load(handle, Loader=_Loader)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {_show(raw)}")
    return raw


def apply_env_overrides(raw: Mapping[str, Any], env: Mapping[str, str], *, prefix: str = ENV_PREFIX,
                        sources: dict[str, str] | None = None) -> dict[str, Any]:
    """Return a copy of ``raw`` with every ``FRONTIER__A__B=value`` variable (or
    ``prefix``) applied; ``sources``, if given, gets each key path set -> variable.

    Names match existing keys case-insensitively (new keys are lower-cased); the value
    is parsed as YAML. Raises :class:`ConfigError` for a malformed name or value.
    """
    out = copy.deepcopy(dict(raw))
    for name in sorted(env):
        if not name.startswith(prefix):
            if name.startswith(prefix[:-1]) and "__" in name:  # FRONTIER_EDGEBOUND__...: one underscore short
                raise ConfigError(f"{name}: overrides start with {prefix} (two underscores); "
                                  f"did you mean {prefix}{name[len(prefix) - 1:]}?")
            continue
        parts = name[len(prefix):].split("__")
        if not all(parts):
            raise ConfigError(f"{name}: expected {prefix}SECTION__KEY with non-empty names between double underscores")
        try:
            value = yaml.load(env[name], Loader=_Loader)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name}: cannot parse {env[name]!r} as a YAML value: {exc}") from exc
        node, path = out, ""
        for part in parts[:-1]:
            key = _match_key(node, part)
            path = _join(path, key)
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"{name}: {path} is a value, not a section, so it has no key {parts[-1].lower()!r}")
            node = child
        key = _match_key(node, parts[-1])
        node[key] = value
        if sources is not None:
            sources[_join(path, key)] = name
    return out


def blame_env(error: UnknownKey, sources: Mapping[str, str]) -> ConfigError:
    """``error`` restated for the environment variable that made the unknown key
    (see ``sources`` of :func:`apply_env_overrides`), with the variable to use
    instead; ``error`` itself when no variable made it."""
    for path, name in sources.items():
        if path == error.path or path.startswith(error.path + "."):
            depth = error.path.count(".")
            head, *parts = name.split("__")
            hint = "no known key is close"
            if error.nearest:
                parts[depth] = error.nearest.upper()
                hint = "did you mean " + "__".join([head, *parts]) + "?"
            return ConfigError(f"{name}: unknown key {error.path} ({hint})")
    return error


def _match_key(node: Mapping[Any, Any], part: str) -> str:
    for key in node:
        if isinstance(key, str) and key.lower() == part.lower():
            return key
    return part.lower()


def load_config(
    path: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    warn: Warn | None = None,
) -> Config:
    """Load the configuration: defaults, then the YAML file ``path`` (if any), then
    the Go Frontier's variables (:data:`GO_ENV`), then ``FRONTIER__*`` variables from
    ``env`` (default: ``os.environ``).

    ``FRONTIER_DRAIN_SECONDS``, when set, overrides ``limits.drain_timeout`` last;
    ``FRONTIER_CONTROLPLANE_TOKEN``, when set, is accepted as a control-plane token too.
    Raises :class:`ConfigError` naming the key path on a wrong value.
    """
    env = os.environ if env is None else env
    warn = warn or _log_warning
    raw = read_yaml(path) if path else {}
    raw = apply_go_env(raw, env, GO_ENV, warn)
    sources: dict[str, str] = {}
    raw = apply_env_overrides(raw, env, sources=sources)
    if env.get(DRAIN_ENV, "").strip():
        raw = _apply_drain_env(raw, env[DRAIN_ENV])
    if env.get(TOKEN_ENV, "").strip():
        raw = _add_token_env(raw, env[TOKEN_ENV].strip())
    try:
        return Config.from_dict(raw, warn=warn)
    except UnknownKey as exc:
        raise blame_env(exc, sources) from None


def _add_token_env(raw: dict[str, Any], token: str) -> dict[str, Any]:
    """``FRONTIER_CONTROLPLANE_TOKEN`` joins ``controlplane.auth.bearer_tokens``."""
    raw = copy.deepcopy(raw)
    control = raw.get("controlplane")
    control = raw["controlplane"] = dict(control) if isinstance(control, Mapping) else {}
    auth = control.get("auth")
    auth = control["auth"] = dict(auth) if isinstance(auth, Mapping) else {}
    tokens = auth.get("bearer_tokens")
    tokens = [tokens] if isinstance(tokens, str) else list(tokens) if isinstance(tokens, list) else []
    if token not in tokens:
        tokens.append(token)
    auth["bearer_tokens"] = tokens
    return raw


def _apply_drain_env(raw: dict[str, Any], value: str) -> dict[str, Any]:
    """``FRONTIER_DRAIN_SECONDS`` as ``limits.drain_timeout``, over every other source."""
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{DRAIN_ENV}: expected seconds (a number >= 0), got {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{DRAIN_ENV}: expected seconds (a number >= 0), got {value!r}")
    limits = raw.get("limits")
    raw = dict(raw)
    raw["limits"] = dict(limits) if isinstance(limits, Mapping) else {}
    raw["limits"]["drain_timeout"] = seconds
    return raw
