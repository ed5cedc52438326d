"""The relay's hot path, compiled by ``make native`` (mypyc), or plain Python: which one
runs, the switch between them, the staleness check, and that both relay the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import frontier.exchange.router
from frontier import compiled

ROOT = Path(__file__).resolve().parent.parent
PURE = os.environ.get("FRONTIER_PURE_PYTHON", "") not in ("", "0")

#: prints the mode, where the router came from, and a digest of what the relay fuzzer's
#: seeds make the gateway write (lean and reference paths), with deadlines frozen
_RELAY_DIGEST = """
import hashlib, json
import frontier.compiled, frontier.exchange.router
from tests.fuzz.fuzz_relay import run_records, seeds
digest = hashlib.sha256()
for seed in seeds():
    for lean in (True, False):
        for transcript, closed in run_records(seed, lean=lean):
            digest.update(transcript + bytes([closed]))
print(json.dumps({"mode": frontier.compiled.mode, "router": frontier.exchange.router.__file__, "digest": digest.hexdigest()}))
"""


def _relay_digest(pure: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env["FRONTIER_PURE_PYTHON"] = "1" if pure else "0"
    proc = subprocess.run([sys.executable, "-c", _RELAY_DIGEST], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_suite_runs_the_compiled_hot_path() -> None:
    """``make test`` compiles first (``make native``): if this runs plain Python, the
    build failed or is stale, and the suite would not be testing what ships."""
    if PURE:
        assert compiled.mode == "python" and frontier.exchange.router.__file__.endswith(".py")
        return
    assert compiled.stale() == [], "run `make native`"
    assert compiled.mode == "compiled"
    assert not frontier.exchange.router.__file__.endswith(".py")


def test_compiled_and_plain_python_relay_the_same_bytes() -> None:
    """The relay fuzzer's seeds (calls, answers, publishes, streams, oversized frames,
    both ways) through the compiled modules and through their plain sources."""
    plain = _relay_digest(pure=True)
    assert plain["mode"] == "python" and plain["router"].endswith("router.py")
    if PURE:
        return
    native = _relay_digest(pure=False)
    assert native["mode"] == "compiled" and not native["router"].endswith(".py")
    assert native["digest"] == plain["digest"]


def _tree(root: Path) -> None:
    for module in compiled.MODULES:
        path = compiled.source(module, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def _build(root: Path, module: str, at: float) -> Path:
    path = compiled.source(module, root).with_suffix(compiled._SUFFIXES[0])
    path.write_bytes(b"")
    os.utime(path, (at, at))
    return path


def test_stale_until_every_module_and_the_library_are_newer_than_the_sources(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert compiled.stale(root=tmp_path) == list(compiled.MODULES)  # nothing built
    now = time.time()
    for module in compiled.MODULES:
        _build(tmp_path, module, now)
    assert compiled.stale(root=tmp_path) == list(compiled.MODULES)  # no group library yet
    _build(tmp_path, compiled.GROUP + "__mypyc", now + 10)
    assert compiled.stale(root=tmp_path) == []
    edited = compiled.source(compiled.MODULES[2], tmp_path)
    os.utime(edited, (now + 20, now + 20))
    assert compiled.stale(root=tmp_path) == [compiled.MODULES[2]]
    os.utime(edited, (now, now))
    compiled.source(compiled.MODULES[0], tmp_path).with_suffix(compiled._SUFFIXES[0]).unlink()
    assert compiled.stale(root=tmp_path) == [compiled.MODULES[0]]


def test_a_stale_build_runs_plain_python_and_says_so(tmp_path: Path) -> None:
    """A source edited after ``make native`` never runs stale: the process imports every
    compiled module from its source, with one warning."""
    if PURE or compiled.mode != "compiled":
        return  # nothing built to go stale
    code = ("import warnings, json\nwith warnings.catch_warnings(record=True) as w:\n    warnings.simplefilter('always')\n"
            "    import frontier.compiled as c, frontier.exchange.router as r, frontier.sessions.session as s\n"
            "print(json.dumps({'mode': c.mode, 'files': [r.__file__, s.__file__], 'warned': [str(x.message) for x in w]}))")
    lib = compiled.built(compiled.GROUP + "__mypyc")
    assert lib is not None
    before = lib.stat().st_mtime
    os.utime(lib, (1, 1))  # as if every source changed after the build
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, FRONTIER_PURE_PYTHON="0"),
                              capture_output=True, text=True, timeout=60)
    finally:
        os.utime(lib, (before, before))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["mode"] == "python"
    assert all(f.endswith(".py") for f in out["files"])
    assert any("make native" in w for w in out["warned"])
