"""File transfer, service side: pull a file from an edge over a stream, with a
progress bar, and check its SHA-256.

    python sdk/examples/file_transfer/pull.py --edge-id 9001 app/today.log ./today.log
    python sdk/examples/file_transfer/pull.py --edge-id 9001 --list

Exit status: 0 when the file arrived whole and its checksum matches, 1 otherwise
(the partial file is removed). The protocol is in ``agent.py``'s docstring.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from frontier.sdk import FrontierError, Service

CHUNK = 1 << 16


class ProgressBar:
    """``[#######.............]  35%  1.8/5.0 MiB  12.4 MiB/s`` on a terminal (redrawn
    in place); one line per quarter otherwise, so logs stay readable."""

    def __init__(self, total: int, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.out, self.width = total, out, width
        self.done = 0
        self.started = time.monotonic()
        self.tty = out.isatty()
        self._last_quarter = -1
        self._last_draw = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._last_draw = now
                self.out.write("\r" + self.line())
                self.out.flush()
        else:
            quarter = 4 * self.done // self.total if self.total else 4
            if quarter != self._last_quarter:
                self._last_quarter = quarter
                self.out.write(self.line() + "\n")
                self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\r" + self.line() + "\n")
            self.out.flush()

    def line(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.width * fraction)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        mib = 1 << 20
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%}  "
                f"{self.done / mib:.1f}/{self.total / mib:.1f} MiB  {self.done / mib / elapsed:.1f} MiB/s")


class PullError(Exception):
    """The agent refused, or the transfer broke or did not check out."""


def pull(svc: Service, edge_id: int, remote: str, local: Path, *, progress: bool = True, timeout: float = 30.0) -> str:
    """Pull ``remote`` from edge ``edge_id`` into ``local``; return its SHA-256."""
    stream = svc.open_stream(edge_id, timeout=timeout)
    stream.settimeout(timeout)  # per recv: a silent agent fails the pull instead of hanging it
    tmp = local.with_name(local.name + ".part")
    try:
        with stream:
            stream.sendall(json.dumps({"path": remote}).encode() + b"\n")
            reader = stream.makefile("rb")
            header = json.loads(reader.readline(4096) or b"{}")
            if "error" in header:
                raise PullError(f"the agent refused: {header['error']}")
            size = int(header["size"])
            bar = ProgressBar(size) if progress else None
            digest, left = hashlib.sha256(), size
            with open(tmp, "wb") as out:
                while left:
                    chunk = reader.read1(min(CHUNK, left))
                    if not chunk:
                        raise PullError(f"the stream ended {left} bytes short")
                    digest.update(chunk)
                    out.write(chunk)
                    left -= len(chunk)
                    if bar:
                        bar.update(len(chunk))
            if bar:
                bar.finish()
            trailer = json.loads(reader.readline(4096) or b"{}")
            if trailer.get("sha256") != digest.hexdigest():
                raise PullError(f"checksum mismatch: got {digest.hexdigest()}, the agent sent {trailer.get('sha256')}")
        os.replace(tmp, local)
        return digest.hexdigest()
    finally:
        tmp.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="pull a file from an edge over a frontier stream")
    parser.add_argument("--service-addr", default="127.0.0.1:30011", help="the gateway's service address")
    parser.add_argument("--edge-id", type=int, required=True, help="the edge running agent.py")
    parser.add_argument("--list", action="store_true", help="list the agent's files instead")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("remote", nargs="?", help="path on the edge, relative to its --root")
    parser.add_argument("local", nargs="?", help="where to save it (default: its file name, here)")
    args = parser.parse_args()
    if not args.list and not args.remote:
        parser.error("give a remote path, or --list")

    try:
        svc = Service(args.service_addr, name="file-puller", timeout=30)
    except FrontierError as exc:
        print(f"cannot connect to the gateway at {args.service_addr}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.list:
            for entry in json.loads(svc.call(args.edge_id, "list", b"")):
                print(f"{entry['size']:>12}  {entry['path']}")
            return 0
        local = Path(args.local or Path(args.remote).name)
        started = time.monotonic()
        sha = pull(svc, args.edge_id, args.remote, local, progress=not args.no_progress)
        size = local.stat().st_size
        print(f"saved {local} ({size} bytes, sha256 {sha}) in {time.monotonic() - started:.2f}s")
        return 0
    except (FrontierError, PullError, OSError, ValueError) as exc:
        print(f"pull failed: {exc}", file=sys.stderr)
        return 1
    finally:
        svc.close()


if __name__ == "__main__":
    sys.exit(main())
