"""Raw-socket load generators for ``loadtests/bench.py``.

No SDK, no gevent, no threads: each generator process runs one ``epoll`` loop over
non-blocking sockets and speaks frontier frames built with :mod:`frontier.wire`'s
codec (``encode_frame`` / ``encode_body`` of the real event classes; incoming bodies
are unpacked with plain ``msgpack`` and dispatched on the frame type number, skipping
the schema check the SDK and gateway do). Requests are pipelined: every edge keeps
``depth`` calls in flight and sends the next one the moment an answer arrives, and
the service side answers everything it receives in one write per loop turn. The
same code drives the gateway and the bare relay (``loadtests/relay.py``); only the
service side's framing differs (the relay prefixes each frame with a u32 edge index).

Two kinds of process, both started with ``multiprocessing`` (fork) by the bench and
steered over a ``Pipe``:

* :func:`service_worker` - one service connection: answers calls, publishes, online
  hooks (gateway) or hellos (relay) and stream opens, counts stream bytes and returns
  credit, and on demand calls edges back (service -> edge round trips).
* :func:`edge_worker` - many edge connections bound to one source address in
  127.0.0.0/8: connects them (handshake), then makes calls, publishes or pushes a
  stream, and answers what the service sends them.

Every process reports counts and latencies measured inside the same time window
(``time.monotonic`` is one clock for all processes on Linux).
"""

from __future__ import annotations

import errno
import os
import resource
import selectors
import socket
import struct
import time
from typing import Any

import msgpack

from frontier.wire.codec import encode_body, encode_frame
from frontier.wire.events import (
    PROTOCOL_VERSION, Ack, Hello, Ping, Pong, Publish, Refuse, Request, Response, StreamAccept, StreamCredit,
    StreamData, StreamOpen, Welcome,
)

_HDR = struct.Struct(">I")
_HDR_IDX = struct.Struct(">II")
_unpack_hdr = _HDR.unpack_from
_unpack_hdr_idx = _HDR_IDX.unpack_from
_unpackb = msgpack.unpackb
_RECV = 1 << 18
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux >= 4.2

T_HELLO, T_WELCOME, T_REFUSE = Hello.TYPE, Welcome.TYPE, Refuse.TYPE
T_REQUEST, T_RESPONSE, T_PUBLISH, T_ACK = Request.TYPE, Response.TYPE, Publish.TYPE, Ack.TYPE
T_STREAM_OPEN, T_STREAM_ACCEPT = StreamOpen.TYPE, StreamAccept.TYPE
T_STREAM_DATA, T_STREAM_CREDIT = StreamData.TYPE, StreamCredit.TYPE
T_PING = Ping.TYPE
T_GOAWAY = 18

#: the service name, topic and methods the bench uses
SERVICE_NAME = "bench"
TOPIC = "bench"
E2S_METHOD = "echo"
S2E_METHOD = "ping"
ONLINE_HOOK = "$edge_online"
CALL_TIMEOUT_MS = 10_000
STREAM_WINDOW = 1 << 20
STREAM_CHUNK = 1 << 16


