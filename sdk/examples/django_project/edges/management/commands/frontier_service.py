"""``manage.py frontier_service``: the long-lived service side of the project.

It connects as ``FRONTIER['WORKER_SERVICE_NAME']`` and, until SIGTERM or Ctrl-C:

- serves RPCs edges call: ``config`` (this edge's settings, JSON) and ``report``
  (a JSON reading; answered with how many readings that edge sent so far);
- receives the messages edges publish to ``FRONTIER['TOPICS']`` and acks them;
- hears edges come and go (``edge_online`` / ``edge_offline`` hooks);
- accepts streams edges open to it: each carries one file upload, stored under
  ``FRONTIER['UPLOAD_DIR']/<edge_id>/`` and answered with its size and SHA-256.

Run one (or a few: the gateway spreads edges over them by ``exchange.hashby``) next
to the web processes, e.g. as its own container or systemd unit.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from frontier.sdk import ConnectionClosed, FrontierError, Message, Service, Stream

#: largest upload accepted, in bytes
MAX_UPLOAD = 1 << 30


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the frontier service side: RPCs, topics, edge hooks and upload streams, until SIGTERM."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--handler-threads", type=int, default=32, help="threads running RPC handlers and hooks")

    def handle(self, *args: Any, **options: Any) -> None:
        conf = settings.FRONTIER
        self.upload_dir = Path(conf["UPLOAD_DIR"])
        self.reports: Counter[int] = Counter()
        self.lock = threading.Lock()
        try:
            svc = Service(conf["SERVICE_ADDR"], name=conf["WORKER_SERVICE_NAME"], topics=conf["TOPICS"],
                          timeout=conf["TIMEOUT"], handler_threads=options["handler_threads"])
        except FrontierError as exc:
            raise CommandError(f"cannot connect to the gateway at {conf['SERVICE_ADDR']}: {exc}") from exc
        svc.register("config", lambda req: json.dumps(conf["EDGE_CONFIG"]).encode())
        svc.register("report", self.report)
        svc.register_edge_online(self.edge_online)
        svc.register_edge_offline(self.edge_offline)
        signal.signal(signal.SIGTERM, _interrupt)  # stop as Ctrl-C does
        threading.Thread(target=self.accept_streams, args=(svc,), name="uploads", daemon=True).start()
        self.say(f"frontier service {conf['WORKER_SERVICE_NAME']!r} ready on {conf['SERVICE_ADDR']} "
                 f"(service id {svc.service_id}, topics {', '.join(conf['TOPICS'])})")
        try:
            while True:
                try:
                    msg = svc.receive()
                except ConnectionClosed:
                    break
                self.on_message(msg)
        except KeyboardInterrupt:
            pass
        finally:
            svc.close()
        self.say("frontier service stopped")

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    # -- RPCs and hooks (run on the SDK's handler threads) -----------------------------------------

    def report(self, req: Any) -> bytes:
        reading = json.loads(req.data)  # a ValueError reaches the edge as RemoteError
        with self.lock:
            self.reports[req.edge_id] += 1
            n = self.reports[req.edge_id]
        self.say(f"report from edge {req.edge_id}: {json.dumps(reading, sort_keys=True)}")
        return json.dumps({"stored": n}).encode()

    def edge_online(self, edge_id: int, meta: bytes, addr: str) -> None:
        self.say(f"edge {edge_id} online ({meta.decode('utf-8', 'replace')}) from {addr}")

    def edge_offline(self, edge_id: int, meta: bytes, addr: str) -> None:
        self.say(f"edge {edge_id} offline")

    # -- topics ----------------------------------------------------------------------------------------

    def on_message(self, msg: Message) -> None:
        self.say(f"{msg.topic} from edge {msg.edge_id}: {msg.data.decode('utf-8', 'replace')}")
        msg.done()  # the edge's publish() returns now; msg.error("why") would make it raise

    # -- streams ---------------------------------------------------------------------------------------

    def accept_streams(self, svc: Service) -> None:
        while True:
            try:
                stream = svc.accept_stream()
            except ConnectionClosed:
                return
            threading.Thread(target=self.receive_upload, args=(stream,), name=f"upload-{stream.stream_id}",
                             daemon=True).start()

    def receive_upload(self, stream: Stream) -> None:
        """One upload: a JSON header line ``{"name", "size"}``, the bytes, then our
        JSON answer ``{"saved", "bytes", "sha256"}`` (or ``{"error"}``)."""
        with stream:
            try:
                reader = stream.makefile("rb")
                header = json.loads(reader.readline(4096))
                name, size = Path(str(header["name"])).name, int(header["size"])
                if not name or not 0 <= size <= MAX_UPLOAD:
                    raise ValueError(f"bad upload header {header!r}")
                target = self.upload_dir / str(stream.edge_id) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest, left = hashlib.sha256(), size
                with open(target, "wb") as out:
                    while left:
                        chunk = reader.read(min(left, 1 << 16))
                        if not chunk:
                            raise ValueError(f"the stream ended {left} bytes short")
                        digest.update(chunk)
                        out.write(chunk)
                        left -= len(chunk)
                answer = {"saved": str(target), "bytes": size, "sha256": digest.hexdigest()}
                self.say(f"upload from edge {stream.edge_id}: {name} ({size} bytes, sha256 {answer['sha256']})")
            except (ValueError, KeyError, OSError) as exc:
                answer = {"error": str(exc)}
                self.say(f"upload from edge {stream.edge_id} failed: {exc}")
            except FrontierError as exc:
                print(f"upload from edge {stream.edge_id} broke: {exc}", file=sys.stderr)
                return
            stream.sendall(json.dumps(answer).encode() + b"\n")
            stream.shutdown_write()
