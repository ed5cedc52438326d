"""Fixtures: one real gateway subprocess per module."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.gateway import GatewayProcess


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One default gateway shared by a test module."""
    with GatewayProcess(tmp_path_factory.mktemp("gw")) as gw:
        yield gw
