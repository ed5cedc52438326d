"""``make bench SCALE=N`` at a small N: edges held on ``serve --workers``, a worker
killed, its edges back, the control planes' count right before and after."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.gateway import ROOT


def test_scale_bench_at_small_size(tmp_path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", "--tiny", "--scale", "600", "--scale-workers", "3", "--only", "scale",
         "--out", str(out)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "scale.json").read_text())
    scale = doc["details"]["scale"]
    assert scale["edges"] == 600 and scale["workers"] == 3
    assert scale["control_plane_count"] == 600
    assert sum(scale["per_worker_edges"]) == 600 and min(scale["per_worker_edges"]) > 0  # the kernel spread them
    assert scale["lost"] == scale["killed_edges"] > 0  # every edge of the killed worker noticed
    assert scale["all_back"] and scale["missing"] == 0
    assert scale["control_plane_count_after"] == 600
    assert scale["per_worker_edges_after"][scale["killed_worker"]] is not None  # the restarted worker answers
    assert 0 < scale["rss_kb_per_edge"] < 100
    assert scale["restart_seconds"] > 0 and scale["back_seconds"] > 0
    names = {row["name"] for row in doc["rows"]}
    assert "scale 600 edges, 3 workers: control-plane count" in names
    assert "| figure" in proc.stdout
