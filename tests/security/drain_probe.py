"""Run in a subprocess by test_drain: a gevent-patched gateway in-process whose drain
is observed from inside (when the Frontlas reporter and drain hooks run, relative to
the work in flight). Prints one JSON line."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from frontier.config import Config  # noqa: E402
from frontier.sdk import Edge, Service  # noqa: E402
from frontier.server import Gateway  # noqa: E402


class FakeReporter:
    """Stands in for the Frontlas reporter: records when it was stopped."""

    registered = True

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.stopped_with_in_flight = None

    def stop(self) -> None:
        self.stopped_with_in_flight = self.gateway.exchange.in_flight()


def main() -> None:
    config = Config.from_dict({
        "servicebound": {"listen": {"addr": "127.0.0.1:0"}},
        "edgebound": {"listen": {"addr": "127.0.0.1:0"}},
        "observability": {"addr": "127.0.0.1:0"},
        "limits": {"drain_timeout": 5.0},
    })
    gateway = Gateway(config)
    gateway.start()
    reporter = gateway.reporter = FakeReporter(gateway)
    hooked: list[int] = []
    gateway.drain_hooks.append(lambda: hooked.append(gateway.exchange.in_flight()))
    svc = Service("%s:%d" % gateway.address("service"), timeout=5.0, reconnect=False)
    svc.register("slow", lambda req: (time.sleep(1.0), b"done")[1])
    edge = Edge("%s:%d" % gateway.address("edge"), timeout=5.0, reconnect=False)
    call = gevent.spawn(edge.call, "slow", b"", 5.0)
    while gateway.exchange.in_flight() == 0:
        gevent.sleep(0.01)
    ready_before = gateway.ready()
    stopper = gevent.spawn(gateway.stop)
    gevent.sleep(0.1)
    ready_during = gateway.ready()
    result = call.get(timeout=10)
    stopper.join(10)
    print(json.dumps({
        "reporter_in_flight": reporter.stopped_with_in_flight, "hook_in_flight": hooked,
        "result": result.decode(), "ready_before": ready_before, "ready_during": ready_during,
        "stopped": gateway.wait(0),
    }))


if __name__ == "__main__":
    main()
