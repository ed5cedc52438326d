"""Fixtures of the control-plane tests.

``control_plane(...)`` starts ``driver.py`` (a real ControlPlane in a
monkey-patched subprocess, as in the gateway) and returns a handle with its port,
a ``requests`` session and a gRPC channel. pytest's own process is never patched.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import grpc
import pytest
import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:  # for cp_records; appended so it never shadows other tests' modules
    sys.path.append(str(HERE))

BACKENDS = ("buntdb", "sqlite3")


@dataclass
class Running:
    """One running driver process."""

    proc: subprocess.Popen
    port: int
    kick_log: Path
    ready_file: Optional[Path]
    stderr_path: Path
    session: requests.Session = field(default_factory=requests.Session)
    _channel: Optional[grpc.Channel] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.url + path, timeout=10, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.session.delete(self.url + path, timeout=10, **kw)

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        return self._channel

    def kicks(self) -> list[str]:
        return self.kick_log.read_text().splitlines() if self.kick_log.exists() else []

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def stop(self) -> int:
        """SIGTERM the driver and wait; fails the test if the driver logged a traceback."""
        if self._channel is not None:
            self._channel.close()
        self.session.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.stderr()
        assert "Traceback" not in err, err
        return self.proc.returncode


def start_driver(tmp: Path, *, backend: str = "buntdb", tokens: str = "", ready_file: bool = False) -> Running:
    """Start driver.py and wait (up to 30 s) for its ``PORT`` line."""
    kick_log = tmp / "kicks.log"
    ready = tmp / "ready" if ready_file else None
    cmd = [sys.executable, str(HERE / "driver.py"), "--backend", backend, "--kick-log", str(kick_log)]
    if tokens:
        cmd += ["--tokens", tokens]
    if ready is not None:
        cmd += ["--ready-file", str(ready)]
    stderr_path = tmp / "driver.err"
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=str(ROOT))
    assert proc.stdout is not None
    ready_fds, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready_fds else ""
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"driver did not start: {line!r}\n{stderr_path.read_text()}")
    return Running(proc, int(line.split()[1]), kick_log, ready, stderr_path)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_cp(request, tmp_path_factory) -> Iterator[Running]:
    """A driver per backend shared by a module's read-only tests (do not kick here)."""
    running = start_driver(tmp_path_factory.mktemp("cp"), backend=request.param)
    yield running
    running.stop()


@pytest.fixture(params=BACKENDS)
def fresh_cp(request, tmp_path) -> Iterator[Running]:
    """A driver of its own, for tests that change state (kicks)."""
    running = start_driver(tmp_path, backend=request.param)
    yield running
    running.stop()


@pytest.fixture
def start(tmp_path) -> Iterator:
    """``start(**options)`` starts a driver with options; all are stopped afterwards."""
    started: list[Running] = []

    def _start(**kw) -> Running:
        running = start_driver(tmp_path / str(len(started)), **kw)
        started.append(running)
        return running

    (tmp_path / "0").mkdir()
    for i in range(1, 5):
        (tmp_path / str(i)).mkdir()
    yield _start
    for running in started:
        running.stop()
