"""What both atheris harnesses share: seeding a corpus, the libFuzzer entry point, and
the short coverage-guided run and the seeded mutation run the test suite makes of each."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]


def seed_corpus(directory: Path, seeds: list[bytes]) -> None:
    """Write ``seeds`` into an empty (or missing) corpus directory."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return
    for index, seed in enumerate(seeds):
        (directory / f"seed-{index:03d}").write_bytes(seed)


def main(argv: list[str], atheris: object, one_input: Callable[[bytes], None], seeds: Callable[[], list[bytes]]) -> None:
    """libFuzzer's command line (``CORPUS_DIR -max_total_time=...``); seeds an empty corpus."""
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris (the test suite falls back to a random run)")
    dirs = [a for a in argv[1:] if not a.startswith("-") and (os.path.isdir(a) or not os.path.exists(a))]
    if dirs:
        seed_corpus(Path(dirs[0]), seeds())
    atheris.Setup(argv, one_input)  # type: ignore[attr-defined]
    atheris.Fuzz()  # type: ignore[attr-defined]


def short_run(harness: str, workdir: Path, seconds: int, seeds: int) -> None:
    """Run ``tests/fuzz/<harness>`` under libFuzzer for ``seconds`` in a subprocess
    (libFuzzer exits the process it runs in) and require a clean finish."""
    corpus = workdir / "corpus"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fuzz" / harness), str(corpus), f"-max_total_time={seconds}",
         "-rss_limit_mb=1024", "-timeout=10"],
        cwd=workdir, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done" in proc.stderr, proc.stderr[-2000:]
    assert not list(workdir.glob("crash-*")) and not list(workdir.glob("oom-*"))
    assert len(list(corpus.iterdir())) >= seeds


def mutate(rng: random.Random, data: bytes) -> bytes:
    """``data`` with one to four random byte edits (the first two bytes, which pick a
    harness mode, are changed now and then too)."""
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



def mutation_run(one_input: Callable[[bytes], None], seeds: list[bytes], *, seed: int, seconds: float) -> int:
    """Feed every seed, then random mutations of them for ``seconds``, to ``one_input``
    (which raises on a violation); return how many mutations ran. Needs no atheris."""
    rng = random.Random(seed)
    for data in seeds:
        one_input(data)
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        one_input(mutate(rng, rng.choice(seeds)))
        runs += 1
    return runs
