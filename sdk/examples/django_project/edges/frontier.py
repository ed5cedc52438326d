"""The web processes' frontier connection: one ``Service`` per process, made on
first use from ``settings.FRONTIER`` and shared by every thread (or greenlet).

Made lazily so that ``manage.py migrate``, ``check`` and friends never connect. It
survives forks (gunicorn ``--preload``, Celery prefork): a forked child opens its own
connection on first use. No lock is held while connecting, so the same code is safe
under gevent workers, where a lock created before monkey-patching would block the
whole process.
"""

from __future__ import annotations

from django.conf import settings

from frontier.sdk import Service

_holder: dict[str, Service] = {}


def service() -> Service:
    """This process's ``Service`` (connects the first time)."""
    svc = _holder.get("web")
    if svc is not None:
        return svc
    conf = settings.FRONTIER
    new = Service(conf["SERVICE_ADDR"], name=conf["WEB_SERVICE_NAME"], timeout=conf["TIMEOUT"])
    svc = _holder.setdefault("web", new)  # atomic: two first requests keep one client
    if svc is not new:
        new.close()
    return svc
