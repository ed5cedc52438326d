"""A service or edge in its own process, so a test can SIGKILL it mid-call.

    python -m tests.e2e.proc_peer service ADDR [--name N] [--sleep SECONDS]
    python -m tests.e2e.proc_peer edge ADDR [--edge-id ID] [--sleep SECONDS]

Both register ``sleep`` (a handler that prints ``HANDLING`` then sleeps) and ``echo``,
print ``READY <id>`` once connected, and then wait until killed or stdin closes.
"""

from __future__ import annotations

import argparse
import sys
import time

from frontier.sdk import Edge, Service


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("service", "edge"))
    parser.add_argument("addr")
    parser.add_argument("--name", default="proc-peer")
    parser.add_argument("--edge-id", type=int, default=None)
    parser.add_argument("--sleep", type=float, default=60.0)
    args = parser.parse_args()

    if args.role == "service":
        client = Service(args.addr, name=args.name, timeout=10.0, reconnect=False)
        ident = client.service_id
    else:
        client = Edge(args.addr, edge_id=args.edge_id, timeout=10.0, reconnect=False)
        ident = client.edge_id

    def sleeper(req):
        print("HANDLING", flush=True)
        time.sleep(args.sleep)
        return b"slept"

    client.register("sleep", sleeper)
    client.register("echo", lambda req: req.data)
    print(f"READY {ident}", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)
    client.close()


if __name__ == "__main__":
    main()
