"""``make bench``: the gateway against a bare gevent relay, same load, same run.

Starts everything itself on loopback: a gateway subprocess (``frontier.cli serve``),
the bare relay (``loadtests/relay.py``), one raw-socket service process and several
raw-socket edge generator processes (``loadtests/loadgen.py``), each bound to its own
source address in 127.0.0.0/8. The ingress rows (``loadtests/ingress_bench.py``) put
the HTTP ingress (gateway + edge) in the gateway column and the same web app reached
directly in the relay column. Every scenario runs alternately through the gateway
and through the relay; each figure is the median of ``runs`` runs (the spread,
min..max, is printed and stored). Prints one table and writes ``latest.json`` and a
PNG chart into ``--out`` (default ``loadtests/results``).

    python -m loadtests.bench            # full: ~5 runs per figure, 19,000 idle edges
    python -m loadtests.bench --quick    # the same in well under a minute, smaller counts
    python -m loadtests.bench --tiny     # a few seconds; for the test suite
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil

from loadtests import loadgen

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
MB = 1e6

#: targets from issue 6, checked at the end of every run: (row, kind, bound)
TARGETS = [
    ("rpc e2s 200 edges", "ratio>=", 0.6),
    ("rpc s2e 200 edges", "ratio>=", 0.6),
    ("publish e2s 200 edges", "ratio>=", 0.6),
    ("stream 1", "gateway>=", 100.0),
    ("idle rss/edge @19000", "gateway<=", 12.0),
    # issue 15, every core: serve --workers 2 against one process on this 2-core machine
    ("2 workers: rpc e2s 200 edges", "cpu_ratio>=", 0.9),
    ("2 workers: rpc e2s 200 edges", "ratio>=", 1.0),
    ("2 workers: rpc e2s 200 edges least-loaded worker", "gateway>=", 25.0),
    ("2 workers: rpc s2e 200 edges", "cpu_ratio>=", 0.9),
]


# -- settings -------------------------------------------------------------------------------------


@dataclass
class Settings:
    """How much load, for how long, how many times."""

    mode: str
    runs: int  # runs per throughput figure
    warmup: float  # seconds of load before the window opens
    duration: float  # seconds the window stays open
    edges: int  # the "200 concurrent edges"
    edge_procs: int  # generator processes for many-edge scenarios
    rss_counts: tuple[int, int]  # idle edges for the two RSS figures
    rss_runs: int
    rss_procs: int  # generator processes for the idle/connect scenario
    connect_concurrency: int  # handshakes in flight per generator process
    workers_runs: int = 0  # runs of the "2 workers" figures (0: ``runs``)
    idle_wait: float = 1.0  # seconds idle edges sit before the RSS is read
    crossing: bool = True  # the crossing rows without --only crossing (Frontlas + SDK: slow to set up)
    payload: int = 64  # bytes per call/publish


MODES = {
    # full: the 2-worker figures 3 times (gateway-2w first, 1 worker first, 2w first): the
    # whole run stays under 10 minutes with the SDK rows
    "full": Settings("full", runs=5, warmup=0.5, duration=3.0, edges=200, edge_procs=2,
                     rss_counts=(1000, 19000), rss_runs=3, rss_procs=4, connect_concurrency=64, workers_runs=3),
    # quick: one run in each order (gateway first, relay first) per figure
    "quick": Settings("quick", runs=2, warmup=0.1, duration=0.4, edges=200, edge_procs=2,
                      rss_counts=(1000, 4000), rss_runs=1, rss_procs=4, connect_concurrency=64,
                      idle_wait=0.5, crossing=False),
    "tiny": Settings("tiny", runs=1, warmup=0.1, duration=0.3, edges=20, edge_procs=2,
                     rss_counts=(50, 200), rss_runs=1, rss_procs=2, connect_concurrency=32, idle_wait=0.3),
}


@dataclass
class Scenario:
    """One throughput measurement: who drives, how many edges, what is counted."""

    key: str
    label: str  # row name prefix
    mode: str  # edge drive mode: rpc, publish, serve (service calls), stream
    edges: int
    procs: int
    unit: str
    latency: bool = True
    depth: int = 1
    #: the two targets of the "gateway" and "relay" columns (names: gateway, relay, gateway-2w)
    pair: tuple[str, str] = ("gateway", "relay")
    #: what the second column is when it is not the relay (e.g. "1 worker")
    baseline: str = ""


def scenarios(s: Settings) -> list[Scenario]:
    """The throughput scenarios for these settings (the connect/idle one is separate)."""
    n = s.edges
    return [
        Scenario("rpc_e2s_1", "rpc e2s 1 conn", "rpc", 1, 1, "calls/s"),
        Scenario("rpc_e2s_n", f"rpc e2s {n} edges", "rpc", n, s.edge_procs, "calls/s"),
        Scenario("rpc_s2e_1", "rpc s2e 1 conn", "serve", 1, 1, "calls/s"),
        Scenario("rpc_s2e_n", f"rpc s2e {n} edges", "serve", n, s.edge_procs, "calls/s"),
        Scenario("publish_n", f"publish e2s {n} edges", "publish", n, s.edge_procs, "msgs/s"),
        Scenario("stream_1", "stream 1", "stream", 1, 1, "MB/s", latency=False),
        Scenario("stream_8", "stream 8", "stream", 8, 2, "MB/s", latency=False),
        # serve --workers 2 against one gateway process, the same load
        Scenario("workers_e2s_n", f"2 workers: rpc e2s {n} edges", "rpc", n, s.edge_procs, "calls/s",
                 pair=("gateway-2w", "gateway"), baseline="1 worker"),
        Scenario("workers_s2e_n", f"2 workers: rpc s2e {n} edges", "serve", n, s.edge_procs, "calls/s",
                 pair=("gateway-2w", "gateway"), baseline="1 worker"),
    ]


# -- the two targets ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")
            time.sleep(0.02)


def free_ports(count: int, avoid: set[int] = frozenset()) -> int:
    """A port P with P .. P+count-1 all free now (and none in ``avoid``)."""
    for _ in range(200):
        base = free_port()
        if base + count > 65535 or any(p in avoid for p in range(base, base + count)):
            continue
        held = []
        try:
            for p in range(base + 1, base + count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no {count} adjacent free ports")


class Target:
    """The system under load: ``gateway`` or ``relay``, as a subprocess.

    A gateway with ``workers`` > 1 is ``serve --workers N`` (the supervisor and its N
    children: one shared edge port, N service ports, N control planes with
    ``controlplane``); ``cpu()``/``rss()`` sum over all its processes."""

    def __init__(self, kind: str, workdir: Path, workers: int = 1, controlplane: bool = False,
                 name: str | None = None, extra: dict[str, dict[str, Any]] | None = None) -> None:
        self.kind = kind
        self.extra = extra or {}  # config sections merged into the gateway's
        self.workdir = workdir
        self.workers = workers
        self.controlplane = controlplane
        self.proc: subprocess.Popen | None = None
        self.service_addr = self.edge_addr = ""
        self.service_addrs: list[str] = []
        self.controlplane_addrs: list[str] = []
        self.name = name or (kind if workers == 1 else f"{kind}-{workers}w")
        self.log_path = workdir / f"{self.name}.log"
        self._procs: dict[int, psutil.Process] = {}

    def start(self, attempts: int = 2) -> "Target":
        """Start it; a gateway that does not come up (a port taken by another process
        between our probe and its bind) is tried again on fresh ports."""
        for attempt in range(attempts):
            try:
                return self._start()
            except RuntimeError:
                if attempt == attempts - 1 or self.kind != "gateway":
                    raise
        raise AssertionError("unreachable")

    def _start(self) -> "Target":
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        log = open(self.log_path, "ab")
        if self.kind == "gateway":
            n = self.workers
            eport = free_port()
            sport = free_ports(n, {eport})
            cport = free_ports(n, {eport, *range(sport, sport + n)}) if self.controlplane else 0
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            nofile = hard if hard != resource.RLIM_INFINITY else 1 << 20
            config = self.workdir / f"{self.name}.yaml"
            doc = {
                "servicebound": {"listen": {"addr": f"127.0.0.1:{sport}"}},
                "edgebound": {"listen": {"addr": f"127.0.0.1:{eport}"}},
                "observability": {"addr": "127.0.0.1:0"},  # not 9091: runs may overlap
                "log": {"level": "warn"},
                "daemon": {"rlimit": {"enable": True, "nofile": nofile}, "frontier_id": "bench"},
                # the per-edge byte budget (256 MiB/s by default) off: the stream rows
                # measure the data path, as the relay (which has none) does
                "limits": {"heartbeat_interval": 3600, "edge_bytes_per_second": 0},
                # on by default, on 127.0.0.1:30010: only where a scenario reads it
                "controlplane": {"enable": True, "listen": {"addr": f"127.0.0.1:{cport}"}} if cport else {"enable": False},
            }
            for section, values in self.extra.items():
                doc[section] = {**doc.get(section, {}), **values}
            config.write_text(json.dumps(doc))  # JSON is YAML
            argv = [sys.executable, "-m", "frontier.cli", "serve", "--config", str(config)]
            if n > 1:  # no Frontlas: the bench knows the workers' ports (worker_envs: base, base+1, ...)
                argv += ["--workers", str(n)]
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            self.service_addrs = [f"127.0.0.1:{p}" for p in range(sport, sport + n)]
            self.controlplane_addrs = [f"127.0.0.1:{p}" for p in range(cport, cport + n)] if cport else []
            try:
                for port in (*range(sport, sport + n), eport, *(range(cport, cport + n) if cport else ())):
                    wait_port(port, 60.0)
            except RuntimeError as exc:
                log.close()
                self.stop()
                raise RuntimeError(f"{self.name} did not start: {exc}; its log ends:\n{self.log_tail()}") from None
        else:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loadtests.relay"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log,
            )
            line = self.proc.stdout.readline().decode().split()
            if not line or line[0] != "READY":
                raise RuntimeError(f"relay did not start: {line}")
            sport, eport = int(line[1]), int(line[2])
            self.service_addrs = [f"127.0.0.1:{sport}"]
        log.close()
        self.service_addr, self.edge_addr = f"127.0.0.1:{sport}", f"127.0.0.1:{eport}"
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def processes(self) -> list[psutil.Process]:
        """The target's processes: itself, and with workers its children (cached so
        that CPU readings of one process stay comparable)."""
        root = self._proc(self.pid)
        out = [root]
        if self.workers > 1:
            try:
                out += [self._proc(c.pid) for c in root.children()]
            except psutil.Error:
                pass
        return out

    def _proc(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = psutil.Process(pid)
        return proc

    def worker_pids(self) -> dict[int, int]:
        """Worker index -> pid of a ``--workers`` gateway (from each child's environment)."""
        if self.workers == 1:
            return {0: self.pid}
        out = {}
        for proc in self.processes()[1:]:
            try:
                fid = proc.environ().get("FRONTIER__DAEMON__FRONTIER_ID", "")
            except psutil.Error:
                continue
            if fid.startswith("bench-"):
                out[int(fid[6:])] = proc.pid
        return out

    def worker_cpu(self) -> dict[int, float]:
        """CPU seconds per worker index."""
        out = {}
        for index, pid in self.worker_pids().items():
            try:
                t = self._proc(pid).cpu_times()
                out[index] = t.user + t.system
            except psutil.Error:
                pass
        return out

    def rss(self) -> int:
        total = 0
        for proc in self.processes():
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def cpu(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT if self.kind == "relay" else signal.SIGTERM)
            try:
                self.proc.wait(10 if self.workers > 1 else 5)
            except subprocess.TimeoutExpired:
                for proc in self.processes()[::-1]:
                    try:
                        proc.kill()
                    except psutil.Error:
                        pass
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None


# -- generator processes ------------------------------------------------------------------------------


class Worker:
    """A forked generator process and its control pipe."""

    def __init__(self, fn: Callable[[Any, dict], None], spec: dict[str, Any]) -> None:
        ctx = mp.get_context("fork")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=fn, args=(child, spec), daemon=True)
        self.proc.start()
        child.close()
        self.info = self.expect("ready")

    def send(self, *cmd: Any) -> None:
        self.pipe.send(cmd)

    def expect(self, what: str, timeout: float = 180.0) -> Any:
        if not self.pipe.poll(timeout):
            raise RuntimeError(f"generator {self.proc.pid} gave no {what!r} within {timeout}s")
        msg = self.pipe.recv()
        if msg[0] != what:
            raise RuntimeError(f"generator {self.proc.pid}: expected {what!r}, got {msg!r}")
        return msg[1]

    def cpu(self) -> float:
        try:
            t = psutil.Process(self.proc.pid).cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0

    def finish(self, *cmd: Any) -> None:
        try:
            self.send(*cmd)
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def _src(k: int) -> str:
    """Source address of generator process ``k`` (127.0.0.2, 127.0.0.3, ...)."""
    return f"127.0.{(2 + k) // 250}.{(2 + k) % 250}"


