"""Fixtures every test directory shares."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest


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
