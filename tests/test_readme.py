"""The README's examples, run as written (only the gateway's ports are swapped for
the test gateway's)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from tests.gateway import ROOT, GatewayProcess

README = (ROOT / "README.md").read_text()


def python_block(containing: str) -> str:
    """The README's one ```python block that contains ``containing``."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if containing in b]
    assert len(blocks) == 1, f"{len(blocks)} README python blocks contain {containing!r}"
    return blocks[0]


def on_gateway(code: str, gw: GatewayProcess) -> str:
    """``code`` pointed at ``gw`` instead of the default ports."""
    return code.replace("127.0.0.1:30011", gw.service_addr).replace("127.0.0.1:30012", gw.edge_addr)


def run_python(code: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=timeout)


def test_one_service_process_serves_messages_and_streams_together(tmp_path: Path) -> None:
    with GatewayProcess(tmp_path) as gw:
        service = subprocess.Popen([sys.executable, "-c", on_gateway(python_block("def accept_loop"), gw)],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            edge_code = on_gateway(python_block('open_stream("billing", timeout=5)'), gw)
            deadline = time.monotonic() + 15
            while True:  # until the service is up (before that the publish finds no topic)
                edge = run_python(edge_code)
                if edge.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert edge.returncode == 0, edge.stderr.decode()
            assert re.search(rb"b'got 3000000 bytes from \d+'", edge.stdout), edge.stdout
        finally:
            service.kill()
            out = service.communicate(timeout=10)[0]
        assert b"message from" in out and b"telemetry b't=21.5'" in out, out
