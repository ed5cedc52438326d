"""HTTP ingress: edgerouter-style apps (hostname/path frontends -> an edge's exposed
service, a set of plain HTTP upstreams, or a redirect) inside the gateway.

It imports the config, the exchange (to open streams to edges) and the wire layer,
never the control plane; the control plane is handed :attr:`Ingress.apps`.
See ``docs/ingress.md``.
"""

from .server import Ingress

__all__ = ["Ingress"]
