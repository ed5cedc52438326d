"""Large bodies through gateway + edge: checksums, bounded gateway memory, and
backpressure from a slow client to the edge's local service.

The suite downloads 256 MiB (``INGRESS_BIG_MIB`` changes it; 1 GiB was measured by
hand, see the report in docs/ingress.md) to keep the run fast."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import psutil
import pytest
import requests

from frontier.sdk import Edge

from .webapp import pattern_sha256

MIB = 1 << 20
SIZE = int(os.environ.get("INGRESS_BIG_MIB", "256")) * MIB
#: how much the gateway's RSS may grow while it moves SIZE bytes
RSS_GROWTH_LIMIT = 64 * MIB

APP = {"id": "dev", "frontends": [{"hostname": "*.edges.test"}],
       "backend": {"kind": "edge_http", "edge_http_opts": {"edge_from": "subdomain", "target": "ui"}}}


@pytest.fixture
def gateway_and_edge(ingress_gateway, webapp, clients):
    gw = ingress_gateway({"apps": [APP]})
    clients(Edge, gw.edge_addr, edge_id=9, expose={"ui": webapp.addr})
    return gw


def test_large_download_sha256_and_bounded_gateway_rss(gateway_and_edge) -> None:
    gw = gateway_and_edge
    proc = psutil.Process(gw.proc.pid)
    # warm up (first request builds the route, the stream path, the h11 machines)
    assert requests.get(gw.url("/hello"), headers={"Host": "9.edges.test"}, timeout=10).status_code == 200
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    digest, got = hashlib.sha256(), 0
    started = time.monotonic()
    try:
        with requests.get(gw.url(f"/big/{SIZE}"), headers={"Host": "9.edges.test"}, stream=True, timeout=30) as r:
            assert r.status_code == 200
            for chunk in r.iter_content(256 * 1024):
                digest.update(chunk)
                got += len(chunk)
    finally:
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - started
    assert got == SIZE
    assert digest.hexdigest() == pattern_sha256(SIZE)
    growth = peak[0] - base
    print(f"\n{SIZE // MIB} MiB in {elapsed:.1f}s ({SIZE / MIB / elapsed:.0f} MiB/s); gateway RSS {base / MIB:.0f} MiB "
          f"-> peak {peak[0] / MIB:.0f} MiB (+{growth / MIB:.1f} MiB)")
    assert growth < RSS_GROWTH_LIMIT, f"gateway RSS grew {growth / MIB:.0f} MiB moving {SIZE // MIB} MiB"


def test_slow_client_slows_the_edge_service(gateway_and_edge, webapp) -> None:
    gw = gateway_and_edge
    size = 512 * MIB
    with requests.get(gw.url(f"/big/{size}"), headers={"Host": "9.edges.test"}, stream=True, timeout=30) as r:
        it = r.iter_content(MIB)
        read = 0
        for _ in range(4):
            read += len(next(it))
        time.sleep(3)  # the browser stops reading
        ahead = webapp.produced[0] - read
        # what may sit in between: kernel socket buffers (client, gateway, edge, app)
        # and the two stream windows (1 MiB each by default); never the whole body
        print(f"\nsource ahead of a stalled client: {ahead / MIB:.1f} MiB")
        assert ahead < 48 * MIB, f"the source ran {ahead / MIB:.0f} MiB ahead of a stalled client"
        time.sleep(1)
        assert webapp.produced[0] - read - ahead < 2 * MIB  # and it stays stalled
        for _ in range(4):
            read += len(next(it))  # reading again resumes the flow
    assert webapp.produced[0] >= read
