"""Hypothesis strategies for frontier frames, built from each event's ``SCHEMA``."""

from __future__ import annotations

from hypothesis import strategies as st

from frontier.wire.events import FRAME_TYPES, PROTOCOL_VERSION, Event, Hello

U64 = st.integers(min_value=0, max_value=2**64 - 1)

#: one strategy per schema kind (see ``frontier.wire.events``)
KINDS: dict[str, st.SearchStrategy] = {
    "u": U64,
    "o": st.none() | U64,
    "s": st.text(max_size=20),
    "b": st.binary(max_size=40),
    "l": st.lists(st.text(max_size=8), max_size=4).map(tuple),
    "n": U64 | st.floats(min_value=0, allow_nan=False),
}


def event_of(cls: type[Event]) -> st.SearchStrategy[Event]:
    """Any well-typed event of one class (values need not make sense to a state machine).

    A ``Hello`` carries this protocol's version: the decoder refuses any other before
    it looks at the rest (see ``test_a_future_hello_with_more_fields_is_an_unsupported_version``)."""
    kinds = [KINDS[kind] for kind in cls.SCHEMA]
    if cls is Hello:
        kinds[0] = st.just(PROTOCOL_VERSION)
    return st.builds(cls, *kinds)


#: any well-typed frame event
any_event = st.sampled_from(sorted(FRAME_TYPES.values(), key=lambda c: c.TYPE)).flatmap(event_of)

#: any msgpack-encodable value, for mutating fields
msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats() | st.text(max_size=10) | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
