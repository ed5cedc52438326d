"""The steady mixed load of a fault scenario, run inside a client namespace.

``python -m tests.faults.load CONFIG_JSON`` starts one :class:`ClusterService`
(``loadsvc``) and a few :class:`ClusterEdge` s with fixed ids, then keeps a mix of
operations going both ways until its stdin closes:

* ``svc_call`` / ``edge_call``: an RPC whose handler records its effect;
* ``svc_publish`` / ``edge_publish``: an acked publish whose receiver records it
  before ``done()``;
* ``svc_stream`` / ``edge_stream``: a stream carrying random bytes; the acceptor
  records the SHA-256 it read and sends it back, the opener compares;
* ``probe``: a short call to each edge every 0.3 s (how fast each is routable again).

A driver is either a service host (``"service": true``: ``svc_*`` operations and
probes) or an edge host (its ``edges``: ``edge_*`` operations).

Every operation's ``start`` (with its deadline) and ``end`` (ok, or the error's
class and whether it is a :class:`FrontierError`) and every receiver's ``effect``
go to a JSON-lines history, one line written and flushed at a time. On stdin EOF
the workers stop, in-flight operations finish, and the process exits. A line
``place EDGE_ID HOST:PORT`` on stdin moves one of its edges to that frontier (the
harness spreads the edges over the frontiers before each scenario).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import random
import struct
import sys
import threading
import time
from typing import Any, Callable

from frontier.sdk import ClusterEdge, ClusterService
from frontier.sdk.errors import FrontierError

#: seconds an operation may take (its deadline); probes get less
OP_TIMEOUT = 3.0
PROBE_TIMEOUT = 1.0
#: seconds between two probes of one edge
PROBE_PAUSE = 0.3
#: bytes a stream carries
STREAM_BYTES = 48 * 1024
KINDS = ("svc_call", "svc_publish", "svc_stream", "edge_call", "edge_publish", "edge_stream")


class History:
    """A JSON-lines file shared by this process's threads."""

    def __init__(self, path: str, tag: str) -> None:
        self._file = open(path, "a", buffering=1)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.tag = tag

    def new_op(self) -> str:
        return f"{self.tag}-{next(self._ids)}"

    def write(self, **record: Any) -> None:
        record["ts"] = time.time()
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _op_of(data: bytes) -> str:
    return json.loads(data)["op"]


