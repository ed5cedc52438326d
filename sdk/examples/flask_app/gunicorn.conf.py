"""gunicorn settings for the Flask example (command-line flags override them).

    gunicorn -c gunicorn.conf.py app:app                 # gthread: 2 workers x 4 threads
    gunicorn -c gunicorn.conf.py -k gevent app:app       # or greenlets
    gunicorn -c gunicorn.conf.py -k sync app:app         # or one request at a time per worker
"""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 4
worker_class = "gthread"
# Import the app (and connect its frontier Service) once in the master, then fork: the
# SDK gives every worker its own gateway connection on first use. Without --preload each
# worker imports the app and connects by itself; both work.
preload_app = True
# A worker busy in a long edge call is not killed for it before this many seconds.
timeout = 60
graceful_timeout = 20
