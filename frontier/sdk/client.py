"""What ``Service`` and ``Edge`` share: connecting, reconnecting, calls, messages,
handlers and streams over one :class:`~frontier.sdk.link.Link` at a time.

Thread safety: a client may be shared by any number of threads. ``call``,
``publish``, ``open_stream``, ``receive`` and ``accept_stream`` may run concurrently;
frames never interleave. Handlers run on a bounded pool of worker threads
(``handler_threads``), never on the reader, so a slow handler delays nothing else;
past ``max_pending`` queued handler calls the caller gets ``BufferFull``. Under a
gevent-patched process the same code runs on greenlets. A ``Stream`` is safe for one
reader and one writer thread at a time; a ``Message`` is answered once, by anyone.

Processes: a client survives ``fork`` (gunicorn ``--preload``, ``multiprocessing``,
Celery prefork), and the parent's connection is never shared. Right after a fork the
child forgets the inherited connection (it closes only its own copy of the socket's
descriptor and never writes to it, so the parent's connection is untouched); on its
first use in the child (any call, publish, stream, receive or registration) the
client rebuilds its locks, queues and handler pool and connects anew, replaying its
methods, topics and hooks. Each process so holds its own connection (a service gets
its own ``service_id``; an edge asks again for the id it was constructed with, so a
child never takes over its parent's id). Objects bound to the parent's connection, a
``Stream`` or an unanswered ``Message``, raise ``ConnectionClosed`` in the child. The
rebuild happens lazily, after gevent patched the child (as gunicorn's gevent worker
does), so the child's primitives are the ones it runs on.

Reconnection: a lost connection is re-established with jittered backoff and the
client's methods, topics and hooks are replayed. When the gateway says when to come
back (``retry_after``: an operator's kick, by default about 3 s, or a ban, for its
duration, asking again every :attr:`Client.ban_recheck` seconds in case it was
lifted), the client waits that long, raising the reason (``Kicked``, ``Banned``)
from calls made meanwhile, then reconnects as usual. A client kicked for good (an
operator's kick with ``reconnect=false``, or a newer connection that took its edge
id) does not reconnect: its calls raise ``Kicked`` (``DuplicateEdge``) from then on. When a gateway drains
(``GoAway(GOING_AWAY)``) the client keeps the old connection for what is in flight
there and, after a random delay of up to :attr:`Client.go_away_jitter`, connects to
the next address of its list; calls made meanwhile wait for the new connection
within their own timeout.

Security options (every client, and ``ClusterService``/``ClusterEdge`` through their
options): ``ssl_context`` (an ``ssl.SSLContext``) or ``tls_ca`` / ``tls_cert`` /
``tls_key`` (PEM files: the CA to trust, and a client certificate for mTLS; ``tls=True``
alone trusts the system's CAs), ``tls_server_name`` (the name the gateway's
certificate carries, when it is not the host dialled), and ``credentials``: bytes,
str, or a callable returning one, asked at every handshake (an edge token from
:func:`frontier.auth.mint_edge_token`, a service secret).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import random
import ssl
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures._base import FINISHED, RUNNING
from typing import Any, Callable, Sequence

from frontier.wire.errors import (
    Banned, ConnectionClosed, ErrorCode, FrontierError, InvalidArgument, Kicked, NotFrontier, ProtocolError, Timeout,
    error_from_code,
)
from frontier.wire.events import (
    HOOK_METHOD_PREFIX, Ack, Cancel, Event, GoAway, Hello, Ping, Pong, Publish, Register, Request,
    Response, StreamAccept, StreamCredit, StreamData, StreamEnd, StreamOpen, StreamReset, Welcome,
)

from .deadlines import DEADLINES, cancel
from .link import COURIER, TIMED_OUT, Link, Waiter
from .message import Message, Request as IncomingRequest
from .payload import Data, as_bytes
from .stream import Stream
from .transport import Address, dial, format_address, tls_context

log = logging.getLogger("frontier.sdk")

Handler = Callable[[IncomingRequest], Any]

_CLOSED = object()  # put in a queue to wake its readers when the client closes
_monotonic = time.monotonic
#: this process's id, refreshed in a forked child (``os.getpid`` is a system call per use)
_PID = [os.getpid()]
#: the longest a gateway's "come back after" is honoured (a ban lasts a year at most)
MAX_RETRY_AFTER = 366 * 86400.0


def take(q: queue.Queue, timeout: float | None, closed_error: Callable[[], FrontierError]) -> Any:
    """The next item of a receive queue; ``Timeout`` after ``timeout`` seconds (None:
    wait on), ``closed_error()`` once its owner closed (the wake-up stays queued for
    the next reader)."""
    try:
        item = q.get(timeout=timeout)
    except queue.Empty:
        raise Timeout(f"nothing arrived within {timeout}s") from None
    if item is _CLOSED:
        q.put(_CLOSED)
        raise closed_error()
    return item


def take_stream(q: queue.Queue, timeout: float | None, closed_error: Callable[[], FrontierError]) -> Stream:
    """``accept_stream``: the next stream offered in ``q`` that is still on offer,
    accepted on the wire now (its opener's ``open_stream`` returns); ``Timeout``
    after ``timeout`` seconds (None: wait on)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        stream = take(q, None if deadline is None else max(deadline - time.monotonic(), 0.0), closed_error)
        if stream._accept():
            return stream


class Registrations:
    """``register``, for clients that keep ``_handlers`` and send registrations
    with ``_register(rpcs=..., hooks=...)`` (one gateway, or every frontier)."""

    _handlers: dict[str, Handler]

    def _register(self, *, rpcs: tuple[str, ...] = (), topics: tuple[str, ...] = (), hooks: tuple[str, ...] = ()) -> None:
        raise NotImplementedError

    def register(self, method: str, handler: Handler) -> None:
        """Serve ``method``: ``handler(request)`` returns bytes (or None); an exception it
        raises reaches the caller as ``RemoteError``. Replayed on every reconnect."""
        if not method or method.startswith(HOOK_METHOD_PREFIX):
            raise InvalidArgument(f"method name {method!r} is empty or reserved")
        self._handlers[method] = handler
        self._register(rpcs=(method,))

#: every live client, so a forked child can forget the connections it inherited
_live_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()
#: serialises the first use of clients in a forked child; made anew in every child
_fork_lock = threading.Lock()
#: guards the lazy creation of a client's queues and handler pool; made anew in every child
_lazy_lock = threading.Lock()


class Client(Registrations):
    """Base of :class:`Service` and :class:`Edge`; not used directly."""

    role = ""

    #: first reconnect backoff (seconds); doubles per failure up to ``backoff_max``
    backoff_base = 0.05

    #: most seconds of random delay before reconnecting after ``GoAway(GOING_AWAY)``,
    #: so the clients of a draining gateway do not all land on the next one at once
    go_away_jitter = 0.5

    #: most seconds a banned client waits before asking again (the gateway refuses it
    #: with the time left while the ban lasts): a ban an operator lifts early lets the
    #: client back within this, not at the ban's original end
    ban_recheck = 60.0

    def __init__(
        self, addr: Address | Sequence[Address], *, timeout: float = 30.0, reconnect: bool = True,
        ssl_context: ssl.SSLContext | None = None, handler_threads: int = 32, max_pending: int = 1024,
        receive_buffer: int = 1024, stream_window: int = 1 << 20, backoff_max: float = 5.0,
        stream_accept_timeout: float = 10.0,
        credentials: bytes | str | Callable[[], bytes | str] | None = None,
        tls: bool = False, tls_ca: str | None = None, tls_cert: str | None = None, tls_key: str | None = None,
        tls_server_name: str | None = None,
    ) -> None:
        if isinstance(addr, (str, tuple)):
            self._addrs: list[Address] = [addr]
        else:
            self._addrs = list(addr)
        if not self._addrs:
            raise InvalidArgument("no gateway address given")
        self.timeout = timeout
        self.reconnect = reconnect
        if ssl_context is None and (tls or tls_ca or tls_cert):
            ssl_context = tls_context(ca=tls_ca, cert=tls_cert, key=tls_key)
        elif ssl_context is not None and (tls_ca or tls_cert or tls_key):
            raise InvalidArgument("give either ssl_context or tls_ca/tls_cert/tls_key, not both")
        #: the TLS context connections are wrapped with (None: plain TCP)
        self.ssl_context = ssl_context
        #: the name the gateway's certificate must carry (default: the address's host)
        self.tls_server_name = tls_server_name
        self._credentials = credentials
        self._avoid_addr: Address | None = None
        self.stream_window = stream_window
        #: seconds a stream the peer opens waits for ``accept_stream`` before it is refused
        #: (``StreamRefused`` at the opener; less when the opener's own timeout is shorter)
        self.stream_accept_timeout = stream_accept_timeout
        self.backoff_max = backoff_max
        self._receive_buffer = receive_buffer
        self._handler_threads = handler_threads
        self._max_pending = max_pending
        self._pid = os.getpid()  # the process whose connection ``_link`` is
        # an edge's wanted id as its constructor set it: what a forked child asks for again
        self._asked_edge_id = getattr(self, "_edge_id", None)
        self._handlers: dict[str, Handler] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition(threading.Lock())
        self._link: Link | None = None
        self._closed = False
        self._fatal: FrontierError | None = None
        #: why the gateway told us to stay away, and until when (``time.monotonic``)
        self._away: FrontierError | None = None
        self._away_until = 0.0
        self._reconnecting = False
        self._addr_index = 0
        # made on first use (an edge that never receives or serves needs none of them)
        self._inbox_q: queue.Queue | None = None
        self._accepts_q: queue.Queue | None = None
        self._pool_q: ThreadPoolExecutor | None = None
        self._work_q: threading.BoundedSemaphore | None = None
        self._link = self._connect_first()
        _live_clients.add(self)

    # -- what subclasses define ------------------------------------------------------------

    def _hello(self) -> Hello:
        raise NotImplementedError

    def _on_welcome(self, welcome: Welcome) -> None:
        """Remember what the gateway assigned (an edge keeps its id)."""

    def _hook_call(self, method: str, data: bytes) -> bytes:
        raise InvalidArgument(f"{self.role}s have no hook {method!r}")

    # -- connection life ------------------------------------------------------------------------

    def _hello_credentials(self) -> bytes:
        """The credentials for the next handshake (a callable is asked every time, so
        a reconnect can carry a fresh token)."""
        value = self._credentials
        if callable(value):
            value = value()
        if value is None:
            return b""
        return as_bytes(value, "credentials")

    def _connect_first(self) -> Link:
        """Construction: try each address in turn; raise the last error if none works."""
        error: FrontierError | None = None
        for index, addr in enumerate(self._addrs):
            try:
                link = self._connect(addr)
            except FrontierError as exc:
                error = exc
                log.debug("connecting to %s failed: %s", addr, exc)
                continue
            self._addr_index = index
            return link
        assert error is not None
        raise error

    def _connect(self, addr: Address) -> Link:
        sock = dial(addr, self.timeout, self.ssl_context, self.tls_server_name)
        link = Link(sock, on_event=self._on_event, on_close=self._on_link_closed)
        try:
            welcome = link.handshake(self._hello(), self.timeout)
        except NotFrontier as exc:
            raise NotFrontier(f"{format_address(addr)} is {exc.message}") from None
        except (Timeout, ConnectionClosed) as exc:
            if type(exc) not in (Timeout, ConnectionClosed):
                raise  # a typed refusal (GoingAway...) says why by itself
            tls = "" if self.ssl_context is not None else " or its listener has TLS on (pass tls=True or tls_ca=...)"
            raise type(exc)(f"{format_address(addr)}: {exc.message} (if it is not a frontier {self.role} port"
                            f"{tls}, that is why)") from None
        self._on_welcome(welcome)
        link.start(f"frontier-{self.role}-reader")
        return link

    def _current_link(self, deadline: float) -> Link:
        self._check_pid()
        with self._cond:
            while True:
                if self._closed:
                    raise ConnectionClosed("the client is closed")
                if self._fatal is not None:
                    raise _fresh(self._fatal)
                if self._away is not None and time.monotonic() < self._away_until:
                    raise _fresh(self._away)  # kicked or banned for a while: say so at once
                link = self._link
                if link is not None and not link.closed and not link.draining:
                    return link
                # a link that closed but whose close is not handled yet (``_on_link_closed``
                # decides: reconnect, stay away, or end) is waited on like a reconnect
                settling = link is not None and link.closed
                if not self._reconnecting and not settling:
                    if link is not None:
                        return link  # draining, and no reconnect coming: finish here
                    raise ConnectionClosed("not connected to the gateway")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectionClosed("not connected to the gateway (reconnecting)")
                self._cond.wait(remaining)

    def _on_link_closed(self, link: Link, error: FrontierError) -> None:
        for stream in list(link.streams.values()):
            stream._fail(error)
            _signal_open(stream, error)
        link.streams.clear()
        with self._cond:
            if self._link is not link:
                return  # an older, drained link
            self._link = None
            if error.retry_after is not None and self.reconnect:
                # kicked or banned for a while: come back when the gateway said
                self._stay_away(error)
            elif isinstance(error, (Kicked, Banned)) or not self.reconnect:
                # kicked for good (by an operator, or a newer connection with our id),
                # or not meant to reconnect: calls raise why the connection ended from now on
                self._fatal = error
            self._cond.notify_all()
            start = self._should_reconnect()
        if start:
            log.info("frontier %s connection lost (%s); reconnecting", self.role, error)
            self._spawn_reconnect()
        elif self._fatal is not None or not self.reconnect:
            self._wake_receivers()

    def _stay_away(self, error: FrontierError) -> None:
        """Under ``_cond``: no connection attempt before ``error.retry_after`` seconds."""
        self._away = error
        wait = min(error.retry_after or 0.0, MAX_RETRY_AFTER)
        if isinstance(error, Banned):
            wait = min(wait, self.ban_recheck)
        self._away_until = time.monotonic() + wait
        log.info("frontier %s: the gateway said to come back in %.1fs (%s)", self.role, error.retry_after, error)

    def _should_reconnect(self) -> bool:
        """Under ``_cond``: claim the reconnect job if one is due."""
        if self._closed or not self.reconnect or self._fatal is not None or self._reconnecting:
            return False
        self._reconnecting = True
        return True

    def _spawn_reconnect(self) -> None:
        threading.Thread(target=self._reconnect_loop, name=f"frontier-{self.role}-reconnect", daemon=True).start()

    def _reconnect_loop(self) -> None:
        failures = 0
        try:
            avoid, self._avoid_addr = self._avoid_addr, None
            if avoid is not None:  # after GoAway: jitter, and start with another gateway
                time.sleep(random.uniform(0, self.go_away_jitter))
                if len(self._addrs) > 1 and self._addrs[self._addr_index % len(self._addrs)] == avoid:
                    self._addr_index = (self._addr_index + 1) % len(self._addrs)
            while True:
                with self._cond:
                    if self._closed or self._fatal is not None:
                        return
                    wait = self._away_until - time.monotonic()
                    if wait > 0:  # as the gateway told (a kick's delay, a ban's end); close() wakes it
                        self._cond.wait(wait + random.uniform(0, min(0.25, wait / 10)))
                        continue
                self._addr_index = (self._addr_index + (1 if failures else 0)) % len(self._addrs)
                addr = self._addrs[self._addr_index]
                try:
                    link = self._connect(addr)
                except FrontierError as exc:
                    failures += 1
                    if exc.retry_after is not None:  # refused until then (a ban)
                        with self._cond:
                            self._stay_away(exc)
                        continue
                    delay = self._backoff(failures)
                    log.debug("reconnect to %s failed (%s); retrying in %.2fs", addr, exc, delay)
                    time.sleep(delay)
                    continue
                with self._cond:
                    if self._closed:
                        link.close(ConnectionClosed("the client is closed"))
                        return
                    self._away = None
                    self._link = link
                    self._cond.notify_all()
                log.info("frontier %s reconnected to %s", self.role, addr)
                return
        finally:
            with self._cond:
                self._reconnecting = False
                self._cond.notify_all()

    def _backoff(self, failures: int) -> float:
        """Equal-jitter exponential backoff, capped at ``backoff_max``."""
        cap = min(self.backoff_max, self.backoff_base * (2 ** min(failures, 16)))
        return cap / 2 + random.uniform(0, cap / 2)

    def _on_go_away(self, link: Link, ev: GoAway) -> None:
        """``GOING_AWAY``: the link finishes what is in flight (answers keep arriving on
        it) while a new one is made in the background, after a jitter, to another
        address first; new work waits for it (within its own deadline). Other codes
        are the reason of a close that follows."""
        if ev.code == ErrorCode.GOING_AWAY:
            link.draining = True
            with self._cond:
                start = self._link is link and self._should_reconnect()
                if start:
                    self._avoid_addr = self._addrs[self._addr_index % len(self._addrs)]
            if start:
                log.info("frontier %s: the gateway is going away (%s); reconnecting", self.role, ev.message)
                self._spawn_reconnect()
        else:  # the gateway is about to close this link for a reason: keep it for waiters
            link.error = error_from_code(ev.code, ev.message, ev.retry_after_ms)

    # -- fork safety -----------------------------------------------------------------------------

    def _check_pid(self) -> None:
        """In a process forked since the client connected, set up this process's own
        connection first (see the module docstring)."""
        if self._pid != _PID[0]:
            self._after_fork(reconnect=True)

    def _after_fork(self, *, reconnect: bool) -> None:
        """Forget the parent's connection; rebuild what threads of the parent held
        (locks, queues, the handler pool); start connecting unless ``reconnect`` is off.
        Nothing here blocks or switches greenlets while ``_fork_lock`` is held."""
        with _fork_lock:
            if self._pid == os.getpid():
                return  # another thread of this process got here first
            if self._link is not None:
                _forget_link(self._link)
            self._cond = threading.Condition(threading.Lock())
            self._link = None
            self._inbox_q = self._accepts_q = self._pool_q = self._work_q = None  # made anew on first use
            if hasattr(self, "_edge_id"):
                self._edge_id = self._asked_edge_id  # the parent's id stays the parent's
            start = self._reconnecting = reconnect and not self._closed and self._fatal is None
            self._pid = os.getpid()  # last: other threads proceed once they see it
        if start:
            log.info("frontier %s: process %d was forked; connecting its own connection", self.role, self._pid)
            self._spawn_reconnect()

    def _forget_inherited_link(self) -> None:
        """Right after a fork, in the child: drop the parent's connection (no locks)."""
        link = self._link
        if link is not None and self._pid != os.getpid():
            _forget_link(link)

    def close(self) -> None:
        """Close the connection; waiting calls fail with ``ConnectionClosed``."""
        if self._pid != os.getpid():
            self._after_fork(reconnect=False)  # never shut the parent's connection down
        with self._cond:
            if self._closed:
                return
            self._closed = True
            link, self._link = self._link, None
            self._cond.notify_all()
        if link is not None:
            link.close(ConnectionClosed("closed by the application"))
        self._wake_receivers()
        pool = self._pool_q
        if pool is not None:
            pool.shutdown(wait=False)

    def _wake_receivers(self) -> None:
        self._inbox.put(_CLOSED)
        self._accepts.put(_CLOSED)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the client can never reconnect)."""
        return self._closed or self._fatal is not None

    @property
    def connected(self) -> bool:
        """True while a connection to the gateway is up (this process's own)."""
        link = self._link
        return link is not None and not link.closed and self._pid == os.getpid()

    def connect(self, timeout: float | None = None) -> None:
        """Block until this process has its own live connection (``timeout``: the
        client's by default). A client connects on construction and reconnects by
        itself; call this in a forked worker (gunicorn ``post_fork``, Celery
        ``worker_process_init``) to connect now instead of on first use, so that
        ``service_id``/``edge_id`` are this process's at once. Raises
        ``ConnectionClosed`` if no connection comes up in time."""
        self._check_pid()
        timeout = self.timeout if timeout is None else timeout
        self._current_link(time.monotonic() + timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- registration ------------------------------------------------------------------------------

    def _register(self, *, rpcs: tuple[str, ...] = (), topics: tuple[str, ...] = (), hooks: tuple[str, ...] = ()) -> None:
        self._check_pid()
        with self._cond:
            link = self._link
        if link is None or link.closed:
            return  # the next handshake carries it
        req_id = next(self._ids)
        code, _, message = self._roundtrip(link, req_id, Register(req_id, rpcs, topics, hooks), self.timeout, "registration")
        if code:
            raise error_from_code(code, message)

    # -- calls and publishes ---------------------------------------------------------------------------

    def _call(self, link: Link | None, method: str, data: Data, timeout: float | None, edge_id: int | None, stream_id: int) -> bytes:
        return self._deliver(Request, link, method, data, timeout, edge_id, stream_id)

    def _publish(self, link: Link | None, topic: str, data: Data, timeout: float | None, edge_id: int | None, stream_id: int) -> None:
        self._deliver(Publish, link, topic, data, timeout, edge_id, stream_id)

    def _deliver(self, frame: type[Request] | type[Publish], link: Link | None, name: str, data: Data,
                 timeout: float | None, edge_id: int | None, stream_id: int) -> Any:
        """Send a ``Request`` or ``Publish`` (the same fields in the same order) on
        ``link`` (None: the current one) and return the answer's data; raise the
        error an unsuccessful one carries, ``Timeout`` at the deadline."""
        timeout = self.timeout if timeout is None else timeout
        payload = data if type(data) is bytes else as_bytes(data, f"the data of {_what(frame, name)}")
        now = _monotonic()
        if link is None:
            link = self._usable_link(now + timeout)
        req_id = next(self._ids)
        waiter = Waiter(link, req_id)
        link.pending[req_id] = waiter
        DEADLINES.add_waiter(timeout, waiter, now)
        try:
            link.send_call(frame, req_id, name, payload, max(1, int(timeout * 1000)), edge_id, stream_id)
        except BaseException:
            link.pending.pop(req_id, None)
            cancel(waiter)
            raise
        value = waiter.take()
        if type(value) is tuple:
            if value[0]:
                raise error_from_code(value[0], value[2])
            return value[1]
        if value is TIMED_OUT:
            link.send_quiet(Cancel(req_id))
            raise Timeout(f"{_what(frame, name)} got no answer within {timeout}s")
        raise _fresh(value)

    def _usable_link(self, deadline: float) -> Link:
        """The current link if it is up (no lock taken), else :meth:`_current_link`."""
        link = self._link
        if (link is None or link.closed or link.draining or self._closed or self._fatal is not None
                or self._away is not None or self._pid != _PID[0]):
            return self._current_link(deadline)
        return link

    def _deliver_async(self, frame: type[Request] | type[Publish], name: str, data: Data, timeout: float | None,
                       edge_id: int | None, result: Callable[[bytes], Any]) -> "Future[Any]":
        """``_deliver`` without waiting: a future that resolves to ``result(data)`` of
        the answer or raises what ``_deliver`` would raise. Sent at once on a live
        link; while there is none (reconnecting), a helper thread waits for one
        within the deadline."""
        future = CallFuture()
        try:
            timeout = self.timeout if timeout is None else timeout
            payload = data if type(data) is bytes else as_bytes(data, f"the data of {_what(frame, name)}")
            now = _monotonic()
            deadline = now + timeout
            link = self._link
            if (link is None or link.closed or link.draining or self._closed or self._fatal is not None
                    or self._away is not None or self._pid != _PID[0]):
                threading.Thread(target=_resolve_later, daemon=True, name=f"frontier-{self.role}-async",
                                 args=(future, lambda: result(self._deliver(frame, None, name, payload,
                                                                            max(deadline - _monotonic(), 0.0),
                                                                            edge_id, 0)))).start()
                return future
            req_id = next(self._ids)
            pending = AsyncCall(future, link, req_id, frame, name, timeout, result)
            link.pending[req_id] = pending
            DEADLINES.add_waiter(timeout, pending, now)
            try:
                link.send_call(frame, req_id, name, payload, max(1, int(timeout * 1000)), edge_id, 0)
            except BaseException:
                link.pending.pop(req_id, None)
                cancel(pending)
                raise
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        return future

    def _roundtrip(self, link: Link, req_id: int, ev: Event, timeout: float, what: str) -> Any:
        """Send ``ev`` (a ``Register``) and wait for the ``(code, data, message)``
        answering ``req_id``."""
        waiter = Waiter(link, req_id)
        link.pending[req_id] = waiter
        DEADLINES.add_waiter(timeout, waiter)
        try:
            link.send(ev)
        except BaseException:
            link.pending.pop(req_id, None)
            cancel(waiter)
            raise
        value = waiter.take()
        if value is TIMED_OUT:
            raise Timeout(f"{what} got no answer within {timeout}s")
        if isinstance(value, FrontierError):
            raise _fresh(value)
        return value

    # -- receiving ---------------------------------------------------------------------------------------

    def receive(self, timeout: float | None = None) -> Message:
        """The next message published to this client; call ``done()`` or ``error()`` on it.
        Waits forever when ``timeout`` is None; raises ``Timeout`` or ``ConnectionClosed``."""
        self._check_pid()
        return self._take(self._inbox, timeout)

    def accept_stream(self, timeout: float | None = None) -> Stream:
        """The next stream the peer opened to this client. A stream is accepted only
        here: the opener's ``open_stream`` waits for this call, and a stream not taken
        within ``stream_accept_timeout`` is refused (the opener gets ``StreamRefused``).
        Waits forever when ``timeout`` is None; raises ``Timeout`` or ``ConnectionClosed``."""
        self._check_pid()
        return take_stream(self._accepts, timeout, self._closed_error)

    def _new_inbox(self) -> queue.Queue:
        return queue.Queue()

    # the receive queues, the handler pool and its bound, made on first use: they are
    # most of what an idle client costs (a queue.Queue is four locks)

    def _made(self, slot: str, make: Callable[[], Any]) -> Any:
        """What ``slot`` holds, made by ``make`` (under the lazy lock) on first use."""
        obj = getattr(self, slot)
        if obj is None:
            with _lazy_lock:
                obj = getattr(self, slot)
                if obj is None:
                    obj = make()
                    setattr(self, slot, obj)
        return obj

    @property
    def _inbox(self) -> queue.Queue:
        return self._made("_inbox_q", self._new_inbox)

    @property
    def _accepts(self) -> queue.Queue:
        return self._made("_accepts_q", queue.Queue)

    @property
    def _pool(self) -> ThreadPoolExecutor:
        return self._made("_pool_q", self._new_pool)

    def _new_pool(self) -> ThreadPoolExecutor:
        if self._closed:
            raise RuntimeError("the client is closed")  # as a shut-down pool's submit
        return ThreadPoolExecutor(max_workers=self._handler_threads, thread_name_prefix=f"frontier-{self.role}-handler")

    @property
    def _work(self) -> threading.BoundedSemaphore:
        return self._made("_work_q", lambda: threading.BoundedSemaphore(self._max_pending))

    def _take(self, q: queue.Queue, timeout: float | None) -> Any:
        return take(q, timeout, self._closed_error)

    def _closed_error(self) -> FrontierError:
        return _fresh(self._fatal) if self._fatal is not None else ConnectionClosed("the client is closed")

    # -- the reader thread's side -----------------------------------------------------------------------

    def _on_event(self, link: Link, ev: Event) -> None:
        etype = type(ev)
        if etype is Response:  # answers mostly take the link's fast path; these came with the Welcome
            waiter = link.pending.pop(ev.call_id, None)
            if waiter is not None:
                waiter.answer(ev.code, ev.data, ev.message)
        elif etype is Ack:
            waiter = link.pending.pop(ev.msg_id, None)
            if waiter is not None:
                waiter.answer(ev.code, b"", ev.message)
        elif etype is Request:
            self._on_request(link, ev)
        elif etype is Publish:
            self._on_publish(link, ev)
        elif etype is StreamData:
            stream = link.streams.get(ev.stream_id)
            if stream is not None:
                stream._on_data(ev.data)
        elif etype is StreamCredit:
            stream = link.streams.get(ev.stream_id)
            if stream is not None:
                stream._on_credit(ev.amount)
        elif etype is StreamOpen:
            self._on_stream_open(link, ev)
        elif etype is StreamAccept:
            stream = link.streams.get(ev.stream_id)
            if stream is not None:
                stream._on_accept(ev.window)
                _signal_open(stream, None)
        elif etype is StreamEnd:
            stream = link.streams.get(ev.stream_id)
            if stream is not None:
                stream._on_end()
        elif etype is StreamReset:
            stream = link.streams.pop(ev.stream_id, None)
            if stream is not None:
                stream._on_reset(ev.code, ev.message)
                _signal_open(stream, error_from_code(ev.code, ev.message))
        elif etype is Ping:
            link.send_quiet(Pong(ev.nonce))
        elif etype is GoAway:
            self._on_go_away(link, ev)
        # Pong and Cancel need nothing: a cancelled handler's answer is dropped by the gateway

    def _on_request(self, link: Link, ev: Request) -> None:
        stream = link.streams.get(ev.stream_id) if ev.stream_id else None
        if ev.method.startswith(HOOK_METHOD_PREFIX):
            handler = None
        else:
            handler = (stream._handlers.get(ev.method) if stream is not None else None) or self._handlers.get(ev.method)
            if handler is None:
                link.send_quiet(Response(ev.call_id, ErrorCode.RPC_NOT_ONLINE, b"", f"no handler for {ev.method!r}"))
                return
        if not self._work.acquire(blocking=False):
            link.send_quiet(Response(ev.call_id, ErrorCode.BUFFER_FULL, b"", "too many calls waiting for a handler"))
            return
        try:
            self._pool.submit(self._run_handler, link, ev, handler, stream)
        except RuntimeError:  # the pool shut down: the client is closing
            self._work.release()

    def _run_handler(self, link: Link, ev: Request, handler: Handler | None, stream: Stream | None) -> None:
        try:
            try:
                if handler is None:
                    result = self._hook_call(ev.method, ev.data)
                else:
                    result = handler(IncomingRequest(ev.data, ev.method, ev.edge_id, stream))
                answer = Response(ev.call_id, 0, b"" if result is None else as_bytes(result, f"the answer of handler {ev.method!r}"))
            except Exception as exc:
                answer = Response(ev.call_id, ErrorCode.REMOTE_ERROR, b"", _describe(exc))
            try:
                link.send(answer)
            except ProtocolError as exc:  # e.g. the answer is larger than a frame
                link.send_quiet(Response(ev.call_id, ErrorCode.REMOTE_ERROR, b"", f"cannot send the answer: {exc}"))
            except FrontierError:
                pass  # the connection is gone; the gateway already answered the caller
        finally:
            self._work.release()

    def _on_publish(self, link: Link, ev: Publish) -> None:
        stream = link.streams.get(ev.stream_id) if ev.stream_id else None
        inbox = stream._messages() if stream is not None else self._inbox
        if inbox.qsize() >= self._receive_buffer:
            link.send_quiet(Ack(ev.msg_id, ErrorCode.BUFFER_FULL, "the receiver's buffer is full"))
            return
        inbox.put(Message(ev.data, ev.topic, ev.edge_id, link, ev.msg_id, stream))

    # -- streams -------------------------------------------------------------------------------------------

    def streams(self) -> list[Stream]:
        """This client's open streams (opened by it and accepted, or accepted by it),
        oldest first: Go's ``ListStreams``. A stream leaves the list once both ends
        ended it, or it was reset or closed."""
        self._check_pid()
        link = self._link
        if link is None:
            return []
        return [stream for stream in list(link.streams.values())  # dicts keep the order they opened in
                if stream._opening is None and stream._offer is None  # not still waiting to be accepted
                and not stream._closed and stream._error is None]

    def _open_stream(self, timeout: float | None, *, service: str = "", edge_id: int | None = None) -> Stream:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        link = self._current_link(deadline)
        waiter = Waiter()
        timeout_ms = max(1, int(timeout * 1000))
        box: list[Stream] = []

        def register(sid: int) -> None:
            stream = Stream(self, link, sid, window=self.stream_window, edge_id=edge_id, service=service)
            stream._opening = waiter
            link.streams[sid] = stream
            box.append(stream)

        try:
            link.open_stream(lambda sid: StreamOpen(sid, service, edge_id, b"", "", self.stream_window, timeout_ms), register)
        except BaseException:
            if box:
                link.streams.pop(box[0].stream_id, None)
            raise
        stream = box[0]
        if not waiter.wait(deadline - time.monotonic()):
            with stream._cond:
                unanswered = stream._opening is waiter
                stream._opening = None
            if unanswered:
                stream._reset(ErrorCode.CANCELLED, "the opener gave up waiting")
                raise Timeout(f"the stream was not accepted within {timeout}s")
            waiter.wait(self.timeout)
        if isinstance(waiter.value, FrontierError):
            raise _fresh(waiter.value)
        return stream

    def _on_stream_open(self, link: Link, ev: StreamOpen) -> None:
        """Offer the stream to ``accept_stream`` (which accepts it on the wire), with a
        deadline: the opener's ``timeout_ms`` or our ``stream_accept_timeout``, the
        shorter; then it is refused with ``TIMEOUT`` or ``STREAM_REFUSED``."""
        accepts = self._accepts
        if accepts.qsize() >= self._receive_buffer:
            link.send_quiet(StreamReset(ev.stream_id, ErrorCode.BUFFER_FULL, "the accept queue is full"))
            return
        stream = Stream(self, link, ev.stream_id, window=self.stream_window, edge_id=ev.edge_id, meta=ev.meta, addr=ev.addr, service=ev.service)
        stream._on_accept(ev.window)
        wait = self.stream_accept_timeout
        code, why = ErrorCode.STREAM_REFUSED, f"the {self.role} did not accept the stream within {wait:g}s (no accept_stream call)"
        if ev.timeout_ms and ev.timeout_ms / 1000 < wait:
            wait = ev.timeout_ms / 1000
            code, why = ErrorCode.TIMEOUT, f"the {self.role} did not accept the stream within the opener's {wait:g}s"
        stream._offer = accepts
        link.streams[ev.stream_id] = stream
        accepts.put(stream)
        DEADLINES.add(wait, lambda: stream._expire_offer(code, why))


def _forget_link(link: Link) -> None:
    """Make a connection inherited from the parent process unusable here without
    touching the parent's: no shutdown, no write; only this process's descriptor is
    closed. Sends on it raise ``ConnectionClosed``. Idempotent."""
    link.error = ConnectionClosed("this connection belongs to the parent process (the client was forked)")
    link.closed = True  # Link.send and Link.close check it: nothing is written, nothing shut down
    try:
        fd = link.sock.detach()  # the socket object forgets the descriptor (a TLS one sends nothing)
    except (OSError, ValueError):
        return
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def _after_fork_in_child() -> None:
    """``os.register_at_fork`` hook: in a new child, forget every inherited connection
    at once (so a dead parent's connections end when the parent does) and give the
    child a fresh ``_fork_lock``. The rest waits for the client's first use."""
    global _fork_lock, _lazy_lock
    _fork_lock = threading.Lock()
    _lazy_lock = threading.Lock()
    _PID[0] = os.getpid()
    for client in list(_live_clients):
        try:
            client._forget_inherited_link()
        except Exception:  # never break a fork
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _signal_open(stream: Stream, value: FrontierError | None) -> None:
    """Wake an ``open_stream`` waiting on ``stream`` (once)."""
    with stream._cond:
        waiter = getattr(stream, "_opening", None)
        stream._opening = None
    if waiter is not None:
        waiter.set(value)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fresh(error: FrontierError) -> FrontierError:
    """A new instance of ``error`` (one shared instance must not collect tracebacks)."""
    fresh = type(error)(error.message, retry_after=error.retry_after)
    fresh.code = error.code
    return fresh


class CallFuture(Future):
    """The ``concurrent.futures.Future`` of ``call_async``/``publish_async``: already
    running (it cannot be cancelled: its deadline bounds it), and guarded by a plain
    lock instead of ``Future``'s re-entrant one (no ``Future`` method re-enters it),
    which halves its cost under gevent."""

    def __init__(self) -> None:
        super().__init__()
        self._condition = threading.Condition(threading.Lock())
        self._state = RUNNING

    def result(self, timeout: float | None = None) -> Any:
        """As ``Future.result``; an answer already in is returned without the lock
        (``_result`` is set before ``_state``, both under the lock)."""
        if self._state == FINISHED and self._exception is None:
            return self._result
        return super().result(timeout)


class AsyncCall:
    """A pending ``call_async``/``publish_async``: the reader, the link's close or the
    deadline sweeper resolves its future (never blocking: a ``Cancel`` for an expired
    call is sent by the courier thread)."""

    __slots__ = ("future", "link", "key", "frame", "name", "timeout", "result", "timer")

    def __init__(self, future: "Future[Any]", link: Link, key: int, frame: type[Request] | type[Publish], name: str,
                 timeout: float, result: Callable[[bytes], Any]) -> None:
        self.future = future
        self.link = link
        self.key = key
        self.frame = frame
        self.name = name
        self.timeout = timeout
        self.result = result
        self.timer: Any = None

    def answer(self, code: int, data: bytes, message: str) -> None:
        cancel(self)
        if code:
            self.future.set_exception(error_from_code(code, message))
        else:
            self.future.set_result(self.result(data))

    def fail(self, error: FrontierError) -> None:
        cancel(self)
        self.future.set_exception(_fresh(error))

    def expire(self) -> None:
        link = self.link
        if link.pending.pop(self.key, None) is self:
            COURIER.post(link, Cancel(self.key))
            self.future.set_exception(Timeout(f"{_what(self.frame, self.name)} got no answer within {self.timeout}s"))


def _what(frame: type[Request] | type[Publish], name: str) -> str:
    """A call or publish as error messages name it (made only for an error)."""
    return f"call {name!r}" if frame is Request else f"publish to {name!r}"


def _resolve_later(future: "Future[Any]", fn: Callable[[], Any]) -> None:
    """Run ``fn`` (a blocking call) and resolve ``future`` with its outcome."""
    try:
        result = fn()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _data(data: bytes) -> bytes:
    return data


def _nothing(data: bytes) -> None:
    return None
