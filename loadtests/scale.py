"""``make bench SCALE=N``: N concurrent idle edges on ``serve --workers W``.

Starts ``frontier-gevent serve --workers W`` (W = 6 by default: a process may hold
20,000 open files here, and each worker caps its edges at ``limits.max_edge_connections``
so that it resets what it cannot hold instead of running out of descriptors), a raw
service process connected to every worker's service port (answering every edge's
online hook; it reconnects to a restarted worker), and several **holder** processes
(:func:`hold_worker`: raw epoll loops, not the SDK), each bound to its own 127.0.0.x
source address (ephemeral ports 32768-60999 per source address), holding up to
12,500 edges each. Then:

1. connects N edges, 64 handshakes in flight per holder: the connect rate and the
   gateway CPU per connect (summed over the workers);
2. idle: RSS of all workers (after - before) / N, and the edges count read from every
   worker's control plane (``GET /v1/edges?page_size=1``, ``count``), summed;
3. SIGKILLs the worker holding most edges: the supervisor restarts it; the holders
   see their connections end and reconnect them (same edge ids, after a random delay
   of up to ``jitter`` seconds, then backing off) to whichever worker the kernel hands
   them; the time until every edge is connected again, the time until the worker is
   back, and the control-plane count again.

Holders answer pings (the bench sets ``heartbeat_interval`` to an hour so that idle
edges cost nothing, as in the idle rows of ``make bench``).
"""

from __future__ import annotations

import errno
import json
import math
import os
import random
import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from frontier.wire.codec import encode_frame
from frontier.wire.events import PROTOCOL_VERSION, Hello, Pong

from loadtests import loadgen
from loadtests.loadgen import _READ, _WRITE, Conn, Loop, T_PING, T_WELCOME, _frames, _unpackb

#: edges one holder process keeps (its descriptors stay below the 20,000 limit)
PER_HOLDER = 12_500
#: most edges a worker takes; past it the worker resets at accept (descriptors: 20,000)
MAX_EDGES_PER_WORKER = 19_000
#: most seconds the bench waits for a killed worker's edges to be back
KILL_WAIT = 120.0


# -- the holder process ----------------------------------------------------------------------


