"""The life of a server process, shared by ``frontier-gevent serve`` and
``frontlas-gevent serve``: patch with gevent before anything else, load and report the
configuration, set up logging, the open-file limit and the garbage collector, run the
server until a signal, and stop it cleanly.

Only standard-library modules are imported at the top, and not even ``logging``:
:func:`patch_process` must run before ``ssl``, ``grpc`` or a lock-holding module is
imported, or gevent's patching breaks them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

if TYPE_CHECKING:  # only for type hints: importing these for real would precede patching
    import logging

    from frontier.config import Log, RLimit

#: gevent's thread pool size for servers; gRPC under gevent deadlocks past ~9
#: concurrent calls with the default (see shared/BROKERS.md)
THREADPOOL_SIZE = 100

#: exit code for a usage or configuration error
EXIT_CONFIG = 2

#: garbage-collector thresholds once a server runs. The data plane allocates many
#: short-lived, acyclic objects; collecting generation 0 every 700 allocations cost
#: ~40% of the CPU of a connect (measured: connects/s 6.6-8.8k -> 9.9-15.2k)
GC_THRESHOLD = (100_000, 50, 1000)


@contextlib.contextmanager
def naming_the_listener(what: str, key: str, addr: str) -> Iterator[None]:
    """Turn a failed bind into an ``OSError`` that says which listener, which address
    and which key to change (``Address already in use`` alone names neither); the
    CLI reports it and exits 1."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            hint = "another program (another frontier?) holds that port: stop it, or change"
        elif exc.errno == errno.EADDRNOTAVAIL:
            hint = "no interface of this host has that address: change"
        else:
            hint = "check"
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        error = OSError(f"{what} cannot listen on {addr}: {reason}; {hint} {key}")
        error.errno = exc.errno
        raise error from None


class Server(Protocol):
    """What :func:`run_until_signal` drives (``Gateway``, ``Frontlas``)."""

    def start(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...


def patch_process() -> None:
    """Monkey-patch with gevent, make gRPC cooperative and size gevent's thread pool.
    Call first thing in a server command, before importing the rest of the project.

    gevent's greenlet tree tracking is turned off: it records the spawning stack of
    every greenlet (each connection's reader), which cost a connect about 10,000
    instructions and each idle connection the saved stack summary; it only serves
    ``gevent.util.format_run_info``."""
    import gevent

    gevent.config.track_greenlet_tree = False
    from gevent import monkey

    monkey.patch_all()
    import grpc.experimental.gevent as grpc_gevent

    grpc_gevent.init_gevent()
    pool = gevent.get_hub().threadpool
    pool.maxsize = max(pool.maxsize, THREADPOOL_SIZE)


def config_error(prog: str, exc: Exception) -> int:
    """Report a configuration error on stderr; return the exit code for it."""
    print(f"{prog}: config error: {exc}", file=sys.stderr)
    return EXIT_CONFIG


def config_check(prog: str, load: Callable[..., Any], path: str | None) -> int:
    """``config check``: print the effective configuration as YAML, or the error."""
    from frontier.wire.errors import ConfigError

    warnings: list[str] = []
    try:
        config = load(path, warn=warnings.append)
    except ConfigError as exc:
        return config_error(prog, exc)
    for message in warnings:
        print(f"{prog}: config warning: {message}", file=sys.stderr)
    sys.stdout.write(config.to_yaml())
    return 0


def load_for_serve(prog: str, load: Callable[..., Any], path: str | None, log_level: str | None, config_logger: str) -> Any:
    """Load the config (``--log-level`` wins over it), configure logging, log the
    warnings and apply ``daemon.rlimit``. Returns the config, or an exit code."""
    import dataclasses
    import logging

    from frontier.wire.errors import ConfigError

    warnings: list[str] = []
    try:
        config = load(path, warn=warnings.append)
        if log_level:
            level = "warn" if log_level == "warning" else log_level
            config = dataclasses.replace(config, log=dataclasses.replace(config.log, level=level))
        configure_logging(config.log)
    except ConfigError as exc:
        return config_error(prog, exc)
    for message in warnings:
        logging.getLogger(config_logger).warning("%s", message)
    apply_rlimit(config.daemon.rlimit)
    return config


def run_until_signal(prog: str, server: Server, stop: Callable[[float | None], None], log: logging.Logger) -> int:
    """Start ``server`` and serve until SIGINT/SIGTERM: the first signal calls
    ``stop(None)`` (a drain), a second one ``stop(0)``. Returns the exit code."""
    import gc
    import logging
    import os
    import signal

    import gevent

    from frontier.wire.errors import ConfigError

    signals_seen: list[int] = []

    def stop_or_die(timeout: float | None) -> None:
        try:
            stop(timeout)
        except Exception:  # a server that cannot stop cleanly must still exit
            log.exception("%s: stop(timeout=%s) failed; exiting with status 1", prog, timeout)
            logging.shutdown()
            os._exit(1)

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if not signals_seen:
            log.info("%s received: draining (send it again to stop at once)", name)
            signals_seen.append(signum)
            gevent.spawn(stop_or_die, None)
        else:
            log.warning("%s received again: stopping now", name)
            gevent.spawn(stop_or_die, 0)

    handlers = [gevent.signal_handler(signum, on_signal, signum) for signum in (signal.SIGINT, signal.SIGTERM)]
    for handler in handlers:
        handler.ref = True  # waiting for a signal keeps the hub alive (no LoopExit)
    try:
        try:
            server.start()
        except ConfigError as exc:
            stop(0)
            return config_error(prog, exc)
        except OSError as exc:
            log.error("cannot start %s: %s", prog, exc)
            stop(0)
            return 1
        gc.freeze()  # what start-up built lives as long as the process: never scan it again
        gc.set_threshold(*GC_THRESHOLD)
        server.wait()
    finally:
        for handler in handlers:
            handler.cancel()
    log.info("%s stopped", prog)
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
    log = logging.getLogger("frontier.process")
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
