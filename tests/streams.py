"""Helpers for tests that open streams."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable


def open_accepted(open_stream: Callable[[], Any], accept_stream: Callable[..., Any], timeout: float = 5.0) -> tuple[Any, Any]:
    """``(opened, accepted)``: open a stream while another thread accepts it, since
    ``open_stream`` returns only once the far side's ``accept_stream`` took it."""
    with ThreadPoolExecutor(1) as pool:
        accepted = pool.submit(accept_stream, timeout=timeout)
        opened = open_stream()
        return opened, accepted.result(timeout)