class Holder:
    """Edges of one source address that stay connected: every edge that loses its
    connection is connected again (same id) after a random delay, with backoff."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.addr = loadgen._addr(spec["addr"])
        self.src = spec["src"]
        self.base_id = spec["base_id"]
        self.concurrency = spec.get("concurrency", 64)
        self.jitter = spec.get("jitter", 0.5)
        self.hello_rpcs = (loadgen.S2E_METHOD,)
        self.meta = b"scale-edge"
        self.loop = Loop()
        self.due: list[tuple[float, int, int]] = []  # (when, edge id, failures) to (re)connect
        self.next_id = self.base_id
        self.inflight = 0
        self.ready = 0
        self.started = self.last_ready = 0.0
        self.lost = self.back = self.attempts = self.failed = 0
        self.last_back = 0.0
        self.errors: list[str] = []
        self.handshake_timeout = spec.get("handshake_timeout", 10.0)
        self.swept = 0.0

    def add(self, n: int) -> None:
        now = time.monotonic()
        self.started = self.started or now
        self.due.extend((now, self.next_id + i, 0) for i in range(n))
        self.next_id += n

    def status(self) -> dict[str, Any]:
        return {"ready": self.ready, "inflight": self.inflight, "waiting": len(self.due), "started": self.started,
                "last_ready": self.last_ready, "lost": self.lost, "back": self.back, "last_back": self.last_back,
                "attempts": self.attempts, "failed": self.failed, "errors": self.errors[:5]}

    def mark(self) -> None:
        """Start counting losses and returns afresh (before a worker is killed)."""
        self.lost = self.back = 0
        self.last_back = 0.0

    def _open(self, edge_id: int, failures: int) -> None:
        self.attempts += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if failures:
                # a retry after a reset picks its own source port: the kernel would hand
                # back the port just freed, and SO_REUSEPORT (a hash of the 4-tuple) the
                # same full worker that reset it
                self._bind_random_port(sock)
            else:
                sock.setsockopt(socket.IPPROTO_IP, loadgen._IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((self.src, 0))
            err = sock.connect_ex(self.addr)
        except OSError as exc:
            err = exc.errno or errno.EIO
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self._retry(edge_id, failures, f"connect: {os.strerror(err)}")
            return
        conn = Conn(sock)
        conn.id = edge_id
        conn.ops = failures  # failures so far of this edge's attempts
        conn.since = time.monotonic()
        self.loop.add(conn, _WRITE)
        self.inflight += 1

    def _bind_random_port(self, sock: socket.socket) -> None:
        for _ in range(50):
            try:
                sock.bind((self.src, random.randint(32768, 60999)))
                return
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        sock.bind((self.src, 0))

    def _retry(self, edge_id: int, failures: int, why: str) -> None:
        self.failed += 1
        if len(self.errors) < 20:
            self.errors.append(why)
        delay = min(5.0, 0.1 * 2 ** min(failures, 6)) * random.uniform(0.5, 1.0)
        self.due.append((time.monotonic() + delay, edge_id, failures + 1))

    def _lost(self, conn: Conn, why: str) -> None:
        self.loop.drop(conn)
        if conn.ready:
            self.ready -= 1
            self.lost += 1
            # as the SDK does: a random delay, then connect again with the same id
            self.due.append((time.monotonic() + random.uniform(0, self.jitter), conn.id, 0))
        else:
            self.inflight -= 1
            self._retry(conn.id, conn.ops, why)

    def sweep(self, now: float) -> None:
        """Give up on handshakes older than ``handshake_timeout`` (as a client's
        connect timeout does) and retry them."""
        late = [key.data for key in self.loop.sel.get_map().values()
                if key.data is not None and not key.data.ready and now - key.data.since > self.handshake_timeout]
        for conn in late:
            self._lost(conn, f"no welcome within {self.handshake_timeout}s")

    def turn(self, timeout: float) -> None:
        """One loop turn: start due connects, handle what the sockets say."""
        now = time.monotonic()
        if now - self.swept >= 1.0 and self.inflight:
            self.swept = now
            self.sweep(now)
        if self.due and self.inflight < self.concurrency:
            self.due.sort(reverse=True)
            while self.due and self.inflight < self.concurrency and self.due[-1][0] <= now:
                _, edge_id, failures = self.due.pop()
                self._open(edge_id, failures)
        if self.due:
            timeout = max(0.0, min(timeout, min(d[0] for d in self.due) - now))
        for key, mask in self.loop.sel.select(timeout):
            conn = key.data
            if conn is None:
                continue
            if not conn.ready and conn.writing and not conn.wbuf and mask & _WRITE:
                err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._lost(conn, f"connect: {os.strerror(err)}")
                    continue
                hello = Hello(PROTOCOL_VERSION, "edge", "", (), self.hello_rpcs, (), self.meta, conn.id)
                conn.wbuf += encode_frame(hello)
                self.loop._flush(conn)
                continue
            if mask & _WRITE:
                self.loop._flush(conn)
            if not mask & _READ:
                continue
            try:
                data = conn.sock.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError as exc:
                data = b""
                conn.error = str(exc)
            if not data:
                self._lost(conn, f"closed {'after' if conn.ready else 'during'} the handshake {conn.error}".strip())
                continue
            for body in _frames(conn, data):
                obj = _unpackb(body)
                if obj[0] == T_WELCOME and not conn.ready:
                    conn.ready = True
                    self.inflight -= 1
                    self.ready += 1
                    self.last_ready = time.monotonic()
                    if self.lost:  # since the mark: a reconnect
                        self.back += 1
                        self.last_back = self.last_ready
                elif obj[0] == T_PING:
                    self.loop.write(conn, encode_frame(Pong(obj[1])))
                elif not conn.ready:
                    self._lost(conn, f"refused: {obj}")
                    break
        self.loop.flush()

    def close(self) -> None:
        for key in list(self.loop.sel.get_map().values()):
            if key.data is not None:
                key.data.sock.close()


def hold_worker(ctrl: Any, spec: dict[str, Any]) -> None:
    """A holder process steered by ``ctrl``: ``("add", n)``, ``("status",)`` ->
    ``("status", {...})``, ``("mark",)`` (count losses from now), ``("close",)``."""
    loadgen.raise_nofile()
    holder = Holder(spec)
    holder.loop.sel.register(ctrl.fileno(), _READ, None)
    ctrl.send(("ready", {"pid": os.getpid()}))
    try:
        while True:
            holder.turn(0.05)
            while ctrl.poll():
                cmd = ctrl.recv()
                if cmd[0] == "add":
                    holder.add(cmd[1])
                elif cmd[0] == "status":
                    ctrl.send(("status", holder.status()))
                elif cmd[0] == "mark":
                    holder.mark()
                elif cmd[0] == "close":
                    holder.close()
                    return
    except (EOFError, KeyboardInterrupt):
        holder.close()


# -- the scenario ----------------------------------------------------------------------------------


def control_plane_count(addrs: list[str], timeout: float = 5.0) -> tuple[int, list[int | None]]:
    """Edges online by every worker's control plane (``GET /v1/edges``' ``count``), summed;
    and each worker's (``None`` where it did not answer)."""
    each: list[int | None] = []
    for addr in addrs:
        try:
            with urllib.request.urlopen(f"http://{addr}/v1/edges?page_size=1", timeout=timeout) as resp:
                each.append(int(json.load(resp)["count"]))
        except (OSError, ValueError, KeyError):
            each.append(None)
    return sum(c or 0 for c in each), each


