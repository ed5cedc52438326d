"""A demo edge for the Django project: uses everything ``manage.py frontier_service``
offers, then serves ``echo``/``status`` and prints what is published to it.

    python sdk/examples/django_project/device.py --edge-id 8001 [--upload some.log]

On connect it calls ``config`` and ``report``, publishes one ``telemetry`` message
and, with ``--upload FILE``, sends the file over a stream to the worker service.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from frontier.sdk import ConnectionClosed, Edge, FrontierError


def upload(edge: Edge, service: str, path: str) -> dict:
    """Send ``path`` over a stream to ``service``; return its JSON answer."""
    size = os.path.getsize(path)
    with edge.open_stream(service) as stream:
        stream.sendall(json.dumps({"name": os.path.basename(path), "size": size}).encode() + b"\n")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 16):
                stream.sendall(chunk)
        stream.shutdown_write()
        return json.loads(stream.makefile("rb").readline())


def main() -> int:
    parser = argparse.ArgumentParser(description="demo edge for the Django example")
    parser.add_argument("--edge-addr", default="127.0.0.1:30012", help="the gateway's edge address")
    parser.add_argument("--edge-id", type=int, default=None, help="the id to ask for (default: the gateway picks)")
    parser.add_argument("--meta", default="django-device", help="meta services see in hooks")
    parser.add_argument("--service", default="django-worker", help="the worker service's name (for --upload)")
    parser.add_argument("--upload", metavar="FILE", help="upload FILE over a stream once connected")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    try:
        edge = Edge(args.edge_addr, meta=args.meta.encode(), edge_id=args.edge_id, timeout=10)
    except FrontierError as exc:
        print(f"cannot connect to the gateway at {args.edge_addr}: {exc}", file=sys.stderr)
        return 1
    edge.register("echo", lambda req: req.data)
    edge.register("status", lambda req: json.dumps({"pid": os.getpid(), "meta": args.meta}).encode())
    print(f"device {edge.edge_id} online", flush=True)
    try:
        print(f"config: {edge.call('config', b'').decode()}", flush=True)
        reading = {"temperature": 21.5, "at": int(time.time())}
        print(f"report answer: {edge.call('report', json.dumps(reading).encode()).decode()}", flush=True)
        edge.publish("telemetry", b"battery=87%")
        print("telemetry sent", flush=True)
        if args.upload:
            print(f"upload answer: {json.dumps(upload(edge, args.service, args.upload))}", flush=True)
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
