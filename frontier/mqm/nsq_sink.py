"""NSQ sink: ``PUB`` to nsqd over its TCP protocol, waiting for nsqd's ``OK``.

The frames are encoded and decoded with nsq-py's protocol pieces (``nsq.constants``,
``nsq.util.pack``, ``nsq.response``); the connections are ours. nsq-py's ``Client``
cannot serve a gateway: ``pub`` has no deadline, pairs a reply with whichever
connection answers first (wrong under concurrent greenlets), loops forever on a
closed socket, and does not reconnect in the publish path. (``import nsq.gevent``
is never done: it monkey-patches as a side effect.)

So the sink keeps a pool of ``pool_size`` connections to the first address (as Go
Frontier does), one PUB in flight on each: a reply always belongs to the PUB on its
connection. Connections IDENTIFY with ``heartbeat_interval: -1`` so an idle pooled
connection is not dropped by nsqd; a dead one is noticed (EOF) before it is reused.
NSQ messages have no headers: the body is the edge's bytes, unchanged, and the edge
id, topic and address are not carried.
"""

from __future__ import annotations

import json
import select
import socket
import struct

from nsq import __version__ as nsq_py_version
from nsq import constants
from nsq.response import Error, Message, Response
from nsq.util import pack

from frontier.mqm.base import Deadline, MessageRefused, SinkBase
from frontier.mqm.config import NSQConfig
from frontier.mqm.pool import ConnectionPool
from frontier.wire.errors import BrokerUnavailable

#: largest frame accepted from nsqd (its default max message size is 1 MiB)
MAX_FRAME = 64 * 1024 * 1024


class _NsqConnection:
    """One TCP connection to nsqd after the magic and IDENTIFY; not greenlet-safe."""

    def __init__(self, sock: socket.socket, target: str) -> None:
        self.sock = sock
        self.target = target
        self.reusable = True
        #: nsqd's limit from IDENTIFY (0 = unknown)
        self.max_msg_size = 0

    def _read_exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = self.sock.recv(min(n - got, 65536))
            if not chunk:
                self.reusable = False
                raise BrokerUnavailable(f"nsq: {self.target} closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def read_reply(self) -> Response:
        """The next response or error frame, answering heartbeats on the way."""
        while True:
            (size,) = struct.unpack(">l", self._read_exact(4))
            if size < 4 or size > MAX_FRAME:
                self.reusable = False
                raise BrokerUnavailable(f"nsq: {self.target} sent a frame of {size} bytes")
            frame = Response.from_raw(None, self._read_exact(size))
            if isinstance(frame, Message):
                self.reusable = False
                raise BrokerUnavailable(f"nsq: {self.target} sent a message to a producer connection")
            if not isinstance(frame, Error) and frame.data == constants.HEARTBEAT:
                self.sock.sendall(constants.NOP + constants.NL)
                continue
            return frame

    def command(self, line: bytes, body: bytes | None = None) -> bytes:
        """Send one command and return the data of its ``OK`` (or JSON) reply."""
        try:
            self.sock.sendall(line + constants.NL + (pack(body) if body is not None else b""))
        except OSError:
            # nsqd may have refused the command and closed while we were still sending:
            # its error frame, if it is there, says why
            self.reusable = False
            self.sock.settimeout(0.2)
            try:
                reply = self.read_reply()
            except (OSError, BrokerUnavailable):
                reply = None
            if not isinstance(reply, Error):
                raise
        else:
            reply = self.read_reply()
        if isinstance(reply, Error):
            self.reusable = False  # nsqd closes the connection after most errors
            code, _, message = reply.data.partition(b" ")
            text = f"{code.decode(errors='replace')} {message.decode(errors='replace')}".rstrip()
            raise MessageRefused(f"nsq: {self.target} answered {text}")
        return reply.data

    def idle_ok(self) -> bool:
        """False if nsqd closed or wrote to this connection while it sat idle."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        try:
            self.sock.sendall(constants.CLS + constants.NL)
        except OSError:
            pass
        self.sock.close()


class NSQSink(SinkBase):
    """PUB ``mqm.nsq.producer.topics`` to nsqd."""

    broker = "nsq"

    def __init__(self, config: NSQConfig) -> None:
        host, _, port = config.addrs[0].rpartition(":")
        super().__init__(config.producer.topics, f"nsqd {host}:{port}")
        self.config = config
        self._address = (host, int(port))
        self._identify = json.dumps(
            {
                "client_id": "frontier-gevent",
                "hostname": socket.gethostname(),
                "user_agent": f"frontier-gevent nsq-py/{nsq_py_version}",
                "feature_negotiation": True,
                "heartbeat_interval": -1,
            }
        ).encode()
        self._pool: ConnectionPool[_NsqConnection] = ConnectionPool(
            self.target, config.pool_size, self._connect, lambda c: c.idle_ok(), lambda c: c.close()
        )

    def _connect(self, deadline: Deadline) -> _NsqConnection:
        try:
            sock = socket.create_connection(self._address, timeout=max(0.05, deadline.remaining()))
        except OSError as exc:
            raise BrokerUnavailable(f"nsq: cannot connect to {self.target}: {exc.strerror or exc}") from exc
        conn = _NsqConnection(sock, self.target)
        try:
            sock.settimeout(None)  # the produce's deadline bounds every wait
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(constants.MAGIC_V2)
            reply = conn.command(constants.IDENTIFY, self._identify)
            if reply != b"OK":
                features = json.loads(reply)
                if features.get("auth_required"):
                    raise BrokerUnavailable(f"nsq: {self.target} requires AUTH, which the sink does not support")
                conn.max_msg_size = int(features.get("max_msg_size") or 0)
        except BaseException:
            sock.close()
            raise
        return conn

    def _produce(self, topic: str, data: bytes, edge_id: int, addr: str, deadline: Deadline) -> None:
        conn = self._pool.acquire(deadline)
        ok = False
        try:
            if conn.max_msg_size and len(data) > conn.max_msg_size:
                ok = True  # refused before anything was sent: the connection is fine
                raise MessageRefused(
                    f"nsq: a message of {len(data)} bytes exceeds {self.target}'s max_msg_size {conn.max_msg_size}"
                )
            reply = conn.command(constants.PUB + b" " + topic.encode(), data)
            if reply != b"OK":
                raise BrokerUnavailable(f"nsq: {self.target} answered {reply!r} to PUB")
            ok = True
        except OSError as exc:
            raise BrokerUnavailable(f"nsq: connection to {self.target} failed: {exc.strerror or exc}") from exc
        finally:
            self._pool.release(conn, ok and conn.reusable)

    def _probe(self, deadline: Deadline) -> None:
        if self._pool.sweep(self._check) == 0 and self._pool.busy_count() == 0:
            conn = self._pool.acquire(deadline)
            self._pool.release(conn, True)

    @staticmethod
    def _check(conn: _NsqConnection) -> None:
        if not conn.idle_ok():
            raise BrokerUnavailable("nsq connection closed while idle")

    def _shutdown(self) -> None:
        self._pool.close()
