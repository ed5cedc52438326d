"""Port forward, edge side: expose a TCP port of this machine (or its network) to
services, over frontier streams. Every stream a service opens to this edge becomes
one TCP connection to ``--target``.

    python sdk/examples/port_forward/expose.py --target 127.0.0.1:8080 --edge-id 9101

The edge dials out to the gateway, so the port needs no inbound firewall rule, public
address or VPN: the service side (``forward.py``) reaches it through the gateway.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading

from frontier.sdk import ConnectionClosed, Edge, FrontierError, Stream
from frontier.sdk.transport import parse_address

from splice import splice


def serve(stream: Stream, target: tuple[str, int]) -> None:
    """Connect the stream to a fresh connection to ``target``."""
    try:
        sock = socket.create_connection(target, timeout=10)
    except OSError as exc:
        print(f"cannot reach {target[0]}:{target[1]} for service {stream.service or '?'}: {exc}", flush=True)
        stream.close()
        return
    sock.settimeout(None)
    up, down = splice(sock, stream)
    print(f"connection closed: {up} bytes to the service, {down} bytes from it", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="expose a local TCP port over frontier streams (edge side)")
    parser.add_argument("--edge-addr", default="127.0.0.1:30012", help="the gateway's edge address")
    parser.add_argument("--edge-id", type=int, default=None, help="the id to ask for (default: the gateway picks)")
    parser.add_argument("--target", required=True, help="host:port each stream is connected to")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    target = parse_address(args.target)

    try:
        edge = Edge(args.edge_addr, meta=f"expose {args.target}".encode(), edge_id=args.edge_id, timeout=10)
    except FrontierError as exc:
        print(f"cannot connect to the gateway at {args.edge_addr}: {exc}", file=sys.stderr)
        return 1
    print(f"exposing {args.target} as edge {edge.edge_id}", flush=True)
    try:
        while True:
            stream = edge.accept_stream()
            threading.Thread(target=serve, args=(stream, target), daemon=True).start()
    except (ConnectionClosed, KeyboardInterrupt):
        return 0
    finally:
        edge.close()


if __name__ == "__main__":
    sys.exit(main())
