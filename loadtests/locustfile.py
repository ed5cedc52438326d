"""Locust edge swarm: every Locust user is a fake edge on the blocking frontier SDK.

Locust is gevent-based and monkey-patches the process, so the SDK's threads (reader,
handler pool) run as greenlets. Each user connects with meta, then runs tasks tagged
by what they load; every operation is reported through Locust's request events with
its latency and failure:

=================  ===========  ================================================================
tag                request      what it does
=================  ===========  ================================================================
connect_storm      connect      a fresh Edge: TCP connect + handshake + the service's online hook,
                                then close (offline hook)
rpc_e2s            rpc          ``edge.call("echo", data)``: edge -> gateway -> service -> back
rpc_s2e            rpc          the service calls this edge's ``ping`` (asked for by an edge call
                                ``callback``; the time reported is the service's own call)
publish            publish      ``edge.publish("telemetry", data)`` acked by the service's
                                ``done()``; and the service publishing to this edge (``push``,
                                acked by the edge's receive loop)
stream             stream       open a stream to ``load-svc``, send ``--frontier-stream-bytes``,
                                half-close, read the echo back, close
=================  ===========  ================================================================

Without ``--tags`` every task runs with the weights below (a mixed swarm). The
service side is :mod:`loadtests.service`; by default each Locust process (local run or
worker) starts one in-process. One command, gateway included::

    locust -f loadtests/locustfile.py --headless -u 200 -r 50 -t 60s --frontier-spawn-gateway

Against a running gateway (and its service beside it)::

    python -m loadtests.service --addr 127.0.0.1:30011 &
    locust -f loadtests/locustfile.py --headless -u 200 -r 50 -t 60s \\
        --frontier-edge 127.0.0.1:30012 --frontier-service 127.0.0.1:30011 --frontier-external-service

One scenario: add ``--tags rpc_e2s`` (or ``connect_storm``, ``rpc_s2e``, ``publish``,
``stream``; several may be given).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from locust import User, events, tag, task
from locust.runners import MasterRunner

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from anywhere without installing the package
    sys.path.insert(0, str(ROOT))

from frontier.sdk import Edge, FrontierError  # noqa: E402
from loadtests.service import SERVICE_NAME, TOPIC, LoadService, seconds  # noqa: E402

log = logging.getLogger("loadtests.locust")

#: the in-process service and spawned gateway of this Locust process
_STATE: dict[str, Any] = {"service": None, "gateway": None, "edge": None}
#: users of this process that connected (``--frontier-start-together``), and the event
#: set once they are all connected
_CONNECTED = [0]
_ALL_CONNECTED = threading.Event()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("frontier")
    group.add_argument("--frontier-edge", default=os.environ.get("FRONTIER_EDGE", "127.0.0.1:30012"),
                       help="gateway edge listener host:port (env FRONTIER_EDGE)")
    group.add_argument("--frontier-service", default=os.environ.get("FRONTIER_SERVICE", "127.0.0.1:30011"),
                       help="gateway service listener host:port (env FRONTIER_SERVICE)")
    group.add_argument("--frontier-external-service", action="store_true", default=False,
                       help="do not start the in-process service: python -m loadtests.service runs beside Locust")
    group.add_argument("--frontier-spawn-gateway", action="store_true", default=False,
                       help="start a gateway subprocess on free loopback ports (local runs) and stop it at the end")
    group.add_argument("--frontier-payload", type=int, default=256, help="bytes per call and publish (default 256)")
    group.add_argument("--frontier-stream-bytes", type=int, default=256 * 1024,
                       help="bytes each stream task sends and reads back (default 262144)")
    group.add_argument("--frontier-wait", type=float, default=0.05,
                       help="each user waits uniform(0, this) seconds between tasks (default 0.05)")
    group.add_argument("--frontier-timeout", type=float, default=10.0, help="SDK timeout in seconds (default 10)")
    group.add_argument("--frontier-start-together", type=float, default=0.0, metavar="SECONDS",
                       help="each user, once connected, waits (at most SECONDS) until every user of this process "
                            "is connected before its first task, so that users already calling do not starve the "
                            "handshakes of the rest (default 0: no wait)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn_gateway(opts: Any) -> None:
    """Start ``frontier.cli serve`` on free ports; point the options at it."""
    sport, eport = _free_port(), _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="frontier-locust-"))
    config = workdir / "frontier.yaml"
    config.write_text(json.dumps({
        "servicebound": {"listen": {"addr": f"127.0.0.1:{sport}"}},
        "edgebound": {"listen": {"addr": f"127.0.0.1:{eport}"}},
        "observability": {"addr": "127.0.0.1:0"},  # not 9091: runs may overlap
        "log": {"level": "warn"},
        "daemon": {"rlimit": {"enable": True, "nofile": 20000}},
        "controlplane": {"enable": False},  # on by default, on 127.0.0.1:30010
    }))
    logf = open(workdir / "frontier.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "frontier.cli", "serve", "--config", str(config)],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=logf, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    for port in (sport, eport):
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway did not start; see {workdir / 'frontier.log'}")
                time.sleep(0.05)
    opts.frontier_service, opts.frontier_edge = f"127.0.0.1:{sport}", f"127.0.0.1:{eport}"
    _STATE["gateway"] = proc
    log.info("spawned a gateway: services on %s, edges on %s (log %s)", opts.frontier_service, opts.frontier_edge, workdir)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    opts = environment.parsed_options
    if opts is None or isinstance(environment.runner, MasterRunner):
        return
    if opts.frontier_spawn_gateway:
        _spawn_gateway(opts)
    if not opts.frontier_external_service:
        _STATE["service"] = LoadService(opts.frontier_service, timeout=opts.frontier_timeout)
        log.info("in-process service %r connected to %s", SERVICE_NAME, opts.frontier_service)


@events.spawning_complete.add_listener
def _on_spawned(user_count: int, **_: Any) -> None:
    # every edge's objects live as long as the run: keep the garbage collector's full
    # passes off them (with 10,000 edges each one walked millions of objects)
    gc.freeze()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    service, _STATE["service"] = _STATE["service"], None
    if service is not None:
        service.close()
    proc, _STATE["gateway"] = _STATE["gateway"], None
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


class FrontierEdge(User):
    """A fake edge: connects with meta, calls, publishes, answers, opens streams."""

    def wait_time(self) -> float:  # type: ignore[override]
        return random.uniform(0, self.environment.parsed_options.frontier_wait)

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        self.payload = os.urandom(opts.frontier_payload)
        self.meta = f"locust-edge-{id(self):x}".encode()
        self.edge: Edge | None = None
        self.edge = self._measure("connect", "edge handshake + online hook", self._new_edge)
        if self.edge is None:
            return
        tags = opts.tags or []
        if not tags or "rpc_s2e" in tags:
            self.edge.register("ping", lambda req: req.data)
        if not tags or "publish" in tags:  # only a swarm that is published to needs a receiver per edge
            self._receiver = threading.Thread(target=self._receive_loop, args=(self.edge,), daemon=True)
            self._receiver.start()
        if opts.frontier_start_together > 0:
            self._start_together(opts.frontier_start_together)

    def _start_together(self, seconds: float) -> None:
        """Wait, at most ``seconds``, until every user this process is to run is connected."""
        _CONNECTED[0] += 1
        if _CONNECTED[0] >= self.environment.runner.target_user_count:
            _ALL_CONNECTED.set()
        _ALL_CONNECTED.wait(seconds)

    def on_stop(self) -> None:
        if self.edge is not None:
            self.edge.close()

    def _new_edge(self) -> Edge:
        opts = self.environment.parsed_options
        return Edge(opts.frontier_edge, meta=self.meta, timeout=opts.frontier_timeout)

    def _receive_loop(self, edge: Edge) -> None:
        """Answer what the service publishes to this edge (no timeout: ``close`` ends
        the wait, and 10,000 edges polling every second would cost 10,000 timers/s)."""
        while True:
            try:
                msg = edge.receive()
            except FrontierError:
                return
            try:
                msg.done()
            except FrontierError:
                pass

    def _measure(self, request_type: str, name: str, fn: Callable[[], Any], length: Callable[[Any], int] | None = None,
                 elapsed: Callable[[Any], float] | None = None) -> Any:
        """Run ``fn``; report its latency (or the one ``elapsed(result)`` says) and failure."""
        started = time.perf_counter()
        result, exc = None, None
        try:
            result = fn()
        except Exception as error:  # every failure is reported, none kills the user
            exc = error
        took = time.perf_counter() - started
        if exc is None and elapsed is not None:
            took = elapsed(result)
        self.environment.events.request.fire(
            request_type=request_type, name=name, response_time=took * 1000.0,
            response_length=(length(result) if length and exc is None else len(self.payload)), exception=exc, context={},
        )
        return result

    def _edge(self) -> Edge | None:
        if self.edge is None or self.edge.closed:
            self.edge = None
            self.on_start()
        return self.edge

    # -- scenarios --------------------------------------------------------------------------------

    @tag("connect_storm")
    @task(1)
    def connect_storm(self) -> None:
        """A fresh connection: handshake and online hook; then it goes offline again."""
        edge = self._measure("connect", "edge handshake + online hook", self._new_edge)
        if edge is not None:
            edge.close()

    @tag("rpc_e2s")
    @task(10)
    def rpc_edge_to_service(self) -> None:
        edge = self._edge()
        if edge is not None:
            self._measure("rpc", "edge->service echo", lambda: _check(edge.call("echo", self.payload), self.payload))

    @tag("rpc_s2e")
    @task(4)
    def rpc_service_to_edge(self) -> None:
        edge = self._edge()
        if edge is not None:
            self._measure("rpc", "service->edge ping", lambda: edge.call("callback", self.payload), elapsed=seconds)

    @tag("publish")
    @task(6)
    def publish_edge_to_service(self) -> None:
        edge = self._edge()
        if edge is not None:
            self._measure("publish", f"edge->service {TOPIC}", lambda: edge.publish(TOPIC, self.payload))

    @tag("publish")
    @task(2)
    def publish_service_to_edge(self) -> None:
        edge = self._edge()
        if edge is not None:
            self._measure("publish", "service->edge push", lambda: edge.call("callback_publish", self.payload), elapsed=seconds)

    @tag("stream")
    @task(1)
    def stream_transfer(self) -> None:
        edge = self._edge()
        if edge is None:
            return
        size = self.environment.parsed_options.frontier_stream_bytes
        self._measure("stream", f"edge->service echo {size // 1024} KB", lambda: self._stream_echo(edge, size), length=lambda n: n)

    def _stream_echo(self, edge: Edge, size: int) -> int:
        block = self.payload * (65536 // max(1, len(self.payload)) or 1)
        with edge.open_stream(SERVICE_NAME) as stream:
            stream.settimeout(self.environment.parsed_options.frontier_timeout)
            sent = 0

            def writer() -> None:
                nonlocal sent
                while sent < size:
                    piece = block[: size - sent]
                    stream.sendall(piece)
                    sent += len(piece)
                stream.shutdown_write()

            t = threading.Thread(target=writer, daemon=True)
            t.start()
            got = 0
            while True:
                data = stream.recv(1 << 16)
                if not data:
                    break
                got += len(data)
            t.join()
        if got != size:
            raise FrontierError(f"stream echoed {got} of {size} bytes")
        return 2 * size


def _check(answer: bytes, sent: bytes) -> bytes:
    if answer != sent:
        raise FrontierError("the echo answered different bytes")
    return answer
