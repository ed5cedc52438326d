"""A user-space stand-in for ``tc netem`` on kernels built without it.

``python -m tests.faults.linkshaper BRIDGE_TAP NODE_NETNS NODE_TAP`` (run inside the
bridge's namespace) joins two TAP devices: ``BRIDGE_TAP`` (a bridge port) and
``NODE_TAP`` (the node's ``eth0``, opened in namespace ``NODE_NETNS``). Frames go
through unchanged until a JSON line on stdin sets ``{"delay_ms": D, "loss": P}``:
then each frame the node sends is dropped with probability ``P`` or delivered ``D``
ms later, in order, exactly as netem on the node's egress would. Each pass handles
a bounded batch of frames per direction. It exits when stdin closes.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import random
import select
import struct
import sys
import time

from tests.faults.netns import enter_netns

_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
#: frames read per device per pass
BATCH = 64


def open_tap(name: str) -> int:
    """A file descriptor attached to the existing TAP device ``name`` in this namespace."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TAP | _IFF_NO_PI))
    return fd


def main(argv: list[str]) -> None:
    bridge_tap, node_netns, node_tap = argv
    outer = open_tap(bridge_tap)
    enter_netns(node_netns)
    inner = open_tap(node_tap)
    delay, loss = 0.0, 0.0
    pending: collections.deque[tuple[float, bytes]] = collections.deque()  # node -> bridge, delayed
    stdin = sys.stdin.fileno()
    while True:
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else 1.0
        ready, _, _ = select.select([outer, inner, stdin], [], [], timeout)
        if stdin in ready:
            line = sys.stdin.readline()
            if not line:
                return
            settings = json.loads(line)
            delay, loss = settings["delay_ms"] / 1000.0, float(settings["loss"])
        if outer in ready:
            for _ in range(BATCH):
                try:
                    frame = os.read(outer, 65536)
                except BlockingIOError:
                    break
                _write(inner, frame)
        if inner in ready:
            now = time.monotonic()
            for _ in range(BATCH):
                try:
                    frame = os.read(inner, 65536)
                except BlockingIOError:
                    break
                if loss and random.random() < loss:
                    continue
                pending.append((now + delay, frame))
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _write(outer, pending.popleft()[1])


def _write(fd: int, frame: bytes) -> None:
    try:
        os.write(fd, frame)
    except (BlockingIOError, OSError):
        pass  # a full queue or a down link drops the frame, as a wire would


if __name__ == "__main__":
    main(sys.argv[1:])
