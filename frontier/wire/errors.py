"""The one error table and exception hierarchy of frontier.

Every error that can cross the wire has a stable integer code (``ErrorCode``) and
exactly one exception class.  The gateway sends codes; the SDK turns a code back
into its class with :func:`error_from_code`.  Everything subclasses
:class:`FrontierError`, grouped by cause as httpcore does, with the Go names users
already know (``EdgeNotOnline``...) as leaves.

This module imports nothing of ours, so the wire layer, the SDK and the gateway can
all share it.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.IntEnum):
    """Stable wire codes. Never renumber: other-language clients depend on them."""

    OK = 0
    PROTOCOL_ERROR = 1
    UNSUPPORTED_VERSION = 2
    UNAUTHORIZED = 3
    EDGE_NOT_ONLINE = 4
    SERVICE_NOT_ONLINE = 5
    RPC_NOT_ONLINE = 6
    TOPIC_NOT_ONLINE = 7
    TIMEOUT = 8
    BUFFER_FULL = 9
    CONNECTION_CLOSED = 10
    REMOTE_ERROR = 11
    CANCELLED = 12
    REFUSED = 13
    FRAME_TOO_LARGE = 14
    GOING_AWAY = 15
    DUPLICATE_EDGE = 16
    KICKED = 17
    INVALID_ARGUMENT = 18
    INTERNAL = 19
    BROKER_UNAVAILABLE = 20
    STREAM_RESET = 21
    PAYLOAD_TOO_LARGE = 22
    RATE_LIMITED = 23
    LIMIT_EXCEEDED = 24
    BANNED = 25
    NOT_EXPOSED = 26
    BACKEND_UNREACHABLE = 27
    NOT_FOUND = 28


class FrontierError(Exception):
    """Base of every error raised by frontier (SDK, gateway and wire).

    ``code`` is the :class:`ErrorCode` that carries this error over the wire.
    """

    code: ErrorCode = ErrorCode.INTERNAL
    #: seconds after which the gateway said to connect again (a kick or a ban that
    #: ends, from ``GoAway``/``Refuse.retry_after_ms``); None when it said nothing
    retry_after: float | None = None

    def __init__(self, message: str = "", *, code: ErrorCode | None = None, retry_after: float | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def message(self) -> str:
        """The human-readable text of the error."""
        return str(self.args[0]) if self.args else ""


# -- routing: the target of a call, publish or stream is not there -----------------


class NotOnline(FrontierError):
    """The target of a call, publish or stream is not connected."""


class EdgeNotOnline(NotOnline):
    """No edge with that id is connected to the gateway."""

    code = ErrorCode.EDGE_NOT_ONLINE


class ServiceNotOnline(NotOnline):
    """No service with that name (or holding that call) is connected."""

    code = ErrorCode.SERVICE_NOT_ONLINE


class RpcNotOnline(NotOnline):
    """No peer registered the called method."""

    code = ErrorCode.RPC_NOT_ONLINE


class TopicNotOnline(NotOnline):
    """No service or MQ sink claims the published topic."""

    code = ErrorCode.TOPIC_NOT_ONLINE


# -- flow: deadlines and capacity ----------------------------------------------------


class Timeout(FrontierError, TimeoutError):
    """A deadline passed before the answer came. Also a builtin ``TimeoutError``."""

    code = ErrorCode.TIMEOUT


class BufferFull(FrontierError):
    """A bounded queue or in-flight limit is full; retry later."""

    code = ErrorCode.BUFFER_FULL


class LimitExceeded(BufferFull):
    """A per-connection cap was reached (registrations, name length); the text names it."""

    code = ErrorCode.LIMIT_EXCEEDED


class Cancelled(FrontierError):
    """The caller cancelled the operation."""

    code = ErrorCode.CANCELLED


# -- connection life -------------------------------------------------------------------


class ConnectionClosed(FrontierError):
    """The connection (or stream) closed before the operation finished."""

    code = ErrorCode.CONNECTION_CLOSED


class GoingAway(ConnectionClosed):
    """The gateway is draining; reconnect elsewhere."""

    code = ErrorCode.GOING_AWAY


class Kicked(ConnectionClosed):
    """An operator (or a newer connection with the same edge id) forced this one off."""

    code = ErrorCode.KICKED


class DuplicateEdge(Kicked):
    """A newer connection claimed this edge id; this one was closed."""

    code = ErrorCode.DUPLICATE_EDGE


class RateLimited(ConnectionClosed):
    """The connection sent frames or bytes faster than the gateway's per-connection
    rate for longer than the grace period, and was closed."""

    code = ErrorCode.RATE_LIMITED


class StreamReset(ConnectionClosed):
    """The stream was reset by the peer or the gateway."""

    code = ErrorCode.STREAM_RESET


class BackendUnreachable(ConnectionClosed):
    """An edge could not connect to the local service it exposes (refused, no answer)."""

    code = ErrorCode.BACKEND_UNREACHABLE


# -- the peer answered with an error ----------------------------------------------------


class RemoteError(FrontierError):
    """The remote handler raised, or the receiver called ``msg.error(reason)``."""

    code = ErrorCode.REMOTE_ERROR


class BrokerUnavailable(FrontierError):
    """An external MQ did not store the message (down, refused, or too slow)."""

    code = ErrorCode.BROKER_UNAVAILABLE


class Refused(FrontierError):
    """The gateway (or a service hook) refused the connection."""

    code = ErrorCode.REFUSED


class Unauthorized(Refused):
    """Credentials were missing, expired or wrong."""

    code = ErrorCode.UNAUTHORIZED


class Banned(Refused):
    """An operator banned this edge id for a while; ``retry_after`` says for how long
    more (seconds)."""

    code = ErrorCode.BANNED
class NotExposed(Refused):
    """The edge does not expose the target the gateway asked for (``Edge(expose=...)``)."""

    code = ErrorCode.NOT_EXPOSED


class NotFound(FrontierError):
    """The control plane has no object with that id (an ingress app, say)."""

    code = ErrorCode.NOT_FOUND


class InvalidArgument(FrontierError):
    """A request was malformed (reserved name, bad value)."""

    code = ErrorCode.INVALID_ARGUMENT


class PayloadTooLarge(InvalidArgument):
    """The payload does not fit a frame once the gateway relays it (its body must
    leave ``RELAY_RESERVE`` bytes of ``max_frame_size`` free); nothing was delivered."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class ConfigError(FrontierError):
    """A configuration file or environment override is wrong; the text says which key."""

    code = ErrorCode.INVALID_ARGUMENT


