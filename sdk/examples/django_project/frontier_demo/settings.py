"""Settings of the frontier demo project: a Django site whose views reach edges
through a frontier gateway, plus a management command that is the service side.

Everything frontier-related is in ``FRONTIER``; each key can be set from the
environment. The project needs no database.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-demo-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = ["edges"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "frontier_demo.urls"
WSGI_APPLICATION = "frontier_demo.wsgi.application"
DATABASES: dict = {}
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"frontier": {"handlers": ["console"], "level": os.environ.get("FRONTIER_LOG_LEVEL", "WARNING")}},
}

FRONTIER = {
    # where services connect to the gateway (servicebound.listen.addr)
    "SERVICE_ADDR": os.environ.get("FRONTIER_SERVICE_ADDR", "127.0.0.1:30011"),
    # the gateway's control plane, for the edge list (controlplane.enable: true); "" = off
    "CONTROL_URL": os.environ.get("FRONTIER_CONTROL_URL", "http://127.0.0.1:30010"),
    # a bearer token, when the control plane has auth.bearer_tokens
    "CONTROL_TOKEN": os.environ.get("FRONTIER_CONTROL_TOKEN", ""),
    # seconds an SDK call, publish or stream open may take
    "TIMEOUT": float(os.environ.get("FRONTIER_TIMEOUT", "10")),
    # the web processes' connection (views only call out: no methods, no topics)
    "WEB_SERVICE_NAME": os.environ.get("FRONTIER_WEB_SERVICE_NAME", "django-web"),
    # the management command's connection: edges open streams to this name
    "WORKER_SERVICE_NAME": os.environ.get("FRONTIER_WORKER_SERVICE_NAME", "django-worker"),
    # topics whose edge messages the management command receives
    "TOPICS": os.environ.get("FRONTIER_TOPICS", "telemetry").split(","),
    # where files edges upload over streams are stored
    "UPLOAD_DIR": Path(os.environ.get("FRONTIER_UPLOAD_DIR", BASE_DIR / "uploads")),
    # what the "config" RPC tells edges
    "EDGE_CONFIG": {"report_every": 30, "telemetry_topic": "telemetry"},
}