def _statuses(holders: list[Any]) -> list[dict[str, Any]]:
    for h in holders:
        h.send("status")
    return [h.expect("status", timeout=30) for h in holders]


def _wait(what: str, cond: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"scale: {what} not within {timeout:.0f}s")
        time.sleep(every)


def scale_run(n: int, workers: int, workdir: Path, log: Callable[[str], None], jitter: float = 0.5) -> dict[str, Any]:
    """Hold ``n`` edges on ``serve --workers workers``, kill one worker, wait for its
    edges; returns the figures (see the module docstring)."""
    from loadtests.bench import Target, Worker, _split

    procs = max(2, math.ceil(n / PER_HOLDER))
    target = Target("gateway", workdir, workers=workers, controlplane=True, name=f"gateway-{workers}w-scale",
                    extra={"limits": {"max_edge_connections": MAX_EDGES_PER_WORKER}}).start()
    svc = None
    holders: list[Worker] = []
    out: dict[str, Any] = {"edges": n, "workers": workers, "holders": procs}
    try:
        svc = Worker(loadgen.service_worker, {"target": "gateway", "addrs": target.service_addrs, "reconnect": True})
        time.sleep(0.5)
        rss0, cpu0 = target.rss(), target.cpu()
        for k, count in enumerate(_split(n, procs)):
            holders.append(Worker(hold_worker, {"addr": target.edge_addr, "src": f"127.0.3.{10 + k}",
                                                "base_id": 1 + k * 1_000_000, "jitter": jitter}))
        for h, count in zip(holders, _split(n, procs)):
            h.send("add", count)
        # -- connect --------------------------------------------------------------------------
        t0 = time.monotonic()
        st = _wait(f"{n} edges connected", lambda: (lambda s: s if sum(x["ready"] for x in s) >= n else None)(_statuses(holders)),
                   timeout=max(60.0, n / 500), every=0.25)
        connect_s = max(x["last_ready"] for x in st) - min(x["started"] for x in st)
        cpu1 = target.cpu()
        out["connect_seconds"] = connect_s
        out["connects_per_s"] = n / connect_s
        out["connect_failures"] = sum(x["failed"] for x in st)
        out["connect_errors"] = sorted({e for x in st for e in x["errors"]})[:5]
        out["gateway_cpu_us_per_connect"] = (cpu1 - cpu0) / n * 1e6
        log(f"  scale: {n:,} edges connected in {connect_s:.1f}s ({out['connects_per_s']:,.0f}/s, "
            f"{out['gateway_cpu_us_per_connect']:.0f} us gateway CPU each, {out['connect_failures']} failed attempts "
            f"retried{': ' + '; '.join(out['connect_errors']) if out['connect_errors'] else ''}); {time.monotonic() - t0:.1f}s with polling")
        # -- idle --------------------------------------------------------------------------------
        time.sleep(2.0)
        rss1 = target.rss()
        out["rss_before_mb"], out["rss_mb"] = rss0 / 1e6, rss1 / 1e6
        out["rss_kb_per_edge"] = (rss1 - rss0) / n / 1024
        t1 = time.monotonic()
        total, each = _wait(f"control-plane count {n}", lambda: (lambda c: c if c[0] == n else None)(
            control_plane_count(target.controlplane_addrs)), timeout=60)
        out["control_plane_count"], out["per_worker_edges"] = total, each
        log(f"  scale: idle RSS {rss0 / 1e6:.0f} -> {rss1 / 1e6:.0f} MB over {workers} workers: "
            f"{out['rss_kb_per_edge']:.2f} KB/edge; control planes count {total:,} ({each}) after {time.monotonic() - t1:.1f}s")
        # -- kill a worker ------------------------------------------------------------------------
        victim = max(range(workers), key=lambda i: each[i] or 0)
        old_pid = target.worker_pids()[victim]
        for h in holders:
            h.send("mark")
        _statuses(holders)  # the marks are in
        wcpu2 = target.worker_cpu()
        t_kill = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)
        restarted: list[float] = []
        shown = [t_kill]
        most_back: list[float] = []  # when 99% of the lost edges were back

        def back() -> Any:
            if not restarted:
                pid = target.worker_pids().get(victim)
                if pid is not None and pid != old_pid and control_plane_count([target.controlplane_addrs[victim]], 1.0)[1][0] is not None:
                    restarted.append(time.monotonic())
            s = _statuses(holders)
            lost = sum(x["lost"] for x in s)
            if lost and not most_back and sum(x["back"] for x in s) >= 0.99 * lost:
                most_back.append(max(x["last_back"] for x in s))
            if time.monotonic() - shown[0] >= 5:
                shown[0] = time.monotonic()
                log(f"  scale: {shown[0] - t_kill:.0f}s after the kill: {sum(x['ready'] for x in s):,} connected, "
                    f"{lost:,} lost, {sum(x['back'] for x in s):,} back, {sum(x['inflight'] for x in s)} connecting, "
                    f"{sum(x['waiting'] for x in s)} waiting; worker {'restarted' if restarted else 'not back yet'}; "
                    f"control planes {control_plane_count(target.controlplane_addrs, 1.0)[1]}; "
                    f"errors {sorted({e for x in s for e in x['errors']})[:3]}")
            return s if restarted and lost and sum(x["ready"] for x in s) >= n else None

        try:
            st = _wait("the killed worker's edges back", back, timeout=KILL_WAIT, every=0.1)
            out["all_back"] = True
        except RuntimeError:  # bounded: report how far it got
            st = _statuses(holders)
            out["all_back"] = False
        lost = sum(x["lost"] for x in st)
        out["missing"] = n - sum(x["ready"] for x in st)
        out["back_99_seconds"] = most_back[0] - t_kill if most_back else None
        out["killed_worker"], out["killed_edges"] = victim, each[victim]
        out["lost"] = lost
        out["back_seconds"] = max(x["last_back"] for x in st) - t_kill if out["all_back"] else None
        out["restart_seconds"] = restarted[0] - t_kill if restarted else None
        out["reconnect_failures"] = sum(x["failed"] for x in st) - out["connect_failures"]
        # the surviving workers' CPU (the restarted one's includes its start-up)
        wcpu3 = target.worker_cpu()
        spent = sum(wcpu3[i] - wcpu2[i] for i in wcpu2 if i != victim and i in wcpu3)
        out["gateway_cpu_us_per_reconnect"] = spent / lost * 1e6 if lost else None
        if out["all_back"]:
            total, each = _wait(f"control-plane count {n} after the kill", lambda: (lambda c: c if c[0] == n else None)(
                control_plane_count(target.controlplane_addrs)), timeout=60)
        else:  # the holders still reconnect: one reading, beside theirs
            total, each = control_plane_count(target.controlplane_addrs)
            out["missing"] = n - sum(x["ready"] for x in _statuses(holders))
        out["control_plane_count_after"], out["per_worker_edges_after"] = total, each
        log(f"  scale: SIGKILL worker {victim} ({lost:,} edges): it was restarted after {_s(out['restart_seconds'])}, "
            f"99% of its edges back after {_s(out['back_99_seconds'])}, "
            + (f"all after {_s(out['back_seconds'])}" if out["all_back"] else f"{out['missing']:,} still away after {KILL_WAIT:.0f}s")
            + f" ({out['reconnect_failures']:,} attempts reset or failed and retried); control planes count {total:,} ({each})")
        return out
    finally:
        for h in holders:
            h.finish("close")
        if svc is not None:
            svc.finish("stop")
        target.stop()