class InternalError(FrontierError):
    """The gateway failed in a way it did not expect; the message says where."""

    code = ErrorCode.INTERNAL


# -- the protocol itself was broken -------------------------------------------------------


class ProtocolError(FrontierError):
    """The wire protocol was violated. See the two subclasses for whose fault."""

    code = ErrorCode.PROTOCOL_ERROR


class LocalProtocolError(ProtocolError):
    """We tried to send something the protocol does not allow (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break the protocol; the connection must close.

    ``code`` is what to send back in the closing frame (``PROTOCOL_ERROR``,
    ``FRAME_TOO_LARGE`` or ``UNSUPPORTED_VERSION``).
    """


class FrameTooLarge(RemoteProtocolError):
    """A frame header announced more bytes than the negotiated maximum."""

    code = ErrorCode.FRAME_TOO_LARGE


class UnsupportedVersion(RemoteProtocolError):
    """The peer speaks a protocol version we do not."""

    code = ErrorCode.UNSUPPORTED_VERSION


_BY_CODE: dict[int, type[FrontierError]] = {
    ErrorCode.EDGE_NOT_ONLINE: EdgeNotOnline,
    ErrorCode.SERVICE_NOT_ONLINE: ServiceNotOnline,
    ErrorCode.RPC_NOT_ONLINE: RpcNotOnline,
    ErrorCode.TOPIC_NOT_ONLINE: TopicNotOnline,
    ErrorCode.TIMEOUT: Timeout,
    ErrorCode.BUFFER_FULL: BufferFull,
    ErrorCode.CANCELLED: Cancelled,
    ErrorCode.CONNECTION_CLOSED: ConnectionClosed,
    ErrorCode.GOING_AWAY: GoingAway,
    ErrorCode.KICKED: Kicked,
    ErrorCode.DUPLICATE_EDGE: DuplicateEdge,
    ErrorCode.STREAM_RESET: StreamReset,
    ErrorCode.PAYLOAD_TOO_LARGE: PayloadTooLarge,
    ErrorCode.RATE_LIMITED: RateLimited,
    ErrorCode.LIMIT_EXCEEDED: LimitExceeded,
    ErrorCode.NOT_EXPOSED: NotExposed,
    ErrorCode.BACKEND_UNREACHABLE: BackendUnreachable,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.REMOTE_ERROR: RemoteError,
    ErrorCode.BROKER_UNAVAILABLE: BrokerUnavailable,
    ErrorCode.REFUSED: Refused,
    ErrorCode.UNAUTHORIZED: Unauthorized,
    ErrorCode.BANNED: Banned,
    ErrorCode.INVALID_ARGUMENT: InvalidArgument,
    ErrorCode.INTERNAL: InternalError,
    ErrorCode.PROTOCOL_ERROR: ProtocolError,
    ErrorCode.FRAME_TOO_LARGE: FrameTooLarge,
    ErrorCode.UNSUPPORTED_VERSION: UnsupportedVersion,
}


def error_from_code(code: int, message: str = "", retry_after_ms: int | None = None) -> FrontierError:
    """Build the exception for a wire code; unknown codes become ``InternalError``.
    ``retry_after_ms`` (from ``Refuse``/``GoAway``) becomes its ``retry_after`` seconds."""
    retry_after = None if retry_after_ms is None else retry_after_ms / 1000.0
    cls = _BY_CODE.get(code)
    if cls is None:
        return InternalError(f"unknown error code {code}: {message}", retry_after=retry_after)
    return cls(message, retry_after=retry_after)


def code_name(code: int) -> str:
    """Lower-case name of a code, for logs and metric labels (``edge_not_online``)."""
    try:
        return ErrorCode(code).name.lower()
    except ValueError:
        return "unknown"
