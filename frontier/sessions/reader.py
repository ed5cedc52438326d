"""The reader of one gateway connection: the greenlet that reads, dispatches, takes
turns and says goodbye (:func:`serve`).

It feeds the session's sans-io :class:`~frontier.wire.Connection` and hands every
event to a :class:`Dispatcher` (the exchange). The reader takes turns: after a
bounded batch (:attr:`Session.turn_frames` frames or :attr:`Session.turn_bytes`
bytes) it yields to the hub, so a connection that floods shares the loop round-robin
with everyone else, and with the flushes, timers and the heartbeat reaper. At the end
of a turn the connection's frame and byte rates are charged
(:class:`~frontier.sessions.limits.ConnectionRate`): over its rate the reader pauses
(TCP slows the peer, nothing is lost), and a connection still over it after the grace
period is closed with ``RATE_LIMITED``.

This module stays plain Python while :mod:`frontier.sessions.session` is compiled
(frontier/compiled.py): every idle connection's reader waits for its socket here, and
greenlet saves each C frame between a greenlet's start and its wait. Interpreted
frames share one C frame; compiled ones would cost every idle connection about
1.3 KB (4,728 bytes of saved stack against 3,464).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Protocol

import gevent
from gevent import socket

from frontier import metrics
from frontier.wire import NEED_DATA
from frontier.wire.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from frontier.wire.events import Event, Hello, PeerClosed

from .session import RECV_SIZE, Closing, Session

#: a sleep this short still ends the turn in the hub's next loop iteration, after it
#: polled for I/O (``sleep(0)`` may resume a greenlet before the loop polls again)
TURN_YIELD = 1e-6


class Dispatcher(Protocol):
    """What a session's reader hands its events to (the exchange)."""

    def admit(self, session: Session, hello: Hello) -> None:
        """Run the handshake; raise a FrontierError to refuse."""

    def dispatch(self, session: Session, event: Event | list) -> None:
        """Handle one event after the handshake (a lean field list: see ``Connection.next_frame``)."""

    def closed(self, session: Session) -> None:
        """The connection is gone: clean up everything that refers to it."""


class _HelloDeadlines:
    """Connections that still owe their ``Hello``, and by when. One sweeper greenlet,
    alive only while some are pending, closes the late ones: a ``gevent.Timeout`` per
    connection cost about a tenth of a connect's CPU."""

    def __init__(self) -> None:
        self._due: dict[Session, float] = {}
        self._sweeper: gevent.Greenlet | None = None
        self._tick = 1.0  #: seconds between sweeps: a quarter of the shortest deadline seen, 1 s at most

    def add(self, session: Session, timeout: float) -> None:
        """``session`` must say hello within ``timeout`` seconds."""
        self._due[session] = time.monotonic() + timeout
        self._tick = min(self._tick, max(timeout / 4, 0.01))
        if self._sweeper is None:
            self._sweeper = gevent.spawn(self._sweep)

    def discard(self, session: Session) -> None:
        """``session`` said hello (or is gone)."""
        self._due.pop(session, None)

    def _sweep(self) -> None:
        try:
            while self._due:
                gevent.sleep(self._tick)
                now = time.monotonic()
                for session, deadline in list(self._due.items()):
                    if now >= deadline:
                        del self._due[session]
                        session.close(ErrorCode.TIMEOUT, "no handshake within the deadline", log_level=logging.INFO)
        finally:
            self._sweeper = None


_HELLO_DEADLINES = _HelloDeadlines()


def serve(session: Session, dispatcher: Dispatcher, handshake_timeout: float) -> None:
    """Read and dispatch until the connection ends; always calls ``dispatcher.closed``.
    Runs in (and is) the connection's reader greenlet.

    The reader owns the socket's end: when it returns, what was queued went out
    (or the deadline passed) and the peer saw a clean half-close."""
    session.reader = gevent.getcurrent()
    try:
        _HELLO_DEADLINES.add(session, handshake_timeout)
        try:
            hello = _read_hello(session)
        finally:
            _HELLO_DEADLINES.discard(session)
        if hello is None:  # hung up before saying hello (a port probe, say)
            return
        dispatcher.admit(session, hello)
        if not session.closed:
            _read_loop(session, dispatcher.dispatch)
    except RemoteProtocolError as exc:
        metrics.FRAMES_REJECTED.labels(reason=exc.code.name.lower()).inc()
        session.close(exc.code, str(exc), log_level=logging.WARNING)
    except LocalProtocolError as exc:
        # something this peer sent could not be relayed and no handler turned it into
        # an answer: the fault stays with this connection, and is not a gateway crash
        metrics.FRAMES_REJECTED.labels(reason="unrelayable").inc()
        session.close(ErrorCode.PROTOCOL_ERROR, f"cannot relay what it sent: {exc}", log_level=logging.WARNING)
    except OSError as exc:
        session.close(ErrorCode.CONNECTION_CLOSED, f"socket error: {exc}", log_level=logging.DEBUG)
    except Closing:
        pass
    finally:
        session.close(ErrorCode.CONNECTION_CLOSED, "", log_level=logging.NOTSET)
        try:
            dispatcher.closed(session)
        finally:
            _linger(session)


