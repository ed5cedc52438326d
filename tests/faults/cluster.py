"""The cluster under test, one host (network namespace) per process, on one bridge.

Hosts: ``redis1`` (master), ``redis2`` (replica), ``sentinel``, ``frontlas``,
``f1`` ``f2`` ``f3`` (frontiers; ``f3``'s link can be shaped), ``ea`` ``eb`` (edges),
``sa`` ``sb`` (``ClusterService`` s) and ``mon``, from where the harness watches.
Every process runs through ``ip netns exec``, so its PID is the server's own and
``kill -STOP``/``-9`` reach it directly. The harness's own requests go out from a
thread inside ``mon`` (:func:`tests.faults.netns.run_in_netns`). Half ``A`` of a
split is the Redis hosts, Frontlas, ``f1``, ``f2``, ``ea`` and ``sa``; half ``B`` is
``f3``, ``eb`` and ``sb``.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import yaml

from tests.faults.netns import Network, enter_netns
from tests.gateway import ROOT

FRONTIERS = ("f1", "f2", "f3")
REDIS_PORT, SENTINEL_PORT = 6379, 26379
FL_API, FL_PLANE = 40011, 40012
SB_PORT, EB_PORT, CP_PORT = 30011, 30012, 30010
#: the frontiers' control planes listen on their namespace's address, which needs a token
CP_TOKEN = "fault-harness"
MASTER_NAME = "fxmaster"
#: frontier connection heartbeat (seconds); a silent connection is closed after 3 of them
HEARTBEAT = 1.0
#: Frontlas expirations (seconds)
TTL = 3
HALF_A = ("redis1", "redis2", "sentinel", "frontlas", "f1", "f2", "ea", "sa")
HALF_B = ("f3", "eb", "sb")
EDGES = {"ea": [1001, 1002, 1003, 1004, 1005], "eb": [2001, 2002, 2003, 2004, 2005]}


class NsProcess:
    """A process in a namespace, its output in ``log``; signalled by its own PID."""

    def __init__(self, ns: str, argv: list[str], log: Path, *, stdin: bool = False) -> None:
        self.ns, self.argv, self.log_path = ns, argv, log
        self.want_stdin = stdin
        self.proc: subprocess.Popen | None = None

    def start(self) -> "NsProcess":
        log = open(self.log_path, "ab")
        env = {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *self.argv], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE if self.want_stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if self.want_stdin else log, stderr=log)
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig == signal.SIGTERM:
                self.proc.send_signal(signal.SIGCONT)  # a paused process must wake to hear it
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def wait(self, timeout: float) -> None:
        """Wait for the process to exit by itself; kill it after ``timeout``."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Monitor:
    """The harness's eyes: a pool of threads living in the ``mon`` namespace."""

    def __init__(self, ns: str, threads: int = 6) -> None:
        self.pool = ThreadPoolExecutor(threads, initializer=enter_netns, initargs=(ns,))

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.submit(fn, *args).result()

    def map(self, fn: Callable[..., Any], items: list[Any]) -> list[Any]:
        return list(self.pool.map(fn, items))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def port_open(ip: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def get_json(url: str, timeout: float = 1.0, token: str = "") -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.load(resp)


class FaultCluster:
    """Everything of one run: network, servers, load drivers, the harness history."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.net = Network()
        self.procs: dict[str, NsProcess] = {}
        #: the Redis host a scenario took down as master (it rejoins as a replica)
        self.failed_master: str | None = None
        self.loads: dict[str, NsProcess] = {}
        self.history_path = workdir / "harness.jsonl"
        self._hist = open(self.history_path, "a", buffering=1)
        self._hist_lock = threading.Lock()
        self._observing = threading.Event()
        self._observer: threading.Thread | None = None
        try:
            for name in ("redis1", "redis2", "sentinel", "frontlas", "f1", "f2", "f3", "ea", "eb", "sa", "sb", "mon"):
                self.net.add(name, shapeable=name == "f3")
        except BaseException:
            self._hist.close()
            self.net.close()
            raise
        self.mon = Monitor(self.net.nodes["mon"].ns)

    def ip(self, name: str) -> str:
        return self.net.nodes[name].ip

    def mark(self, **record: Any) -> None:
        """One line of the harness's history."""
        record.setdefault("ts", time.time())
        with self._hist_lock:
            self._hist.write(json.dumps(record, separators=(",", ":")) + "\n")

    def wait(self, what: str, probe: Callable[[], bool], timeout: float = 20.0, interval: float = 0.1) -> float:
        """Wait (probing from ``mon``) until ``probe()``; seconds it took."""
        start = time.monotonic()
        while not self.mon.run(probe):
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{what}: not within {timeout}s")
            time.sleep(interval)
        return time.monotonic() - start

    def _spawn(self, name: str, key: str, argv: list[str], **kw: Any) -> NsProcess:
        proc = NsProcess(self.net.nodes[name].ns, argv, self.workdir / f"{key}.log", **kw).start()
        self.procs[key] = proc
        return proc

    # -- Redis, Sentinel ---------------------------------------------------------------------------

    def start_redis(self, name: str, replica_of: str | None = None) -> None:
        argv = ["redis-server", "--port", str(REDIS_PORT), "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--dbfilename", f"{name}.rdb",
                "--replica-announce-ip", self.ip(name)]
        if replica_of:
            argv += ["--replicaof", replica_of, str(REDIS_PORT)]
        self._spawn(name, name, argv)
        self.wait(f"redis on {name}", lambda: port_open(self.ip(name), REDIS_PORT))

    def start_sentinel(self) -> None:
        conf = self.workdir / "sentinel.conf"
        conf.write_text("\n".join([
            f"port {SENTINEL_PORT}", "bind 0.0.0.0", "protected-mode no", f"dir {self.workdir}",
            f"sentinel announce-ip {self.ip('sentinel')}",
            f"sentinel monitor {MASTER_NAME} {self.ip('redis1')} {REDIS_PORT} 1",
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
            f"sentinel failover-timeout {MASTER_NAME} 4000",
            f"sentinel parallel-syncs {MASTER_NAME} 1", ""]))
        binary = shutil.which("redis-sentinel")
        if binary is None:
            raise RuntimeError("redis-sentinel is not installed (apt-get install -y redis-sentinel)")
        self._spawn("sentinel", "sentinel", [binary, str(conf)])
        self.wait("sentinel", lambda: port_open(self.ip("sentinel"), SENTINEL_PORT))

    def redis_master(self) -> str:
        """The host Sentinel names as the master now."""
        def ask() -> str:
            with socket.create_connection((self.ip("sentinel"), SENTINEL_PORT), timeout=2) as s:
                s.sendall(f"SENTINEL get-master-addr-by-name {MASTER_NAME}\r\n".encode())
                reply = s.recv(4096).decode()
            ip = [line for line in reply.split("\r\n") if line.startswith("10.")][0]
            return next(n for n, node in self.net.nodes.items() if node.ip == ip)
        return self.mon.run(ask)

    # -- Frontlas, frontiers -------------------------------------------------------------------------

    def start_frontlas(self) -> None:
        cfg = {
            "control_plane": {"listen": {"addr": f"0.0.0.0:{FL_API}"}},
            "frontier_plane": {"listen": {"addr": f"0.0.0.0:{FL_PLANE}"},
                               "expiration": {"service_meta": TTL, "edge_meta": TTL, "frontier_meta": TTL}},
            "redis": {"mode": "sentinel", "key_prefix": "fx:",
                      "sentinel": {"addrs": [f"{self.ip('sentinel')}:{SENTINEL_PORT}"], "master_name": MASTER_NAME}},
            "limits": {"heartbeat_interval": HEARTBEAT},
            "log": {"level": "info"},
        }
        path = self.workdir / "frontlas.yaml"
        path.write_text(yaml.safe_dump(cfg))
        self._spawn("frontlas", "frontlas", [sys.executable, "-m", "frontlas.cli", "serve", "--config", str(path)])
        self.wait("frontlas", lambda: port_open(self.ip("frontlas"), FL_API) and port_open(self.ip("frontlas"), FL_PLANE))

    def start_frontier(self, fid: str) -> None:
        ip = self.ip(fid)
        cfg = {
            "servicebound": {"listen": {"addr": f"0.0.0.0:{SB_PORT}", "advertised_addr": f"{ip}:{SB_PORT}"}},
            "edgebound": {"listen": {"addr": f"0.0.0.0:{EB_PORT}", "advertised_addr": f"{ip}:{EB_PORT}"}},
            "controlplane": {"enable": True, "listen": {"addr": f"0.0.0.0:{CP_PORT}"},
                             "auth": {"bearer_tokens": [CP_TOKEN]}},
            "frontlas": {"enable": True, "dial": {"addrs": [f"{self.ip('frontlas')}:{FL_PLANE}"]}},
            "daemon": {"frontier_id": fid},
            "limits": {"heartbeat_interval": HEARTBEAT},
            "log": {"level": "info"},
        }
        path = self.workdir / f"{fid}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        self._spawn(fid, fid, [sys.executable, "-m", "frontier.cli", "serve", "--config", str(path)])
        self.wait(fid, lambda: all(port_open(ip, p) for p in (SB_PORT, EB_PORT, CP_PORT)))

    def frontlas_frontiers(self) -> set[str]:
        doc = get_json(f"http://{self.ip('frontlas')}:{FL_API}/cluster/v1/frontiers")
        return {f["frontier_id"] for f in doc["frontiers"]}

    def wait_registered(self, fids: tuple[str, ...] = FRONTIERS, timeout: float = 20.0) -> None:
        def probe() -> bool:
            try:
                return set(fids) <= self.frontlas_frontiers()
            except OSError:
                return False
        self.wait(f"frontiers {fids} listed by Frontlas", probe, timeout, interval=0.2)

    # -- load -------------------------------------------------------------------------------------------

    def start_load(self) -> None:
        all_edges = EDGES["ea"] + EDGES["eb"]
        frontlas = f"{self.ip('frontlas')}:{FL_API}"
        for name in ("ea", "eb", "sa", "sb"):
            cfg = {"tag": name, "frontlas": frontlas, "history": str(self.workdir / f"load-{name}.jsonl"),
                   "all_edges": all_edges, "edges": EDGES.get(name, []), "service": name.startswith("s")}
            proc = NsProcess(self.net.nodes[name].ns, [sys.executable, "-m", "tests.faults.load", json.dumps(cfg)],
                             self.workdir / f"load-{name}.log", stdin=True).start()
            self.loads[name] = proc
        for name, proc in self.loads.items():
            assert proc.proc is not None and proc.proc.stdout is not None
            line = proc.proc.stdout.readline()
            if b"ready" not in line:
                raise RuntimeError(f"load driver {name} did not start:\n{proc.tail()}")

    def stop_load(self) -> None:
        for proc in self.loads.values():
            if proc.proc is not None and proc.proc.stdin is not None:
                try:
                    proc.proc.stdin.close()
                except OSError:
                    pass
        for proc in self.loads.values():
            proc.wait(timeout=20)

    def spread_edges(self, owners: dict[str, list[int] | None]) -> bool:
        """Ask the edge hosts to move edges until every frontier holds its share;
        False if they already do."""
        held = {fid: list(edges or ()) for fid, edges in owners.items()}
        share = len(EDGES["ea"] + EDGES["eb"]) // len(FRONTIERS)
        moved = False
        for poor in [f for f in FRONTIERS if len(held[f]) < share]:
            while len(held[poor]) < share:
                rich = max(FRONTIERS, key=lambda f: len(held[f]))
                if len(held[rich]) <= share:
                    break
                eid = held[rich].pop()
                host = next(h for h, ids in EDGES.items() if eid in ids)
                proc = self.loads[host].proc
                assert proc is not None and proc.stdin is not None
                proc.stdin.write(f"place {eid} {self.ip(poor)}:{EB_PORT}\n".encode())
                proc.stdin.flush()
                held[poor].append(eid)
                moved = True
        return moved

    def history_files(self) -> list[Path]:
        return [self.history_path] + [self.workdir / f"load-{n}.jsonl" for n in self.loads]

    # -- watching ---------------------------------------------------------------------------------------

    def node_edges(self, fid: str) -> list[int] | None:
        """Edge ids frontier ``fid`` holds now (None if it does not answer)."""
        try:
            doc = get_json(f"http://{self.ip(fid)}:{CP_PORT}/v1/edges", timeout=0.5, token=CP_TOKEN)
        except (OSError, ValueError):
            return None
        return sorted(e["edge_id"] for e in doc["edges"])

    def frontlas_edges(self) -> dict[int, str] | None:
        """Frontlas' map edge id -> frontier id (None if it does not answer)."""
        out: dict[int, str] = {}
        cursor = 0
        try:
            while True:
                page = get_json(f"http://{self.ip('frontlas')}:{FL_API}/cluster/v1/edges?cursor={cursor}&count=500")
                out.update({int(e["edge_id"]): e["frontier_id"] for e in page["edges"]})
                cursor = page["cursor"]
                if not cursor:
                    return out
        except (OSError, ValueError):
            return None

    def sample_owners(self) -> dict[str, list[int] | None]:
        owners = self.mon.map(self.node_edges, list(FRONTIERS))
        return dict(zip(FRONTIERS, owners))

    def _observe(self) -> None:
        while not self._observing.wait(0.25):
            self.mark(t="own", nodes=self.sample_owners())

    def start_observer(self) -> None:
        self._observer = threading.Thread(target=self._observe, daemon=True)
        self._observer.start()

    def maps_agree(self) -> tuple[bool, str]:
        """Frontlas' map equals what the frontiers hold, and every edge is held once."""
        owners = self.sample_owners()
        fl = self.mon.run(self.frontlas_edges)
        if fl is None or any(v is None for v in owners.values()):
            return False, f"unreachable: frontlas={fl is not None} nodes={ {k: v is not None for k, v in owners.items()} }"
        held: dict[int, list[str]] = {}
        for fid, edges in owners.items():
            for e in edges or ():
                held.setdefault(e, []).append(fid)
        everyone = set(EDGES["ea"] + EDGES["eb"])
        problems = []
        for e in sorted(everyone | set(held) | set(fl)):
            if len(held.get(e, [])) != 1:
                problems.append(f"edge {e} held by {held.get(e, [])}")
            elif fl.get(e) != held[e][0]:
                problems.append(f"edge {e}: frontlas says {fl.get(e)}, node {held[e][0]}")
        return not problems, "; ".join(problems[:5])

    # -- life -------------------------------------------------------------------------------------------

    def start(self) -> "FaultCluster":
        self.start_redis("redis1")
        self.start_redis("redis2", replica_of=self.ip("redis1"))
        self.start_sentinel()
        self.start_frontlas()
        for fid in FRONTIERS:
            self.start_frontier(fid)
        self.wait_registered()
        self.start_load()
        self.start_observer()
        return self

    def close(self) -> None:
        self._observing.set()
        try:
            self.stop_load()
        finally:
            for proc in self.procs.values():
                proc.stop(timeout=5)
            self.mon.close()
            self._hist.close()
            self.net.close()
