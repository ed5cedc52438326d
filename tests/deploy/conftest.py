"""What the deploy tests share: the Dockerfiles read with Docker's own parser, the
image's install steps replayed into a fresh venv, and processes started the way the
images' entry points start them.

No Docker engine runs here, so an image is never built. Instead the Dockerfile's
build stage is replayed: its COPY instructions assemble a build context (minus what
``.dockerignore`` excludes), its ``pip install .`` runs into a fresh venv, and its
ENTRYPOINT + CMD run from that venv with the config file at the path the image
uses. What differs from ``docker build``: dependencies are not downloaded again
(``--no-deps``; the venv sees the test environment's packages through a ``.pth``
file, so they are the versions setup.cfg resolves to), the ``useradd`` step and the
base image are only checked, not run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import dockerfile
import pytest

from tests.e2e.proc_tools import ROOT
from tests.gateway import free_port

DOCKERFILES = {"frontier": ROOT / "Dockerfile", "frontlas": ROOT / "Dockerfile.frontlas"}
#: the one install step both Dockerfiles run; replayed by ``installed`` below
INSTALL_STEP = "pip install . && rm -rf /build"


def instructions(path: Path) -> list[dockerfile.Command]:
    """The Dockerfile's instructions, parsed by BuildKit's own parser."""
    return list(dockerfile.parse_file(str(path)))


def only(cmds: list[dockerfile.Command], name: str) -> dockerfile.Command:
    found = [c for c in cmds if c.cmd == name]
    assert len(found) == 1, f"expected one {name}, found {len(found)}"
    return found[0]


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """``.dockerignore`` as (exclude?, regex) rules; the last matching rule wins."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex += pattern[i:end + 1]
                i = end + 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        rules.append((not negate, re.compile(regex + r"\Z")))
    return rules


def in_build_context(relative: str) -> bool:
    """Whether Docker sends ``relative`` (a path under the repository) to the build:
    a rule matches a path or any of its parent directories; the last match wins."""
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for exclude, regex in dockerignore_patterns():
        if any(regex.match(p) for p in prefixes):
            excluded = exclude
    return not excluded


def copy_into_context(src: Path, dst: Path) -> int:
    """Copy what of ``src`` is in the build context to ``dst``; return the file count."""
    count = 0
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if not in_build_context(rel):
            continue
        target = dst / path.relative_to(src) if src.is_dir() else dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        count += 1
    return count


