"""``make faults``: the cluster under real network faults, with the checker's table.

``python -m tests.faults.run [--short] [--only SUBSTRING] [--workdir DIR]`` builds
the namespaced cluster (:mod:`tests.faults.cluster`), runs every scenario of
:mod:`tests.faults.scenarios` with the issue's fault windows (``--short``: the
short windows ``make test`` uses), prints one row per scenario and every
violation, and exits 1 if there was one. Without CAP_NET_ADMIN it says so and
exits 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.faults import checker, netns, scenarios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.run", description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the short fault windows of make test")
    parser.add_argument("--only", action="append", default=[], help="run scenarios whose name contains this")
    parser.add_argument("--workdir", type=Path, help="where logs and histories go (default: a new temp dir)")
    args = parser.parse_args(argv)
    try:
        netns.check_net_admin()
    except netns.NoNetAdmin as exc:
        print(f"make faults: cannot run here: {exc}", file=sys.stderr)
        return 2
    missing = netns.missing_tools()
    if missing:
        print(f"make faults: {', '.join(missing)} missing (apt-get install -y redis-sentinel nftables)", file=sys.stderr)
        return 2
    swept = netns.sweep_stale()
    if swept:
        print(f"removed namespaces of dead runs: {', '.join(swept)}")
    chosen = [s for s in scenarios.SCENARIOS if not (args.short and s.full_only)
              and (not args.only or any(o.lower() in s.name.lower() for o in args.only))]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="frontier-faults-"))
    print(f"{len(chosen)} scenarios ({'short' if args.short else 'full'} windows); logs and histories in {workdir}", flush=True)
    started = time.monotonic()
    results = scenarios.run(workdir, chosen, short=args.short)
    print(checker.table(results))
    for r in results:
        for v in r.violations:
            print(f"  {r.scenario}: {v}")
    print(f"{time.monotonic() - started:.0f}s")
    return 1 if any(r.violations for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
