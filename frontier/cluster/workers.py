"""``frontier-gevent serve --workers N``: one frontier process per core on one host.

A supervisor (this module, not gevent-patched) starts N ``frontier-gevent serve``
children and restarts any that dies. Every child binds the *same* edge port with
``SO_REUSEPORT``, so the kernel spreads edge connections over them, and its *own*
service port: the configured one for worker 0, then the next ports up, skipping
the edge port (likewise the control plane's and the observability listener's), so a
:class:`~frontier.sdk.cluster.ClusterService` reaches each one. Workers do not forward
to each other: a service must be connected to an edge's worker to reach it (use a
``ClusterService``). With ``limits.max_edge_connections`` set, a full worker's edge
listener leaves the ``SO_REUSEPORT`` group until it has room (:class:`ReusePortValve`). Each child reports
to Frontlas as ``<frontier_id>-<index>`` (``frontlas.enable`` should be on: without
Frontlas, services cannot find the workers). Children get their differences as
``FRONTIER__*`` environment overrides, so they load the same file.

The first SIGINT/SIGTERM is passed on to every child (they drain); a second one
stops them at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

from frontier.config import parse_addr

log = logging.getLogger("frontier.workers")

#: environment variable that tells a child to bind its edge port with SO_REUSEPORT
REUSE_PORT_ENV = "FRONTIER_WORKER_REUSE_PORT"
#: Frontlas' default observability port (Go's), which workers' ports skip
FRONTLAS_OBSERVABILITY_PORT = 9092
#: seconds a child must live to count as started (faster deaths back off)
MIN_UPTIME = 5.0
#: most seconds between restarts of a child that keeps dying
MAX_RESTART_DELAY = 10.0


def bind_reuseport(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other processes may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def reuseport_listeners(config: Any) -> dict[str, Any] | None:
    """In a ``--workers`` child: the pre-bound edge listener for ``Gateway(listeners=...)``."""
    if os.environ.get(REUSE_PORT_ENV) != "1":
        return None
    host, port = config.edgebound.listen.host_port
    return {"edge": bind_reuseport(host, port)}  # the process is patched: a gevent socket


class ReusePortValve:
    """Takes a full worker out of the kernel's ``SO_REUSEPORT`` spread.

    The kernel hashes each new connection's 4-tuple onto one of the listening sockets
    of the group, whatever their load; a worker holding ``limits.max_edge_connections``
    edges resets the connections it is handed, and a client that reconnects from the
    same port (the kernel often hands back the one just freed) is hashed to the same
    full worker again. So while a worker is full its edge listener leaves the group
    (its socket is closed: the connections still queued on it are reset, as they would
    have been at accept), and it joins again, on a fresh socket, once the worker is
    ``margin`` edges below the cap. When every worker is full, connects are refused.
    """

    def __init__(self, host: str, port: int, cap: int, server: Callable[[], Any]) -> None:
        self.host, self.port, self.cap = host, port, cap
        self.margin = max(1, cap // 100)
        self.server = server  # the edge StreamServer, once the gateway started it
        self.left = False

    def update(self, edges: int) -> None:
        """Called with the edge count whenever it changed (or a connection was refused)."""
        if not self.left and edges >= self.cap:
            self._leave()
        elif self.left and edges <= self.cap - self.margin:
            self._join()

    def _leave(self) -> None:
        server = self.server()
        if server is None or not server.started:
            return
        server.stop_accepting()
        server.socket.close()
        self.left = True
        log.info("edge listener full (%d edges): out of the SO_REUSEPORT group until %d", self.cap, self.cap - self.margin)

    def _join(self) -> None:
        server = self.server()
        if server is None or not server.started:
            return
        try:
            sock = bind_reuseport(self.host, self.port)
        except OSError as exc:
            log.error("edge listener cannot join the SO_REUSEPORT group again: %s", exc)
            return
        sock.setblocking(False)
        server.socket = sock
        server.start_accepting()
        self.left = False
        log.info("edge listener back in the SO_REUSEPORT group")


def reuseport_valve(config: Any, gateway: Any) -> ReusePortValve | None:
    """In a ``--workers`` child with ``limits.max_edge_connections``: the valve for its
    edge listener, already hooked to the gateway's edge count."""
    cap = config.limits.max_edge_connections
    if os.environ.get(REUSE_PORT_ENV) != "1" or not cap:
        return None
    host, port = config.edgebound.listen.host_port
    valve = ReusePortValve(host, port, cap, lambda: gateway.listener("edge"))
    gateway.on_edge_count = valve.update
    return valve


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host or "0.0.0.0", 0))
        return s.getsockname()[1]


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _take_ports(base: int, count: int, reserved: set[int]) -> list[int]:
    """``count`` ports from ``base`` up, skipping ``reserved`` (0 stays 0: the OS picks)."""
    if base == 0:
        return [0] * count
    out, port = [], base
    while len(out) < count:
        if port > 65535:
            raise ValueError(f"no {count} free ports from {base} up")
        if port not in reserved:
            out.append(port)
        port += 1
    return out


