"""The ingress rows of ``make bench``: an edge's web app reached through the gateway's
HTTP ingress against the same app reached directly.

Processes, all on loopback: a small threaded HTTP/1.1 app (``/small``: 1 KiB;
``/big/<n>``: ``n`` bytes streamed), an edge exposing it (the SDK's
``Edge(expose=...)``), a gateway with one ``edge_http`` app, and client processes
that keep their connections alive. Rows: keep-alive requests/s of ``/small`` (and
p50/p99 latency), and MB/s of one large download.

    python -m loadtests.ingress_bench            # the rows alone
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import yaml

from loadtests.bench import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
HOST = "1.edges.bench"
SMALL = b"x" * 1024
BIG_PIECE = b"y" * 65536


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if self.path.startswith("/big/"):
            size = int(self.path.rsplit("/", 1)[1])
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            left = size
            while left > 0:
                piece = BIG_PIECE[: min(left, len(BIG_PIECE))]
                self.wfile.write(piece)
                left -= len(piece)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(SMALL)))
        self.end_headers()
        self.wfile.write(SMALL)


def _serve_app(port: int) -> None:
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), _Handler).serve_forever()


def _run_edge(gateway: str, app_port: int) -> None:
    from frontier.sdk import Edge

    Edge(gateway, edge_id=1, expose={"ui": f"127.0.0.1:{app_port}"})
    threading.Event().wait()


def _client(port: int, conns: int, start: float, end: float, out: Any) -> None:
    """``conns`` threads, each one keep-alive connection, GET /small in a loop; reports
    requests completed inside [start, end) and their latencies."""
    counts: list[int] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def loop() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        mine: list[float] = []
        while True:
            t0 = time.time()
            if t0 >= end:
                break
            conn.request("GET", "/small", headers={"Host": HOST})
            resp = conn.getresponse()
            resp.read()
            t1 = time.time()
            if start <= t0 and t1 < end:
                n += 1
                mine.append(t1 - t0)
        conn.close()
        with lock:
            counts.append(n)
            latencies.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(counts), latencies))


def _keepalive(port: int, procs: int, conns: int, warmup: float, duration: float) -> tuple[float, float, float]:
    start = time.time() + warmup + 0.3
    end = start + duration
    q: Any = mp.Queue()
    workers = [mp.Process(target=_client, args=(port, conns, start, end, q)) for _ in range(procs)]
    for w in workers:
        w.start()
    results = [q.get(timeout=warmup + duration + 60) for _ in workers]
    for w in workers:
        w.join()
    total = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[1])
    pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: float("nan"))
    return total / duration, pct(0.5), pct(0.99)


def _download(port: int, size: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.monotonic()
    conn.request("GET", f"/big/{size}", headers={"Host": HOST})
    resp = conn.getresponse()
    got = 0
    while chunk := resp.read(1 << 20):
        got += len(chunk)
    elapsed = time.monotonic() - t0
    conn.close()
    assert got == size, (got, size)
    return size / 1e6 / elapsed


def measure(*, runs: int, warmup: float, duration: float, procs: int, conns: int, big: int,
            log: Callable[[str], None] = print) -> dict[str, tuple[list[float], list[float]]]:
    """``{row: (through the ingress, direct)}`` values, ``runs`` each, alternating."""
    app_port, edge_port, svc_port, http_port = (free_port() for _ in range(4))
    ctx = mp.get_context("spawn")
    app = ctx.Process(target=_serve_app, args=(app_port,), daemon=True)
    app.start()
    with tempfile.TemporaryDirectory(prefix="frontier-ingress-bench-") as tmp:
        config = {
            "servicebound": {"listen": {"addr": f"127.0.0.1:{svc_port}"}},
            "edgebound": {"listen": {"addr": f"127.0.0.1:{edge_port}"}},
            "log": {"level": "warn"},
            "observability": {"enable": False},
            "ingress": {"enable": True, "http": {"listen": {"addr": f"127.0.0.1:{http_port}"}},
                        "apps": [{"id": "bench", "frontends": [{"hostname": "*.edges.bench"}],
                                  "backend": {"kind": "edge_http", "edge_http_opts": {"edge_from": "subdomain", "target": "ui"}}}]},
        }
        path = Path(tmp) / "frontier.yaml"
        path.write_text(yaml.safe_dump(config))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        gateway = subprocess.Popen([sys.executable, "-m", "frontier.cli", "serve", "--config", str(path)], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        edge = None
        try:
            wait_port(app_port)
            wait_port(http_port)
            edge = ctx.Process(target=_run_edge, args=(f"127.0.0.1:{edge_port}", app_port), daemon=True)
            edge.start()
            deadline = time.monotonic() + 20
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
                    conn.request("GET", "/small", headers={"Host": HOST})
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the edge did not come online behind the ingress")
                time.sleep(0.1)
            out: dict[str, tuple[list[float], list[float]]] = {
                "rps": ([], []), "p50": ([], []), "p99": ([], []), "mbs": ([], []),
            }
            for i in range(runs):
                order = ((0, http_port), (1, app_port)) if i % 2 == 0 else ((1, app_port), (0, http_port))
                for side, port in order:
                    rps, p50, p99 = _keepalive(port, procs, conns, warmup, duration)
                    mbs = _download(port, big)
                    for key, value in (("rps", rps), ("p50", p50), ("p99", p99), ("mbs", mbs)):
                        out[key][side].append(value)
                    log(f"  {'ingress keep-alive':24s} run {i + 1}/{runs} {'ingress' if side == 0 else 'direct':7s} "
                        f"{rps:9.0f} req/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms;  download {mbs:.0f} MB/s")
            return out
        finally:
            if edge is not None:
                edge.terminate()
            gateway.terminate()
            gateway.wait(15)
            app.terminate()


def rows(settings: Any, log: Callable[[str], None], make_row: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """The bench rows for ``settings`` (a ``loadtests.bench.Settings``)."""
    tiny = settings.mode == "tiny"
    res = measure(runs=settings.runs, warmup=settings.warmup, duration=settings.duration, procs=2,
                  conns=2 if tiny else 8, big=(8 if tiny else 256) * 1024 * 1024, log=log)
    return [
        make_row("ingress keep-alive 1 KiB", "req/s", *res["rps"]),
        make_row("ingress keep-alive 1 KiB p50", "ms", *res["p50"]),
        make_row("ingress keep-alive 1 KiB p99", "ms", *res["p99"]),
        make_row("ingress download", "MB/s", *res["mbs"]),
    ]


if __name__ == "__main__":
    result = measure(runs=3, warmup=0.5, duration=3.0, procs=2, conns=8, big=256 * 1024 * 1024)
    for key, (through, direct) in result.items():
        print(key, "ingress", [round(v, 1) for v in through], "direct", [round(v, 1) for v in direct])
