"""Port forward, service side: listen on a local port and carry every connection to
an edge running ``expose.py``, over a frontier stream (like ``ssh -L``).

    python sdk/examples/port_forward/forward.py --edge-id 9101 --listen 127.0.0.1:9000
    curl http://127.0.0.1:9000/        # answered by the edge's 127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading

from frontier.sdk import FrontierError, Service
from frontier.sdk.transport import parse_address

from splice import splice


def handle(svc: Service, edge_id: int, client: socket.socket, peer: tuple) -> None:
    """One local connection: a stream to the edge, then bytes both ways."""
    try:
        stream = svc.open_stream(edge_id, timeout=10)
    except FrontierError as exc:
        print(f"{peer[0]}:{peer[1]}: cannot open a stream to edge {edge_id}: {exc}", flush=True)
        client.close()
        return
    up, down = splice(client, stream)
    print(f"{peer[0]}:{peer[1]}: {up} bytes to the edge, {down} bytes back", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="forward a local port to an edge over frontier streams (service side)")
    parser.add_argument("--service-addr", default="127.0.0.1:30011", help="the gateway's service address")
    parser.add_argument("--edge-id", type=int, required=True, help="the edge running expose.py")
    parser.add_argument("--listen", default="127.0.0.1:9000", help="local host:port to accept connections on")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    try:
        svc = Service(args.service_addr, name="port-forward", timeout=10)
    except FrontierError as exc:
        print(f"cannot connect to the gateway at {args.service_addr}: {exc}", file=sys.stderr)
        return 1
    listener = socket.create_server(parse_address(args.listen), backlog=128)
    host, port = listener.getsockname()[:2]
    print(f"forwarding {host}:{port} -> edge {args.edge_id}", flush=True)
    try:
        while True:
            client, peer = listener.accept()
            threading.Thread(target=handle, args=(svc, args.edge_id, client, peer), daemon=True).start()
    except KeyboardInterrupt:
        return 0
    finally:
        listener.close()
        svc.close()


if __name__ == "__main__":
    sys.exit(main())
