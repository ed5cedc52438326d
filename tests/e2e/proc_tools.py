"""Helpers shared by the resilience, bad-input, swarm and chatroom tests.

``RawClient`` speaks frames over a plain socket (built with ``frontier.wire``'s
codec) so a test can misbehave on purpose; ``ChildProcess`` runs a helper script and
reads its stdout lines with deadlines; ``wait_until`` polls with a deadline.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from frontier.sdk.transport import parse_address
from frontier.wire.codec import HEADER, HEADER_SIZE, decode_body, encode_frame
from frontier.wire.events import PROTOCOL_VERSION, ROLE_EDGE, Event, Hello, Welcome

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; raise AssertionError after ``timeout``.

    Exceptions the predicate raises count as "not yet"; the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - polled: any failure means "not yet"
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last error: {last!r})")
        time.sleep(interval)


class RawClient:
    """A bare socket that sends hand-built frames and reads the gateway's frames."""

    def __init__(self, addr: str, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(parse_address(addr), timeout=timeout)
        self._buf = b""

    def send(self, event: Event) -> None:
        """Send one well-formed frame."""
        self.sock.sendall(encode_frame(event))

    def send_raw(self, data: bytes) -> None:
        """Send arbitrary bytes."""
        self.sock.sendall(data)

    def hello_edge(self, **fields: Any) -> Welcome:
        """Handshake as an edge; return the Welcome (fail on anything else)."""
        self.send(Hello(PROTOCOL_VERSION, ROLE_EDGE, **fields))
        ev = self.read_event(5.0)
        assert isinstance(ev, Welcome), f"expected Welcome, got {ev!r}"
        return ev

    def read_event(self, timeout: float) -> Event | None:
        """The next frame from the gateway, or None at EOF; raise ``socket.timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buf) >= HEADER_SIZE:
                size = HEADER.unpack_from(self._buf)[0]
                if len(self._buf) >= HEADER_SIZE + size:
                    body = self._buf[HEADER_SIZE:HEADER_SIZE + size]
                    self._buf = self._buf[HEADER_SIZE + size:]
                    return decode_body(body)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"no frame within {timeout}s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self._buf += data

    def read_until_closed(self, timeout: float) -> list[Event]:
        """Every frame until the gateway closes; raise ``socket.timeout`` if it does not."""
        events = []
        deadline = time.monotonic() + timeout
        while True:
            ev = self.read_event(max(0.0, deadline - time.monotonic()))
            if ev is None:
                return events
            events.append(ev)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ChildProcess:
    """A Python helper subprocess whose stdout lines are read by a thread; its stdin
    stays open until :meth:`close_stdin` (helpers treat EOF as "exit now")."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        full_env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=full_env, text=True, bufsize=1,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def expect(self, predicate: Callable[[str], bool] | str, timeout: float) -> str:
        """Return the first new stdout line matching (a substring or a predicate)."""
        match = (lambda line: predicate in line) if isinstance(predicate, str) else predicate
        for line in self.lines:
            if match(line):
                self.lines.remove(line)
                return line
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise AssertionError(
                    f"no line matching {predicate!r} within {timeout}s; unmatched lines: {self.lines!r}; stderr:\n{self.stderr}"
                ) from None
            if line is None:
                self._queue.put(None)
                raise AssertionError(f"process exited ({self.proc.poll()}) before printing {predicate!r}; lines: {self.lines!r}; stderr:\n{self.stderr}")
            if match(line):
                return line
            self.lines.append(line)

    def write(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def kill(self) -> None:
        """SIGKILL the process (no cleanup runs in it) and reap it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM the process and reap it (SIGKILL if it does not exit)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def stop(self, timeout: float = 5.0) -> int:
        """End the process: close stdin, then SIGTERM, then SIGKILL."""
        self.close_stdin()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
