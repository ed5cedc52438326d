"""Hosts made of Linux network namespaces, joined by veth pairs on one bridge.

A :class:`Network` owns every namespace it creates (``fx<run>-<node>``), including
the one holding the bridge, so nothing is added to the machine's own namespace;
addresses are ``10.250.<n>.0/24``, private to those namespaces. Faults are applied
inside a node's namespace: ``cut`` drops packets to and from peers silently (an
nftables table), ``shape`` adds latency and loss to the node's egress (``tc netem``
when the kernel has it; otherwise the node's link is a TAP pair joined by
:mod:`tests.faults.linkshaper`, which delays and drops frames in user space).
``Network.close`` deletes every namespace (their links die with them) and kills
what still runs in them; :func:`sweep_stale` does the same for runs whose harness
died, so a crashed run never blocks the next.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")

#: where each run records its harness PID, so a later run can sweep it
STATE_DIR = Path(tempfile.gettempdir()) / "frontier-faults"
NETNS_DIR = Path("/var/run/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NoNetAdmin(RuntimeError):
    """This machine cannot create network namespaces (no CAP_NET_ADMIN, or no ``ip``)."""


def sh(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command, raising with its stderr when ``check`` and it fails."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def check_net_admin() -> None:
    """Raise :class:`NoNetAdmin` unless a namespace with a veth pair can be made here."""
    name = f"fxprobe-{uuid.uuid4().hex[:6]}"
    try:
        sh("ip", "netns", "add", name)
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise NoNetAdmin(f"cannot create a network namespace ({exc}); the fault tests need root or CAP_NET_ADMIN") from None
    try:
        sh("ip", "-n", name, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
    except RuntimeError as exc:
        raise NoNetAdmin(f"cannot create a veth pair ({exc})") from None
    finally:
        sh("ip", "netns", "del", name, check=False)


def missing_tools() -> list[str]:
    """The programs the fault tests need that are not installed (Debian packages
    ``nftables`` and ``redis-sentinel``)."""
    return [tool for tool in ("nft", "redis-sentinel", "redis-server") if shutil.which(tool) is None]


def netem_available() -> bool:
    """True if this kernel has the netem qdisc (some VM kernels are built without it)."""
    name = f"fxprobe-{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", name)
    try:
        return sh("ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
                  check=False).returncode == 0
    finally:
        sh("ip", "netns", "del", name, check=False)


def run_in_netns(ns: str, fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(*args)`` on a thread that entered namespace ``ns`` (sockets made
    there belong to it); its result or exception comes back here."""
    out: dict[str, Any] = {}

    def body() -> None:
        try:
            enter_netns(ns)
            out["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller
            out["error"] = exc

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def enter_netns(ns: str) -> None:
    """Move the calling thread into network namespace ``ns`` (``ip netns`` name or path)."""
    path = ns if ns.startswith("/") else str(NETNS_DIR / ns)
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


@dataclass
class Node:
    """One host: a namespace with one interface (``eth0``) on the bridge."""

    name: str
    ns: str
    ip: str
    shaped_by_tap: bool = False


class Network:
    """The namespaces of one run: a bridge and the nodes on it."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:6]
        self.subnet = random.randint(1, 254)
        self.bridge_ns = f"fx{self.run}-br"
        self.nodes: dict[str, Node] = {}
        self.netem = False
        self._shapers: dict[str, subprocess.Popen] = {}
        self._next_host = 10
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / self.run).write_text(str(os.getpid()))
        try:
            sh("ip", "netns", "add", self.bridge_ns)
            self._ip(self.bridge_ns, "link", "set", "lo", "up")
            self._ip(self.bridge_ns, "link", "add", "br0", "type", "bridge")
            self._ip(self.bridge_ns, "link", "set", "br0", "up")
            self.netem = netem_available()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _ip(ns: str, *args: str) -> None:
        sh("ip", "-n", ns, *args)

    def add(self, name: str, *, shapeable: bool = False) -> Node:
        """A new host ``name`` on the bridge; ``shapeable`` nodes can be given latency and loss."""
        ns = f"fx{self.run}-{name}"
        ip = f"10.250.{self.subnet}.{self._next_host}"
        self._next_host += 1
        sh("ip", "netns", "add", ns)
        self._ip(ns, "link", "set", "lo", "up")
        port = f"p{len(self.nodes)}"
        node = Node(name, ns, ip, shaped_by_tap=shapeable and not self.netem)
        if node.shaped_by_tap:  # two TAPs joined by the user-space shaper
            self._ip(self.bridge_ns, "tuntap", "add", "dev", port, "mode", "tap")
            self._ip(ns, "tuntap", "add", "dev", "eth0", "mode", "tap")
        else:
            self._ip(self.bridge_ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._ip(self.bridge_ns, "link", "set", port, "master", "br0", "up")
        self._ip(ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        self._ip(ns, "link", "set", "eth0", "up")
        self.nodes[name] = node
        if node.shaped_by_tap:
            self._shapers[name] = subprocess.Popen(
                ["ip", "netns", "exec", self.bridge_ns, sys.executable, "-m", "tests.faults.linkshaper",
                 port, str(NETNS_DIR / ns), "eth0"],
                cwd=Path(__file__).resolve().parents[2], stdin=subprocess.PIPE, text=True)
        return node

    # -- faults ---------------------------------------------------------------------------------

    def cut(self, name: str, peers: Sequence[str], *, inbound: bool = True, outbound: bool = True) -> None:
        """Drop packets between ``name`` and ``peers`` silently, from ``name``'s side:
        what they send it (``inbound``), what it sends them (``outbound``), or both."""
        addrs = ", ".join(self.nodes[p].ip for p in peers)
        chains = []
        if outbound:
            chains.append(f" chain o {{\n type filter hook output priority 0;\n ip daddr {{ {addrs} }} drop\n }}\n")
        if inbound:
            chains.append(f" chain i {{\n type filter hook input priority 0;\n ip saddr {{ {addrs} }} drop\n }}\n")
        rules = "table inet fxcut {\n" + "".join(chains) + "}\n"
        sh("ip", "netns", "exec", self.nodes[name].ns, "nft", "-f", "-", input=rules)

    def heal_cut(self, name: str) -> None:
        """Undo :meth:`cut` on ``name``."""
        sh("ip", "netns", "exec", self.nodes[name].ns, "nft", "delete", "table", "inet", "fxcut", check=False)

    def shape(self, name: str, delay_ms: int, loss: float) -> None:
        """Delay ``name``'s outgoing packets by ``delay_ms`` and drop a fraction ``loss`` of them."""
        node = self.nodes[name]
        if node.shaped_by_tap:
            self._shaper_send(name, {"delay_ms": delay_ms, "loss": loss})
        else:
            sh("ip", "netns", "exec", node.ns, "tc", "qdisc", "replace", "dev", "eth0", "root", "netem",
               "delay", f"{delay_ms}ms", "loss", f"{loss * 100:g}%")

    def unshape(self, name: str) -> None:
        """Undo :meth:`shape`."""
        node = self.nodes[name]
        if node.shaped_by_tap:
            self._shaper_send(name, {"delay_ms": 0, "loss": 0.0})
        else:
            sh("ip", "netns", "exec", node.ns, "tc", "qdisc", "del", "dev", "eth0", "root", check=False)

    def _shaper_send(self, name: str, settings: dict[str, Any]) -> None:
        proc = self._shapers[name]
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(settings) + "\n")
        proc.stdin.flush()

    # -- the end ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Kill what runs in our namespaces, delete them, forget the run."""
        for proc in self._shapers.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        destroy_run(self.run)


def _run_namespaces(run: str) -> list[str]:
    prefix = f"fx{run}-"
    if not NETNS_DIR.exists():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def destroy_run(run: str) -> None:
    """Kill every process left in run ``run``'s namespaces and delete them."""
    namespaces = _run_namespaces(run)
    bridge = f"fx{run}-br"
    for ns in sorted(namespaces, key=lambda n: n == bridge):  # the bridge last
        pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", ns, check=False)
    try:
        (STATE_DIR / run).unlink()
    except FileNotFoundError:
        pass


def sweep_stale() -> list[str]:
    """Destroy the namespaces of earlier runs whose harness process is gone."""
    swept = []
    if not STATE_DIR.exists():
        return swept
    for marker in STATE_DIR.iterdir():
        try:
            pid = int(marker.read_text().strip() or "0")
        except (OSError, ValueError):
            pid = 0
        alive = pid > 0 and Path(f"/proc/{pid}").exists()
        if not alive:
            destroy_run(marker.name)
            swept.append(marker.name)
    return swept
