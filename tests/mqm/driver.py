"""Drives MQ sinks inside a gevent-patched process, as the gateway runs them.

pytest's own process is not monkey-patched (and must not be), so tests start this
script as a subprocess and talk to it in JSON lines: one command on stdin, one
answer on stdout. Logs go to stderr.

Commands:
  {"cmd": "build", "mqm": {...}}              parse the Go-format section, build_sinks()
  {"cmd": "produce", "items": [...], "timeout": s, "mode": "per_edge"|"parallel"}
        items: {"topic", "edge_id", "data" (text), "addr"?, "broker"?, "size"?}
        per_edge: one greenlet per edge producing its items in order, edges at once
        parallel: one greenlet per item
  {"cmd": "healthy"}                          {broker: bool}
  {"cmd": "wait_healthy", "broker", "value", "timeout"}
  {"cmd": "metrics"}                          frontier_mq_produce_total samples
  {"cmd": "close"}                            close_all()
Every answer carries "hub_lag_max": the worst lateness of a 5 ms ticker greenlet
while the command ran (a blocked hub shows up here).
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import gevent  # noqa: E402
from gevent.fileobject import FileObjectPosix  # noqa: E402

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from frontier import metrics  # noqa: E402
from frontier.mqm import build_sinks, close_all, parse_mqm  # noqa: E402
from frontier.wire.errors import BrokerUnavailable, Timeout  # noqa: E402

# import the client libraries up front (kafka-python alone takes ~0.3 s), so that
# "build" times what build_sinks does, not Python's imports
import frontier.mqm.amqp_sink  # noqa: E402,F401
import frontier.mqm.kafka_sink  # noqa: E402,F401
import frontier.mqm.nats_sink  # noqa: E402,F401
import frontier.mqm.nsq_sink  # noqa: E402,F401
import frontier.mqm.redis_sink  # noqa: E402,F401

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


class Ticker:
    """Measures how late a greenlet sleeping 5 ms wakes up: the hub's responsiveness."""

    period = 0.005

    def __init__(self) -> None:
        self.worst = 0.0
        self._g = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            t = time.monotonic()
            gevent.sleep(self.period)
            self.worst = max(self.worst, time.monotonic() - t - self.period)

    def stop(self) -> float:
        self._g.kill()
        return self.worst


class Driver:
    def __init__(self) -> None:
        self.sinks = []

    def sink_for(self, item: dict):
        for sink in self.sinks:
            if item.get("broker") and sink.broker != item["broker"]:
                continue
            if item["topic"] in sink.topics:
                return sink
        raise LookupError(f"no sink for {item}")

    def build(self, req: dict) -> dict:
        warnings: list[str] = []
        config = parse_mqm(req["mqm"], warnings.append)
        t = time.monotonic()
        self.sinks = build_sinks(config)
        return {
            "elapsed": time.monotonic() - t,
            "warnings": warnings,
            "sinks": [{"broker": s.broker, "topics": sorted(s.topics)} for s in self.sinks],
        }

    def produce_one(self, item: dict, timeout: float) -> dict:
        data = item["data"].encode() if "data" in item else os.urandom(item["size"])
        t = time.monotonic()
        out: dict = {"i": item["i"]}
        try:
            self.sink_for(item).produce(
                item["topic"], data, edge_id=item["edge_id"], addr=item.get("addr", "10.0.0.1:5555"), timeout=timeout
            )
            out["ok"] = True
        except Exception as exc:
            # "error": the contract's class (BrokerUnavailable / Timeout / other), "error_class": the real one
            kind = next((c.__name__ for c in (BrokerUnavailable, Timeout) if isinstance(exc, c)), type(exc).__name__)
            out.update(ok=False, error=kind, error_class=type(exc).__name__, message=str(exc))
        out["elapsed"] = time.monotonic() - t
        return out

    def produce(self, req: dict) -> dict:
        items = [dict(item, i=i) for i, item in enumerate(req["items"])]
        timeout = req.get("timeout", 5.0)
        results: list = [None] * len(items)

        def run(batch: list) -> None:
            for item in batch:
                results[item["i"]] = self.produce_one(item, timeout)

        t = time.monotonic()
        if req.get("mode", "per_edge") == "per_edge":
            by_edge: dict = {}
            for item in items:
                by_edge.setdefault(item["edge_id"], []).append(item)
            greenlets = [gevent.spawn(run, batch) for batch in by_edge.values()]
        else:
            greenlets = [gevent.spawn(run, [item]) for item in items]
        gevent.joinall(greenlets, raise_error=True)
        return {"elapsed": time.monotonic() - t, "results": results}

    def healthy(self, req: dict) -> dict:
        return {"healthy": {s.broker: s.healthy() for s in self.sinks}}

    def wait_healthy(self, req: dict) -> dict:
        sink = next(s for s in self.sinks if s.broker == req["broker"])
        t = time.monotonic()
        while time.monotonic() - t < req.get("timeout", 10):
            if sink.healthy() == req.get("value", True):
                return {"ok": True, "elapsed": time.monotonic() - t}
            gevent.sleep(0.05)
        return {"ok": False, "elapsed": time.monotonic() - t}

    def metrics(self, req: dict) -> dict:
        samples = {}
        for metric in metrics.MQ_PRODUCE.collect():
            for s in metric.samples:
                if s.name.endswith("_total"):
                    samples[f"{s.labels['broker']}/{s.labels['result']}"] = s.value
        return {"samples": samples}

    def close(self, req: dict) -> dict:
        t = time.monotonic()
        close_all(self.sinks)
        return {"elapsed": time.monotonic() - t}


def main() -> None:
    driver = Driver()
    stdin = FileObjectPosix(sys.stdin.fileno(), "rb")
    while True:
        line = stdin.readline()
        if not line:
            break
        req = json.loads(line)
        if req["cmd"] == "exit":
            break
        ticker = Ticker()
        try:
            answer = getattr(driver, req["cmd"])(req)
        except Exception as exc:
            answer = {"exception": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        answer["hub_lag_max"] = ticker.stop()
        os.write(1, (json.dumps(answer) + "\n").encode())
    close_all(driver.sinks)


if __name__ == "__main__":
    main()
