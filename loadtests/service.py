"""The service side of the Locust edge swarm (``loadtests/locustfile.py``).

``LoadService`` registers what the fake edges use and answers it with the blocking
SDK:

* RPC ``echo``: returns the request's data (edge -> service calls);
* topic ``telemetry``: every message is acknowledged with ``done()`` (acked publishes);
* streams to the service named ``load-svc``: echoed back byte for byte until the edge
  half-closes (stream transfer);
* hooks ``edge_online`` / ``edge_offline``: keep the set of online edges (every
  connect of the connect storm runs the online hook);
* RPC ``callback`` / ``callback_publish``: the service calls the calling edge's
  ``ping`` method, or publishes to it, and returns how long that took (service ->
  edge calls and publishes, timed at the service, driven by the edge swarm's rate).

The locustfile starts one in its own process by default. To run it beside Locust
instead (e.g. for a distributed Locust run)::

    python -m loadtests.service --addr 127.0.0.1:30011

Like the SDK it uses only ``socket`` and ``threading``: threads here, greenlets inside
Locust.
"""

from __future__ import annotations

import argparse
import logging
import struct
import sys
import threading
import time
from typing import Any

from frontier.sdk import ConnectionClosed, FrontierError, Request, Service, Stream, Timeout

log = logging.getLogger("loadtests.service")

SERVICE_NAME = "load-svc"
TOPIC = "telemetry"
_F64 = struct.Struct(">d")


class LoadService:
    """A frontier service answering the edge swarm; see the module docstring."""

    def __init__(self, addr: str, *, timeout: float = 10.0, handler_threads: int = 256) -> None:
        self.online: set[int] = set()
        self.counts = {"echo": 0, "telemetry": 0, "streams": 0, "stream_bytes": 0, "callbacks": 0, "online": 0, "offline": 0}
        self._lock = threading.Lock()
        self._closed = False
        self.svc = Service(addr, name=SERVICE_NAME, topics=(TOPIC,), timeout=timeout,
                           handler_threads=handler_threads, max_pending=4096, receive_buffer=4096)
        self.svc.register_edge_online(self._on_online)
        self.svc.register_edge_offline(self._on_offline)
        self.svc.register("echo", self._echo)
        self.svc.register("callback", self._callback)
        self.svc.register("callback_publish", self._callback_publish)
        self._threads = [
            threading.Thread(target=self._receive_loop, name="load-svc-receive", daemon=True),
            threading.Thread(target=self._accept_loop, name="load-svc-accept", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- hooks and handlers ---------------------------------------------------------------------

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def _on_online(self, edge_id: int, meta: bytes, addr: str) -> None:
        with self._lock:
            self.online.add(edge_id)
            self.counts["online"] += 1

    def _on_offline(self, edge_id: int, meta: bytes, addr: str) -> None:
        with self._lock:
            self.online.discard(edge_id)
            self.counts["offline"] += 1

    def _echo(self, req: Request) -> bytes:
        self._count("echo")
        return req.data

    def _callback(self, req: Request) -> bytes:
        """Call the calling edge's ``ping`` with the request's data; answer the seconds it took."""
        self._count("callbacks")
        started = time.perf_counter()
        answer = self.svc.call(req.edge_id, "ping", req.data)
        if answer != req.data:
            raise ValueError("the edge's ping answered different bytes")
        return _F64.pack(time.perf_counter() - started)

    def _callback_publish(self, req: Request) -> bytes:
        """Publish the request's data to the calling edge; answer the seconds until its done()."""
        self._count("callbacks")
        started = time.perf_counter()
        self.svc.publish(req.edge_id, req.data, topic="push")
        return _F64.pack(time.perf_counter() - started)

    # -- messages and streams ---------------------------------------------------------------------

    def _receive_loop(self) -> None:
        while not self._closed:
            try:
                msg = self.svc.receive(timeout=1.0)
            except Timeout:
                continue
            except ConnectionClosed:
                return
            self._count("telemetry")
            try:
                msg.done()
            except FrontierError:
                pass

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                stream = self.svc.accept_stream(timeout=1.0)
            except Timeout:
                continue
            except ConnectionClosed:
                return
            self._count("streams")
            threading.Thread(target=self._echo_stream, args=(stream,), name="load-svc-stream", daemon=True).start()

    def _echo_stream(self, stream: Stream) -> None:
        stream.settimeout(30.0)
        total = 0
        try:
            while True:
                data = stream.recv(1 << 16)
                if not data:
                    break
                stream.sendall(data)
                total += len(data)
        except FrontierError as exc:
            log.debug("stream %s ended: %s", stream, exc)
        finally:
            stream.close()
            self._count("stream_bytes", total)

    def close(self) -> None:
        """Disconnect from the gateway."""
        self._closed = True
        self.svc.close()


def seconds(answer: bytes) -> float:
    """Decode a ``callback`` answer: the seconds the service -> edge operation took."""
    return _F64.unpack(answer)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.service", description="The service side of the Locust edge swarm.")
    parser.add_argument("--addr", default="127.0.0.1:30011", help="the gateway's service listener (default %(default)s)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between stats lines (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    svc = LoadService(args.addr)
    log.info("service %r on %s: rpc echo/callback/callback_publish, topic %r, streams echoed", SERVICE_NAME, args.addr, TOPIC)
    try:
        while True:
            time.sleep(args.every)
            with svc._lock:
                counts: dict[str, Any] = dict(svc.counts, edges_online=len(svc.online))
            log.info("%s", " ".join(f"{k}={v}" for k, v in counts.items()))
    except KeyboardInterrupt:
        pass
    finally:
        svc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
