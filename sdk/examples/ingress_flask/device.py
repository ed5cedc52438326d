"""A device's local web UI (a Flask app on 127.0.0.1:8080) and the edge that exposes
it to the gateway's HTTP ingress, in one process::

    python device.py --gateway 127.0.0.1:30012 --edge-id 42

then open http://42.edges.localhost:30080/ in a browser. The app listens on the
loopback only: nothing on the device is opened to the network, and the gateway can
reach this one app and nothing else (``expose`` is an allow-list).
"""

from __future__ import annotations

import argparse
import threading

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from frontier.sdk import Edge

app = Flask("device-ui")


@app.get("/")
def index() -> str:
    return ("<!doctype html><title>device</title><h1>Hello from the device</h1>"
            f"<p>You came through the gateway from {request.headers.get('X-Forwarded-For', '?')}.</p>")


@app.get("/api/status")
def status() -> object:
    return jsonify(ok=True, host=request.headers.get("X-Forwarded-Host"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="127.0.0.1:30012", help="the gateway's edge listener")
    parser.add_argument("--edge-id", type=int, default=42)
    parser.add_argument("--port", type=int, default=8080, help="the local web UI's port (loopback only)")
    args = parser.parse_args()
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    edge = Edge(args.gateway, edge_id=args.edge_id, expose={"ui": f"127.0.0.1:{args.port}"})
    print(f"edge {edge.edge_id} online; open http://{edge.edge_id}.edges.localhost:30080/", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        edge.close()
        server.shutdown()


if __name__ == "__main__":
    main()
