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

#: program name in usage and error messages
PROG = "frontier-gevent"

_LEVELS = ("debug", "info", "warn", "warning", "error")


def version() -> str:
    """The installed package's version (``frontier-gevent`` ships both CLIs)."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("frontier-gevent")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``frontier-gevent`` with its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="frontier-gevent: a long-connection gateway between services and edges.",
        epilog="FRONTIER__SECTION__KEY=value environment variables override the config file "
        "(e.g. FRONTIER__EDGEBOUND__LISTEN__ADDR=0.0.0.0:4000).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
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


def config_check(config_path: str | None) -> int:
    """``config check``: print the effective configuration as YAML, or the error."""
    from frontier.config import load_config
    from frontier.process import config_check as check

    return check(PROG, load_config, config_path)


def serve(config_path: str | None, log_level: str | None = None) -> int:
    """``serve``: patch the process, load the config, run the gateway until a signal."""
    from frontier.process import patch_process

    patch_process()

    import logging

    from frontier.config import load_config
    from frontier.process import config_error, load_for_serve, run_until_signal
    from frontier.wire.errors import ConfigError

    config = load_for_serve(PROG, load_config, config_path, log_level, "frontier.config")
    if isinstance(config, int):
        return config
    from frontier.server import Gateway

    try:
        from frontier.cluster.workers import reuseport_listeners, reuseport_valve

        listeners = reuseport_listeners(config)  # a --workers child binds the shared edge port
        gateway = Gateway(config, listeners=listeners) if listeners else Gateway(config)
        reuseport_valve(config, gateway)  # ... and leaves the kernel's spread while it is full
    except ConfigError as exc:
        return config_error(PROG, exc)
    return run_until_signal(PROG, gateway, lambda timeout: gateway.stop(timeout=timeout), logging.getLogger("frontier.cli"))


if __name__ == "__main__":
    sys.exit(main())
