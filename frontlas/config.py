"""Frontlas' configuration: the Go ``frontlas.yaml`` keys as they are.

Same machinery as :mod:`frontier.config` (frozen dataclasses whose field names are
the YAML keys, a :class:`~frontier.wire.errors.ConfigError` naming the key path on
a wrong value, unknown keys reported to ``warn``). Precedence, lowest first:
defaults, the YAML file, ``FRONTLAS__SECTION__KEY=value`` environment variables,
command-line flags.

Go spells the expiration block two ways: ``frontier_plane.expiration`` (its code
and ``etc/frontlas.yaml``) and a top-level ``expiration`` (its README); both are
read, the former wins. ``frontier_manager`` (Go's generated ``frontlas_all.yaml``)
is read as ``frontier_plane``. Ours, not in Go: ``expiration.frontier_meta``,
``redis.key_prefix`` and the ``limits`` section.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from frontier.config import (
    Listen, Log, LogFile, PProf, RLimit, Warn, _dial_addrs, _join, _listen_addr, _log_warning, _opt, _parse_section, _plain,
    apply_env_overrides, read_yaml,
)
from frontier.wire.errors import ConfigError

#: environment variables with this prefix override keys (``FRONTLAS__REDIS__MODE=cluster``)
ENV_PREFIX = "FRONTLAS__"


@dataclass(frozen=True, slots=True, kw_only=True)
class Daemon:
    """Process settings (``daemon``)."""

    rlimit: RLimit = _opt(RLimit())
    #: Go's pprof: accepted for compatibility, not implemented
    pprof: PProf = _opt(PProf(addr="0.0.0.0:6061"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlPlane:
    """The cluster API, REST and gRPC on one port (``control_plane``)."""

    listen: Listen = _opt(Listen(addr="0.0.0.0:40011"))


def _protocol(value: int, path: str) -> int:
    if value not in (0, 2, 3):
        raise ConfigError(f"{path}: expected 0, 2 or 3, got {value!r}")
    return value


def _ttl(value: int, path: str) -> int:
    return value or 30  # 0 means the default, as Go leaves it unset


@dataclass(frozen=True, slots=True, kw_only=True)
class Expiration:
    """Seconds a record outlives the last report of its frontier (``expiration``).

    A frontier heartbeats every third of the smallest of these, so a dead
    frontier, its edges and its services vanish from every answer at most this
    long after it died. 0 means the default (30).
    """

    service_meta: int = _opt(30, min=0, check=_ttl)
    edge_meta: int = _opt(30, min=0, check=_ttl)
    #: ours: seconds a frontier stays listed after its last heartbeat
    frontier_meta: int = _opt(30, min=0, check=_ttl)


@dataclass(frozen=True, slots=True, kw_only=True)
class FrontierPlane:
    """Where frontiers report (``frontier_plane``)."""

    listen: Listen = _opt(Listen(addr="0.0.0.0:40012"))
    expiration: Expiration = _opt(Expiration())


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisStandalone:
    """``redis.standalone``: one Redis server."""

    network: str = _opt("tcp", choices=("tcp",), aliases={"": "tcp"})
    addr: str = "127.0.0.1:6379"
    db: int = _opt(0, min=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisSentinel:
    """``redis.sentinel``: a master found through Sentinels."""

    addrs: tuple[str, ...] = _opt((), check=_dial_addrs)
    master_name: str = ""
    db: int = _opt(0, min=0)
    #: accepted for compatibility with Go; not used
    route_by_latency: bool = False
    route_randomly: bool = False
    replica_only: bool = False
    use_disconnected_replicas: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisCluster:
    """``redis.cluster``: a Redis Cluster (every key Frontlas writes is slot-safe)."""

    addrs: tuple[str, ...] = _opt((), check=_dial_addrs)
    #: MOVED/ASK redirects followed before a command fails (0: the client's default)
    max_redirects: int = _opt(0, min=0)
    #: accepted for compatibility with Go; not used
    route_by_latency: bool = False
    route_randomly: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Redis:
    """Where Frontlas keeps everything (``redis``). Times are seconds; 0 is the default."""

    mode: str = _opt("standalone", choices=("standalone", "sentinel", "cluster"), aliases={"": "standalone"})
    username: str = ""
    password: str = ""
    #: RESP version, 2 or 3 (0: the client's default)
    protocol: int = _opt(0, check=_protocol)
    clientname: str = ""
    #: retries of a command after a connection error or timeout (0: 2)
    max_retries: int = _opt(0, min=0)
    min_retry_backoff: int = _opt(0, min=0)
    max_retry_backoff: int = _opt(0, min=0)
    #: connect timeout (0: 2 s)
    dial_timeout: int = _opt(0, min=0)
    #: reply timeout (0: 3 s)
    read_timeout: int = _opt(0, min=0)
    write_timeout: int = _opt(0, min=0)
    pool_fifo: bool = False
    #: connections per node (0: 64)
    pool_size: int = _opt(0, min=0)
    #: seconds to wait for a free pooled connection (0: 3 s)
    pool_timeout: int = _opt(0, min=0)
    min_idle_conns: int = _opt(0, min=0)
    max_idle: int = _opt(0, min=0)
    max_active_conns: int = _opt(0, min=0)
    conn_max_idle_time: int = _opt(0, min=0)
    conn_max_life_time: int = _opt(0, min=0)
    disable_identity: bool = False
    identity_suffix: str = ""
    standalone: RedisStandalone = _opt(RedisStandalone())
    sentinel: RedisSentinel = _opt(RedisSentinel())
    cluster: RedisCluster = _opt(RedisCluster())
    #: ours: prefix of every key (lets several clusters or tests share one Redis)
    key_prefix: str = "frontlas:"

    def _validate(self, path: str, warn: Warn) -> None:
        if "{" in self.key_prefix or "}" in self.key_prefix:
            raise ConfigError(f"{_join(path, 'key_prefix')}: may not contain braces (they are Redis Cluster hash tags)")
        if self.mode == "sentinel" and not (self.sentinel.addrs and self.sentinel.master_name):
            raise ConfigError(f"{_join(path, 'sentinel')}: expected addrs and master_name when mode is sentinel")
        if self.mode == "cluster" and not self.cluster.addrs:
            raise ConfigError(f"{_join(path, 'cluster.addrs')}: expected at least one host:port when mode is cluster")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Our own tunables (``limits``; not in Go)."""

    #: largest frame, in bytes, a frontier may send (sync chunks are sized below it)
    max_frame_size: int = _opt(16 * 1048576, above=0)
    #: seconds between pings on a frontier's connection (it closes after 3 silent ones)
    heartbeat_interval: float = _opt(5.0, above=0)
    #: seconds a new frontier connection has to complete its handshake
    handshake_timeout: float = _opt(10.0, above=0)
    #: requests one frontier connection may have in flight
    max_inflight: int = _opt(16, above=0)
    #: connections open at once on the frontier plane; more are closed at accept
    max_connections: int = _opt(1024, above=0)
    #: cluster API port: seconds a new connection has to send a whole request head,
    #: or the HTTP/2 preface
    http_header_timeout: float = _opt(10.0, above=0)
    #: cluster API port: seconds a keep-alive connection may idle between requests
    http_idle_timeout: float = _opt(60.0, above=0)
    #: cluster API port: connections open at once; more are closed at accept
    max_http_connections: int = _opt(1024, above=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Observability:
    """Go's separate ``/healthz``, ``/readyz``, ``/metrics`` listener (``observability``).

    On by default on 9092, as in Go (9091 is the frontier's); the cluster API port
    serves the same three paths. ``enable: false`` turns it off (Go serves it
    regardless); a port that cannot be bound is logged and Frontlas serves on.
    """

    enable: bool = True
    #: ``host:port`` to listen on; port 0 lets the OS pick one
    addr: str = _opt("0.0.0.0:9092", check=_listen_addr)


@dataclass(frozen=True, slots=True, kw_only=True)
class FrontlasConfig:
    """The whole configuration of one Frontlas process; build it with :func:`load_config`."""

    log: Log = _opt(Log(file=LogFile(path="/var/log/frontier/frontlas.log")))
    daemon: Daemon = _opt(Daemon())
    control_plane: ControlPlane = _opt(ControlPlane())
    frontier_plane: FrontierPlane = _opt(FrontierPlane())
    redis: Redis = _opt(Redis())
    limits: Limits = _opt(Limits())
    observability: Observability = _opt(Observability())

    @staticmethod
    def _normalize(raw: Mapping[Any, Any], path: str, warn: Warn) -> Mapping[Any, Any]:
        out = dict(raw)
        if "frontier_manager" in out:
            manager = out.pop("frontier_manager")
            out.setdefault("frontier_plane", manager)
        top = out.pop("expiration", None)
        if top is not None:
            plane = out.get("frontier_plane") or {}
            if not isinstance(plane, Mapping):
                return out  # the section parser reports it
            merged = dict(top) if isinstance(top, Mapping) else top
            if isinstance(merged, dict) and isinstance(plane.get("expiration"), Mapping):
                merged.update(plane["expiration"])
            out["frontier_plane"] = {**plane, "expiration": merged}
        return out

    def _validate(self, path: str, warn: Warn) -> None:
        if self.daemon.pprof.enable:
            warn("daemon.pprof.enable: Go's pprof profiler is not implemented in frontlas-gevent, ignored")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, warn: Warn | None = None) -> FrontlasConfig:
        """Validate a parsed ``frontlas.yaml`` mapping; missing keys take their defaults."""
        return _parse_section(cls, raw or {}, "", cls(), warn or _log_warning)

    def to_yaml(self) -> str:
        """The effective configuration as ``frontlas.yaml`` text."""
        return yaml.safe_dump(_plain(self), sort_keys=False, default_flow_style=False)

    @property
    def heartbeat(self) -> float:
        """Seconds between a frontier's reports when nothing changes."""
        exp = self.frontier_plane.expiration
        return min(exp.frontier_meta, exp.edge_meta, exp.service_meta) / 3.0


def load_config(path: str | None = None, env: Mapping[str, str] | None = None, *, warn: Warn | None = None) -> FrontlasConfig:
    """Defaults, then the YAML file ``path`` (if any), then ``FRONTLAS__*`` variables."""
    raw = read_yaml(path) if path else {}
    env = os.environ if env is None else env
    # frontier.config's override logic, fed our prefix
    ours = {"FRONTIER__" + k[len(ENV_PREFIX):]: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    raw = apply_env_overrides(raw, ours)
    return FrontlasConfig.from_dict(raw, warn=warn)


def replace(config: FrontlasConfig, **changes: Any) -> FrontlasConfig:
    """``dataclasses.replace`` re-exported for the CLI."""
    return dataclasses.replace(config, **changes)