def rows(result: dict[str, Any], row: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """The table rows of a scale run (no relay counterpart: the relay column stays empty)."""
    n, w = result["edges"], result["workers"]
    p = f"scale {n:,} edges, {w} workers:"
    return [
        row(f"{p} connect", "connects/s", [result["connects_per_s"]], [],
            {"cpu_us_per_op": {"unit": "us/op", "gateway": _r(result["gateway_cpu_us_per_connect"]), "relay": None}}),
        row(f"{p} idle rss/edge", "KB/edge", [result["rss_kb_per_edge"]], []),
        row(f"{p} control-plane count", "edges", [result["control_plane_count"]], []),
        row(f"{p} worker killed, restarted", "s", [result["restart_seconds"]] if result["restart_seconds"] else [], []),
        row(f"{p} worker killed, 99% of its edges back", "s", [result["back_99_seconds"]] if result["back_99_seconds"] else [], []),
        row(f"{p} worker killed, all edges back", "s", [result["back_seconds"]] if result["all_back"] else [], [],
            {"lost": result["lost"], "missing": result["missing"],
             "cpu_us_per_op": {"unit": "us/op", "gateway": _r(result["gateway_cpu_us_per_reconnect"]), "relay": None}}),
        row(f"{p} control-plane count after", "edges", [result["control_plane_count_after"]], []),
    ]


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}s"


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)
