"""Fixtures of the ingress tests: a gateway with the ingress on, a web app, an edge
exposing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.gateway import GatewayProcess, free_port, wait_port

from .webapp import WebApp


class IngressGateway(GatewayProcess):
    """A gateway whose ingress listens on ``http_port``."""

    def __init__(self, workdir: Path, ingress: dict[str, Any], config: dict[str, Any] | None = None, **kw: Any) -> None:
        self.http_port = free_port()
        section = {"enable": True, "http": {"listen": {"addr": f"127.0.0.1:{self.http_port}"}}, **ingress}
        super().__init__(workdir, {"ingress": section, **(config or {})}, **kw)

    def ports(self) -> tuple[int, ...]:
        return (*super().ports(), self.http_port)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"


@pytest.fixture
def webapp() -> Iterator[WebApp]:
    app = WebApp()
    yield app
    app.close()


@pytest.fixture
def ingress_gateway(tmp_path: Path) -> Iterator[Callable[..., IngressGateway]]:
    """``ingress_gateway(ingress_section, config=None, control=False)`` starts one."""
    made: list[IngressGateway] = []

    def make(ingress: dict[str, Any], config: dict[str, Any] | None = None, **kw: Any) -> IngressGateway:
        gw = IngressGateway(tmp_path / f"gw{len(made)}", ingress, config, **kw)
        made.append(gw)
        return gw.start()

    yield make
    for gw in made:
        gw.stop()


__all__ = ["IngressGateway", "wait_port"]
