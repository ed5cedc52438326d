"""A STAND-IN for nsqd, for tests only: no nsqd is installable on these machines.

It speaks nsqd's real TCP protocol (https://nsq.io/clients/tcp_protocol_spec.html)
closely enough for producers and for nsq-py's ``Reader``:

- the client sends the magic ``"  V2"``, then newline-terminated commands;
- every reply is a frame ``[4-byte size][4-byte type][data]``: type 0 response
  (``OK``, ``_heartbeat_``, ``CLOSE_WAIT`` or IDENTIFY's JSON), 1 error
  (``E_INVALID ...``), 2 message (``[8-byte ns timestamp][2-byte attempts]
  [16-byte id][body]``);
- IDENTIFY (JSON body; answers JSON when ``feature_negotiation``), PUB, MPUB, DPUB,
  SUB, RDY, FIN, REQ, TOUCH, NOP, CLS; anything else is ``E_INVALID`` and the
  connection closes, like nsqd's fatal errors; bad topic names are
  ``E_BAD_TOPIC``, empty or oversized bodies ``E_BAD_MESSAGE``;
- heartbeats every ``heartbeat_interval`` ms (default 30000, -1 disables); a client
  that misses two is disconnected.

Messages wait in their topic until a channel subscribes, then each channel gets a
copy, in publish order. Run it as a process (``python nsqd_standin.py --port P``) so
tests can kill it (broker down) or SIGSTOP it (broker stalled).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import socket
import socketserver
import struct
import threading
import time

MAGIC = b"  V2"
FRAME_RESPONSE, FRAME_ERROR, FRAME_MESSAGE = 0, 1, 2
MAX_MSG_SIZE = 1024 * 1024
TOPIC_RE = re.compile(rb"^[.a-zA-Z0-9_-]{1,64}(#ephemeral)?$")


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">ll", len(data) + 4, kind) + data


class Broker:
    """Topics, channels and in-flight messages, shared by all connections."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.topics: dict[bytes, collections.deque] = collections.defaultdict(collections.deque)
        self.channels: dict[bytes, dict[bytes, collections.deque]] = collections.defaultdict(dict)
        self.subscribers: dict[tuple[bytes, bytes], list] = collections.defaultdict(list)
        self.next_id = 0

    def publish(self, topic: bytes, bodies: list[bytes]) -> None:
        with self.lock:
            for body in bodies:
                self.next_id += 1
                msg = (b"%016x" % self.next_id, body)
                channels = self.channels[topic]
                if not channels:
                    self.topics[topic].append(msg)
                for queue in channels.values():
                    queue.append(msg)
            self.pump(topic)

    def subscribe(self, conn: "Connection", topic: bytes, channel: bytes) -> None:
        with self.lock:
            if channel not in self.channels[topic]:
                queue = self.channels[topic][channel] = collections.deque()
                if len(self.channels[topic]) == 1:
                    queue.extend(self.topics.pop(topic, ()))
            self.subscribers[(topic, channel)].append(conn)

    def unsubscribe(self, conn: "Connection") -> None:
        with self.lock:
            for subs in self.subscribers.values():
                if conn in subs:
                    subs.remove(conn)
            for (topic, channel, _), msg in conn.in_flight.items():
                self.channels[topic][channel].appendleft(msg)
            conn.in_flight.clear()

    def pump(self, topic: bytes) -> None:
        with self.lock:
            for channel, queue in self.channels[topic].items():
                for conn in self.subscribers[(topic, channel)]:
                    while queue and conn.rdy > len(conn.in_flight):
                        msg = queue.popleft()
                        conn.in_flight[(topic, channel, msg[0])] = msg
                        conn.send_message(msg)

    def finish(self, conn: "Connection", msg_id: bytes, requeue: bool) -> bool:
        with self.lock:
            for key in list(conn.in_flight):
                if key[2] == msg_id:
                    msg = conn.in_flight.pop(key)
                    if requeue:
                        self.channels[key[0]][key[1]].appendleft(msg)
                    self.pump(key[0])
                    return True
        return False


