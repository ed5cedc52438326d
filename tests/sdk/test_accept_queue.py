"""A stream withdrawn from its accept queue, for both queues ``queue.Queue`` can be:
the standard one and gevent's (what it is once monkey-patched, as under Locust).
CI once saw the SDK reader crash on gevent's, which has no ``mutex``."""

from __future__ import annotations

import queue

import gevent.queue
import pytest

from frontier.sdk.stream import _withdraw


@pytest.mark.parametrize("make", [queue.Queue, gevent.queue.Queue], ids=["stdlib", "gevent"])
def test_withdraw_takes_only_that_stream_out(make) -> None:
    accepts = make()
    kept, offered = object(), object()
    accepts.put(offered)
    accepts.put(kept)
    _withdraw(accepts, offered)  # type: ignore[arg-type]
    assert accepts.qsize() == 1
    _withdraw(accepts, offered)  # type: ignore[arg-type]  # already gone: no error
    assert accepts.get_nowait() is kept
    assert accepts.qsize() == 0
