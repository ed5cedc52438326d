"""The apps one ingress serves, and what the control plane may do with them.

:class:`AppStore` holds the apps (from the config file, then changed through the
control plane or the cluster's log), the route table built from them, and each app's
runtime parts (its backend with its health state, its authenticator). Every change
builds a new route table and swaps it in at once: a request sees the old table or
the new one, never a half-built one.

The control plane gets this object (as its ``apps`` interface) from
:mod:`frontier.server`; the ingress never imports the control plane.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from frontier.config import IngressApp, parse_app
from frontier.wire.errors import ConfigError

from .auth import AppAuthenticator
from .backends import build_backend
from .routes import Match, RouteTable

log = logging.getLogger("frontier.ingress.apps")


@dataclass(frozen=True, slots=True)
class AppRuntime:
    """An app with the parts that serve it."""

    app: IngressApp
    backend: Any
    auth: AppAuthenticator


class AppStore:
    """The apps of one ingress: ``list``/``get``/``put``/``delete`` (the control
    plane's interface), plus :meth:`match` for requests."""

    def __init__(self, apps: Iterable[IngressApp], *, exchange: Any, stream_window: int, relay: Any = None) -> None:
        self._exchange = exchange
        self._stream_window = stream_window
        self._relay = relay
        self._apps: dict[str, AppRuntime] = {}
        self._routes = RouteTable(())
        #: called with ``("put", app_dict)`` or ``("delete", {"id": ...})`` before a
        #: change made here is applied (the cluster log publishes it; see ``cluster``)
        self.publisher: Callable[[str, dict[str, Any]], None] | None = None
        for app in apps:
            self._apps[app.id] = self._runtime(app)
        self._rebuild()

    def _runtime(self, app: IngressApp) -> AppRuntime:
        backend = build_backend(app, self._exchange, self._stream_window, self._relay)
        return AppRuntime(app, backend, AppAuthenticator(app.auth, app.id))

    def _rebuild(self) -> None:
        self._routes = RouteTable(rt.app for rt in self._apps.values())

    # -- requests ------------------------------------------------------------------------

    def match(self, host: str, path: str) -> tuple[Match, AppRuntime] | None:
        """The app serving ``host`` + ``path``, or None (404 NO_APP)."""
        found = self._routes.match(host, path)
        if found is None:
            return None
        runtime = self._apps.get(found.app.id)
        return (found, runtime) if runtime is not None else None

    def hostnames(self) -> set[str]:
        """Exact hostnames of every frontend."""
        return self._routes.hostnames()

    # -- the control plane's interface ---------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        """Every app, as JSON-ready dicts, sorted by id."""
        return [self._apps[key].app.to_dict() for key in sorted(self._apps)]

    def get(self, app_id: str) -> dict[str, Any] | None:
        """One app as a dict, or None."""
        runtime = self._apps.get(app_id)
        return runtime.app.to_dict() if runtime is not None else None

    def put(self, raw: Any, app_id: str | None = None) -> dict[str, Any]:
        """Validate and create or replace an app; ``app_id`` (from the URL) must match
        the body's id when the body has one. Raises ``ConfigError`` naming the field."""
        if isinstance(raw, dict) and app_id is not None:
            body_id = raw.get("id")
            if body_id is None:
                raw = {**raw, "id": app_id}
            elif body_id != app_id:
                raise ConfigError(f"id: {body_id!r} in the body does not match {app_id!r} in the URL")
        app = parse_app(raw)
        if self.publisher is not None:
            self.publisher("put", app.to_dict())
        else:
            self.apply_put(app)
        return app.to_dict()

    def delete(self, app_id: str) -> bool:
        """Remove an app; False if there was none."""
        if app_id not in self._apps:
            return False
        if self.publisher is not None:
            self.publisher("delete", {"id": app_id})
        else:
            self.apply_delete(app_id)
        return True

    # -- applying changes (locally, or as they arrive from the cluster's log) --------------------------

    def apply_put(self, app: IngressApp) -> None:
        """Create or replace ``app`` now."""
        old = self._apps.get(app.id)
        if old is not None and old.app == app:
            return
        self._apps[app.id] = self._runtime(app)
        self._rebuild()
        log.info("app %s %s", app.id, "replaced" if old is not None else "added")

    def apply_delete(self, app_id: str) -> None:
        """Remove an app now (no-op when absent)."""
        if self._apps.pop(app_id, None) is not None:
            self._rebuild()
            log.info("app %s deleted", app_id)

    def __len__(self) -> int:
        return len(self._apps)
