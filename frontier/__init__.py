"""frontier-gevent: a long-connection gateway between services and edges, on gevent."""

from frontier import compiled as _compiled

_compiled.choose()  # the relay's hot path compiled, or all of it plain Python (see frontier/compiled.py)