@dataclass
class Installed:
    """A venv holding the package as the image's build stage installs it."""

    venv: Path
    context: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Replay the frontier Dockerfile's build stage (see the module docstring)."""
    base = tmp_path_factory.mktemp("image")
    cmds = instructions(DOCKERFILES["frontier"])
    first_run = next(i for i, c in enumerate(cmds) if c.cmd == "RUN")
    workdirs = [c.value[0] for c in cmds[:first_run] if c.cmd == "WORKDIR"]
    assert workdirs and workdirs[-1] == "/build", "the build stage works in /build"
    build = base / "build"
    build.mkdir()
    for cmd in cmds[:first_run + 1]:
        if cmd.cmd == "COPY":  # Docker's rules: a directory's contents go to dest
            *sources, dest = cmd.value
            for source in sources:
                src = ROOT / source
                if src.is_dir():
                    target = build / dest
                elif len(sources) > 1 or dest.endswith("/"):
                    target = build / dest / src.name
                else:
                    target = build / dest
                assert copy_into_context(src, target) > 0, f"COPY {source}: nothing of it is in the build context"
    assert cmds[first_run].value[0] == INSTALL_STEP, "the install step changed: update tests/deploy/conftest.py"
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies (and pip itself) come from the test environment
    Path(purelib, "_test_env_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = _clean_env()
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "--ignore-installed", "--no-index", "-q", "."], cwd=build, env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, f"pip install . failed:\n{out.stdout}\n{out.stderr}"
    return Installed(venv, build)


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment minus anything that would import the work tree instead."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith(("FRONTIER__", "FRONTLAS__"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Running:
    """A process started as an image's ENTRYPOINT + CMD would be."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.argv = list(argv)
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=cwd, env=_clean_env(env), stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_http(self, url: str, timeout: float = 20.0) -> Any:
        """Poll ``url`` until it answers 200; return the decoded JSON body."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.argv[0]} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    return json.load(resp)
            except (urllib.error.URLError, OSError) as exc:
                last = getattr(exc, "code", exc)
            time.sleep(0.1)
        raise AssertionError(f"{url} did not answer 200 within {timeout}s (last: {last}):\n{self.log()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as ``docker stop`` and Kubernetes send; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code


def entrypoint_argv(name: str, installed: Installed, config_path: Path) -> list[str]:
    """ENTRYPOINT + CMD of the image, with its config path mapped to ``config_path``."""
    cmds = instructions(DOCKERFILES[name])
    entry, cmd = only(cmds, "ENTRYPOINT"), only(cmds, "CMD")
    assert entry.json and cmd.json, "ENTRYPOINT and CMD must be exec form (signals reach the process)"
    argv = [*entry.value, *cmd.value]
    image_config = f"/usr/conf/{name}.yaml"
    assert image_config in argv
    return [installed.bin(argv[0]), *(str(config_path) if a == image_config else a for a in argv[1:])]


@dataclass
class Cluster:
    """Frontlas + one frontier started from given configs; their local addresses."""

    api: str       #: Frontlas' cluster API (REST), host:port
    control: str   #: the frontier's control plane
    service: str   #: the frontier's service port
    edge: str      #: the frontier's edge port
    frontier_id: str
    probes: str = ""           #: the frontier's observability listener (9091 in the image)
    frontlas_probes: str = ""  #: Frontlas' observability listener (9092 in the image)


@contextlib.contextmanager
def run_cluster(installed: Installed, tmp_path: Path, frontier_yaml: str, frontlas_yaml: str,
                frontier_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """Run both entry points on these configs, as mounted at /usr/conf, on free local
    ports and the local Redis (the configs name hosts such as ``redis`` and
    ``frontlas`` that only resolve inside compose or Kubernetes); wait until the
    frontier is ready, which includes being registered with Frontlas."""
    conf = tmp_path / "usr" / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "frontier.yaml").write_text(frontier_yaml)
    (conf / "frontlas.yaml").write_text(frontlas_yaml)
    api, plane, control, service, edge, probes, fl_probes = (free_port() for _ in range(7))
    frontlas = Running(entrypoint_argv("frontlas", installed, conf / "frontlas.yaml"), cwd=tmp_path, log=tmp_path / "frontlas.log", env={
        "FRONTLAS__CONTROL_PLANE__LISTEN__ADDR": f"127.0.0.1:{api}",
        "FRONTLAS__OBSERVABILITY__ADDR": f"127.0.0.1:{fl_probes}",
        "FRONTLAS__FRONTIER_PLANE__LISTEN__ADDR": f"127.0.0.1:{plane}",
        "FRONTLAS__REDIS__STANDALONE__ADDR": "127.0.0.1:6379",
        "FRONTLAS__REDIS__KEY_PREFIX": f"'deploytest-{uuid.uuid4().hex[:8]}:'",
    })
    frontier = None
    try:
        frontlas.wait_http(f"http://127.0.0.1:{api}/readyz")
        env = dict(frontier_env or {})
        env.update({
            "FRONTIER__CONTROLPLANE__LISTEN__ADDR": f"127.0.0.1:{control}",
            "FRONTIER__SERVICEBOUND__LISTEN__ADDR": f"127.0.0.1:{service}",
            "FRONTIER__EDGEBOUND__LISTEN__ADDR": f"127.0.0.1:{edge}",
            "FRONTIER__OBSERVABILITY__ADDR": f"127.0.0.1:{probes}",
            "FRONTIER__FRONTLAS__DIAL__ADDRS": f"[127.0.0.1:{plane}]",
        })
        frontier = Running(entrypoint_argv("frontier", installed, conf / "frontier.yaml"), env=env, cwd=tmp_path,
                           log=tmp_path / "frontier.log")
        frontier.wait_http(f"http://127.0.0.1:{control}/readyz")
        listed = frontlas.wait_http(f"http://127.0.0.1:{api}/cluster/v1/frontiers")["frontiers"]
        assert len(listed) == 1, listed
        yield Cluster(f"127.0.0.1:{api}", f"127.0.0.1:{control}", f"127.0.0.1:{service}", f"127.0.0.1:{edge}",
                      listed[0]["frontier_id"], f"127.0.0.1:{probes}", f"127.0.0.1:{fl_probes}")
    finally:
        codes = [p.stop() for p in (frontier, frontlas) if p is not None]
    assert codes == [0] * len(codes), (frontier.log() if frontier else "") + frontlas.log()
