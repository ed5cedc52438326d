"""``sdk/PROTOCOL.md`` says what the code does: its tables and hex examples are checked here."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from frontier.wire import errors
from frontier.wire.codec import encode_frame
from frontier.wire.errors import ErrorCode, error_from_code
from frontier.wire.events import FRAME_TYPES, Hello, Ping, Refuse, Request, Response, StreamData, Welcome
from frontier.wire.state import (
    CONNECTION_TRANSITIONS, MAX_WINDOW, STREAM_TRANSITIONS, ConnState, Direction, Side, StreamState,
)

SPEC = (Path(__file__).resolve().parents[2] / "sdk" / "PROTOCOL.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of one ``## N. Title`` section."""
    match = re.search(rf"^## \d+\. {re.escape(title)}\n(.*?)(?=^## |\Z)", SPEC, re.S | re.M)
    assert match, title
    return match.group(1)


def rows(text: str, first_cell: str) -> list[list[str]]:
    """Cells of the table rows in ``text`` whose first cell matches ``first_cell``."""
    out = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if re.fullmatch(first_cell, cells[0]):
                out.append(cells)
    return out


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_frame_table_lists_every_frame_with_its_fields_in_order() -> None:
    table = rows(section("Frames"), r"\d+")
    got = {}
    for number, name, _direction, field_cell in table:
        pairs = [p.strip().rsplit(" ", 1) for p in field_cell.split(",")]
        got[int(number)] = (ticked(name)[0], [ticked(n)[0] for n, _ in pairs], "".join(k for _, k in pairs))
    want = {t: (c.__name__, [f.name for f in fields(c)], c.SCHEMA) for t, c in FRAME_TYPES.items()}
    assert got == want


def test_error_table_matches_the_codes_and_classes() -> None:
    table = rows(section("Error codes"), r"\d+")
    assert [int(r[0]) for r in table] == [int(c) for c in ErrorCode]
    for number, name, _meaning, cls in table:
        code = ErrorCode(int(number))
        assert ticked(name) == [code.name]
        if code is ErrorCode.OK:
            assert cls == "—"
            continue
        exc = error_from_code(code)
        assert ticked(cls) == [type(exc).__name__]
        assert exc.code == code
        assert getattr(errors, type(exc).__name__) is type(exc)


_STATES = {s.name: s for s in StreamState}


def test_stream_state_table_is_the_code_table() -> None:
    got = {}
    for state, direction, frames, nxt in rows(section("Streams"), r"—|[A-Z_]+|any but CLOSED"):
        if state == "—":
            states = [None]
        elif state == "any but CLOSED":
            states = [s for s in StreamState if s is not StreamState.CLOSED]
        else:
            states = [_STATES[state]]
        dirs = [Direction(d.strip()) for d in direction.split("/")]
        for s in states:
            for d in dirs:
                for frame in ticked(frames):
                    got[(s, d, frame)] = _STATES[nxt]
    want = {(s, d, ev.__name__): n for (s, d, ev), n in STREAM_TRANSITIONS.items()}
    assert got == want


def test_connection_state_table_is_the_code_table() -> None:
    got = {}
    open_frames: list[str] = []
    for state, sender, frames, nxt in rows(section("Connection life"), r"[A-Z]+|any"):
        if state == "any":
            continue  # end of file: not a frame
        sides = list(Side) if sender == "either" else [Side(sender)]
        names = ticked(frames) or open_frames
        if state == "OPEN" and sender == "either":
            open_frames = names
        for side in sides:
            for frame in names:
                got[(ConnState[state], side, frame)] = ConnState[nxt]
    want = {(s, side, ev.__name__): n for (s, side, ev), n in CONNECTION_TRANSITIONS.items()}
    assert got == want


@pytest.mark.parametrize(
    "event",
    [
        Request(7, "echo", b"hi", 5000),
        Response(7, 0, b"hi"),
        Hello(1, "edge", meta=b"\x01\x02", credentials=b"tok"),
        Welcome(42, 1048576, 15.0, 1048576, 1024),
        Refuse(3, "bad token"),
        StreamData(3, b"abc"),
        Ping(1),
    ],
    ids=lambda e: type(e).__name__,
)
def test_worked_examples_are_what_the_codec_produces(event) -> None:
    assert encode_frame(event).hex(" ") in section("Worked example")


def test_constants_quoted_in_the_spec() -> None:
    assert f"{MAX_WINDOW:,}".replace(",", " ") in SPEC
    assert "1 048 576" in SPEC
