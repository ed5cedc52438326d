"""Summarise a ``py-spy record -f raw`` profile (collapsed stacks) of the gateway.

``python -m loadtests.bench --only rpc_e2s_n --profile rpc_e2s_n`` records the gateway
with py-spy during that scenario's measurement windows; this module prints, for the
hottest functions, the share of samples spent in the function itself ("self") and in
it or anything it called ("total"). ``python -m loadtests.profile FILE`` does the same
for any collapsed-stack file.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``module.py:func``, keeping the package for ours."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    parts = Path(path).parts
    if "frontier" in parts:
        path = "/".join(parts[parts.index("frontier"):])
    elif "site-packages" in parts:
        path = "/".join(parts[parts.index("site-packages") + 1:])
    else:
        path = Path(path).name
    return f"{path}:{m.group('func')}"


def load(path: Path) -> tuple[Counter, Counter, int]:
    """(self samples, total samples, all samples) per function of a collapsed file."""
    own: Counter = Counter()
    total: Counter = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        # py-spy's raw output starts each stack with the process/thread name
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    return own, total, samples


def summary(path: Path, top: int = 25) -> str:
    """A text table of the hottest functions in ``path``."""
    own, total, samples = load(path)
    if not samples:
        return f"{path}: no samples"
    lines = [f"{samples} samples (gateway busy time only); self % / total %:"]
    for func, n in own.most_common(top):
        lines.append(f"  {100 * n / samples:5.1f}% {100 * total[func] / samples:5.1f}%  {func}")
    lines.append("inclusive (total %) of the gateway's own functions:")
    ours = [(f, n) for f, n in total.most_common() if f.startswith("frontier/")]
    for func, n in ours[:top]:
        lines.append(f"  {100 * n / samples:5.1f}%  {func}")
    return "\n".join(lines)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(summary(Path(arg)))
