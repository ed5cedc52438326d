"""Run a real frontier gateway as a subprocess for end-to-end tests.

``GatewayProcess`` starts ``python -m frontier.cli serve`` with a YAML config on free
loopback ports, waits until both listeners accept, and stops it by signal.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from frontier import config as frontier_config
from frontier.goenv import REDIS_GO_ENV_DOC
from frontlas import config as frontlas_config

ROOT = Path(__file__).resolve().parent.parent

#: the Go Frontier's variables (NODE_NAME, LOG_LEVEL, REDIS_ADDRS...) that a CI host may
#: set for itself: test servers must not pick them up (FRONTIER_DRAIN_SECONDS is a test's own)
GO_ENV_NAMES = frozenset(
    [name for name, _ in REDIS_GO_ENV_DOC] + [var.name for var in (*frontier_config.GO_ENV, *frontlas_config.GO_ENV)]
)


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now, and not one this process
    handed out before (the kernel may offer a port again as soon as it is released, so
    two calls for one gateway could name the same port)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_port(host: str, port: int, timeout: float = 15.0) -> None:
    """Block until ``host:port`` accepts a connection; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")
            time.sleep(0.05)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, recursively for nested mappings."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class ServerProcess:
    """A server subprocess (``python -m <module> serve --config <file>``) whose output
    goes to ``log_path``; subclasses say which module and which ports mean "up"."""

    #: the CLI module run with ``serve``
    module = ""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log: Any = None

    def ports(self) -> tuple[int, ...]:
        """The loopback ports that accept connections once the server is up."""
        raise NotImplementedError

    def spawn(self) -> "ServerProcess":
        """Start the process without waiting for it (see :meth:`wait_ready`)."""
        env = {name: value for name, value in os.environ.items() if name not in GO_ENV_NAMES}
        env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "serve", "--config", str(self.config_path)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self) -> "ServerProcess":
        """Wait for every port of :meth:`ports`; kill the process if one never opens."""
        try:
            for port in self.ports():
                wait_port("127.0.0.1", port)
        except RuntimeError:
            self.stop(sig=signal.SIGKILL)
            raise RuntimeError(f"{type(self).__name__} did not start:\n{self.log()}")
        return self

    def start(self) -> "ServerProcess":
        """Start the process and wait for its listeners."""
        return self.spawn().wait_ready()

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the server and wait for it; return its exit status (0 if not running)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        self._log.close()
        return code


class GatewayProcess(ServerProcess):
    """A gateway subprocess; ``service_addr`` / ``edge_addr`` are ``host:port`` strings."""

    module = "frontier.cli"

    def __init__(self, workdir: Path, config: dict[str, Any] | None = None, *, control: bool = False) -> None:
        self.service_port = free_port()
        self.edge_port = free_port()
        self.control_port = free_port() if control else 0
        #: Go's always-on /healthz, /readyz, /metrics listener, on a port of its own
        #: (never the default 9091, which gateways of parallel runs would share)
        self.observability_port = free_port()
        base: dict[str, Any] = {
            "servicebound": {"listen": {"addr": f"127.0.0.1:{self.service_port}"}},
            "edgebound": {"listen": {"addr": f"127.0.0.1:{self.edge_port}"}},
            "observability": {"addr": f"127.0.0.1:{self.observability_port}"},
            "log": {"level": "info"},
        }
        # the control plane is on by default (on 127.0.0.1:30010): a test gateway without
        # one turns it off, so that gateways running at once never collide on that port
        base["controlplane"] = {"enable": control, "listen": {"addr": f"127.0.0.1:{self.control_port}"}}
        self.config = deep_merge(base, config or {})
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir / f"frontier-{self.edge_port}.yaml", workdir / f"frontier-{self.edge_port}.log")
        self.config_path.write_text(yaml.safe_dump(self.config))

    @property
    def service_addr(self) -> str:
        return f"127.0.0.1:{self.service_port}"

    @property
    def edge_addr(self) -> str:
        return f"127.0.0.1:{self.edge_port}"

    @property
    def control_addr(self) -> str:
        return f"127.0.0.1:{self.control_port}"

    @property
    def observability_addr(self) -> str:
        return f"127.0.0.1:{self.observability_port}"

    def ports(self) -> tuple[int, ...]:
        observability = self.config.get("observability", {})
        listens = observability.get("enable", True) and observability.get("addr") == self.observability_addr
        return (self.service_port, self.edge_port, *([self.control_port] if self.control_port else []),
                *([self.observability_port] if listens else []))

    def __enter__(self) -> "GatewayProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
