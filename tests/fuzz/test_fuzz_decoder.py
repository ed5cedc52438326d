"""The decoder fuzz harness inside the normal suite: a few seconds of coverage-guided
fuzzing (atheris, from the test extra, in a subprocess: libFuzzer exits the process it
runs in), and an in-process run over the seeds and random mutations of them."""

from __future__ import annotations

from tests.fuzz.fuzz_decoder import one_input, seeds
from tests.fuzz.libfuzzer import mutation_run, short_run


def test_a_short_coverage_guided_run_finds_nothing(tmp_path):
    short_run("fuzz_decoder.py", tmp_path, seconds=4, seeds=len(seeds()))


def test_seeds_and_mutations_hold_the_invariant():
    assert mutation_run(one_input, seeds(), seed=20240607, seconds=2.0) > 1000
