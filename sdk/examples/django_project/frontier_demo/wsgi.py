"""WSGI entry point: ``gunicorn frontier_demo.wsgi`` (``--preload`` is fine: the
frontier client is made on first use and survives forks anyway)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frontier_demo.settings")
application = get_wsgi_application()
