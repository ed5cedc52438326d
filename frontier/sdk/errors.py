"""Every exception the SDK raises; all subclass :class:`FrontierError`.

They are the same classes the gateway uses (one hierarchy, in
:mod:`frontier.wire.errors`); this module re-exports them for SDK users.
"""

from frontier.wire.errors import (
    BackendUnreachable, Banned, BrokerUnavailable, BufferFull, Cancelled, ConnectionClosed, DuplicateEdge,
    EdgeNotOnline, FrontierError, GoingAway, InvalidArgument, Kicked, LimitExceeded, NotExposed, NotOnline,
    PayloadTooLarge, ProtocolError, Refused, RateLimited, RemoteError, RpcNotOnline,
    ServiceNotOnline, StreamReset, Timeout, TopicNotOnline, Unauthorized, error_from_code,
)

__all__ = [
    "FrontierError", "NotOnline", "EdgeNotOnline", "ServiceNotOnline", "RpcNotOnline", "TopicNotOnline",
    "Timeout", "BufferFull", "Cancelled", "ConnectionClosed", "GoingAway", "Kicked", "DuplicateEdge", "Banned",
    "StreamReset", "RemoteError", "BrokerUnavailable", "Refused", "Unauthorized", "InvalidArgument",
    "ProtocolError", "PayloadTooLarge", "RateLimited", "LimitExceeded", "NotExposed", "BackendUnreachable",
    "error_from_code",
]
