"""The Go Frontier's environment variables, read with their Go meaning.

The Go ``frontier`` and ``frontlas`` binaries read a few plain variables (their Helm
chart and operator set them: ports, the node name, Frontlas' address, Redis, log
settings). A deployment moved over from Go keeps working when we read them the same
way. They apply on top of the YAML file and below our own ``FRONTIER__*`` /
``FRONTLAS__*`` overrides (so an explicit override always wins); an empty value
counts as unset, as in Go. ``FRONTIER_DRAIN_SECONDS`` is read by
:mod:`frontier.config` itself (it beats every other source).

Each table lists ``GoVar(name, meaning, apply)``; ``apply(raw, value, warn)``
edits the raw config mapping. The tables are the documentation too
(``docs/migrate-from-go.md`` shows them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from frontier.wire.errors import ConfigError

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class GoVar:
    """One Go environment variable: its name, what it sets, and how."""

    name: str
    meaning: str
    apply: Callable[[dict[str, Any], str, Warn], None]


def _section(raw: dict[str, Any], path: str) -> dict[str, Any]:
    """The mapping at dotted ``path`` in ``raw``, created (as a copy) where missing."""
    node = raw
    for key in path.split("."):
        child = node.get(key)
        child = dict(child) if isinstance(child, Mapping) else {}
        node[key] = child
        node = child
    return node


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    parent, _, key = path.rpartition(".")
    (_section(raw, parent) if parent else raw)[key] = value


def _get(raw: Mapping[str, Any], path: str) -> Any:
    node: Any = raw
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def port_var(name: str, path: str, default_addr: str) -> GoVar:
    """``name`` replaces the port of the ``host:port`` at ``path``, keeping its host."""

    def apply(raw: dict[str, Any], value: str, warn: Warn) -> None:
        from frontier.config import parse_addr

        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ConfigError(f"{name}: expected a port number in 1..65535, got {value!r}")
        current = _get(raw, path) or default_addr
        host, _ = parse_addr(current, path)
        _set(raw, path, f"[{host}]:{value}" if ":" in host else f"{host}:{value}")

    return GoVar(name, f"the port of `{path}` (its host is kept)", apply)


def value_var(name: str, path: str, transform: Callable[[str], Any] = str, meaning: str = "") -> GoVar:
    """``name`` sets the key at ``path`` (after ``transform``)."""

    def apply(raw: dict[str, Any], value: str, warn: Warn) -> None:
        _set(raw, path, transform(value))

    return GoVar(name, meaning or f"`{path}`", apply)


def frontlas_addr_var(name: str) -> GoVar:
    """``name`` turns on reporting to Frontlas at that one address (Go's ``FRONTLAS_ADDR``)."""

    def apply(raw: dict[str, Any], value: str, warn: Warn) -> None:
        _set(raw, "frontlas.enable", True)
        _set(raw, "frontlas.dial.addrs", [value])
        _section(raw, "frontlas.dial").pop("addr", None)  # Go's README spelling of addrs

    return GoVar(name, f"`frontlas.enable: true` and `frontlas.dial.addrs: [<{name}>]`", apply)


#: the log variables both Go binaries read
LOG_GO_ENV: tuple[GoVar, ...] = (
    value_var("LOG_LEVEL", "log.level"),
    value_var("LOG_OUTPUT", "log.output"),
    value_var("LOG_FORMAT", "log.format"),
    value_var("LOG_FILE", "log.file.path"),
)

#: Go Frontlas' ``REDIS_TYPE`` group, as documentation rows (applied by :func:`_redis`)
REDIS_GO_ENV_DOC: tuple[tuple[str, str], ...] = (
    ("REDIS_TYPE", "`redis.mode` (standalone, sentinel, cluster); the variables below apply only with it"),
    ("REDIS_ADDRS", "comma-separated: `redis.standalone.addr` (the first), `redis.sentinel.addrs` or `redis.cluster.addrs`"),
    ("REDIS_USER", "`redis.username`"),
    ("REDIS_PASSWORD", "`redis.password`"),
    ("REDIS_DB", "`redis.standalone.db` (standalone only)"),
    ("MASTER_NAME", "`redis.sentinel.master_name` (sentinel only)"),
)


_REDIS_VARS = tuple(name for name, _ in REDIS_GO_ENV_DOC if name != "REDIS_TYPE")


def _redis(raw: dict[str, Any], mode: str, env: Mapping[str, str], warn: Warn) -> None:
    """Go's ``REDIS_TYPE`` switch: the other ``REDIS_*`` variables apply under it."""
    if mode not in ("standalone", "sentinel", "cluster"):
        raise ConfigError(f"REDIS_TYPE: expected standalone, sentinel or cluster, got {mode!r}")
    addrs = [a.strip() for a in env.get("REDIS_ADDRS", "").split(",") if a.strip()]
    redis = _section(raw, "redis")
    redis["mode"] = mode
    for var, key in (("REDIS_USER", "username"), ("REDIS_PASSWORD", "password")):
        if env.get(var):
            redis[key] = env[var]
    if mode == "standalone":
        if addrs:
            _set(raw, "redis.standalone.addr", addrs[0])
        if env.get("REDIS_DB", "").strip():
            try:
                _set(raw, "redis.standalone.db", int(env["REDIS_DB"]))
            except ValueError:
                raise ConfigError(f"REDIS_DB: expected a database number, got {env['REDIS_DB']!r}") from None
    elif mode == "sentinel":
        if addrs:
            _set(raw, "redis.sentinel.addrs", addrs)
        if env.get("MASTER_NAME"):
            _set(raw, "redis.sentinel.master_name", env["MASTER_NAME"])
    elif addrs:
        _set(raw, "redis.cluster.addrs", addrs)


def apply_go_env(raw: Mapping[str, Any], env: Mapping[str, str], table: tuple[GoVar, ...], warn: Warn,
                 *, redis: bool = False) -> dict[str, Any]:
    """A copy of ``raw`` with every set variable of ``table`` (and, for Frontlas,
    ``redis``: Go's ``REDIS_TYPE`` group) applied. Raises ``ConfigError`` naming the
    variable on a value Go would refuse too."""
    out = dict(raw)
    for var in table:
        value = env.get(var.name, "").strip()
        if value:
            var.apply(out, value, warn)
    if redis:
        mode = env.get("REDIS_TYPE", "").strip()
        if mode:
            _redis(out, mode, env, warn)
        elif any(env.get(name, "").strip() for name in _REDIS_VARS):
            set_vars = ", ".join(name for name in _REDIS_VARS if env.get(name, "").strip())
            warn(f"{set_vars}: ignored without REDIS_TYPE (as in Go); set REDIS_TYPE=standalone, sentinel or cluster")
    return out