def worker_envs(config: Any, workers: int, edge_port: int, base_id: str) -> list[dict[str, str]]:
    """The ``FRONTIER__*`` overrides of each worker: the shared edge port, and service
    (and control-plane and observability) ports from the configured ones up, skipping
    the edge port and each other."""
    sb_host, sb_port = config.servicebound.listen.host_port
    eb_host, _ = config.edgebound.listen.host_port
    reserved = {edge_port}
    sb_ports = _take_ports(sb_port, workers, reserved)
    reserved.update(sb_ports)
    cp_ports: list[int] = []
    if config.controlplane.enable:
        cp_host, cp_port = config.controlplane.listen.host_port
        cp_ports = _take_ports(cp_port, workers, reserved)
        reserved.update(cp_ports)
    obs_ports: list[int] = []
    if config.observability.enable:
        obs_host, obs_port = parse_addr(config.observability.addr)
        # 9091 up would take 9092, Frontlas' own observability port on a host running both
        obs_ports = _take_ports(obs_port, workers, reserved | {FRONTLAS_OBSERVABILITY_PORT})
    envs = []
    for index in range(workers):
        env = {
            REUSE_PORT_ENV: "1",
            "FRONTIER__EDGEBOUND__LISTEN__ADDR": _join(eb_host, edge_port),
            "FRONTIER__SERVICEBOUND__LISTEN__ADDR": _join(sb_host, sb_ports[index]),
            "FRONTIER__DAEMON__FRONTIER_ID": f"{base_id}-{index}",
        }
        adv = config.servicebound.listen.advertised_addr
        if adv and sb_port:
            host, _, port = adv.rpartition(":")
            env["FRONTIER__SERVICEBOUND__LISTEN__ADVERTISED_ADDR"] = f"{host}:{int(port) + sb_ports[index] - sb_port}"
        if cp_ports:
            env["FRONTIER__CONTROLPLANE__LISTEN__ADDR"] = _join(cp_host, cp_ports[index])
        if obs_ports:
            env["FRONTIER__OBSERVABILITY__ADDR"] = _join(obs_host, obs_ports[index])
        envs.append(env)
    return envs


class Supervisor:
    """Runs and restarts the worker processes."""

    def __init__(self, argv: Sequence[str], envs: list[dict[str, str]]) -> None:
        self.argv = list(argv)
        self.envs = envs
        self.procs: list[subprocess.Popen | None] = [None] * len(envs)
        self.started: list[float] = [0.0] * len(envs)
        self.failures: list[int] = [0] * len(envs)
        self.due: list[float] = [0.0] * len(envs)
        self.stopping = 0  # signals received

    def start(self, index: int) -> None:
        env = {**os.environ, **self.envs[index]}
        self.procs[index] = subprocess.Popen(self.argv, env=env)
        self.started[index] = time.monotonic()
        log.info("worker %d started (pid %d)", index, self.procs[index].pid)

    def signal_all(self, signum: int) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                try:
                    proc.send_signal(signum)
                except OSError:
                    pass

    def run(self) -> int:
        def on_signal(signum: int, frame: Any) -> None:
            self.stopping += 1
            self.signal_all(signal.SIGTERM if self.stopping == 1 else signal.SIGKILL)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for index in range(len(self.envs)):
                self.start(index)
            while True:
                time.sleep(0.2)
                alive = False
                for index, proc in enumerate(self.procs):
                    if proc is None:
                        if not self.stopping and time.monotonic() >= self.due[index]:
                            self.start(index)
                            alive = True
                        continue
                    code = proc.poll()
                    if code is None:
                        alive = True
                        continue
                    if self.stopping:
                        continue
                    if code == 2:  # a configuration error: every worker would fail the same way
                        log.error("worker %d exited with a configuration error; stopping", index)
                        self.stopping = 1
                        self.signal_all(signal.SIGTERM)
                        self._wait_all()
                        return 2
                    uptime = time.monotonic() - self.started[index]
                    self.failures[index] = self.failures[index] + 1 if uptime < MIN_UPTIME else 1
                    delay = min(MAX_RESTART_DELAY, 0.5 * 2 ** (self.failures[index] - 1))
                    log.warning("worker %d exited with %s; restarting in %.1fs", index, code, delay)
                    self.procs[index] = None
                    self.due[index] = time.monotonic() + delay
                    alive = True
                if self.stopping and not alive:
                    return 0
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _wait_all(self) -> None:
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def supervise(config_path: str | None, log_level: str | None, workers: int) -> int:
    """Run ``workers`` gateway processes sharing the edge port; returns the exit code."""
    from frontier.config import load_config
    from frontier.wire.errors import ConfigError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(config_path, warn=lambda message: None)  # each worker reports warnings
    except ConfigError as exc:
        print(f"frontier-gevent: config error: {exc}", file=sys.stderr)
        return 2
    if not config.frontlas.enable:
        log.warning("--workers without frontlas.enable: services cannot discover the workers' service ports")
    eb_host, eb_port = config.edgebound.listen.host_port
    edge_port = eb_port or _free_port(eb_host)
    base_id = config.daemon.frontier_id or socket.gethostname()
    argv = [sys.executable, "-m", "frontier.cli", "serve"]
    if config_path:
        argv += ["--config", config_path]
    if log_level:
        argv += ["--log-level", log_level]
    try:
        envs = worker_envs(config, workers, edge_port, base_id)
    except ValueError as exc:
        print(f"frontier-gevent: --workers {workers}: {exc}", file=sys.stderr)
        return 2
    log.info("starting %d workers sharing edge port %d", workers, edge_port)
    return Supervisor(argv, envs).run()