def _split(n: int, parts: int) -> list[int]:
    parts = max(1, min(parts, n))
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


# -- one run of each kind ----------------------------------------------------------------------------


def throughput_run(target: Target, sc: Scenario, s: Settings, profiler: "Profiler | None" = None) -> dict[str, Any]:
    """Run one scenario once against ``target``; return its figures."""
    svc = Worker(loadgen.service_worker, {"target": target.kind, "addrs": target.service_addrs, "payload": s.payload})
    edges: list[Worker] = []
    try:
        for k, n in enumerate(_split(sc.edges, sc.procs)):
            w = Worker(loadgen.edge_worker, {"addr": target.edge_addr, "src": _src(k), "base_id": 1 + k * 1_000_000})
            edges.append(w)
            w.send("connect", n, max(1, min(n, s.connect_concurrency)), 30.0)
        connected = [w.expect("connected") for w in edges]
        failed = sum(c["failed"] for c in connected)
        if failed:
            raise RuntimeError(f"{sc.label}: {failed} edges failed to connect: {connected[0]['errors']}")
        now = time.monotonic()
        start = now + 0.05 + s.warmup
        end = start + s.duration
        if sc.mode == "serve":
            svc.send("go", start, end, sc.edges, sc.depth)
        else:
            svc.send("go", start, end, 0, 0)
        for w in edges:
            w.send("go", sc.mode, start, end, sc.depth, s.payload)
        procs = [svc, *edges]
        _sleep_until(start)
        if profiler is not None:
            profiler.start(target, sc.key, s.duration)
        cpu0, gen0, wcpu0 = target.cpu(), sum(w.cpu() for w in procs), target.worker_cpu()
        _sleep_until(end)
        cpu1, gen1, wcpu1 = target.cpu(), sum(w.cpu() for w in procs), target.worker_cpu()
        results = [w.expect("result") for w in edges]
        svc.send("report")
        served = svc.expect("result")
    finally:
        for w in edges:
            w.finish("close")
        svc.finish("stop")
        if profiler is not None:
            profiler.wait()
    seconds = s.duration
    if sc.mode == "serve":
        measured = [served]
    elif sc.mode == "stream":
        measured = []
    else:
        measured = results
    count = sum(r["count"] for r in measured)
    failures = sum(r["failures"] for r in [*results, served])
    errors = [e for r in [*results, served] for e in r["errors"]][:3]
    samples = sorted(x for r in measured for x in r["samples"])
    if sc.mode == "stream":
        value = served["bytes"] / seconds / MB
    else:
        value = count / seconds
    work = value * seconds  # operations (or MB) inside the window
    return {
        "value": value, "p50": _percentile(samples, 0.50) * 1e3, "p99": _percentile(samples, 0.99) * 1e3,
        "failures": failures, "errors": errors, "cpu": (cpu1 - cpu0) / seconds * 100,
        "gen_cpu": (gen1 - gen0) / seconds * 100,
        # generators' CPU time per operation: the load's own price, on the same cores
        "gen_cpu_us": (gen1 - gen0) / work * 1e6 if work else float("nan"),
        # per gateway worker: operations the service saw on its connection to it, CPU %
        "per_worker_ops": served.get("per_conn", []),
        "per_worker_cpu": [(wcpu1.get(i, 0.0) - wcpu0.get(i, 0.0)) / seconds * 100 for i in sorted(wcpu0)],
        # CPU time the target spent per operation (per MB for streams): robust to
        # other processes taking CPU away, unlike the rate
        "cpu_us": (cpu1 - cpu0) / work * 1e6 if work else float("nan"),
    }


