"""The SDK's client CPU per call against the floor: a bare gevent loop over raw sockets.

Both sides run in ONE client process, in the same run, interleaved round by round
(floor, SDK, floor, SDK ...): edges calling the ``echo`` method of a raw service
(``loadgen.service_worker``, its own process) through a real gateway
(``frontier-gevent serve``, a subprocess). Per round every edge keeps one call in
flight; the figure is the client process's CPU time (user + system, from
``getrusage``) per completed call, which other processes taking CPU away do not move.

* **floor**: one greenlet per edge on a plain socket: ``sendall`` of a ``Request``
  frame (the handshake is built with :mod:`frontier.wire`'s codec; calls are packed
  with one reused ``msgpack.Packer``, the same bytes), then ``recv`` until the whole
  ``Response`` frame is in, ``msgpack.unpackb`` and a check of its type and id. No
  reader greenlet, no pending table, no deadline, no schema check: the least a gevent
  program must do to make the same call.
* **sdk**: the same number of :class:`frontier.sdk.Edge` s, one caller greenlet each
  running ``edge.call("echo", payload)``.
* **sdk async** (``call_async``): the same edges, each greenlet issuing the call with
  ``call_async(...)`` and waiting on the future's ``result()``.

The client runs gevent-monkey-patched (as under Locust or a gevent worker), and, for
the ``threads`` rows, unpatched with OS threads. ``python -m loadtests.sdk_bench``
prints the rows; :func:`sdk_rows` gives them to ``loadtests/bench.py`` (``--only sdk``).
Other modes (see loadtests/README.md)::

    python -m loadtests.sdk_bench --baseline DIR       # before/after against the SDK under DIR/frontier
    python -m loadtests.sdk_bench --memory --edges 2000 [--baseline DIR]   # bytes per idle Edge
    python -m loadtests.sdk_bench --locust 10000       # one Locust process of 10,000 edges, flat out
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent

PAYLOAD = 64
#: (label, mode, edges): the rows
CASES = [("1 edge", "gevent", 1), ("100 edges", "gevent", 100), ("threads 1 edge", "threads", 1), ("threads 16 edges", "threads", 16)]


def sdk_rows(quick: bool, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Start a gateway and a raw service, run the client processes, return bench rows:
    ``gateway`` column = SDK client us/call, ``relay`` column = the floor's, ``ratio``
    = SDK/floor (lower is better; target <= 1.3)."""
    from loadtests import bench

    rounds, seconds = (2, 0.4) if quick else (7, 1.5)
    cases = CASES[:2] if quick else CASES  # quick: gevent only
    rows: list[dict[str, Any]] = []
    with _gateway_and_service() as edge_addr:
        for label, mode, edges in cases:
            res = run_child(edge_addr, mode, edges, rounds, seconds)
            for kind in ("sdk", "async"):
                if not res.get(kind):
                    continue  # an SDK without call_async (a baseline run)
                sdk, floor = res[kind], res["floor"]
                name = f"sdk {'call' if kind == 'sdk' else 'call_async'} {label}"
                log(f"  {name:30s} client us/call sdk {_fmt_list(sdk)}  floor {_fmt_list(floor)}  "
                    f"calls/s sdk {res[kind + '_rate']:.0f} floor {res['floor_rate']:.0f}")
                rows.append(bench._row(f"{name} (vs floor)", "client us/call", sdk, floor, {
                    "failures": {"gateway": res[kind + "_failures"], "relay": res["floor_failures"]},
                    "calls_per_s": {"gateway": bench._round(res[kind + "_rate"]), "relay": bench._round(res["floor_rate"])},
                }))
    return rows


@contextlib.contextmanager
def _gateway_and_service() -> Iterator[str]:
    """A gateway subprocess and the raw service (``loadgen.service_worker``) on it, for
    the ``with`` block; yields the gateway's edge address."""
    from loadtests import bench, loadgen

    with tempfile.TemporaryDirectory(prefix="frontier-sdkbench-") as tmp:
        gw = bench.Target("gateway", Path(tmp)).start()
        svc = None
        try:
            svc = bench.Worker(loadgen.service_worker, {"target": "gateway", "addr": gw.service_addr, "payload": PAYLOAD})
            yield gw.edge_addr
        finally:
            if svc is not None:
                svc.finish("stop")
            gw.stop()


