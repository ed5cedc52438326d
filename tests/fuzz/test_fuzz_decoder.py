"""The decoder fuzz harness inside the normal suite: a few seconds of coverage-guided
fuzzing (atheris, from the test extra, in a subprocess: libFuzzer exits the process it
runs in), and an in-process run over the seeds and random mutations of them."""

from __future__ import annotations

import random
import time

from tests.fuzz.fuzz_decoder import one_input, seeds
from tests.fuzz.libfuzzer import short_run


def test_a_short_coverage_guided_run_finds_nothing(tmp_path):
    short_run("fuzz_decoder.py", tmp_path, seconds=4, seeds=len(seeds()))


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        how = rng.randrange(4)
        if how == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif how == 1 and len(buf) > 2:
            del buf[rng.randrange(2, len(buf)):]
        elif how == 2:
            at = rng.randrange(2, len(buf) + 1) if len(buf) > 2 else len(buf)
            buf[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            buf[0] = rng.randrange(256)
            if len(buf) > 1:
                buf[1] = rng.randrange(256)
    return bytes(buf)


def test_seeds_and_mutations_hold_the_invariant():
    rng = random.Random(20240607)
    corpus = seeds()
    for seed in corpus:
        one_input(seed)
    deadline = time.monotonic() + 2.0
    runs = 0
    while time.monotonic() < deadline:
        one_input(_mutate(rng, rng.choice(corpus)))
        runs += 1
    assert runs > 1000
