"""Command line of the gateway: ``frontier-gevent serve`` and ``frontier-gevent config check``.

``serve`` monkey-patches the process with gevent before it imports anything else of
ours, because patching after ``ssl``, ``requests`` or ``grpc`` are imported breaks
them. Keep this module's top-level imports to the standard library, and keep
``frontier/__init__.py`` free of imports, for the same reason.

Exit codes: 0 after a clean shutdown, 1 when the gateway cannot start, 2 for a
usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for type hints: importing these for real would precede patching
    import logging

    from frontier.config import Log, RLimit
    from frontier.wire.errors import ConfigError

#: program name in usage and error messages
PROG = "frontier-gevent"

#: gevent's thread pool size for ``serve``; gRPC under gevent deadlocks past ~9
#: concurrent calls with the default (see shared/BROKERS.md)
THREADPOOL_SIZE = 100

#: exit code for a usage or configuration error
EXIT_CONFIG = 2

_LEVELS = ("debug", "info", "warn", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``frontier-gevent`` with its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="frontier-gevent: a long-connection gateway between services and edges.",
        epilog="FRONTIER__SECTION__KEY=value environment variables override the config file "
        "(e.g. FRONTIER__EDGEBOUND__LISTEN__ADDR=0.0.0.0:4000).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the gateway until SIGINT or SIGTERM",
        description="Run the gateway. The first SIGINT/SIGTERM drains connections "
        "(up to limits.drain_timeout); a second one stops at once.",
    )
    _add_config_argument(serve)
    serve.add_argument(
        "--log-level",
        type=str.lower,
        choices=_LEVELS,
        metavar="LEVEL",
        help="override log.level: " + ", ".join(_LEVELS),
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run N gateway processes sharing the edge port (SO_REUSEPORT), each on its own "
        "service port (the configured one, then the next ones up) and reporting to Frontlas as <frontier_id>-<index>",
    )

    config = commands.add_parser("config", help="inspect the configuration")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate the configuration and print the effective result as YAML",
        description="Load the config file and FRONTIER__* overrides, print the effective "
        "configuration as YAML on stdout and warnings on stderr; exit 2 if it is wrong.",
    )
    _add_config_argument(check)

    from frontier.control.cli import add_parsers  # stdlib only: no gevent, no grpc

    add_parsers(commands)  # edges list|get|kick|rpcs, services list|get|kick|rpcs|topics

    from frontier.auth import add_token_parser  # stdlib only: no gevent

    add_token_parser(commands)  # token mint|verify
    return parser


def _add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="frontier.yaml to load (default: built-in defaults)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``frontier-gevent``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "serve" and args.workers > 1:
        from frontier.cluster.workers import supervise  # no gevent: it only runs processes

        return supervise(args.config, args.log_level, args.workers)
    if args.command == "serve":
        return serve(args.config, args.log_level)
    if args.command == "config":
        return config_check(args.config)
    return args.func(args)


def _config_error(exc: ConfigError) -> int:
    print(f"{PROG}: config error: {exc}", file=sys.stderr)
    return EXIT_CONFIG


def config_check(config_path: str | None) -> int:
    """``config check``: print the effective configuration as YAML, or the error."""
    from frontier.config import load_config
    from frontier.wire.errors import ConfigError

    warnings: list[str] = []
    try:
        config = load_config(config_path, warn=warnings.append)
    except ConfigError as exc:
        return _config_error(exc)
    for message in warnings:
        print(f"{PROG}: config warning: {message}", file=sys.stderr)
    sys.stdout.write(config.to_yaml())
    return 0


def serve(config_path: str | None, log_level: str | None = None) -> int:
    """``serve``: patch the process, load the config, run the gateway until a signal."""
    from gevent import monkey

    monkey.patch_all()

    import dataclasses
    import logging
    import os
    import signal

    import gevent
    import grpc.experimental.gevent as grpc_gevent

    grpc_gevent.init_gevent()
    pool = gevent.get_hub().threadpool
    pool.maxsize = max(pool.maxsize, THREADPOOL_SIZE)

    from frontier.config import load_config
    from frontier.wire.errors import ConfigError

    warnings: list[str] = []
    try:
        config = load_config(config_path, warn=warnings.append)
        if log_level:
            level = "warn" if log_level == "warning" else log_level
            config = dataclasses.replace(config, log=dataclasses.replace(config.log, level=level))
        configure_logging(config.log)
    except ConfigError as exc:
        return _config_error(exc)

    log = logging.getLogger("frontier.cli")
    for message in warnings:
        logging.getLogger("frontier.config").warning("%s", message)
    apply_rlimit(config.daemon.rlimit)

    from frontier.server import Gateway

    try:
        from frontier.cluster.workers import reuseport_listeners

        listeners = reuseport_listeners(config)  # a --workers child binds the shared edge port
        gateway = Gateway(config, listeners=listeners) if listeners else Gateway(config)
    except ConfigError as exc:
        return _config_error(exc)
    signals_seen: list[int] = []

    def stop(timeout: float | None) -> None:
        try:
            gateway.stop(timeout=timeout)
        except Exception:  # a server that cannot stop cleanly must still exit
            log.exception("gateway.stop(timeout=%s) failed; exiting with status 1", timeout)
            logging.shutdown()
            os._exit(1)

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if not signals_seen:
            log.info("%s received: draining (send it again to stop at once)", name)
            signals_seen.append(signum)
            gevent.spawn(stop, None)
        else:
            log.warning("%s received again: stopping now", name)
            gevent.spawn(stop, 0)

    handlers = [gevent.signal_handler(signum, on_signal, signum) for signum in (signal.SIGINT, signal.SIGTERM)]
    for handler in handlers:
        handler.ref = True  # waiting for a signal keeps the hub alive (no LoopExit)

    try:
        try:
            gateway.start()
        except ConfigError as exc:
            gateway.stop(timeout=0)
            return _config_error(exc)
        except OSError as exc:
            log.error("cannot start the gateway: %s", exc)
            gateway.stop(timeout=0)
            return 1
        gateway.wait()
    finally:
        for handler in handlers:
            handler.cancel()
    log.info("frontier-gevent stopped")
    return 0


# -- logging ----------------------------------------------------------------------------

_LEVEL_NUMBERS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}
_TEXT_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


def configure_logging(log: Log) -> None:
    """Send every record to ``log.output`` as one line (text or JSON) at ``log.level``.

    Raises :class:`~frontier.wire.errors.ConfigError` if the log file cannot be opened.
    """
    import logging

    from frontier.wire.errors import ConfigError

    formatter = _make_formatter(log.format)
    handlers: list[logging.Handler] = []
    if log.output in ("stdout", "both"):
        handlers.append(logging.StreamHandler(sys.stdout))
    if log.output == "stderr":
        handlers.append(logging.StreamHandler(sys.stderr))
    if log.output in ("file", "both"):
        try:
            handlers.append(_rotating_file_handler(log))
        except OSError as exc:
            raise ConfigError(f"log.file.path: cannot open {log.file.path!r}: {exc.strerror or exc}") from exc
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(_LEVEL_NUMBERS[log.level])


def _make_formatter(kind: str) -> logging.Formatter:
    """A formatter that keeps each record on one line: ``text`` (newlines escaped as
    ``\\n``) or ``json`` (one object with time, level, logger, msg, exc)."""
    import json
    import logging

    class OneLineFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return super().format(record).replace("\n", "\\n")

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            doc = {
                "time": f"{self.formatTime(record, self.datefmt)}.{int(record.msecs):03d}",
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": record.getMessage(),
            }
            if record.exc_info:
                doc["exc"] = self.formatException(record.exc_info)
            return json.dumps(doc, ensure_ascii=False, default=str)

    if kind == "json":
        return JsonFormatter(datefmt=_DATE_FORMAT)
    return OneLineFormatter(_TEXT_FORMAT, datefmt=_DATE_FORMAT)


def _rotating_file_handler(log: Log) -> logging.Handler:
    """A size-rotated file handler honouring ``log.file`` (max_size, max_backups, max_age, compress)."""
    import glob
    import gzip
    import logging.handlers
    import os
    import shutil
    import time

    settings = log.file
    directory = os.path.dirname(settings.path)
    if directory:
        os.makedirs(directory, exist_ok=True)

    class RotatingFile(logging.handlers.RotatingFileHandler):
        def doRollover(self) -> None:
            super().doRollover()
            if settings.max_age:
                cutoff = time.time() - settings.max_age * 86400
                for old in glob.glob(glob.escape(self.baseFilename) + ".*"):
                    try:
                        if os.path.getmtime(old) < cutoff:
                            os.remove(old)
                    except OSError:
                        pass

    handler = RotatingFile(
        settings.path,
        maxBytes=settings.max_size * 1024 * 1024,
        backupCount=settings.max_backups,
        encoding="utf-8",
    )
    if settings.compress:

        def gzip_rotator(source: str, dest: str) -> None:
            with open(source, "rb") as src, gzip.open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.remove(source)

        handler.namer = lambda name: name + ".gz"
        handler.rotator = gzip_rotator
    return handler


def apply_rlimit(rlimit: RLimit) -> None:
    """Raise the open-file limit to ``rlimit.nofile`` when ``rlimit.enable`` (never lowers it)."""
    import logging
    import resource

    if not rlimit.enable:
        return
    log = logging.getLogger("frontier.cli")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = rlimit.nofile
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    new_hard = hard if hard == resource.RLIM_INFINITY or hard >= want else want
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, new_hard))
        return
    except (ValueError, OSError):
        pass
    capped = want if hard == resource.RLIM_INFINITY else min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (capped, hard))
        log.warning("daemon.rlimit.nofile: asked for %d open files, got %d (hard limit)", want, capped)
    except (ValueError, OSError) as exc:
        log.warning("daemon.rlimit.nofile: cannot raise the open-file limit from %d: %s", soft, exc)


if __name__ == "__main__":
    sys.exit(main())
