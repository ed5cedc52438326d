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


#: (category, predicate on the self frame) in order; the first match wins
_CATEGORIES = [
    ("socket send (syscall; Session._flush/_drain)", lambda f: f.startswith("frontier/sessions/session.py:Session._flush")
     or f.startswith("frontier/sessions/session.py:Session._drain") or ("_socketcommon.py:" in f and "send" in f)),
    ("socket recv (syscall + gevent wrapper)", lambda f: "_socketcommon.py:" in f and "recv" in f),
    ("event loop: libev + greenlet switches (Hub.run)", lambda f: f.startswith("hub.py:") or "greenlet" in f),
    ("wire decode (next_event, decode_body, schema, event objects)", lambda f: f.startswith("frontier/wire/connection.py:Connection.next_event")
     or f.startswith("frontier/wire/connection.py:Connection.receive_data") or f.startswith("frontier/wire/connection.py:Connection._consumed")
     or f.startswith("frontier/wire/codec.py:decode") or f.startswith("frontier/wire/codec.py:_Schema")),
    ("wire state machine (_process, stream windows)", lambda f: f.startswith("frontier/wire/connection.py:Connection._process")
     or f.startswith("frontier/wire/state")),
    ("wire encode (Connection.send, encode_frame, msgpack packb)", lambda f: f.startswith("frontier/wire/codec.py:encode")
     or f.startswith("frontier/wire/connection.py:Connection.send") or f.endswith(":packb")),
    ("routing (exchange: dispatch, pending, timers)", lambda f: f.startswith("frontier/exchange/")),
    ("session queueing (Session.send/_queue/_schedule_flush)", lambda f: f.startswith("frontier/sessions/")),
    ("metrics", lambda f: f.startswith("frontier/metrics")),
]


def categories(path: Path) -> list[tuple[str, float]]:
    """Share of busy samples per cost category (self time; an event constructor or a
    msgpack call is charged to the function that called it)."""
    counts: Counter = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        n = int(count)
        samples += n
        i = len(frames) - 1
        while i > 0 and (frames[i].startswith("<string>:") or frames[i].endswith((":unpackb", ":Enum.__hash__"))):
            i -= 1  # dataclass __init__, msgpack: charge the caller
        frame = frames[i]
        for name, match in _CATEGORIES:
            if match(frame):
                counts[name] += n
                break
        else:
            counts["other: " + frame] += n
    if not samples:
        return []
    merged: Counter = Counter()
    for name, n in counts.items():
        merged["other" if name.startswith("other: ") and n / samples < 0.01 else name] += n
    return [(name, 100 * n / samples) for name, n in merged.most_common()]


def summary(path: Path, top: int = 25) -> str:
    """A text table of the hottest functions in ``path``."""
    own, total, samples = load(path)
    if not samples:
        return f"{path}: no samples"
    lines = [f"{samples} samples (gateway busy time only); by cost category (self time):"]
    for name, pct in categories(path):
        lines.append(f"  {pct:5.1f}%  {name}")
    lines.append("hottest functions, self % / total %:")
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