def _read_hello(session: Session) -> Hello | None:
    conn = session.conn
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            data = session.sock.recv(RECV_SIZE)
            conn.receive_data(data)
            continue
        if type(event) is PeerClosed:
            return None
        return event  # type: ignore[return-value]  # the machine only lets a Hello through first


def _read_loop(session: Session, dispatch: Callable[[Session, Any], None]) -> None:
    conn = session.conn
    sock, raw = session.sock, session.raw
    recv = sock.recv
    take_frames = session.take_frames
    monotonic = time.monotonic
    turn_frames, turn_bytes = session.turn_frames, session.turn_bytes
    frames = nbytes = 0
    drained = False  # the last read emptied the kernel's buffer (it was short)
    while not session.closed:
        taken = take_frames(dispatch, turn_frames - frames)  # events, or field lists
        if taken < 0:  # the peer closed
            return
        frames += taken
        if frames >= turn_frames or nbytes >= turn_bytes:
            _end_turn(session, frames, nbytes)
            frames = nbytes = 0
            continue
        if session.closed:
            return
        # the machine needs more bytes
        if drained and raw is not None:
            # after a short read the kernel's buffer was empty, so a read at once would
            # almost always fail: wait for readability first, on gevent's own read
            # watcher of the socket (its ``recv`` waits on the same), which saves that
            # syscall and the exception gevent's ``recv`` raises and catches for it (an
            # edge with one frame in flight pays it every frame)
            sock._wait(sock._read_event)
            try:
                data = raw.recv(RECV_SIZE)
            except BlockingIOError:  # readable, then not (no other reader exists): be safe
                data = recv(RECV_SIZE)
        else:
            data = recv(RECV_SIZE)
        drained = len(data) < RECV_SIZE
        session.last_rx = monotonic()
        conn.receive_data(data)
        nbytes += len(data)


def _end_turn(session: Session, frames: int, nbytes: int) -> None:
    """Charge the turn to the connection's rates, then give the hub its turn: a
    pause while over the rate, else the shortest sleep that lets the loop poll."""
    rate = session.rate
    if rate is not None:
        now = time.monotonic()
        pause = rate.charge(frames, nbytes, now)
        if pause:
            if rate.violated(now):
                metrics.RATE_LIMITED.labels(role=session.role, action="closed").inc()
                session.close(ErrorCode.RATE_LIMITED, f"over the connection's frame or byte rate for {rate.grace:g}s",
                              log_level=logging.WARNING)
                return
            metrics.RATE_LIMITED.labels(role=session.role, action="throttled").inc()
            gevent.sleep(pause)
            return
    gevent.sleep(TURN_YIELD)


def _linger(session: Session) -> None:
    """Last act of the reader: let queued frames go out (bounded), half-close, and
    drain what the peer still sends until it closes too, so a reset does not
    destroy the goodbye frame before the peer read it. The server then closes."""
    deadline = time.monotonic() + session.goodbye_timeout
    while True:
        try:
            _linger_until(session, deadline)
            return
        except Closing:
            # a close() from another greenlet raced with this reader's own ending
            # (its interrupt arrived here rather than in recv): keep saying goodbye
            continue


def _linger_until(session: Session, deadline: float) -> None:
    while session.flushing and time.monotonic() < deadline:
        gevent.sleep(0.002)
    if session.abandon_writer():  # the peer is not reading: no clean goodbye
        return
    sock = session.sock
    try:
        sock.shutdown(socket.SHUT_WR)
        drained = 0
        with gevent.Timeout(max(deadline - time.monotonic(), 0.05), False):
            # bounded, and yielding: a peer still flooding must not hold the loop
            while drained < session.goodbye_drain_bytes:
                data = sock.recv(RECV_SIZE)
                if not data:
                    break
                drained += len(data)
                gevent.sleep(TURN_YIELD)
    except OSError:
        pass
