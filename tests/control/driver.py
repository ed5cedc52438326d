"""Runs a real ControlPlane in a monkey-patched process, for the tests to hit over the network.

    python tests/control/driver.py --backend sqlite3 [--tokens a,b] [--ready-file F] [--kick-log F]

Patches gevent, inits gRPC's gevent mode (as the gateway does), fills a store with
``cp_records.EDGES``/``cp_records.SERVICES``, and prints ``PORT <n>`` once serving. Its
kicker removes the record from the store (the gateway's offline path) and appends
``edge <id>`` / ``service <id>`` to the kick log. SIGTERM stops it cleanly; it also
exits when its parent dies.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import grpc.experimental.gevent  # noqa: E402

grpc.experimental.gevent.init_gevent()
gevent.get_hub().threadpool.maxsize = 100

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), HERE]

from cp_records import EDGES, SERVICES  # noqa: E402

from frontier.control.server import ControlPlane  # noqa: E402
from frontier.control.store import make_store  # noqa: E402
from frontier.sessions.bans import EdgeBans  # noqa: E402


class RecordingKicker:
    """Kicks by taking the record offline in the store, and logs each kick."""

    def __init__(self, store, log_path):
        self.store = store
        self.log_path = log_path
        self.bans = EdgeBans()

    def _log(self, line):
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(line + "\n")

    def kick_edge(self, edge_id, reconnect=True):
        info = self.store.get_edge(edge_id)
        self._log(f"edge {edge_id}" + ("" if reconnect else " for good"))
        if info is None:
            return False
        self.store.edge_offline(info)
        return True

    def kick_service(self, service_id, reconnect=True):
        info = self.store.get_service(service_id)
        self._log(f"service {service_id}" + ("" if reconnect else " for good"))
        if info is None:
            return False
        self.store.service_offline(info)
        return True

    # bans: the gateway's own list (frontier.sessions.bans), logged like kicks
    def ban_edge(self, edge_id, seconds, reason=""):
        ban = self.bans.add(edge_id, seconds, reason)
        self._log(f"ban {edge_id} {seconds:g}")
        return ban

    def lift_ban(self, edge_id):
        return self.bans.lift(edge_id)

    def list_bans(self):
        return self.bans.active()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="buntdb")
    parser.add_argument("--tokens", default="")
    parser.add_argument("--ready-file", default="")
    parser.add_argument("--kick-log", default="")
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args()

    store = make_store(args.backend)
    for e in EDGES:
        store.edge_online(e)
    for s in SERVICES:
        store.service_online(s)
    ready = (lambda: os.path.exists(args.ready_file)) if args.ready_file else (lambda: True)
    cp = ControlPlane(
        listen=args.listen,
        store=store,
        kicker=RecordingKicker(store, args.kick_log),
        bearer_tokens=[t for t in args.tokens.split(",") if t],
        ready=ready,
    )
    cp.health_interval = 0.1
    cp.start()
    print(f"PORT {cp.address[1]}", flush=True)

    done = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, done.set)
    parent = os.getppid()
    while not done.wait(0.5):
        if os.getppid() != parent:
            break
    cp.stop()
    print("STOPPED", flush=True)


if __name__ == "__main__":
    main()
