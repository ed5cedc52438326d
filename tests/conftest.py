"""Fixtures every test directory shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.gateway import GatewayProcess


@pytest.fixture
def clients() -> Iterator[Callable[..., Any]]:
    """``clients(Edge, addr, ...)`` builds an SDK client (5 s timeout unless given)
    that is closed after the test."""
    made: list[Any] = []

    def make(cls: type, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 5.0)
        client = cls(*args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in reversed(made):
        client.close()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """``gateway_factory(config, control=False)`` starts a gateway with a custom config;
    all are stopped after the test."""
    started: list[GatewayProcess] = []

    def make(config: dict[str, Any] | None = None, **kwargs: Any) -> GatewayProcess:
        gw = GatewayProcess(tmp_path / f"gw{len(started)}", config, **kwargs).start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop(timeout=20)