def idle_run(kind: str, s: Settings, workdir: Path, run: int = 0) -> dict[str, Any]:
    """Fresh target; connect ``rss_counts[0]`` then up to ``rss_counts[1]`` edges;
    RSS per edge at both counts and the connect rate of the second batch."""
    target = Target(kind, workdir).start()
    svc = None
    workers: list[Worker] = []
    try:
        svc = Worker(loadgen.service_worker, {"target": kind, "addr": target.service_addr})
        time.sleep(0.5)
        rss0 = target.rss()
        out: dict[str, Any] = {"rss0": rss0}
        for k in range(s.rss_procs):
            workers.append(Worker(loadgen.edge_worker, {"addr": target.edge_addr, "src": _src(10 + s.rss_procs * run + k), "base_id": 1 + k * 1_000_000}))
        have = 0
        for i, total in enumerate(s.rss_counts):
            batch = _split(total - have, len(workers))
            cpu0, gen0 = target.cpu(), sum(w.cpu() for w in workers)
            for w, n in zip(workers, batch):
                w.send("connect", n, s.connect_concurrency)
            done = [w.expect("connected", timeout=300) for w in workers]
            cpu1, gen1 = target.cpu(), sum(w.cpu() for w in workers)
            ok = sum(d["ok"] for d in done)
            failed = sum(d["failed"] for d in done)
            if failed:
                raise RuntimeError(f"{kind}: {failed} of {total - have} edges failed to connect: {done[0]['errors']}; "
                                   f"target {'alive' if target.proc.poll() is None else 'dead'}; its log ends:\n{target.log_tail()}")
            elapsed = max(d["last"] for d in done) - min(d["started"] for d in done)
            have += ok
            time.sleep(s.idle_wait)  # idle
            rss = target.rss()
            out[f"rss_{i}"] = rss
            out[f"per_edge_{i}"] = (rss - rss0) / have / 1024
            out[f"rate_{i}"] = ok / elapsed if elapsed > 0 else float("nan")
            # CPU per connect (the service's online hook / hello answer included)
            out[f"cpu_us_{i}"] = (cpu1 - cpu0) / ok * 1e6 if ok else float("nan")
            out[f"gen_cpu_us_{i}"] = (gen1 - gen0) / ok * 1e6 if ok else float("nan")
            out[f"cpu_{i}"] = (cpu1 - cpu0) / elapsed * 100 if elapsed > 0 else float("nan")
        out["cpu_time"] = target.cpu()
        return out
    finally:
        for w in workers:
            w.finish("close")
        if svc is not None:
            svc.finish("stop")
        target.stop()


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# -- profiling (optional) ---------------------------------------------------------------------------------


