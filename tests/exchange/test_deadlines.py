"""Call deadlines on one libev timer (``frontier.exchange.deadlines``), on the real hub."""

from __future__ import annotations

import time

import gevent
import pytest
from gevent import socket

from frontier.exchange.deadlines import TICK, CallDeadlines
from frontier.sessions.session import ROLE_SERVICE, Session


@pytest.fixture
def fired() -> list:
    return []


@pytest.fixture
def target():
    """A session a call was sent to (the deadlines only hand it back)."""
    ours, theirs = socket.socketpair()
    yield Session(ours, ("127.0.0.1", 1), ROLE_SERVICE, max_frame_size=1024, max_out_bytes=1024)
    ours.close()
    theirs.close()


def _deadlines(fired: list, fail_on: int | None = None) -> CallDeadlines:
    def expire(target: object, gid: int) -> None:
        fired.append((gid, time.monotonic()))
        if gid == fail_on:
            raise RuntimeError("an expiry that fails")
    return CallDeadlines(expire, gevent.get_hub().loop.timer)


def test_deadlines_fire_in_order_never_early_and_at_most_a_tick_late(fired: list, target: Session) -> None:
    d = _deadlines(fired)
    t0 = time.monotonic()
    due = {1: t0 + 0.15, 2: t0 + 0.05, 3: t0 + 0.10, 4: t0 + 0.05}
    for gid, when in due.items():
        d.add(target, gid, when)
    gevent.sleep(0.3)
    assert [gid for gid, _ in fired] in ([2, 4, 3, 1], [4, 2, 3, 1])
    for gid, at in fired:
        assert due[gid] <= at < due[gid] + TICK + 0.05, (gid, at - due[gid])
    assert len(d) == 0


def test_a_cancelled_deadline_does_not_fire(fired: list, target: Session) -> None:
    d = _deadlines(fired)
    now = time.monotonic()
    bucket = d.add(target, 1, now + 0.05)
    d.add(target, 2, now + 0.05)
    CallDeadlines.cancel(bucket, 1)
    CallDeadlines.cancel(None, 3)  # a call without a deadline
    gevent.sleep(0.15)
    assert [gid for gid, _ in fired] == [2]


def test_an_earlier_deadline_added_later_is_not_held_back(fired: list, target: Session) -> None:
    d = _deadlines(fired)
    now = time.monotonic()
    d.add(target, 1, now + 5.0)
    d.add(target, 2, now + 0.05)
    gevent.sleep(0.2)
    assert [gid for gid, _ in fired] == [2]
    assert len(d) == 1


def test_a_failing_expiry_does_not_stop_the_others(fired: list, target: Session, caplog: pytest.LogCaptureFixture) -> None:
    d = _deadlines(fired, fail_on=1)
    now = time.monotonic()
    d.add(target, 1, now + 0.03)
    d.add(target, 2, now + 0.03)
    d.add(target, 3, now + 0.08)
    gevent.sleep(0.2)
    assert sorted(gid for gid, _ in fired) == [1, 2, 3]
    assert "expiring call 1" in caplog.text


def test_a_deadline_added_while_expiring_holds_back_no_earlier_one(fired: list, target: Session) -> None:
    d: CallDeadlines

    def expire(target: object, gid: int) -> None:
        fired.append((gid, time.monotonic()))
        if gid == 1:  # e.g. a hook answered by timeout leads to another call, due later
            d.add(target, 2, time.monotonic() + 0.4)

    d = CallDeadlines(expire, gevent.get_hub().loop.timer)
    d.add(target, 1, time.monotonic() + 0.02)
    d.add(target, 3, time.monotonic() + 0.08)
    gevent.sleep(0.2)
    assert [gid for gid, _ in fired] == [1, 3]
    gevent.sleep(0.4)
    assert [gid for gid, _ in fired] == [1, 3, 2]