def compare(baseline: Path, quick: bool, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Before/after: the SDK under ``baseline`` (a checkout's root holding an older
    ``frontier`` package) against this tree's, client processes alternating
    (this, baseline, this, baseline ...) against one gateway and service; each child
    measures its own floor too. Returns one row per case."""
    pairs, rounds, seconds = (2, 2, 0.6) if quick else (3, 3, 1.0)
    out = []
    with _gateway_and_service() as edge_addr:
        for label, mode, edges in CASES:
            got: dict[str, dict[str, list[float]]] = {"after": {"sdk": [], "floor": []}, "before": {"sdk": [], "floor": []}}
            for p in range(pairs):
                for which in (("after", "before") if p % 2 == 0 else ("before", "after")):
                    res = run_child(edge_addr, mode, edges, rounds, seconds, ROOT if which == "after" else baseline)
                    got[which]["sdk"] += res["sdk"]
                    got[which]["floor"] += res["floor"]
            med = {w: {k: statistics.median(v) for k, v in d.items()} for w, d in got.items()}
            row = {"case": label, "before_us": round(med["before"]["sdk"], 1), "after_us": round(med["after"]["sdk"], 1),
                   "floor_us_before_run": round(med["before"]["floor"], 1), "floor_us_after_run": round(med["after"]["floor"], 1),
                   "before_over_floor": round(med["before"]["sdk"] / med["before"]["floor"], 2),
                   "after_over_floor": round(med["after"]["sdk"] / med["after"]["floor"], 2),
                   "spread_before": [round(min(got["before"]["sdk"]), 1), round(max(got["before"]["sdk"]), 1)],
                   "spread_after": [round(min(got["after"]["sdk"]), 1), round(max(got["after"]["sdk"]), 1)],
                   "samples": len(got["after"]["sdk"])}
            log(f"  {label:18s} SDK before {row['before_us']} us/call ({row['before_over_floor']}x floor)  "
                f"after {row['after_us']} us/call ({row['after_over_floor']}x floor)")
            out.append(row)
    return out


def locust_run(users: int, spawn_rate: int, window: float, log: Callable[[str], None], tags: str = "rpc_e2s",
               service: str = "raw") -> dict[str, Any]:
    """One Locust process (``loadtests/locustfile.py``, headless, ``--frontier-wait 0``)
    of ``users`` fake edges against a gateway subprocess, the service in a third
    process (``raw``: ``loadgen.service_worker``; ``sdk``: ``python -m
    loadtests.service``). Once every edge is online, counts the calls the gateway
    answered in ``window`` seconds (at the service, or Locust's own count) and each
    process's CPU in that window."""
    import psutil

    from loadtests import bench, loadgen

    with tempfile.TemporaryDirectory(prefix="frontier-locust-") as tmp:
        gw = bench.Target("gateway", Path(tmp)).start()
        svc: Any = None
        sdk_svc: subprocess.Popen | None = None
        proc: subprocess.Popen | None = None
        try:
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            if service == "raw":
                svc = bench.Worker(loadgen.service_worker, {"target": "gateway", "addr": gw.service_addr, "payload": PAYLOAD})
                svc_pid = svc.proc.pid
            else:
                sdk_svc = subprocess.Popen([sys.executable, "-m", "loadtests.service", "--addr", gw.service_addr, "--every", "3600"],
                                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                svc_pid = sdk_svc.pid
                time.sleep(2.0)
            ramp = users / spawn_rate
            stats = Path(tmp) / "locust"
            cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
                   "-u", str(users), "-r", str(spawn_rate), "-t", f"{int(ramp * 4 + window + 120)}s", "--tags", *tags.split(","),
                   "--frontier-edge", gw.edge_addr, "--frontier-service", gw.service_addr, "--frontier-external-service",
                   "--frontier-wait", "0", "--frontier-payload", str(PAYLOAD), "--stop-timeout", "5",
                   "--frontier-start-together", str(int(ramp * 4 + 60)),
                   "--only-summary", "--json", "--csv", str(stats), "--csv-full-history"]
            log(" ".join(cmd[1:]))
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=open(Path(tmp) / "locust.log", "wb"))
            started = time.monotonic()
            procs = {"locust": psutil.Process(proc.pid), "gateway": psutil.Process(gw.pid), "service": psutil.Process(svc_pid)}

            def online() -> int:
                if svc is not None:
                    svc.send("online")
                    return int(svc.expect("online"))
                return len(psutil.Process(gw.pid).net_connections("tcp")) - 2  # listeners aside: ~ edges + service

            while online() < users:
                if proc.poll() is not None or time.monotonic() - started > ramp * 4 + 60:
                    raise RuntimeError(f"only {online()} of {users} edges came online: "
                                       f"{(Path(tmp) / 'locust.log').read_text()[-2000:]}")
                time.sleep(0.5)
            connected_after = time.monotonic() - started
            time.sleep(3.0)  # settle
            rss = procs["locust"].memory_info().rss

            def cpu(p: Any) -> float:
                t = p.cpu_times()
                return t.user + t.system

            t0 = time.monotonic()
            if svc is not None:
                svc.send("go", t0, t0 + window, 0, 0)
            cpu0 = {k: cpu(p) for k, p in procs.items()}
            time.sleep(window)
            cpu1 = {k: cpu(p) for k, p in procs.items()}
            if svc is not None:
                svc.send("report")
                answered = svc.expect("result")["answered"]
            t1 = time.monotonic()
            proc.send_signal(signal.SIGTERM)  # Locust stops its users and prints the --json summary
            out, _ = proc.communicate(timeout=120)
            entries = json.loads(out) if out.strip() else []
            failures = sum(e["num_failures"] for e in entries)
            requests = {f"{e['method']} {e['name']}": e["num_requests"] for e in entries}
            history = _history(stats.with_name("locust_stats_history.csv"))
            if svc is None:  # the SDK service counts nothing we can read: take Locust's per-second history
                answered = _history_rate(history, users) * (t1 - t0)
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
            if svc is not None:
                svc.finish("stop")
            if sdk_svc is not None:
                sdk_svc.terminate()
                sdk_svc.wait(10)
            gw.stop()
    seconds = t1 - t0
    rate = answered / seconds
    used = {k: (cpu1[k] - cpu0[k]) / (t1 - t0) * 100 for k in cpu0}
    return {
        "users": users, "service": service, "tags": tags, "window_s": round(seconds, 2), "calls_per_s": round(rate),
        "cpu_percent": {k: round(v) for k, v in used.items()},
        "locust_cpu_us_per_call": round((cpu1["locust"] - cpu0["locust"]) / max(answered, 1) * 1e6, 1),
        "gateway_cpu_us_per_call": round((cpu1["gateway"] - cpu0["gateway"]) / max(answered, 1) * 1e6, 1),
        "locust_rss_per_edge_kb": round(rss / users / 1024, 1), "connect_seconds": round(connected_after, 1),
        "failures": failures, "requests": requests,
    }


def _history(path: Path) -> list[dict[str, str]]:
    import csv

    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def _history_rate(history: list[dict[str, str]], users: int) -> float:
    """Median requests/s of Locust's history rows with every user running."""
    rates = [float(r["Requests/s"]) for r in history if r.get("Name") == "Aggregated" and int(r.get("User Count") or 0) >= users]
    return statistics.median(rates) if rates else 0.0


def _fmt_list(values: list[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


def run_child(edge_addr: str, mode: str, edges: int, rounds: int, seconds: float, root: Path = ROOT) -> dict[str, Any]:
    """One client process (gevent-patched or threads): ``rounds`` interleaved rounds,
    with the ``frontier`` package (SDK) found under ``root``."""
    cmd = [sys.executable, "-m", "loadtests.sdk_bench", "--child", "--addr", edge_addr, "--mode", mode,
           "--edges", str(edges), "--rounds", str(rounds), "--seconds", str(seconds)]
    with tempfile.TemporaryDirectory(prefix="frontier-sdkbench-cwd-") as cwd:  # not ROOT: root's frontier comes first
        proc = subprocess.run(cmd, cwd=cwd, env=dict(os.environ, PYTHONPATH=f"{root}:{ROOT}"), capture_output=True,
                              text=True, timeout=60 + rounds * 3 * (seconds + 2))
    if proc.returncode != 0:
        raise RuntimeError(f"sdk bench client failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result["sdk_file"].startswith(str(root)):
        raise RuntimeError(f"the client imported {result['sdk_file']}, not the SDK under {root}")
    return result


# -- the client process ------------------------------------------------------------------------------


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


import msgpack  # noqa: E402

from frontier.wire.events import Request as _Request, Response as _Response  # noqa: E402

_PACKER = msgpack.Packer()
_unpackb = msgpack.unpackb
_T_REQUEST, _T_RESPONSE = _Request.TYPE, _Response.TYPE


class FloorEdge:
    """A raw-socket edge: handshake, then one blocking call at a time."""

    def __init__(self, addr: str, meta: bytes) -> None:
        import socket

        from frontier.wire.codec import encode_frame
        from frontier.wire.events import PROTOCOL_VERSION, ROLE_EDGE, Hello

        host, _, port = addr.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.sock.sendall(encode_frame(Hello(PROTOCOL_VERSION, ROLE_EDGE, meta=meta)))
        self.read_frame()  # Welcome
        self.sock.settimeout(None)
        self.ids = 0

    def read_frame(self) -> bytes:
        buf = self.buf
        while True:
            if len(buf) >= 4:
                size = int.from_bytes(buf[:4], "big")
                if len(buf) >= 4 + size:
                    body = bytes(buf[4:4 + size])
                    del buf[:4 + size]
                    return body
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the gateway closed the connection")
            buf += data

    def call(self, method: str, data: bytes) -> bytes:
        self.ids += 1
        body = _PACKER.pack((_T_REQUEST, self.ids, method, data, 10_000, None, 0))
        self.sock.sendall(len(body).to_bytes(4, "big") + body)
        while True:
            obj = _unpackb(self.read_frame())
            if obj[0] == _T_RESPONSE and obj[1] == self.ids:
                if obj[2]:
                    raise RuntimeError(f"call failed: {obj[2]} {obj[4]}")
                return obj[3]


def memory_child(args: argparse.Namespace) -> dict[str, Any]:
    """Bytes per connected, idle ``Edge`` in a gevent-patched process: RSS growth over
    ``--edges`` edges (``--memory rss``) or Python allocations seen by tracemalloc
    (``--memory trace``; tracemalloc's own bookkeeping inflates RSS, so not both)."""
    from gevent import monkey

    monkey.patch_all()
    import gc

    import frontier.sdk
    from frontier.sdk import Edge

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    warm = [Edge(args.addr, meta=b"warm-%d" % i, timeout=30) for i in range(20)]  # first-use costs aside
    gc.collect()
    if args.memory == "trace":
        import tracemalloc

        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = rss()
    edges = [Edge(args.addr, meta=b"mem-%d" % i, timeout=30) for i in range(args.edges)]
    time.sleep(0.5)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if args.memory == "trace" else rss()
    for e in edges + warm:
        e.close()
    return {"what": args.memory, "edges": args.edges, "bytes_per_edge": round((after - before) / args.edges),
            "sdk_file": frontier.sdk.__file__}


def memory(edges: int, baseline: Path | None, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Bytes per idle ``Edge`` (RSS and tracemalloc), this tree's SDK and, given, the
    baseline's, alternating, 3 runs each; medians."""
    from loadtests import bench, loadgen

    roots = [("after", ROOT)] + ([("before", baseline)] if baseline else [])
    got: dict[tuple[str, str], list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="frontier-sdkbench-") as tmp:
        gw = bench.Target("gateway", Path(tmp)).start()
        svc = bench.Worker(loadgen.service_worker, {"target": "gateway", "addr": gw.service_addr, "payload": PAYLOAD})
        try:
            for run in range(3):
                for which, root in (roots if run % 2 == 0 else roots[::-1]):
                    for what in ("rss", "trace"):
                        cmd = [sys.executable, "-m", "loadtests.sdk_bench", "--child", "--memory", what, "--addr",
                               gw.edge_addr, "--edges", str(edges)]
                        with tempfile.TemporaryDirectory(prefix="frontier-sdkbench-cwd-") as cwd:
                            proc = subprocess.run(cmd, cwd=cwd, env=dict(os.environ, PYTHONPATH=f"{root}:{ROOT}"),
                                                  capture_output=True, text=True, timeout=300)
                        if proc.returncode != 0:
                            raise RuntimeError(proc.stderr[-2000:])
                        res = json.loads(proc.stdout.strip().splitlines()[-1])
                        assert res["sdk_file"].startswith(str(root)), res
                        got.setdefault((which, what), []).append(res["bytes_per_edge"])
                        log(f"  {which:6s} {what:5s} run {run + 1}: {res['bytes_per_edge']} bytes per idle Edge")
        finally:
            svc.finish("stop")
            gw.stop()
    return [{"sdk": which, "what": what, "bytes_per_edge": statistics.median(v), "runs": v}
            for (which, what), v in sorted(got.items())]


def child(args: argparse.Namespace) -> dict[str, Any]:
    if args.mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
    import threading

    from frontier.sdk import Edge

    payload = b"x" * PAYLOAD
    floors = [FloorEdge(args.addr, f"floor-{i}".encode()) for i in range(args.edges)]
    sdks = [Edge(args.addr, meta=f"sdk-{i}".encode(), timeout=10.0) for i in range(args.edges)]
    out: dict[str, Any] = {"floor": [], "sdk": [], "async": []}
    failures = {"floor": 0, "sdk": 0, "async": 0}
    rates: dict[str, list[float]] = {"floor": [], "sdk": [], "async": []}

    def one_round(kind: str) -> None:
        count = [0]
        stop = [False]

        def loop(i: int) -> None:
            n = 0
            if kind == "floor":
                call = floors[i].call
            elif kind == "sdk":
                call = sdks[i].call
            else:
                edge = sdks[i]

                def call(method: str, data: bytes) -> bytes:
                    return edge.call_async(method, data).result()
            while not stop[0]:
                try:
                    answer = call("echo", payload)
                    if answer != payload:
                        failures[kind] += 1
                except Exception:
                    failures[kind] += 1
                n += 1
                count[0] += 1

        threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(args.edges)]
        for t in threads:
            t.start()
        time.sleep(0.2)  # warm-up
        c0, cpu0, t0 = count[0], _cpu(), time.monotonic()
        time.sleep(args.seconds)
        c1, cpu1, t1 = count[0], _cpu(), time.monotonic()
        stop[0] = True
        for t in threads:
            t.join(15)
        calls = max(1, c1 - c0)
        out[kind].append((cpu1 - cpu0) / calls * 1e6)
        rates[kind].append(calls / (t1 - t0))

    kinds = ["floor", "sdk", "async"] if hasattr(Edge, "call_async") else ["floor", "sdk"]
    for r in range(args.rounds):
        for kind in (kinds if r % 2 == 0 else kinds[::-1]):
            one_round(kind)
    for e in sdks:
        e.close()
    for f in floors:
        f.sock.close()
    import frontier.sdk

    result: dict[str, Any] = dict(out, sdk_file=frontier.sdk.__file__)
    for kind in kinds:
        result[f"{kind}_rate"] = statistics.median(rates[kind])
        result[f"{kind}_failures"] = failures[kind]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.sdk_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 0.4 s, gevent rows only (instead of 7 rounds of 1.5 s, every row)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="compare with the SDK of another checkout (its root, holding frontier/) instead")
    parser.add_argument("--locust", type=int, metavar="USERS",
                        help="instead: one Locust process of USERS fake edges driving the gateway flat out")
    parser.add_argument("--spawn-rate", type=int, default=500, help="--locust: users started per second (default 500)")
    parser.add_argument("--window", type=float, default=20.0, help="--locust: seconds measured once all are online")
    parser.add_argument("--service", choices=("raw", "sdk"), default="raw",
                        help="--locust: the raw service (loadgen) or python -m loadtests.service (SDK) answers")
    parser.add_argument("--memory", nargs="?", const="both", metavar="",
                        help="instead: bytes per idle connected Edge over --edges edges (default 2000), with --baseline too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--addr", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="gevent", help=argparse.SUPPRESS)
    parser.add_argument("--edges", type=int, default=0, help="--memory: edges to connect (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(memory_child(args) if args.memory else child(args)), flush=True)
        return 0
    if args.memory:
        rows = memory(args.edges or 2000, args.baseline.resolve() if args.baseline else None,
                      lambda line: print(line, flush=True))
        print(json.dumps(rows, indent=1))
        return 0
    if args.locust:
        print(json.dumps(locust_run(args.locust, args.spawn_rate, args.window, lambda line: print(line, flush=True),
                                    service=args.service), indent=1))
        return 0
    if args.baseline:
        rows = compare(args.baseline.resolve(), args.quick, lambda line: print(line, flush=True))
        print(json.dumps(rows, indent=1))
        return 0
    from loadtests import bench

    rows = sdk_rows(args.quick, lambda line: print(line, flush=True))
    print(bench.format_table({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