class Profiler:
    """``py-spy record`` on the gateway during the measurement window of the scenarios
    named in ``keys``; raw collapsed stacks land in ``outdir``."""

    def __init__(self, keys: set[str], outdir: Path) -> None:
        self.keys = keys
        self.outdir = outdir
        self.proc: subprocess.Popen | None = None
        self.files: list[Path] = []

    def start(self, target: Target, key: str, duration: float) -> None:
        if target.kind != "gateway" or key not in self.keys:
            return
        self.outdir.mkdir(parents=True, exist_ok=True)
        path = self.outdir / f"{key}.collapsed"
        spy = Path(sys.executable).with_name("py-spy")
        self.proc = subprocess.Popen(
            [str(spy), "record", "-p", str(target.pid), "-d", str(max(1, int(duration))), "-r", "200",
             "-f", "raw", "-o", str(path), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.files.append(path)

    def wait(self) -> None:
        if self.proc is not None:
            self.proc.wait(30)
            self.proc = None


# -- aggregation and output ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else None


def _row(name: str, unit: str, gw: list[float], relay: list[float], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    g, r = _median(gw), _median(relay)
    row = {
        "name": name, "unit": unit,
        "gateway": _round(g), "relay": _round(r),
        "ratio": _round(g / r, 3) if g is not None and r else None,
        "runs": len(gw),
        "spread": {"gateway": [_round(min(gw)), _round(max(gw))] if gw else None,
                   "relay": [_round(min(relay)), _round(max(relay))] if relay else None},
    }
    if extra:
        row.update(extra)
    return row


def _round(v: float | None, digits: int | None = None) -> float | None:
    if v is None:
        return None
    if digits is not None:
        return round(v, digits)
    if abs(v) >= 100:
        return round(v, 0)
    if abs(v) >= 1:
        return round(v, 2)
    return round(v, 4)


def check_targets(rows: list[dict[str, Any]], s: Settings) -> list[dict[str, Any]]:
    """Which of issue 6's targets this run met."""
    by_name = {r["name"]: r for r in rows}
    out = []
    for name, kind, bound in TARGETS:
        name = name.replace("200 edges", f"{s.edges} edges").replace("@19000", f"@{s.rss_counts[1]}")
        row = by_name.get(name)
        if row is None:
            continue
        field_, op = kind[:-2], kind[-2:]
        value = row[field_]
        met = value is not None and (value >= bound if op == ">=" else value <= bound)
        entry = {"row": name, "what": f"{field_} {op} {bound}", "value": value, "met": met}
        if field_ == "ratio" and not row.get("baseline"):
            cpu = row.get("cpu_ratio")
            entry["cpu_ratio"] = cpu
            entry["met_per_cpu"] = cpu is not None and cpu >= bound
        out.append(entry)
    return out


def format_table(doc: dict[str, Any]) -> str:
    """The table printed at the end (and pasted into the README)."""
    head = ("figure", "unit", "gateway", "relay", "gw/relay", "runs", "spread gateway", "spread relay",
            "CPU us/op gw : relay", "per-CPU ratio", "generators' CPU us/op")
    lines = [head]
    for r in doc["rows"]:
        sg, sr = r["spread"]["gateway"], r["spread"]["relay"]
        cost = r.get("cpu_us_per_op")
        lines.append((
            r["name"], r["unit"], _fmt(r["gateway"]), _fmt(r["relay"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.2f}", str(r["runs"]),
            f"{_fmt(sg[0])}..{_fmt(sg[1])}" if sg else "-",
            f"{_fmt(sr[0])}..{_fmt(sr[1])}" if sr else "-",
            f"{_fmt(cost['gateway'])} : {_fmt(cost['relay'])}" + (" per MB" if cost["unit"] == "us/MB" else "") if cost else "",
            f"{r['cpu_ratio']:.2f}" if r.get("cpu_ratio") else "",
            f"{_fmt(r['gen_cpu_us_per_op']['gateway'])} : {_fmt(r['gen_cpu_us_per_op']['relay'])}"
            if r.get("gen_cpu_us_per_op") and cost and cost["unit"] == "us/op" else "",
        ))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for j, line in enumerate(lines):
        cells = [str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        out.append("| " + " | ".join(cells) + " |")
        if j == 0:
            out.append("|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|")
    baselines = {r.get("baseline") for r in doc["rows"]}
    if "1 worker" in baselines:
        out.append("")
        out.append("Rows '2 workers: ...': the gateway column is `serve --workers 2`, the relay column one gateway "
                   "process (`serve`), same load; CPU sums over the workers; 'least-loaded worker': its share "
                   "of the operations (median), its share of the CPU in the JSON.")
    if "plain Service on the edge's worker" in baselines:
        out.append("Rows 'crossing: ...' (SDK, serve --workers 2, Frontlas): the gateway column is a ClusterService "
                   "(one connection per worker), the relay column a plain Service connected to the edge's worker.")
    return "\n".join(out)


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"


def write_chart(doc: dict[str, Any], path: Path) -> bool:
    """A PNG bar chart of gateway/relay per figure; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart written", file=sys.stderr)
        return False
    rows = [r for r in doc["rows"] if r["ratio"] is not None]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.6))
    names = [f"{r['name']} ({r['unit']})" + (f" vs {r['baseline']}" if r.get("baseline") else "") for r in rows][::-1]
    ratios = [r["ratio"] for r in rows][::-1]
    lower_better = [r["unit"] in ("ms", "KB/edge") for r in rows][::-1]
    colors = ["#c77c3b" if lb else "#3b7cc7" for lb in lower_better]
    bars = ax.barh(names, ratios, color=colors)
    for bar, r in zip(bars, rows[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f"  {_fmt(r['gateway'])} vs {_fmt(r['relay'])}", va="center", fontsize=8)
    for bar, r in zip(bars, rows[::-1]):  # the per-CPU ratio beside the measured one
        if r.get("cpu_ratio"):
            ax.plot([r["cpu_ratio"]], [bar.get_y() + bar.get_height() / 2], marker="D", color="black", markersize=4)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.axvline(0.6, color="red", linewidth=0.8, linestyle="--")
    ax.set_xlabel("gateway / relay (or / the baseline named)\nblue: higher is better, orange: lower is better; "
                  "red: 0.6 target; diamond: per CPU-second", fontsize=8)
    ax.set_xlim(0, max(ratios + [1.0]) * 1.45)
    ax.set_title(f"frontier-gevent vs bare gevent relay\n{doc['date'][:10]}, {doc['cpus']} CPUs, "
                 f"median of {doc['runs']} runs ({doc['mode']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- main ---------------------------------------------------------------------------------------------------


def _throughput_rows(sc: Scenario, per: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The table rows of one throughput scenario (its value, then p50/p99 and, for
    workers, how the load split)."""
    gw, rl = per["gateway"], per["relay"]
    cost_g, cost_r = _median([r["cpu_us"] for r in gw]), _median([r["cpu_us"] for r in rl])
    extra = {"cpu": {"gateway": _round(_median([r["cpu"] for r in gw])), "relay": _round(_median([r["cpu"] for r in rl]))},
             "cpu_us_per_op": {"unit": "us/MB" if sc.unit == "MB/s" else "us/op",
                               "gateway": _round(cost_g), "relay": _round(cost_r)},
             # the gateway's throughput per CPU-second over the relay's: what
             # the ratio would be with both saturating a core
             "cpu_ratio": _round(cost_r / cost_g, 3) if cost_g and cost_r else None,
             # the load generators' own CPU (they share the machine's cores)
             "gen_cpu_us_per_op": {"gateway": _round(_median([r["gen_cpu_us"] for r in gw])),
                                   "relay": _round(_median([r["gen_cpu_us"] for r in rl]))},
             "failures": {"gateway": sum(r["failures"] for r in gw), "relay": sum(r["failures"] for r in rl)}}
    if sc.baseline:
        extra["baseline"] = sc.baseline
    rows = [_row(sc.label, sc.unit, [r["value"] for r in gw], [r["value"] for r in rl], extra)]
    if sc.latency:
        for q in ("p50", "p99"):
            rows.append(_row(f"{sc.label} {q}", "ms", [r[q] for r in gw], [r[q] for r in rl],
                             {"baseline": sc.baseline} if sc.baseline else None))
    if sc.baseline:  # both workers carry load: the smaller worker's share of operations and of CPU
        ops = [r["per_worker_ops"] for r in gw if sum(r["per_worker_ops"])]
        cpus = [r["per_worker_cpu"] for r in gw if sum(r["per_worker_cpu"])]
        rows.append(_row(f"{sc.label} least-loaded worker", "% of ops",
                         [100 * min(o) / sum(o) for o in ops], [], {
                             "cpu_share": _round(_median([100 * min(c) / sum(c) for c in cpus])),
                             "per_worker_ops": ops, "per_worker_cpu": [[_round(x) for x in c] for c in cpus]}))
    return rows


def projection(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What N workers give on N free cores, from the per-CPU figures of the workers
    row: each worker saturates its core at 1e6 / (gateway CPU us per call) calls/s, if
    the cost per call stays what 2 workers paid here and the load comes from elsewhere."""
    row = next((r for r in rows if r["name"].startswith("2 workers: rpc e2s") and r.get("cpu_us_per_op")), None)
    if row is None or not row["cpu_us_per_op"]["gateway"]:
        return None
    us2, us1 = row["cpu_us_per_op"]["gateway"], row["cpu_us_per_op"]["relay"]
    gen = row["gen_cpu_us_per_op"]["gateway"]
    return {
        "row": row["name"], "gateway_us_per_call_1w": us1, "gateway_us_per_call_2w": us2, "generator_us_per_call": gen,
        "calls_per_s_on_free_cores": {n: _round(n * 1e6 / us2) for n in (1, 2, 4, 8, 16)},
        # this machine: gateway and generators share 2 cores
        "calls_per_s_here_bound": _round(2 * 1e6 / (us2 + gen)) if gen else None,
    }


def run(s: Settings, only: set[str] | None, workdir: Path, profiler: Profiler | None, log: Callable[[str], None],
        scale: tuple[int, int] | None = None) -> dict[str, Any]:
    """Run every scenario (and with ``scale`` = (edges, workers) the scale one) and
    return the results document."""
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    chosen = [sc for sc in scenarios(s) if not only or sc.key in only]
    if chosen:
        targets: dict[str, Target] = {}
        try:
            for sc in chosen:
                # column "gateway" is sc.pair[0], column "relay" sc.pair[1] (the baseline)
                for name in sc.pair:
                    if name not in targets:
                        workers = int(name.split("-")[1][:-1]) if "-" in name else 1
                        targets[name] = Target(name.split("-")[0], workdir, workers=workers, name=name).start()
                per: dict[str, list[dict[str, Any]]] = {"gateway": [], "relay": []}
                runs = (s.workers_runs or s.runs) if sc.baseline else s.runs
                for i in range(runs):
                    order = ("gateway", "relay") if i % 2 == 0 else ("relay", "gateway")
                    for column in order:
                        name = sc.pair[0] if column == "gateway" else sc.pair[1]
                        res = throughput_run(targets[name], sc, s, profiler)
                        per[column].append(res)
                        split = res["per_worker_ops"]
                        log(f"  {sc.label:24s} run {i + 1}/{runs} {name:10s} {_fmt(res['value']):>9s} {sc.unit}"
                            + (f"  p50 {res['p50']:.3f} ms  p99 {res['p99']:.3f} ms" if sc.latency else "")
                            + f"  cpu {res['cpu']:.0f}% ({res['cpu_us']:.1f} us/{'MB' if sc.unit == 'MB/s' else 'op'})"
                            + f"  generators {res['gen_cpu']:.0f}% ({res['gen_cpu_us']:.1f} us/op)"
                            + (f"  per worker: ops {split}, cpu {' / '.join(f'{c:.0f}%' for c in res['per_worker_cpu'])}"
                               if len(split) > 1 else "")
                            + (f"  FAILURES {res['failures']}: {res['errors']}" if res["failures"] else ""))
                        time.sleep(0.05)
                rows.extend(_throughput_rows(sc, per))
                details[sc.key] = per
        finally:
            for t in targets.values():
                t.stop()
    if not only or "ingress" in only:
        from loadtests import ingress_bench

        # the ingress rows compare the gateway's HTTP ingress (gateway column) with the
        # same web app reached directly (relay column)
        rows.extend(ingress_bench.rows(s, log, _row))
    if not only or "sdk" in only:  # SDK client CPU per call against a bare gevent floor (sdk_bench.py)
        from loadtests import sdk_bench

        rows.extend(sdk_bench.sdk_rows(s.mode != "full", log))
    if not only or "idle" in only:
        per = {"gateway": [], "relay": []}
        for i in range(s.rss_runs):
            for kind in (("gateway", "relay") if i % 2 == 0 else ("relay", "gateway")):
                res = idle_run(kind, s, workdir, 2 * i + (kind == "relay"))
                per[kind].append(res)
                log(f"  {'connect + idle':24s} run {i + 1}/{s.rss_runs} {kind:7s} "
                    f"{_fmt(res['rate_1'])} connects/s; idle RSS/edge {res['per_edge_0']:.2f} KB @{s.rss_counts[0]}, "
                    f"{res['per_edge_1']:.2f} KB @{s.rss_counts[1]} (RSS {res['rss0'] / MB:.0f} -> {res['rss_1'] / MB:.0f} MB)")
        gw, rl = per["gateway"], per["relay"]
        cost_g, cost_r = _median([r["cpu_us_1"] for r in gw]), _median([r["cpu_us_1"] for r in rl])
        rows.append(_row("connect", "connects/s", [r["rate_1"] for r in gw], [r["rate_1"] for r in rl], {
            "cpu": {"gateway": _round(_median([r["cpu_1"] for r in gw])), "relay": _round(_median([r["cpu_1"] for r in rl]))},
            "cpu_us_per_op": {"unit": "us/op", "gateway": _round(cost_g), "relay": _round(cost_r)},
            "cpu_ratio": _round(cost_r / cost_g, 3) if cost_g and cost_r else None,
            "gen_cpu_us_per_op": {"gateway": _round(_median([r["gen_cpu_us_1"] for r in gw])),
                                  "relay": _round(_median([r["gen_cpu_us_1"] for r in rl]))},
        }))
        for i, n in enumerate(s.rss_counts):
            rows.append(_row(f"idle rss/edge @{n}", "KB/edge", [r[f"per_edge_{i}"] for r in gw], [r[f"per_edge_{i}"] for r in rl]))
        details["idle"] = per
    if (not only and s.crossing) or (only and "crossing" in only):
        from loadtests import crossing

        rows.extend(crossing.rows(s, workdir, log, _row))
    if scale and (not only or "scale" in only):
        from loadtests import scale as scale_bench

        result = scale_bench.scale_run(scale[0], scale[1], workdir, log)
        rows.extend(scale_bench.rows(result, _row))
        details["scale"] = result
    return {"rows": rows, "details": details}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller counts, well under a minute")
    size.add_argument("--tiny", action="store_true", help="a few seconds (test suite)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for latest.json and latest.png")
    parser.add_argument("--only", help="comma-separated scenario keys: " + ",".join(
        [sc.key for sc in scenarios(MODES["full"])] + ["ingress", "idle", "sdk", "crossing", "scale"]))
    parser.add_argument("--runs", type=int, help="override runs per figure")
    parser.add_argument("--duration", type=float, help="override seconds per measurement window")
    parser.add_argument("--profile", metavar="KEYS", help="py-spy the gateway during these scenarios (comma-separated)")
    parser.add_argument("--scale", type=int, metavar="N", help="also hold N idle edges on serve --workers "
                        "(--scale-workers), kill a worker and wait for its edges (loadtests/scale.py); "
                        "with --only scale, nothing else, written to scale.json")
    parser.add_argument("--scale-workers", type=int, default=6, metavar="W", help="workers for --scale (default 6)")
    args = parser.parse_args(argv)

    s = MODES["quick" if args.quick else "tiny" if args.tiny else "full"]
    if args.runs:
        s.runs = s.rss_runs = s.workers_runs = args.runs
    if args.duration:
        s.duration = args.duration
    only = set(args.only.split(",")) if args.only else None
    args.out.mkdir(parents=True, exist_ok=True)
    profiler = Profiler(set(args.profile.split(",")), args.out / "profile") if args.profile else None

    def log(line: str) -> None:
        print(line, flush=True)

    loadavg = os.getloadavg()
    if only == {"scale"}:
        log(f"frontier-gevent bench, scale: {args.scale:,} edges on serve --workers {args.scale_workers}; "
            f"{os.cpu_count()} CPUs, load average {loadavg[0]:.2f} before start")
    else:
        log(f"frontier-gevent bench ({s.mode}): {os.cpu_count()} CPUs, load average {loadavg[0]:.2f} before start; "
            f"median of {s.runs} runs per throughput figure, {s.rss_runs} per idle figure; "
            f"{s.duration}s windows after {s.warmup}s warm-up")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="frontier-bench-") as tmp:
        result = run(s, only, Path(tmp), profiler, log, (args.scale, args.scale_workers) if args.scale else None)
    doc = {
        "date": dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "mode": s.mode,
        "runs": s.runs,
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "load_average_before": round(loadavg[0], 2),
        "seconds": round(time.monotonic() - started, 1),
        "rows": result["rows"],
        "targets": check_targets(result["rows"], s),
        "details": {"scale": result["details"]["scale"]} if "scale" in result["details"] else {},
        "projection": projection(result["rows"]),
        "settings": {k: v for k, v in vars(s).items()},
    }
    log("")
    log(format_table(doc))
    log("")
    for t in doc["targets"]:
        line = f"target {'MET   ' if t['met'] else 'MISSED'} {t['row']}: {t['what']} (got {t['value']})"
        if "cpu_ratio" in t:
            line += f"; per CPU-second: {t['cpu_ratio']} ({'met' if t['met_per_cpu'] else 'missed'})"
        log(line)
    if doc["projection"]:
        pj = doc["projection"]
        log(f"every core, on paper: 2 workers paid {pj['gateway_us_per_call_2w']} us of gateway CPU per call "
            f"(1 worker {pj['gateway_us_per_call_1w']}), the generators {pj['generator_us_per_call']} us; N workers on N "
            "free cores (load from elsewhere): " + ", ".join(f"{n} -> {_fmt(v)}" for n, v in pj["calls_per_s_on_free_cores"].items())
            + f" calls/s; here (gateway and generators on 2 cores) at most {_fmt(pj['calls_per_s_here_bound'])} calls/s")
    log(f"(figures are medians over 'runs' runs; spread = min..max; per-CPU ratio = relay's CPU us/op over the "
        f"gateway's; load average now {os.getloadavg()[0]:.2f}; {doc['seconds']}s in all)")
    base = "scale" if only == {"scale"} else "latest"
    (args.out / f"{base}.json").write_text(json.dumps(doc, indent=1) + "\n")
    if profiler is not None and profiler.files:
        from loadtests import profile

        for path in profiler.files:
            if path.exists():
                log(f"\nprofile {path.name}:\n" + profile.summary(path))
    if any(r["ratio"] is not None for r in doc["rows"]) and write_chart(doc, args.out / f"{base}.png"):
        log(f"wrote {args.out / f'{base}.json'} and {args.out / f'{base}.png'}")
    else:
        log(f"wrote {args.out / f'{base}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
