"""Fixtures: a real gateway subprocess, and SDK clients that close themselves."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from frontier.sdk import Edge, Service
from tests.gateway import GatewayProcess


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One default gateway shared by a test module."""
    with GatewayProcess(tmp_path_factory.mktemp("gw")) as gw:
        yield gw


@pytest.fixture
def service(gateway: GatewayProcess, clients: Callable[..., Any]) -> Callable[..., Service]:
    """``service(name=..., topics=...)`` on the module's gateway."""
    return lambda **kw: clients(Service, gateway.service_addr, **kw)


@pytest.fixture
def edge(gateway: GatewayProcess, clients: Callable[..., Any]) -> Callable[..., Edge]:
    """``edge(meta=...)`` on the module's gateway."""
    return lambda **kw: clients(Edge, gateway.edge_addr, **kw)
