"""A bare gevent relay: the measuring stick for the gateway's numbers.

It is the least a gevent server must do to carry the gateway's traffic, and nothing
more: a ``StreamServer`` per side, one reader greenlet per connection, frames split
by their 4-byte length header and written to the other side. No msgpack decoding, no
routing tables, no acks, no deadlines, no metrics, no state machine. Writes are
coalesced the way the best bare relay on gevent does it (and the gateway does too):
frames for a peer are queued, and one callback at the end of the event-loop turn
sends everything queued for that peer with one non-blocking ``send``; a writer
greenlet takes over only while the kernel buffer is full. (An earlier version did one
locked ``sendall`` per reader batch: about 42 us per operation, which flattered the
gateway by 10-25 %.)

Pairing: one *service* socket (the last one to connect on the service port; the
relay tells it it is registered with an empty frame for index 0) and any number of
*edge* sockets, each numbered by the relay in connection order from 1. A frame an
edge sends reaches the service as ``[len][u32 edge index][body]``; a frame the
service sends as ``[len][u32 edge index][body]`` reaches that edge as
``[len][body]``. Everything else (what the bodies mean, who answers what) is up to
the peers: ``loadtests/loadgen.py`` speaks frontier frames through it exactly as it
does through the gateway, so the same load runs through both.

Two modes (``--mode``):

* ``decode`` (the default, the bench's yardstick): the job the gateway does, minus its
  checks. Every frame is unpacked with msgpack; calls and publishes get a relay-wide
  id (as the gateway gives them its own, since many callers' ids collide), and their
  answers are matched back to the caller's id and re-packed. No schema check, no
  deadlines, no metrics, no protocol state.
* ``frame``: frames are split by their length header and forwarded as they are,
  never decoded: the floor for any relay of this traffic.

Run: ``python -m loadtests.relay --service 127.0.0.1:0 --edge 127.0.0.1:0`` prints
``READY <service port> <edge port>`` once both listen. It lives in ``loadtests/``,
never in the product.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import msgpack  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

_HDR = struct.Struct(">I")
_HDR_IDX = struct.Struct(">II")
_RECV = 1 << 16
_MAX_FRAME = 1 << 24
_loop = gevent.get_hub().loop
_unpackb = msgpack.unpackb
_pack = msgpack.Packer(autoreset=True).pack
#: frame type numbers (frontier/wire/events.py): calls and publishes, and their answers
_REQUEST, _RESPONSE, _PUBLISH, _ACK = 4, 5, 7, 8
_CALLS = (_REQUEST, _PUBLISH)
_ANSWERS = (_RESPONSE, _ACK)


def _recv(sock: socket.socket, drained: bool) -> bytes:
    """Read; after a short read (the kernel's buffer was emptied) wait for readability
    first, which saves the read that would fail and gevent's exception for it (the
    gateway reads the same way)."""
    if drained:
        sock._wait(sock._read_event)
        try:
            return sock._sock.recv(_RECV)
        except BlockingIOError:
            pass
    return sock.recv(_RECV)


class Peer:
    """One connection: its socket and the frames queued for it this loop turn."""

    __slots__ = ("sock", "raw", "index", "out", "scheduled", "writer")

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.raw = sock._sock  # the OS socket under gevent's wrapper, for sends from the hub
        self.index = index
        self.out: list = []
        self.scheduled = False
        self.writer: gevent.Greenlet | None = None

    def write(self, parts: list) -> None:
        """Queue frames; they go out with everything else queued for this peer this turn."""
        self.out.extend(parts)
        if not self.scheduled and self.writer is None:
            self.scheduled = True
            _loop.run_callback(self._flush)

    def _flush(self) -> None:
        self.scheduled = False
        if self.writer is not None or not self.out:
            return
        data = b"".join(self.out)
        self.out.clear()
        try:
            sent = self.raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return
        if sent < len(data):
            self.out.insert(0, data[sent:])
            self.writer = gevent.spawn(self._drain)

    def _drain(self) -> None:
        try:
            while self.out:
                data = b"".join(self.out)
                self.out.clear()
                self.sock.sendall(data)
        except OSError:
            self.out.clear()
        finally:
            self.writer = None


class Relay:
    """The two listeners and the edge table; ``decode``: remap ids (see the module
    docstring)."""

    def __init__(self, decode: bool = True) -> None:
        self.service: Peer | None = None
        self.edges: dict[int, Peer] = {}
        self._next = 0
        self.decode = decode
        self._next_id = 0
        #: relay id -> (edge index, the edge's own id): calls and publishes edges sent
        self._from_edges: dict[int, tuple[int, int]] = {}
        #: relay id -> the service's own id: calls and publishes the service sent
        self._from_service: dict[int, int] = {}

    def _edge_frame(self, index: int, body: Any) -> bytes:
        """Decode mode: an edge's frame body as the service gets it (ids remapped)."""
        obj = _unpackb(body)
        kind = obj[0]
        if kind in _CALLS:
            self._next_id = rid = self._next_id + 1
            self._from_edges[rid] = (index, obj[1])
            obj[1] = rid
        elif kind in _ANSWERS:
            origin = self._from_service.pop(obj[1], None)
            if origin is not None:
                obj[1] = origin
        body = _pack(obj)
        return _HDR_IDX.pack(len(body) + 4, index) + body

    def _service_frame(self, index: int, body: Any) -> tuple[int, bytes]:
        """Decode mode: the service's frame body for edge ``index``, as that edge gets it."""
        obj = _unpackb(body)
        kind = obj[0]
        if kind in _ANSWERS:
            origin = self._from_edges.pop(obj[1], None)
            if origin is not None:
                index, obj[1] = origin
        elif kind in _CALLS:
            self._next_id = rid = self._next_id + 1
            self._from_service[rid] = obj[1]
            obj[1] = rid
        body = _pack(obj)
        return index, _HDR.pack(len(body)) + body

    # -- the service side ---------------------------------------------------------------

    def handle_service(self, sock: socket.socket, addr: tuple) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = self.service = Peer(sock, 0)
        peer.write([_HDR_IDX.pack(4, 0)])  # "registered": an empty frame for index 0
        edges = self.edges
        decode = self.decode
        buf = b""
        try:
            drained = False
            while True:
                data = _recv(sock, drained)
                if not data:
                    return
                drained = len(data) < _RECV
                buf = buf + data if buf else data
                out: dict[int, list] = {}
                pos, end = 0, len(buf)
                view = memoryview(buf)
                while end - pos >= 8:
                    size, index = _HDR_IDX.unpack_from(buf, pos)
                    if size > _MAX_FRAME or size < 4:
                        return
                    stop = pos + 4 + size
                    if stop > end:
                        break
                    if decode:
                        index, frame = self._service_frame(index, view[pos + 8:stop])
                        parts = out.get(index)
                        if parts is None:
                            parts = out[index] = []
                        parts.append(frame)
                    else:
                        parts = out.get(index)
                        if parts is None:
                            parts = out[index] = []
                        parts.append(_HDR.pack(size - 4))
                        parts.append(view[pos + 8:stop])
                    pos = stop
                for index, parts in out.items():
                    edge = edges.get(index)
                    if edge is not None:
                        edge.write(parts)
                buf = bytes(view[pos:]) if pos < end else b""
        except OSError:
            pass
        finally:
            if self.service is peer:
                self.service = None
            sock.close()

    # -- the edge side ----------------------------------------------------------------------

    def handle_edge(self, sock: socket.socket, addr: tuple) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        index = self._next = self._next + 1
        self.edges[index] = Peer(sock, index)
        decode = self.decode
        buf = b""
        try:
            drained = False
            while True:
                data = _recv(sock, drained)
                if not data:
                    return
                drained = len(data) < _RECV
                buf = buf + data if buf else data
                parts: list = []
                pos, end = 0, len(buf)
                view = memoryview(buf)
                while end - pos >= 4:
                    size = _HDR.unpack_from(buf, pos)[0]
                    if size > _MAX_FRAME:
                        return
                    stop = pos + 4 + size
                    if stop > end:
                        break
                    if decode:
                        parts.append(self._edge_frame(index, view[pos + 4:stop]))
                    else:
                        parts.append(_HDR_IDX.pack(size + 4, index))
                        parts.append(view[pos + 4:stop])
                    pos = stop
                service = self.service
                if parts and service is not None:
                    service.write(parts)
                buf = bytes(view[pos:]) if pos < end else b""
        except OSError:
            pass
        finally:
            self.edges.pop(index, None)
            sock.close()


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", default="127.0.0.1:0", help="service listener host:port")
    parser.add_argument("--edge", default="127.0.0.1:0", help="edge listener host:port")
    parser.add_argument("--mode", choices=("decode", "frame"), default="decode",
                        help="decode: unpack every frame and remap call ids, as the gateway must (default); "
                             "frame: forward frames undecoded, the floor")
    args = parser.parse_args(argv)
    _raise_nofile()
    relay = Relay(decode=args.mode == "decode")
    servers = [
        StreamServer(_addr(args.service), relay.handle_service, backlog=1024),
        StreamServer(_addr(args.edge), relay.handle_edge, backlog=1024),
    ]
    for server in servers:
        server.start()
    print("READY", servers[0].address[1], servers[1].address[1], flush=True)
    stop = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop.set)
    stop.wait()
    for server in servers:
        server.stop(timeout=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
