"""The relay-path fuzz harness inside the normal suite: a few seconds of coverage-guided
fuzzing (atheris, in a subprocess) and an in-process run over the seeds and random
mutations of them (see tests/fuzz/fuzz_relay.py for the invariant)."""

from __future__ import annotations

from tests.fuzz.fuzz_relay import one_input, seeds
from tests.fuzz.libfuzzer import mutation_run, short_run


def test_a_short_coverage_guided_run_finds_nothing(tmp_path):
    short_run("fuzz_relay.py", tmp_path, seconds=5, seeds=len(seeds()))


def test_seeds_and_mutations_hold_the_invariant():
    assert mutation_run(one_input, seeds(), seed=20261204, seconds=3.0) > 200
