"""The relay-path fuzz harness inside the normal suite: a few seconds of coverage-guided
fuzzing (atheris, in a subprocess) and an in-process run over the seeds and random
mutations of them (see tests/fuzz/fuzz_relay.py for the invariant)."""

from __future__ import annotations

import random
import time

from tests.fuzz.fuzz_relay import one_input, seeds
from tests.fuzz.libfuzzer import short_run
from tests.fuzz.test_fuzz_decoder import _mutate


def test_a_short_coverage_guided_run_finds_nothing(tmp_path):
    short_run("fuzz_relay.py", tmp_path, seconds=5, seeds=len(seeds()))


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