def raise_nofile() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit (a generator may hold thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class Conn:
    """One non-blocking socket with its read and write buffers."""

    __slots__ = ("sock", "rbuf", "wbuf", "writing", "id", "calls", "credit", "sid", "ready", "error", "ops", "addr", "since")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.writing = False  # registered for EVENT_WRITE
        self.id = 0  # edge id (gateway) or edge index (relay)
        self.calls: dict[int, float] = {}  # call id -> send time
        self.credit = 0  # stream credit (edge pushing a stream)
        self.sid = 0
        self.ready = False  # handshake done
        self.error = ""
        self.ops = 0  # operations carried (service side: per gateway worker)
        self.addr = ""  # where it connected (service side)
        self.since = 0.0  # when its connect started


class Loop:
    """A tiny epoll loop: read callbacks per connection, writes flushed once per turn."""

    def __init__(self) -> None:
        self.sel = selectors.EpollSelector()
        self.dirty: set[Conn] = set()

    def add(self, conn: Conn, events: int = _READ) -> None:
        self.sel.register(conn.sock, events, conn)
        conn.writing = bool(events & _WRITE)

    def drop(self, conn: Conn) -> None:
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self.dirty.discard(conn)
        conn.sock.close()

    def write(self, conn: Conn, frame: bytes) -> None:
        conn.wbuf += frame
        self.dirty.add(conn)

    def flush(self) -> None:
        dirty = self.dirty
        while dirty:
            conn = dirty.pop()
            self._flush(conn)

    def _flush(self, conn: Conn) -> None:
        wbuf = conn.wbuf
        if wbuf:
            try:
                n = conn.sock.send(wbuf)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                conn.error = conn.error or f"write: {exc}"
                wbuf.clear()
                return
            if n:
                del wbuf[:n]
        if wbuf and not conn.writing:
            self.sel.modify(conn.sock, _READ | _WRITE, conn)
            conn.writing = True
        elif not wbuf and conn.writing:
            self.sel.modify(conn.sock, _READ, conn)
            conn.writing = False


def _frames(conn: Conn, data: bytes) -> list[bytes]:
    """Append ``data`` and return the complete frame bodies now buffered."""
    rbuf = conn.rbuf
    rbuf += data
    out = []
    pos, end = 0, len(rbuf)
    while end - pos >= 4:
        stop = pos + 4 + _unpack_hdr(rbuf, pos)[0]
        if stop > end:
            break
        out.append(bytes(rbuf[pos + 4:stop]))
        pos = stop
    if pos:
        del rbuf[:pos]
    return out


def _indexed_frames(conn: Conn, data: bytes) -> list[tuple[int, bytes]]:
    """Like :func:`_frames` for the relay's service side: ``(edge index, body)``."""
    rbuf = conn.rbuf
    rbuf += data
    out = []
    pos, end = 0, len(rbuf)
    while end - pos >= 8:
        size, index = _unpack_hdr_idx(rbuf, pos)
        stop = pos + 4 + size
        if stop > end:
            break
        out.append((index, bytes(rbuf[pos + 8:stop])))
        pos = stop
    if pos:
        del rbuf[:pos]
    return out


class Window:
    """Counts and latency samples of operations finished inside ``[start, end]``."""

    __slots__ = ("start", "end", "stop", "count", "failures", "samples", "bytes", "errors")

    def __init__(self, start: float = 0.0, end: float = 0.0) -> None:
        self.start = start
        self.end = end
        self.stop = end  # no new operation is started after this
        self.count = 0
        self.failures = 0
        self.samples: list[float] = []
        self.bytes = 0
        self.errors: list[str] = []

    def done(self, now: float, started: float, code: int, message: str = "") -> None:
        if self.start <= now <= self.end:
            if code:
                self.failures += 1
                if len(self.errors) < 5:
                    self.errors.append(f"code {code}: {message}")
            else:
                self.count += 1
                self.samples.append(now - started)

    def report(self) -> dict[str, Any]:
        return {
            "count": self.count, "failures": self.failures, "samples": self.samples, "bytes": self.bytes,
            "errors": self.errors, "seconds": self.end - self.start,
        }


# -- service side -------------------------------------------------------------------------------


def service_worker(ctrl: Any, spec: dict[str, Any]) -> None:
    """One service connection, steered by ``ctrl`` (see the module docstring).

    ``spec``: ``target`` ("gateway" or "relay"), ``addr`` (its service listener) or
    ``addrs`` (a gateway's workers' service ports: one connection to each, as a
    ``ClusterService`` keeps; an edge is called back through the connection its online
    hook came in on), ``payload`` (bytes per service -> edge call), ``reconnect``
    (a lost connection is connected again every 0.2 s instead of ending the process). The report's
    ``per_conn`` counts the operations each connection carried in the window. Commands: ``("go", start, end,
    s2e_edges, depth)`` starts a measurement window (calling back the first
    ``s2e_edges`` edges seen online when non-zero); ``("report",)`` answers the
    window's numbers; ``("stop",)`` ends the process.
    """
    raise_nofile()
    relay = spec["target"] == "relay"
    payload = b"s" * spec.get("payload", 64)
    addrs = spec.get("addrs") or [spec["addr"]]
    if relay and len(addrs) != 1:
        raise ValueError("the relay has one service port")
    loop = Loop()
    conns: list[Conn] = []
    lost: dict[str, float] = {}  # address -> when to try it again (``reconnect``)
    reconnect = spec.get("reconnect", False)

    def join(addr: str) -> str:
        """Connect and handshake one service connection; an error message or ''."""
        sock = socket.create_connection(_addr(addr), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if relay:  # wait until the relay registered us (an empty frame for index 0)
            if _recv_exactly(sock, 8) != _HDR_IDX.pack(4, 0):
                sock.close()
                return "unexpected first frame from the relay"
        else:
            sock.sendall(encode_frame(Hello(PROTOCOL_VERSION, "service", SERVICE_NAME, (TOPIC,), (E2S_METHOD,), ("edge_online",))))
            obj = _unpackb(_read_frame(sock))
            if obj[0] != T_WELCOME:
                sock.close()
                return f"service handshake refused: {obj}"
        sock.setblocking(False)
        conn = Conn(sock)
        conn.addr = addr
        loop.add(conn)
        conns.append(conn)
        return ""

    for addr in addrs:  # one connection per gateway worker, as ClusterService keeps
        problem = join(addr)
        if problem:
            ctrl.send(("error", problem))
            return
    ctrl_fd = ctrl.fileno()
    loop.sel.register(ctrl_fd, _READ, None)

    online: list[tuple[int, Conn]] = []  # (edge id or relay index, the connection it came online on)
    window = Window()
    credits: dict[tuple[Conn, int, int], int] = {}
    s2e_next = 1
    s2e_pending: dict[int, tuple[int, Conn, float]] = {}
    answered = 0
    monotonic = time.monotonic
    frames = _indexed_frames if relay else _frames
    write = loop.write
    half_window = STREAM_WINDOW // 2

    if relay:
        def out(conn: Conn, index: int, event: Any) -> None:
            body = encode_body(event)
            write(conn, _HDR_IDX.pack(len(body) + 4, index) + body)
    else:
        def out(conn: Conn, index: int, event: Any) -> None:
            write(conn, encode_frame(event))

    def call_edge(edge: int, conn: Conn, now: float) -> None:
        # the edge is reached through the worker it came online on
        nonlocal s2e_next
        cid = s2e_next = s2e_next + 1
        s2e_pending[cid] = (edge, conn, now)
        if relay:
            out(conn, edge, Request(cid, S2E_METHOD, payload, CALL_TIMEOUT_MS))
        else:
            out(conn, 0, Request(cid, S2E_METHOD, payload, CALL_TIMEOUT_MS, edge))

    ctrl.send(("ready", {"pid": os.getpid()}))
    while True:
        if lost:  # a worker went away: connect to its port again (the supervisor restarts it)
            now = time.monotonic()
            for addr, when in list(lost.items()):
                if when <= now:
                    try:
                        problem = join(addr)
                    except OSError as exc:
                        problem = str(exc)
                    if problem:
                        lost[addr] = now + 0.2
                    else:
                        del lost[addr]
        for key, mask in loop.sel.select(0.2 if lost else 1.0):
            conn = key.data
            if conn is None:
                cmd = ctrl.recv()
                if cmd[0] == "stop":
                    for svc in conns:
                        loop.drop(svc)
                    return
                if cmd[0] == "report":
                    rep = window.report()
                    rep["answered"] = answered
                    rep["online"] = len(online)
                    rep["per_conn"] = [c.ops for c in conns]
                    ctrl.send(("result", rep))
                elif cmd[0] == "online":
                    ctrl.send(("online", len(online)))
                elif cmd[0] == "go":
                    _, start, end, s2e_edges, depth = cmd
                    window = Window(start, end)
                    answered = 0
                    for c in conns:
                        c.ops = 0
                    now = monotonic()
                    for edge, conn in online[:s2e_edges]:
                        for _ in range(depth):
                            call_edge(edge, conn, now)
                continue
            if mask & _WRITE:
                loop._flush(conn)
            if not mask & _READ:
                continue
            try:
                data = conn.sock.recv(_RECV)
            except BlockingIOError:
                continue
            except OSError as exc:
                data = b""
                failure = f"service socket: {exc}"
            else:
                failure = "the service connection was closed"
            if not data:
                if not reconnect:
                    ctrl.send(("error", failure))
                    return
                loop.drop(conn)
                conns.remove(conn)
                lost[conn.addr] = time.monotonic() + 0.2
                online[:] = [(e, c) for e, c in online if c is not conn]
                continue
            now = monotonic()
            inside = window.start <= now <= window.end
            for item in frames(conn, data):
                if relay:
                    index, body = item
                else:
                    index, body = 0, item
                obj = _unpackb(body)
                kind = obj[0]
                if kind == T_STREAM_DATA:
                    n = len(obj[2])
                    if inside:
                        window.bytes += n
                    key2 = (conn, index, obj[1])
                    got = credits.get(key2, 0) + n
                    if got >= half_window:
                        out(conn, index, StreamCredit(obj[1], got))
                        got = 0
                    credits[key2] = got
                elif kind == T_REQUEST:
                    answered += 1
                    if obj[2] == ONLINE_HOOK:
                        online.append((_unpackb(obj[3])["edge_id"], conn))
                        out(conn, index, Response(obj[1], 0))
                    else:
                        if inside:
                            conn.ops += 1
                        out(conn, index, Response(obj[1], 0, obj[3]))
                elif kind == T_PUBLISH:
                    answered += 1
                    if inside:
                        conn.ops += 1
                    out(conn, index, Ack(obj[1], 0))
                elif kind == T_RESPONSE:
                    pending = s2e_pending.pop(obj[1], None)
                    if pending is not None:
                        edge, via, started = pending
                        window.done(now, started, obj[2], obj[4])
                        if inside:
                            via.ops += 1
                        if now < window.stop:
                            call_edge(edge, via, now)
                elif kind == T_HELLO:  # relay: the edge's hello stands in for the online hook
                    online.append((index, conn))
                    out(conn, index, Welcome(index, 1 << 20, 3600.0, STREAM_WINDOW, 1024))
                elif kind == T_STREAM_OPEN:
                    out(conn, index, StreamAccept(obj[1], STREAM_WINDOW))
                elif kind == T_PING:
                    out(conn, index, Pong(obj[1]))
        loop.flush()


def _read_frame(sock: socket.socket) -> bytes:
    """Blocking read of one whole frame body (handshakes only)."""
    head = _recv_exactly(sock, 4)
    return _recv_exactly(sock, _HDR.unpack(head)[0])


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = sock.recv(n - got)
        if not part:
            raise ConnectionError("closed")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


# -- edge side ---------------------------------------------------------------------------------------


class EdgeSwarm:
    """The edges of one generator process, all bound to one source address."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.addr = _addr(spec["addr"])
        self.src = spec.get("src", "127.0.0.1")
        self.base_id = spec.get("base_id", 1)
        self.meta = spec.get("meta", b"bench-edge")
        self.loop = Loop()
        self.edges: list[Conn] = []
        self._next_id = self.base_id

    # -- connecting ---------------------------------------------------------------------

    def connect(self, n: int, concurrency: int, timeout: float = 120.0) -> dict[str, Any]:
        """Connect ``n`` more edges, at most ``concurrency`` handshakes at once."""
        loop = self.loop
        sel = loop.sel
        hello_rpcs = (S2E_METHOD,)
        started = time.monotonic()
        deadline = started + timeout
        todo, inflight, ok, failed = n, 0, 0, 0
        errors: list[str] = []
        last = started
        while (todo or inflight) and time.monotonic() < deadline:
            while todo and inflight < concurrency:
                todo -= 1
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # pick the port at connect() (4-tuple unique), not at bind(): with
                # thousands of ports in TIME_WAIT, bind(port 0) crawls
                sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
                try:
                    sock.bind((self.src, 0))
                except OSError as exc:
                    sock.close()
                    failed += 1
                    errors.append(f"bind: {exc}")
                    continue
                err = sock.connect_ex(self.addr)
                if err not in (0, errno.EINPROGRESS):
                    sock.close()
                    failed += 1
                    errors.append(f"connect: {os.strerror(err)}")
                    continue
                conn = Conn(sock)
                conn.id = self._next_id
                self._next_id += 1
                loop.add(conn, _WRITE)
                inflight += 1
            for key, mask in sel.select(0.5):
                conn = key.data
                if not conn.ready and conn.writing and not conn.wbuf and mask & _WRITE:
                    err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        failed += 1
                        inflight -= 1
                        errors.append(f"connect: {os.strerror(err)}")
                        loop.drop(conn)
                        continue
                    hello = Hello(PROTOCOL_VERSION, "edge", "", (), hello_rpcs, (), self.meta, conn.id)
                    conn.wbuf += encode_frame(hello)
                    loop._flush(conn)
                    continue
                if mask & _WRITE:
                    loop._flush(conn)
                if not mask & _READ:
                    continue
                try:
                    data = conn.sock.recv(_RECV)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    data = b""
                    conn.error = str(exc)
                bodies = _frames(conn, data) if data else None
                if not bodies:
                    if bodies is None:  # closed before the welcome
                        failed += 1
                        inflight -= 1
                        errors.append(f"closed during handshake {conn.error}".strip())
                        loop.drop(conn)
                    continue
                obj = _unpackb(bodies[0])
                if obj[0] == T_WELCOME:
                    conn.id = obj[1]
                    conn.ready = True
                    ok += 1
                    inflight -= 1
                    last = time.monotonic()
                    self.edges.append(conn)
                    if len(bodies) > 1:
                        conn.rbuf[:0] = b"".join(_HDR.pack(len(b)) + b for b in bodies[1:])
                else:
                    failed += 1
                    inflight -= 1
                    errors.append(f"refused: {obj}")
                    loop.drop(conn)
        if todo or inflight:
            failed += todo + inflight
            errors.append(f"{todo + inflight} handshakes not done within {timeout}s")
        return {"ok": ok, "failed": failed, "started": started, "last": last, "errors": errors[:5]}

    # -- driving -------------------------------------------------------------------------------

    def drive(self, mode: str, start: float, end: float, depth: int, payload: int) -> dict[str, Any]:
        """Run ``mode`` ("rpc", "publish", "serve", "stream") until ``end``; numbers
        count operations finished inside ``[start, end]``."""
        loop = self.loop
        write = loop.write
        window = Window(start, end)
        monotonic = time.monotonic
        data = b"e" * payload
        chunk = encode_frame(StreamData(1, b"x" * STREAM_CHUNK))
        next_id = [0]

        def issue(conn: Conn, now: float) -> None:
            cid = next_id[0] = next_id[0] + 1
            conn.calls[cid] = now
            if mode == "rpc":
                write(conn, encode_frame(Request(cid, E2S_METHOD, data, CALL_TIMEOUT_MS)))
            else:
                write(conn, encode_frame(Publish(cid, TOPIC, data, CALL_TIMEOUT_MS)))

        def pump(conn: Conn) -> None:
            # keep up to 4 chunks buffered; write as the socket takes them, until the
            # credit is used up (then a StreamCredit resumes) or the kernel buffer is
            # full (then the write event resumes)
            while conn.credit >= STREAM_CHUNK:
                if len(conn.wbuf) >= 4 * STREAM_CHUNK:
                    loop._flush(conn)
                    if len(conn.wbuf) >= 4 * STREAM_CHUNK:
                        break
                conn.credit -= STREAM_CHUNK
                conn.wbuf += chunk
            loop.dirty.add(conn)

        now = monotonic()
        for conn in self.edges:
            if mode in ("rpc", "publish"):
                for _ in range(depth):
                    issue(conn, now)
            elif mode == "stream":
                conn.sid = 1
                write(conn, encode_frame(StreamOpen(1, SERVICE_NAME, None, b"", "", STREAM_WINDOW, CALL_TIMEOUT_MS)))
        loop.flush()
        sel = loop.sel
        while True:
            now = monotonic()
            if now >= end:
                break
            for key, mask in sel.select(min(0.05, end - now)):
                conn = key.data
                if mask & _WRITE:
                    loop._flush(conn)
                    if mode == "stream" and conn.credit:
                        pump(conn)
                if not mask & _READ:
                    continue
                try:
                    got = conn.sock.recv(_RECV)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    got = b""
                    conn.error = str(exc)
                if not got:
                    window.failures += 1
                    window.errors.append(f"edge {conn.id} closed {conn.error}".strip())
                    loop.drop(conn)
                    self.edges.remove(conn)
                    continue
                now = monotonic()
                for body in _frames(conn, got):
                    obj = _unpackb(body)
                    kind = obj[0]
                    if kind == T_RESPONSE or kind == T_ACK:
                        started = conn.calls.pop(obj[1], None)
                        if started is not None:
                            window.done(now, started, obj[2], obj[-1])
                            if now < end:
                                issue(conn, now)
                    elif kind == T_REQUEST:
                        write(conn, encode_frame(Response(obj[1], 0, obj[3])))
                    elif kind == T_PUBLISH:
                        write(conn, encode_frame(Ack(obj[1], 0)))
                    elif kind == T_STREAM_CREDIT:
                        conn.credit += obj[2]
                        pump(conn)
                    elif kind == T_STREAM_ACCEPT:
                        conn.credit = obj[2]
                        pump(conn)
                    elif kind == T_PING:
                        write(conn, encode_frame(Pong(obj[1])))
                    elif kind in (T_GOAWAY, T_REFUSE) or (kind == 15 and mode == "stream"):
                        window.failures += 1
                        window.errors.append(f"edge {conn.id}: {obj}")
            loop.flush()
        return window.report()

    def close(self) -> None:
        for conn in self.edges:
            conn.sock.close()
        self.edges.clear()


def edge_worker(ctrl: Any, spec: dict[str, Any]) -> None:
    """A generator process of edges, steered by ``ctrl``.

    Commands: ``("connect", n, concurrency[, timeout])`` -> ``("connected", {...})``;
    ``("go", mode, start, end, depth, payload)`` -> ``("result", {...})``;
    ``("close",)`` closes every edge and ends the process.
    """
    raise_nofile()
    swarm = EdgeSwarm(spec)
    ctrl.send(("ready", {"pid": os.getpid()}))
    try:
        while True:
            cmd = ctrl.recv()
            if cmd[0] == "connect":
                ctrl.send(("connected", swarm.connect(*cmd[1:])))
            elif cmd[0] == "go":
                _, mode, start, end, depth, payload = cmd
                ctrl.send(("result", swarm.drive(mode, start, end, depth, payload)))
            elif cmd[0] == "close":
                swarm.close()
                return
    except (EOFError, KeyboardInterrupt):
        swarm.close()
