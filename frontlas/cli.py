"""Command line of Frontlas: ``frontlas-gevent serve`` and ``frontlas-gevent config check``.

``serve`` monkey-patches the process with gevent before it imports anything else
of ours, as ``frontier-gevent serve`` does (see :mod:`frontier.cli`). Exit codes:
0 after a clean shutdown, 1 when Frontlas cannot start, 2 for a usage or
configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

#: program name in usage and error messages
PROG = "frontlas-gevent"
#: gevent's thread pool size (gRPC under gevent needs headroom; see shared/BROKERS.md)
THREADPOOL_SIZE = 100
EXIT_CONFIG = 2

_LEVELS = ("debug", "info", "warn", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``frontlas-gevent``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="frontlas-gevent: the cluster registry of frontier-gevent, on Redis.",
        epilog="FRONTLAS__SECTION__KEY=value environment variables override the config file "
        "(e.g. FRONTLAS__REDIS__STANDALONE__ADDR=10.0.0.5:6379).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run Frontlas until SIGINT or SIGTERM")
    serve.add_argument("--config", metavar="FILE", help="frontlas.yaml to load (default: built-in defaults)")
    serve.add_argument("--log-level", type=str.lower, choices=_LEVELS, metavar="LEVEL",
                       help="override log.level: " + ", ".join(_LEVELS))
    config = commands.add_parser("config", help="inspect the configuration")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate the configuration and print it as YAML")
    check.add_argument("--config", metavar="FILE", help="frontlas.yaml to load")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``frontlas-gevent``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args.config, args.log_level)
    return config_check(args.config)


def config_check(path: str | None) -> int:
    """``config check``: print the effective configuration, or the error."""
    from frontier.wire.errors import ConfigError
    from frontlas.config import load_config

    warnings: list[str] = []
    try:
        config = load_config(path, warn=warnings.append)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for message in warnings:
        print(f"{PROG}: config warning: {message}", file=sys.stderr)
    sys.stdout.write(config.to_yaml())
    return 0


def serve(path: str | None, log_level: str | None = None) -> int:
    """``serve``: patch, load the config, run until a signal."""
    from gevent import monkey

    monkey.patch_all()

    import dataclasses
    import logging
    import signal

    import gevent
    import grpc.experimental.gevent as grpc_gevent

    grpc_gevent.init_gevent()
    pool = gevent.get_hub().threadpool
    pool.maxsize = max(pool.maxsize, THREADPOOL_SIZE)

    from frontier.cli import apply_rlimit, configure_logging
    from frontier.wire.errors import ConfigError
    from frontlas.config import load_config

    warnings: list[str] = []
    try:
        config = load_config(path, warn=warnings.append)
        if log_level:
            level = "warn" if log_level == "warning" else log_level
            config = dataclasses.replace(config, log=dataclasses.replace(config.log, level=level))
        configure_logging(config.log)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log = logging.getLogger("frontlas.cli")
    for message in warnings:
        logging.getLogger("frontlas.config").warning("%s", message)
    apply_rlimit(config.daemon.rlimit)

    from frontlas.server import Frontlas

    try:
        frontlas = Frontlas(config)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    def on_signal(signum: int) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        gevent.spawn(frontlas.stop)

    handlers = [gevent.signal_handler(s, on_signal, s) for s in (signal.SIGINT, signal.SIGTERM)]
    for handler in handlers:
        handler.ref = True
    try:
        try:
            frontlas.start()
        except OSError as exc:
            log.error("cannot start Frontlas: %s", exc)
            frontlas.stop()
            return 1
        frontlas.wait()
    finally:
        for handler in handlers:
            handler.cancel()
    log.info("frontlas-gevent stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