class LoadNode:
    """One client namespace's service, edges and workers."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.history = History(cfg["history"], cfg["tag"])
        self.stop = threading.Event()
        self.all_edges: list[int] = list(cfg["all_edges"])
        self.threads: list[threading.Thread] = []
        self.svc: ClusterService | None = None
        if cfg["service"]:
            self.svc = ClusterService(cfg["frontlas"], name="loadsvc", topics=["up"], timeout=OP_TIMEOUT,
                                      refresh_interval=cfg.get("refresh_interval", 2.0))
            self.svc.register("echo", self._handler(cfg["tag"]))
            self._receivers(self.svc, cfg["tag"])
        self.edges: list[ClusterEdge] = [self._start_edge(eid) for eid in cfg["edges"]]

    def _start_edge(self, eid: int, frontier_addr: str | None = None) -> ClusterEdge:
        """Edge ``eid`` with its handler and receivers; on ``frontier_addr`` if given
        (a ClusterEdge picks a random frontier: a few tries)."""
        for _ in range(30):
            edge = self._connect_edge(eid)
            if frontier_addr is None or edge.frontier_addr == frontier_addr:
                break
            edge.close()
        edge.register("echo", self._handler(f"edge{eid}"))
        self._receivers(edge, f"edge{eid}")
        return edge

    def place(self, eid: int, frontier_addr: str) -> None:
        """Move edge ``eid`` to the frontier whose edge address is ``frontier_addr``."""
        index = next(i for i, e in enumerate(self.edges) if e.edge_id == eid)
        self.edges[index].close()
        self.edges[index] = self._start_edge(eid, frontier_addr)

    def _connect_edge(self, eid: int) -> ClusterEdge:
        deadline = time.monotonic() + 30
        while True:
            try:
                return ClusterEdge(self.cfg["frontlas"], edge_id=eid, meta=f"edge-{eid}".encode(), timeout=OP_TIMEOUT)
            except FrontierError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _spawn(self, fn: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    # -- receivers: each records its effect before answering -------------------------------------

    def _handler(self, who: str) -> Callable[[Any], bytes]:
        def handle(req: Any) -> bytes:
            self.history.write(t="effect", op=_op_of(req.data), what="call", by=who)
            return req.data
        return handle

    def _receivers(self, client: Any, who: str) -> None:
        """Take ``client``'s messages and streams until it is closed or the load stops."""
        def on_message(msg: Any) -> None:
            self.history.write(t="effect", op=_op_of(msg.data), what="publish", by=who)
            msg.done()

        def on_stream(stream: Any) -> None:
            threading.Thread(target=self._serve_stream, args=(stream, who), daemon=True).start()

        self._spawn(self._take_loop, client, client.receive, on_message)
        self._spawn(self._take_loop, client, client.accept_stream, on_stream)

    def _take_loop(self, client: Any, take: Callable[..., Any], handle: Callable[[Any], None]) -> None:
        while not self.stop.is_set():
            try:
                item = take(timeout=0.5)
            except FrontierError:
                if client.closed:
                    return
                continue
            handle(item)

    def _serve_stream(self, stream: Any, who: str) -> None:
        stream.settimeout(OP_TIMEOUT)
        try:
            (size,) = struct.unpack(">I", stream.recv_exactly(4))
            op = _op_of(stream.recv_exactly(size))
            digest = hashlib.sha256()
            while True:
                chunk = stream.recv()
                if not chunk:
                    break
                digest.update(chunk)
            self.history.write(t="effect", op=op, what="stream", by=who, sha=digest.hexdigest())
            stream.sendall(digest.digest())
        except FrontierError:
            pass  # the opener sees its own error
        finally:
            stream.close()

    # -- operations ---------------------------------------------------------------------------

    def run_op(self, kind: str, timeout: float, fn: Callable[[str, float], Any], **fields: Any) -> None:
        """Run ``fn(op_id, timeout)`` and record its start and end."""
        op = self.history.new_op()
        self.history.write(t="start", op=op, kind=kind, deadline=timeout, **fields)
        try:
            extra = fn(op, timeout) or {}
        except FrontierError as exc:
            self.history.write(t="end", op=op, ok=False, error=type(exc).__name__, typed=True, msg=str(exc)[:200])
        except Exception as exc:  # recorded as untyped: a checker violation
            self.history.write(t="end", op=op, ok=False, error=type(exc).__name__, typed=False, msg=repr(exc)[:200])
        else:
            self.history.write(t="end", op=op, ok=True, **extra)

    def _payload(self, op: str) -> bytes:
        return json.dumps({"op": op}).encode()

    def _stream(self, opener: Callable[[float], Any], op: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        data = os.urandom(STREAM_BYTES)
        sha = hashlib.sha256(data).hexdigest()
        stream = opener(timeout)
        try:
            stream.settimeout(max(0.05, deadline - time.monotonic()))
            header = self._payload(op)
            stream.sendall(struct.pack(">I", len(header)) + header + data)
            stream.shutdown_write()
            stream.settimeout(max(0.05, deadline - time.monotonic()))
            answer = stream.recv_exactly(32)
        finally:
            stream.close()
        if answer.hex() != sha:
            raise ValueError(f"stream checksum mismatch: sent {sha}, acceptor read {answer.hex()}")
        return {"sha": sha}

    def one_op(self) -> None:
        kind = random.choice(KINDS[:3] if self.svc is not None else KINDS[3:])
        if self.svc is not None:
            eid = random.choice(self.all_edges)
            svc = self.svc
            if kind == "svc_call":
                self.run_op(kind, OP_TIMEOUT, lambda op, t: svc.call(eid, "echo", self._payload(op), timeout=t) and None, edge=eid)
            elif kind == "svc_publish":
                self.run_op(kind, OP_TIMEOUT, lambda op, t: svc.publish(eid, self._payload(op), topic="down", timeout=t), edge=eid)
            else:
                self.run_op(kind, OP_TIMEOUT, lambda op, t: self._stream(lambda tt: svc.open_stream(eid, timeout=tt), op, t), edge=eid)
        else:
            edge = random.choice(self.edges)
            if kind == "edge_call":
                self.run_op(kind, OP_TIMEOUT, lambda op, t: edge.call("echo", self._payload(op), timeout=t) and None, edge=edge.edge_id)
            elif kind == "edge_publish":
                self.run_op(kind, OP_TIMEOUT, lambda op, t: edge.publish("up", self._payload(op), timeout=t), edge=edge.edge_id)
            else:
                self.run_op(kind, OP_TIMEOUT, lambda op, t: self._stream(lambda tt: edge.open_stream("loadsvc", timeout=tt), op, t),
                            edge=edge.edge_id)

    def worker(self) -> None:
        while not self.stop.is_set():
            self.one_op()
            self.stop.wait(self.cfg.get("pause", 0.05))

    def prober(self, eid: int) -> None:
        """Probe one edge every ``probe_pause`` seconds (one thread per edge, so a slow
        edge never delays the probes of the others)."""
        svc = self.svc
        assert svc is not None
        self.stop.wait(random.uniform(0, PROBE_PAUSE))
        while not self.stop.is_set():
            self.run_op("probe", PROBE_TIMEOUT, lambda op, t: svc.call(eid, "echo", self._payload(op), timeout=t) and None,
                        edge=eid)
            self.stop.wait(PROBE_PAUSE)

    def run(self) -> None:
        workers = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.cfg.get("workers", 3))]
        if self.svc is not None:
            workers += [threading.Thread(target=self.prober, args=(eid,), daemon=True) for eid in self.all_edges]
        for t in workers:
            t.start()
        print("ready", flush=True)
        for line in sys.stdin:  # commands from the harness, until it closes our stdin
            words = line.split()
            if words and words[0] == "place":
                self.place(int(words[1]), words[2])
        self.stop.set()
        for t in workers:
            t.join(OP_TIMEOUT + 5)
        for edge in self.edges:
            edge.close()
        if self.svc is not None:
            self.svc.close()
        self.history.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = json.loads(sys.argv[1])
    LoadNode(cfg).run()


if __name__ == "__main__":
    main()
