"""Helpers of the example-app tests: run a web server as a subprocess, fire HTTP
requests at it concurrently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from tests.e2e.proc_tools import ROOT
from tests.gateway import free_port, wait_port


class WebServer:
    """A server process (gunicorn, Django's runserver) whose output goes to a log file."""

    def __init__(self, args: Sequence[str], *, cwd: Path, env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.log_path = log
        full_env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{cwd}", PYTHONUNBUFFERED="1")
        full_env.update(env)
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=full_env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port("127.0.0.1", port, timeout=30)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"{args[:3]} did not start:\n{self.log()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)  # its own session: the workers go too
            code = self.proc.wait()
        self._log.close()
        return code


def _gunicorn_quiet_flags() -> list[str]:
    """gunicorn 24+ opens a control socket in ~/.gunicorn shared by every instance; off."""
    from gunicorn import config

    names = {s.name for s in config.KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def gunicorn(app_dir: Path, target: str, *, worker_class: str, env: dict[str, str], log: Path,
             workers: int = 2, threads: int = 4, extra: Sequence[str] = ()) -> WebServer:
    """``gunicorn --preload`` serving ``target`` from ``app_dir`` on a free port."""
    port = free_port()
    args = ["-m", "gunicorn", "--preload", "-w", str(workers), "--threads", str(threads), "-k", worker_class,
            "-b", f"127.0.0.1:{port}", "--backlog", "512", "--graceful-timeout", "5", *_gunicorn_quiet_flags(), *extra, target]
    return WebServer(args, cwd=app_dir, env=env, port=port, log=log)


class Answer:
    """What one HTTP request got."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status, self.body, self.headers = status, body, headers

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body[:200]!r})"


def http(method: str, url: str, body: bytes | None = None, timeout: float = 30.0) -> Answer:
    """One request; an HTTP error status is returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Answer(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read(), dict(exc.headers))


def concurrently(n: int, fn) -> list[Any]:
    """Run ``fn(i)`` for i in range(n), all at once (n threads released together)."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait(30)
        try:
            return fn(i)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))
