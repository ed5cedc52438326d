"""``make native``: compile the relay's hot path (``frontier.compiled.MODULES``) with
mypyc into extension modules beside their sources, as one group whose shared library
is ``frontier/compiled_group__mypyc*.so``. Needs mypy (``pip install -e '.[native]'``),
a C compiler and the Python headers; without them it says so, and plain Python runs.

    python scripts/build_native.py [--if-stale]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--if-stale", action="store_true", help="only when a source is newer than the build (or none exists)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ["FRONTIER_PURE_PYTHON"] = "1"  # importing frontier here must not load what is rebuilt
    from frontier.compiled import GROUP, MODULES, built, source, stale

    if args.if_stale and not stale():
        return 0
    keep = {source(m, ROOT).with_suffix("") for m in (*MODULES, GROUP + "__mypyc")}
    for lib in (ROOT / "frontier").rglob("*.so"):  # an earlier build's module no longer compiled
        if lib.parent / lib.name.split(".")[0] not in keep:
            lib.unlink()
    print("==> compiling the relay's hot path with mypyc (frontier/compiled.py; FRONTIER_PURE_PYTHON=1 runs plain Python)",
          flush=True)
    started = time.time()
    out = io.StringIO()
    try:
        from mypyc.build import mypycify
        from setuptools import setup

        paths = [str(source(m, ROOT).relative_to(ROOT)) for m in MODULES]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            setup(name="frontier-native", packages=[], py_modules=[],
                  ext_modules=mypycify(["--ignore-missing-imports", *paths], group_name=GROUP, opt_level="3"),
                  script_args=["build_ext", "--inplace", "--build-temp", "build/native"])
    except (Exception, SystemExit) as exc:  # setup() exits on a compiler error
        print(out.getvalue()[-3000:], f"\n==> compiling failed ({exc!r}): plain Python runs", file=sys.stderr)
        return 0
    # the library stands for the sources as they were when the build began (an unchanged
    # one is not relinked, and keeps its old time): frontier.compiled.stale compares with it
    lib = built(GROUP + "__mypyc", ROOT)
    if lib is None:
        print(out.getvalue()[-3000:], "\n==> mypyc built no group library: plain Python runs", file=sys.stderr)
        return 0
    os.utime(lib, (started, started))
    print(f"==> compiled {len(MODULES)} modules in {time.time() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