class Connection(socketserver.StreamRequestHandler):
    broker: Broker  # set on the class by serve()

    def setup(self) -> None:
        super().setup()
        self.write_lock = threading.Lock()
        self.rdy = 0
        self.in_flight: dict = {}
        self.sub: tuple[bytes, bytes] | None = None
        self.heartbeat_ms = 30000
        self.last_seen = time.monotonic()
        self.alive = True

    def send(self, data: bytes) -> None:
        with self.write_lock:
            self.wfile.write(data)
            self.wfile.flush()

    def send_message(self, msg: tuple[bytes, bytes]) -> None:
        msg_id, body = msg
        payload = struct.pack(">qH", time.time_ns(), 1) + msg_id + body
        self.send(frame(FRAME_MESSAGE, payload))

    def fatal(self, text: bytes) -> None:
        self.send(frame(FRAME_ERROR, text))
        self.alive = False

    def read_body(self) -> bytes | None:
        raw = self.rfile.read(4)
        if len(raw) < 4:
            return None
        (size,) = struct.unpack(">l", raw)
        if size <= 0 or size > MAX_MSG_SIZE:
            self.fatal(b"E_BAD_MESSAGE body size %d out of range" % size)
            return None
        body = self.rfile.read(size)
        return body if len(body) == size else None

    def heartbeats(self) -> None:
        while self.alive:
            time.sleep(self.heartbeat_ms / 1000)
            if not self.alive or self.heartbeat_ms <= 0:
                return
            if time.monotonic() - self.last_seen > 2 * self.heartbeat_ms / 1000:
                self.alive = False
                self.request.shutdown(socket.SHUT_RDWR)
                return
            try:
                self.send(frame(FRAME_RESPONSE, b"_heartbeat_"))
            except OSError:
                return

    def handle(self) -> None:
        if self.rfile.read(4) != MAGIC:
            self.fatal(b"E_BAD_PROTOCOL bad magic")
            return
        threading.Thread(target=self.heartbeats, daemon=True).start()
        try:
            while self.alive:
                line = self.rfile.readline()
                if not line.endswith(b"\n"):
                    return
                self.last_seen = time.monotonic()
                self.command(line.rstrip(b"\r\n").split(b" "))
        except OSError:
            return
        finally:
            self.alive = False
            self.broker.unsubscribe(self)

    def command(self, parts: list[bytes]) -> None:
        name, args = parts[0], parts[1:]
        if name == b"IDENTIFY":
            body = self.read_body()
            if body is None:
                return
            try:
                data = json.loads(body)
            except ValueError:
                return self.fatal(b"E_BAD_BODY IDENTIFY failed to decode JSON body")
            hb = data.get("heartbeat_interval", 30000)
            if hb == -1:
                self.heartbeat_ms = 0
            elif isinstance(hb, int) and 1000 <= hb <= 60000:
                self.heartbeat_ms = hb
            elif hb not in (0, None):
                return self.fatal(b"E_BAD_BODY IDENTIFY heartbeat interval (%d) is invalid" % hb)
            if data.get("feature_negotiation"):
                answer = {
                    "max_rdy_count": 2500,
                    "max_msg_size": MAX_MSG_SIZE,
                    "version": "1.3.0-standin",
                    "max_msg_timeout": 900000,
                    "msg_timeout": 60000,
                    "tls_v1": False,
                    "deflate": False,
                    "snappy": False,
                    "auth_required": False,
                    "max_deflate_level": 6,
                    "sample_rate": 0,
                }
                self.send(frame(FRAME_RESPONSE, json.dumps(answer).encode()))
            else:
                self.send(frame(FRAME_RESPONSE, b"OK"))
        elif name in (b"PUB", b"DPUB", b"MPUB"):
            want = 2 if name == b"DPUB" else 1
            if len(args) != want:
                return self.fatal(b"E_INVALID %s insufficient number of parameters" % name)
            body = self.read_body()
            if body is None:
                return
            topic = args[0]
            if not TOPIC_RE.match(topic):
                return self.fatal(b"E_BAD_TOPIC %s topic name %s is not valid" % (name, topic))
            if name == b"MPUB":
                (count,) = struct.unpack(">l", body[:4])
                bodies, offset = [], 4
                for _ in range(count):
                    (size,) = struct.unpack(">l", body[offset : offset + 4])
                    bodies.append(body[offset + 4 : offset + 4 + size])
                    offset += 4 + size
            else:
                bodies = [body]
            self.broker.publish(topic, bodies)
            self.send(frame(FRAME_RESPONSE, b"OK"))
        elif name == b"SUB":
            if len(args) != 2 or not TOPIC_RE.match(args[0]):
                return self.fatal(b"E_BAD_TOPIC SUB topic name is not valid")
            self.sub = (args[0], args[1])
            self.broker.subscribe(self, args[0], args[1])
            self.send(frame(FRAME_RESPONSE, b"OK"))
        elif name == b"RDY":
            self.rdy = int(args[0])
            if self.sub:
                self.broker.pump(self.sub[0])
        elif name in (b"FIN", b"REQ"):
            if not self.broker.finish(self, args[0], requeue=name == b"REQ"):
                self.send(frame(FRAME_ERROR, b"E_%s_FAILED %s %s failed" % (name, name, args[0])))
        elif name in (b"TOUCH", b"NOP"):
            pass
        elif name == b"CLS":
            self.send(frame(FRAME_RESPONSE, b"CLOSE_WAIT"))
            self.alive = False
        else:
            self.fatal(b"E_INVALID invalid command %s" % name)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(port: int, host: str = "127.0.0.1") -> Server:
    handler = type("BoundConnection", (Connection,), {"broker": Broker()})
    return Server((host, port), handler)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = serve(args.port)
    print("listening", flush=True)
    server.serve_forever()
