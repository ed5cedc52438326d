"""Fixtures of the cluster tests: real Redis, real Frontlas and frontier processes.

The shared Redis (127.0.0.1:6379) is only ever touched under a key prefix of the
test's own; tests that kill Redis start their own ``redis-server``.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from tests.cluster.helpers import (
    FrontlasProcess, GatewayProcess, RedisServer, drop_prefix, frontier_config, new_prefix, start_all, wait_until,
)

SHARED_REDIS = ("127.0.0.1", 6379)


def _redis_up() -> bool:
    try:
        with socket.create_connection(SHARED_REDIS, timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[redis.Redis]:
    """The machine's Redis; started if it is down, a clear failure if it cannot be."""
    if not _redis_up():
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
                        "--save", "", "--appendonly", "no"], check=False, capture_output=True)
        try:
            wait_until(_redis_up, 10, what="redis on 127.0.0.1:6379")
        except AssertionError:
            pytest.fail("Redis is not running on 127.0.0.1:6379 and could not be started "
                        "(apt-get install -y redis-server)")
    client = redis.Redis(*SHARED_REDIS, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def prefix(shared_redis: redis.Redis) -> Iterator[str]:
    """A key prefix for this test on the shared Redis, emptied afterwards."""
    value = new_prefix()
    yield value
    drop_prefix(shared_redis, value)


class Cluster:
    """Frontlas instances and frontiers started by one test (or module), stopped at the end."""

    def __init__(self, workdir: Path, prefix: str, redis_addr: str = "127.0.0.1:6379") -> None:
        self.workdir = workdir
        self.prefix = prefix
        self.redis_addr = redis_addr
        self.frontlases: list[FrontlasProcess] = []
        self.frontiers: dict[str, GatewayProcess] = {}
        self.clients: list[Any] = []

    def frontlas(self, start: bool = True, **kwargs: Any) -> FrontlasProcess:
        fl = FrontlasProcess(self.workdir / f"fl{len(self.frontlases)}", prefix=self.prefix, redis_addr=self.redis_addr, **kwargs)
        self.frontlases.append(fl)
        return fl.start() if start else fl

    def frontier(self, fid: str, frontlas: list[FrontlasProcess] | None = None, start: bool = True,
                 extra: dict[str, Any] | None = None, control: bool = False, name: str | None = None) -> GatewayProcess:
        """A frontier reporting as ``fid``; kept in ``frontiers`` under ``name`` (default ``fid``)."""
        fls = frontlas or self.frontlases[:1]
        gw = GatewayProcess(self.workdir / f"gw-{fid}-{len(self.frontiers)}",
                            frontier_config(fid, [f.plane_addr for f in fls], extra), control=control)
        self.frontiers[name or fid] = gw
        if start:
            start_all([gw])
        return gw

    def wait_registered(self, *fids: str, fl: FrontlasProcess | None = None, timeout: float = 10.0) -> None:
        fl = fl or self.frontlases[0]
        wait_until(lambda: set(fids) <= set(fl.frontiers()), timeout, what=f"frontiers {fids} registered")

    def client(self, cls: type, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 5.0)
        made = cls(*args, **kwargs)
        self.clients.append(made)
        return made

    def close(self) -> None:
        for made in reversed(self.clients):
            try:
                made.close()
            except Exception:
                pass
        for gw in self.frontiers.values():
            gw.stop()
        for fl in self.frontlases:
            fl.stop()


@pytest.fixture
def cluster(tmp_path: Path, prefix: str) -> Iterator[Cluster]:
    """An empty cluster on the shared Redis: add Frontlas and frontiers to it."""
    c = Cluster(tmp_path, prefix)
    yield c
    c.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (to kill and restart)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()

