"""The lean relay path against the reference path, property-based.

The gateway routes calls, publishes and their answers as checked field lists, with no
event object (``Session(lean=True)``); the reference path turns every frame into an
event and back through the protocol machine. For generated traffic between an
admitted edge and service (calls and publishes both ways, answers to live and stale
ids, refusals, frames at and over the relay limit, streams, registrations, garbage),
both must write the same bytes to each peer and close the same sessions. The harness
is the relay fuzzer's (tests/fuzz/fuzz_relay.py), which also checks every frame the
gateway writes decodes within the limit.
"""

from __future__ import annotations

import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.modules.setdefault("atheris", None)  # the harness' in-suite mode: no instrumentation

from tests.fuzz.fuzz_relay import BIG_ID, EDGE_ID, MAX_FRAME, ev, encode_frame, run_records  # noqa: E402

EDGE, SERVICE = 0, 1
ids = st.one_of(st.integers(1, 6), st.just(BIG_ID), st.integers(0, 2**64 - 1))
timeouts = st.sampled_from([0, 1000, 60_000, 2**32, 2**64 - 1])
codes = st.sampled_from([0, 1, 11, 21, 22, 255])
#: payloads around the relay limit (the frame limit less the relay reserve) matter most
data = st.one_of(st.binary(max_size=40), st.integers(MAX_FRAME - 120, MAX_FRAME).map(lambda n: b"x" * n))
text = st.one_of(st.sampled_from(["", "echo", "t", "m", "nope", "$edge_online"]), st.text(max_size=8))


def _edge_frames() -> st.SearchStrategy:
    return st.one_of(
        st.builds(ev.Request, ids, text, data, timeouts),
        st.builds(ev.Publish, ids, text, data, timeouts),
        st.builds(ev.Response, ids, codes, data, st.text(max_size=20)),
        st.builds(ev.Ack, ids, codes, st.text(max_size=20)),
        st.builds(ev.Cancel, ids),
        st.builds(ev.StreamOpen, st.sampled_from([1, 3, 5]), st.sampled_from(["svc", "none"]), st.none(), st.just(b""),
                  st.just(""), st.just(4096), timeouts),
        st.builds(ev.StreamData, st.sampled_from([1, 3]), st.binary(max_size=16)),
        st.builds(ev.Request, ids, text, data, timeouts, st.none(), st.sampled_from([1, 3, 7])),
        st.builds(ev.Register, ids, st.lists(text, max_size=3).map(tuple)),
    )


def _service_frames() -> st.SearchStrategy:
    return st.one_of(
        st.builds(ev.Request, ids, text, data, timeouts, st.sampled_from([EDGE_ID, 99])),
        st.builds(ev.Publish, ids, text, data, timeouts, st.sampled_from([EDGE_ID, 99])),
        st.builds(ev.Response, st.integers(1, 6), codes, data, st.text(max_size=20)),
        st.builds(ev.Ack, st.integers(1, 6), codes, st.text(max_size=20)),
        st.builds(ev.StreamAccept, st.sampled_from([2, 4]), st.just(4096)),
        st.builds(ev.StreamReset, st.sampled_from([2, 4]), codes, st.text(max_size=10)),
        st.builds(ev.Publish, ids, text, data, timeouts, st.none(), st.sampled_from([2, 4])),
    )


def _records(draw: st.DrawFn) -> bytes:
    """Frames from either side, each cut into records at drawn boundaries; now and
    then raw bytes (garbage, or a frame cut short)."""
    out = bytearray()
    for _ in range(draw(st.integers(1, 12))):
        who = draw(st.sampled_from([EDGE, SERVICE]))
        if draw(st.integers(0, 9)) == 0:
            frame = draw(st.binary(min_size=1, max_size=12))
        else:
            frame = encode_frame(draw(_edge_frames() if who == EDGE else _service_frames()))
        pos = 0
        while pos < len(frame):
            n = draw(st.sampled_from([255, 255, 255, 7, 1]))
            piece = frame[pos:pos + n]
            out += bytes([who, len(piece)]) + piece
            pos += n
    return bytes(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.composite(_records)())
def test_the_lean_path_writes_what_the_reference_path_writes(records: bytes) -> None:
    lean, reference = run_records(records, lean=True), run_records(records, lean=False)
    assert lean == reference


def test_the_comparison_sees_the_relayed_traffic() -> None:
    """The transcripts compared above carry the relayed frames themselves: a call, its
    answer, a publish and its ack each reach the other side."""
    def rec(who: int, event: ev.Event) -> bytes:
        frame = encode_frame(event)
        return bytes([who, len(frame)]) + frame

    records = (rec(EDGE, ev.Request(1, "echo", b"hi", 1000)) + rec(SERVICE, ev.Response(1, 0, b"back"))
               + rec(EDGE, ev.Publish(2, "t", b"msg", 1000)) + rec(SERVICE, ev.Ack(2, 0, "")))
    (edge_out, edge_closed), (service_out, service_closed) = run_records(records, lean=True)
    assert not edge_closed and not service_closed
    assert service_out.endswith(encode_frame(ev.Request(1, "echo", b"hi", 1000, EDGE_ID))
                                + encode_frame(ev.Publish(2, "t", b"msg", 1000, EDGE_ID)))
    assert edge_out.endswith(encode_frame(ev.Response(1, 0, b"back")) + encode_frame(ev.Ack(2, 0, "")))
