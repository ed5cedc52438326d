"""The relay's hot path, compiled with mypyc, or the same modules as plain Python.

``make native`` (run by ``make serve``, ``make test`` and ``make bench``) compiles
:data:`MODULES` (the codec, the protocol machine, the exchange and the session's
writer: every frame of a routed call passes through them; and what every connect
runs) into extension modules beside their sources. They are the same source, so the
sans-io machine stays the one reference; compiled, a routed call costs the gateway
half the instructions (about 50,000 against 101,000, loadtests/README.md).

The compiled modules call each other directly, so they are used all together or not
at all. :func:`choose` (run when ``frontier`` is imported, before any of them) falls
back to the plain sources, importing every one of them from its ``.py``, when:

- ``FRONTIER_PURE_PYTHON`` is set to anything but ``0`` or empty (the reference path,
  or a machine where the compiled modules misbehave), or
- any compiled module is missing or older than its source (an edit since the last
  ``make native``): a warning says so, and nothing stale ever runs.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Sequence

#: the modules ``make native`` compiles (one mypyc group: see scripts/build_native.py).
#: Not the session's reader (:mod:`frontier.sessions.reader`): every idle connection's
#: reader greenlet waits for its socket there, and greenlet saves every C frame between
#: a greenlet's start and its wait; compiled frames there would cost each idle
#: connection about 1.3 KB (4,728 bytes of saved stack against 3,464)
MODULES: tuple[str, ...] = (
    "frontier.wire.codec",
    "frontier.wire.connection",
    "frontier.exchange.pending",
    "frontier.exchange.deadlines",
    "frontier.exchange.hooks",
    "frontier.exchange.hashby",
    "frontier.sessions.bans",
    "frontier.sessions.limits",
    "frontier.exchange.router",
    "frontier.sessions.session",
    "frontier.sessions.registry",
    "frontier.metrics",
)
#: the group's shared library, which the compiled modules load
GROUP = "frontier.compiled_group"
_ROOT = Path(__file__).resolve().parent.parent
_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)

#: "compiled" or "python": what this process runs (set by :func:`choose`)
mode = "python"


def source(module: str, root: Path = _ROOT) -> Path:
    """The ``.py`` file of ``module`` under ``root``."""
    return root.joinpath(*module.split(".")).with_suffix(".py")


def built(module: str, root: Path = _ROOT) -> Path | None:
    """The extension module compiled from ``module`` under ``root``, if there is one."""
    base = root.joinpath(*module.split("."))
    for suffix in _SUFFIXES:
        path = base.with_name(base.name + suffix)
        if path.exists():
            return path
    return None


def stale(modules: Sequence[str] = MODULES, root: Path = _ROOT, group: str = GROUP) -> list[str]:
    """The modules (of ``modules``, under ``root``) that would not run as compiled from
    their current source: all of them while the group's shared library (which holds
    the code of every one) is missing; else those without an extension module or with
    a source newer than the library. All fresh: ``[]``."""
    lib = built(group + "__mypyc", root)
    if lib is None:
        return list(modules)
    compiled_at = lib.stat().st_mtime
    return [m for m in modules if built(m, root) is None or source(m, root).stat().st_mtime > compiled_at]


class _PurePython:
    """A meta-path finder that loads :data:`MODULES` from their ``.py`` sources even
    where a compiled module sits beside them."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name not in MODULES:
            return None
        return importlib.util.spec_from_file_location(name, source(name))


def choose() -> str:
    """Decide once, before any of :data:`MODULES` is imported, whether this process runs
    them compiled; returns (and records in :data:`mode`) ``"compiled"`` or ``"python"``."""
    global mode
    if any(m in sys.modules for m in MODULES):
        return mode  # decided already (or imported by hand): never mix the two
    pure = os.environ.get("FRONTIER_PURE_PYTHON", "") not in ("", "0")
    if not pure:
        old = stale()
        if not old:
            mode = "compiled"
            return mode
        if len(old) < len(MODULES) or any(built(m) is not None for m in old):  # built once, edited since
            warnings.warn(f"compiled modules missing or older than their sources ({', '.join(old)}): running "
                          "plain Python; `make native` rebuilds them", RuntimeWarning, stacklevel=2)
    if not any(isinstance(f, _PurePython) for f in sys.meta_path):
        sys.meta_path.insert(0, _PurePython())
    mode = "python"
    return mode
