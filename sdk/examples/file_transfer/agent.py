"""File transfer, edge side: serve the files under ``--root`` to services that pull
them over streams (and list them over RPC).

    python sdk/examples/file_transfer/agent.py --root /var/log --edge-id 9001

A pull is one stream the service opens to this edge:

1. the service sends one JSON line: ``{"path": "relative/path"}``;
2. the agent answers one JSON line, ``{"size": N}`` or ``{"error": "why"}``;
3. then exactly N bytes of the file, then one JSON line ``{"sha256": "<hex>"}``;
4. the agent ends its side (``shutdown_write``).

Paths are relative to ``--root``; anything resolving outside it is refused. The
``list`` RPC answers ``[{"path", "size"}, ...]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from frontier.sdk import ConnectionClosed, Edge, FrontierError, Stream

CHUNK = 1 << 16


class FileServer:
    """Answers pulls and listings for the files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, relative: str) -> Path:
        """The file ``relative`` names under the root; ``ValueError`` if it escapes it."""
        path = (self.root / relative).resolve()
        if path != self.root and self.root not in path.parents:
            raise ValueError(f"{relative!r} is outside the shared directory")
        if not path.is_file():
            raise ValueError(f"{relative!r} is not a file")
        return path

    def list(self, req: Any) -> bytes:
        files = [{"path": str(p.relative_to(self.root)), "size": p.stat().st_size}
                 for p in sorted(self.root.rglob("*")) if p.is_file()]
        return json.dumps(files).encode()

    def serve(self, stream: Stream) -> None:
        """One pull (see the module docstring)."""
        with stream:
            try:
                request = json.loads(stream.makefile("rb").readline(4096))
                path = self.resolve(str(request["path"]))
                size = path.stat().st_size
            except (ValueError, KeyError, OSError) as exc:
                stream.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
                stream.shutdown_write()
                print(f"refused a pull from {stream.service or 'a service'}: {exc}", flush=True)
                return
            stream.sendall(json.dumps({"size": size}).encode() + b"\n")
            digest, sent = hashlib.sha256(), 0
            with open(path, "rb") as f:
                while sent < size:
                    chunk = f.read(min(CHUNK, size - sent))
                    if not chunk:
                        raise OSError(f"{path} shrank while being sent")
                    digest.update(chunk)
                    stream.sendall(chunk)  # blocks while the puller's window is full
                    sent += len(chunk)
            stream.sendall(json.dumps({"sha256": digest.hexdigest()}).encode() + b"\n")
            stream.shutdown_write()
            print(f"sent {path.relative_to(self.root)} ({size} bytes)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="file transfer agent (edge side)")
    parser.add_argument("--edge-addr", default="127.0.0.1:30012", help="the gateway's edge address")
    parser.add_argument("--edge-id", type=int, default=None, help="the id to ask for (default: the gateway picks)")
    parser.add_argument("--root", default=".", help="the directory whose files may be pulled")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    server = FileServer(Path(args.root))
    try:
        edge = Edge(args.edge_addr, meta=b"file-agent", edge_id=args.edge_id, timeout=10)
    except FrontierError as exc:
        print(f"cannot connect to the gateway at {args.edge_addr}: {exc}", file=sys.stderr)
        return 1
    edge.register("list", server.list)
    print(f"file agent {edge.edge_id} serving {server.root}", flush=True)
    try:
        while True:
            stream = edge.accept_stream()
            threading.Thread(target=_serve, args=(server, stream), daemon=True).start()
    except (ConnectionClosed, KeyboardInterrupt):
        return 0
    finally:
        edge.close()


def _serve(server: FileServer, stream: Stream) -> None:
    try:
        server.serve(stream)
    except (FrontierError, OSError) as exc:
        print(f"pull on stream {stream.stream_id} failed: {exc}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
