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

_LEVELS = ("debug", "info", "warn", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``frontlas-gevent``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="frontlas-gevent: the cluster registry of frontier-gevent, on Redis.",
        epilog="FRONTLAS__SECTION__KEY=value environment variables override the config file "
        "(e.g. FRONTLAS__REDIS__STANDALONE__ADDR=10.0.0.5:6379).",
    )
    from frontier.cli import version  # stdlib only

    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
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
    from frontier.process import config_check as check
    from frontlas.config import load_config

    return check(PROG, load_config, path)


def serve(path: str | None, log_level: str | None = None) -> int:
    """``serve``: patch, load the config, run until a signal."""
    from frontier.process import patch_process

    patch_process()

    import logging

    from frontier.process import config_error, load_for_serve, run_until_signal
    from frontier.wire.errors import ConfigError
    from frontlas.config import load_config

    config = load_for_serve(PROG, load_config, path, log_level, "frontlas.config")
    if isinstance(config, int):
        return config
    from frontlas.server import Frontlas

    try:
        frontlas = Frontlas(config)
    except ConfigError as exc:
        return config_error(PROG, exc)
    return run_until_signal(PROG, frontlas, lambda timeout: frontlas.stop(), logging.getLogger("frontlas.cli"))


if __name__ == "__main__":
    sys.exit(main())
