"""Chatroom service: the backend of a tiny chat built on frontier.

It numbers the agents that connect (``get_edge_id``), admits each username once
(``edge_online`` refuses a name already in the room), tells everyone else when
somebody joins or leaves, and relays every line an agent publishes on topic ``chatroom`` to
all the other agents. Run it next to a gateway, then start agents::

    python sdk/examples/chatroom/service.py [--service-addr 127.0.0.1:30011]
    python sdk/examples/chatroom/agent.py --name alice [--edge-addr 127.0.0.1:30012]

Messages to agents are JSON: ``{"kind": "chat"|"notice", "user": ..., "text": ...}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from frontier.sdk import ConnectionClosed, FrontierError, Service

TOPIC = "chatroom"


class Chatroom:
    """Who is in the room (edge id -> username), and fan-out to them."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.users: dict[int, str] = {}
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        # publishes wait for each agent's ack: send them from a pool, never from a hook
        self.fanout = ThreadPoolExecutor(max_workers=16, thread_name_prefix="chatroom-fanout")

    # -- hooks (run by the gateway while an agent connects or after it left) ---------------

    def get_edge_id(self, meta: bytes) -> int:
        return next(self.ids)

    def edge_online(self, edge_id: int, meta: bytes, addr: str) -> None:
        name = meta.decode("utf-8", "replace").strip() or f"guest-{edge_id}"
        with self.lock:
            if name in self.users.values():
                print(f"> refused {name!r} from {addr}: the name is taken", flush=True)
                raise ValueError(f"user {name!r} is already in the room")
            self.users[edge_id] = name
        print(f"> {name} joined from {addr}", flush=True)
        self.broadcast({"kind": "notice", "user": name, "text": f"{name} joined"}, exclude=edge_id)

    def edge_offline(self, edge_id: int, meta: bytes, addr: str) -> None:
        with self.lock:
            name = self.users.pop(edge_id, None)
        if name is not None:
            print(f"> {name} left", flush=True)
            self.broadcast({"kind": "notice", "user": name, "text": f"{name} left"})

    # -- relaying --------------------------------------------------------------------------

    def broadcast(self, payload: dict, *, exclude: int | None = None) -> None:
        """Publish ``payload`` to every agent in the room except ``exclude``."""
        data = json.dumps(payload).encode()
        with self.lock:
            targets = [edge_id for edge_id in self.users if edge_id != exclude]
        for edge_id in targets:
            self.fanout.submit(self._deliver, edge_id, data)

    def _deliver(self, edge_id: int, data: bytes) -> None:
        try:
            self.svc.publish(edge_id, data, topic=TOPIC, timeout=5.0)
        except FrontierError as exc:  # gone meanwhile, or too slow: the room goes on
            logging.getLogger("chatroom").info("could not deliver to edge %d: %s", edge_id, exc)

    def serve(self) -> None:
        """Relay every message an agent publishes to all the others, until closed."""
        while True:
            try:
                msg = self.svc.receive()
            except ConnectionClosed:
                return
            msg.done()
            with self.lock:
                name = self.users.get(msg.edge_id, "unknown")
            text = msg.data.decode("utf-8", "replace")
            print(f"[{name}] {text}", flush=True)
            self.broadcast({"kind": "chat", "user": name, "text": text}, exclude=msg.edge_id)


def main() -> int:
    parser = argparse.ArgumentParser(description="frontier chatroom service")
    parser.add_argument("--service-addr", default="127.0.0.1:30011", help="the gateway's service address")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    try:
        svc = Service(args.service_addr, name="chatroom", topics=[TOPIC])
    except FrontierError as exc:
        print(f"cannot connect to the gateway at {args.service_addr}: {exc}", file=sys.stderr)
        return 1
    room = Chatroom(svc)
    svc.register_get_edge_id(room.get_edge_id)
    svc.register_edge_online(room.edge_online)
    svc.register_edge_offline(room.edge_offline)
    print(f"chatroom service ready on {args.service_addr}", flush=True)
    try:
        room.serve()
    except KeyboardInterrupt:
        pass
    finally:
        svc.close()
        room.fanout.shutdown(wait=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
