"""The relay-path fuzz harness inside the normal suite: a few seconds of coverage-guided
fuzzing (atheris, in a subprocess) and an in-process run over the seeds and random
mutations of them (see tests/fuzz/fuzz_relay.py for the invariant)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

from tests.fuzz.fuzz_relay import one_input, seeds
from tests.fuzz.test_fuzz_decoder import ROOT, _mutate

HARNESS = ROOT / "tests" / "fuzz" / "fuzz_relay.py"


def test_a_short_coverage_guided_run_finds_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    proc = subprocess.run(
        [sys.executable, str(HARNESS), str(corpus), "-max_total_time=5", "-rss_limit_mb=1024", "-timeout=10"],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done" in proc.stderr, proc.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("oom-*"))
    assert len(list(corpus.iterdir())) >= len(seeds())


def test_seeds_and_mutations_hold_the_invariant():
    rng = random.Random(20261204)
    corpus = seeds()
    for seed in corpus:
        one_input(seed)
    deadline = time.monotonic() + 3.0
    runs = 0
    while time.monotonic() < deadline:
        one_input(_mutate(rng, rng.choice(corpus)))
        runs += 1
    assert runs > 200
