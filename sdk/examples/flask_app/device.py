"""A demo edge for the Flask app: serves ``echo`` and ``status``, prints what is
published to it, and can call the app's ``greet`` method.

    python sdk/examples/flask_app/device.py --edge-id 7001 --meta sensor-1 [--greet]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from frontier.sdk import ConnectionClosed, Edge, FrontierError

STARTED = time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description="demo edge for the Flask example")
    parser.add_argument("--edge-addr", default="127.0.0.1:30012", help="the gateway's edge address")
    parser.add_argument("--edge-id", type=int, default=None, help="the id to ask for (default: the gateway picks)")
    parser.add_argument("--meta", default="demo-device", help="meta services see in hooks")
    parser.add_argument("--greet", action="store_true", help="call the app's greet method once connected")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    try:
        edge = Edge(args.edge_addr, meta=args.meta.encode(), edge_id=args.edge_id, timeout=10)
    except FrontierError as exc:
        print(f"cannot connect to the gateway at {args.edge_addr}: {exc}", file=sys.stderr)
        return 1
    edge.register("echo", lambda req: req.data)
    edge.register("status", lambda req: json.dumps({"pid": os.getpid(), "uptime": round(time.time() - STARTED, 3),
                                                    "meta": args.meta}).encode())
    print(f"device {edge.edge_id} online", flush=True)
    if args.greet:
        print(f"greet: {edge.call('greet', args.meta.encode()).decode()}", flush=True)
    try:
        while True:
            msg = edge.receive()
            print(f"message topic={msg.topic!r} data={msg.data.decode('utf-8', 'replace')}", flush=True)
            msg.done()
    except (ConnectionClosed, KeyboardInterrupt):
        return 0
    finally:
        edge.close()


if __name__ == "__main__":
    sys.exit(main())
