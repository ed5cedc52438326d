"""Sans-io wire protocol of frontier: frames, events, the connection machine, errors.

Nothing here does I/O. The gateway (gevent) and the SDK (threads) drive the same
:class:`Connection`; see ``sdk/PROTOCOL.md`` for the spec.
"""

from .connection import DEFAULT_MAX_FRAME_SIZE, NEED_DATA, RELAY_RESERVE, Connection
from .events import *  # noqa: F401,F403  (the event classes are the protocol's vocabulary)
from .events import PROTOCOL_VERSION, ROLE_EDGE, ROLE_SERVICE
from .state import ConnState, Side, StreamState

__all__ = [
    "Connection", "NEED_DATA", "DEFAULT_MAX_FRAME_SIZE", "RELAY_RESERVE", "ConnState", "Side", "StreamState",
    "PROTOCOL_VERSION", "ROLE_EDGE", "ROLE_SERVICE",
]
