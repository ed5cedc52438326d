"""The error table: one class per wire code, one hierarchy, grouped by cause."""

from __future__ import annotations

import pytest

from frontier.wire.errors import (
    ConnectionClosed, DuplicateEdge, EdgeNotOnline, ErrorCode, FrameTooLarge, FrontierError, GoingAway,
    InternalError, Kicked, LocalProtocolError, NotOnline, ProtocolError, RemoteProtocolError, StreamReset,
    Timeout, UnsupportedVersion, code_name, error_from_code,
)


@pytest.mark.parametrize("code", [c for c in ErrorCode if c is not ErrorCode.OK], ids=lambda c: c.name)
def test_every_error_code_has_exactly_one_class_carrying_it(code: ErrorCode) -> None:
    exc = error_from_code(code, "why")
    assert isinstance(exc, FrontierError)
    assert exc.code == code
    assert exc.message == "why"


def test_unknown_codes_become_internal_errors() -> None:
    exc = error_from_code(999, "what")
    assert type(exc) is InternalError and exc.code == ErrorCode.INTERNAL
    assert "999" in exc.message and "what" in exc.message
    assert type(error_from_code(ErrorCode.OK)) is InternalError  # 0 is not an error


def test_hierarchy_groups_by_cause() -> None:
    assert issubclass(EdgeNotOnline, NotOnline)
    assert issubclass(Timeout, TimeoutError)
    assert issubclass(DuplicateEdge, Kicked) and issubclass(Kicked, ConnectionClosed)
    assert issubclass(GoingAway, ConnectionClosed) and issubclass(StreamReset, ConnectionClosed)
    assert issubclass(FrameTooLarge, RemoteProtocolError) and issubclass(UnsupportedVersion, RemoteProtocolError)
    assert issubclass(LocalProtocolError, ProtocolError) and issubclass(RemoteProtocolError, ProtocolError)


def test_protocol_errors_say_which_code_to_close_with() -> None:
    assert RemoteProtocolError("x").code == ErrorCode.PROTOCOL_ERROR
    assert FrameTooLarge("x").code == ErrorCode.FRAME_TOO_LARGE
    assert UnsupportedVersion("x").code == ErrorCode.UNSUPPORTED_VERSION
    assert RemoteProtocolError("x", code=ErrorCode.INTERNAL).code == ErrorCode.INTERNAL


def test_messages_default_to_the_class_name() -> None:
    assert Timeout().message == "Timeout"
    assert str(EdgeNotOnline("edge 5")) == "edge 5"


def test_code_names_for_logs_and_metrics() -> None:
    assert code_name(ErrorCode.EDGE_NOT_ONLINE) == "edge_not_online"
    assert code_name(4) == "edge_not_online"
    assert code_name(12345) == "unknown"
