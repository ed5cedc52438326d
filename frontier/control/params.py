"""The query parameters of each REST list call, as data.

The REST front end parses requests with these tables (refusing unknown, repeated
and malformed parameters with 400) and the OpenAPI document lists them from the
same tables, so the document cannot drift from what the server accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

from frontier.control.query import (
    EDGE_ORDER_FIELDS,
    MAX_PAGE_SIZE,
    RPC_ORDER_FIELDS,
    SERVICE_ORDER_FIELDS,
    TOPIC_ORDER_FIELDS,
)
from frontier.wire.errors import InvalidArgument

_INT = re.compile(r"-?[0-9]{1,40}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Param:
    """One query parameter: its name, ``kind`` (``string``/``int64``/``uint64``/
    ``boolean``/``number``), meaning."""

    name: str
    kind: str
    doc: str


def _order(fields: Sequence[str]) -> Param:
    return Param(
        "order",
        "string",
        f"sort field, one of {', '.join(fields)}; prefix - for descending, + (sent as %2B) "
        f"or nothing for ascending; default -{fields[0]}",
    )


def _window(fields: Sequence[str]) -> tuple[Param, ...]:
    return (
        Param("page", "int64", "page number, from 1 (default 1)"),
        Param("page_size", "int64", f"items per page, 1..{MAX_PAGE_SIZE} (default 10)"),
        Param("start_time", "int64", "only items created at or after this unix time (seconds)"),
        Param("end_time", "int64", "only items created before this unix time (seconds)"),
        _order(fields),
    )


LIST_EDGES: tuple[Param, ...] = (
    Param("meta", "string", "edge meta starts with this"),
    Param("addr", "string", "edge address starts with this"),
    Param("rpc", "string", "edge registered exactly this RPC"),
    Param("edge_id", "uint64", "edge id equals this"),
) + _window(EDGE_ORDER_FIELDS)

LIST_EDGE_RPCS: tuple[Param, ...] = (
    Param("meta", "string", "only RPCs of edges whose meta starts with this"),
    Param("edge_id", "uint64", "only RPCs of this edge"),
) + _window(RPC_ORDER_FIELDS)

LIST_SERVICES: tuple[Param, ...] = (
    Param("service", "string", "service name starts with this"),
    Param("addr", "string", "service address starts with this"),
    Param("rpc", "string", "service registered exactly this RPC"),
    Param("topic", "string", "service declared exactly this topic"),
    Param("service_id", "uint64", "service id equals this"),
) + _window(SERVICE_ORDER_FIELDS)

LIST_SERVICE_RPCS: tuple[Param, ...] = (
    Param("service", "string", "only RPCs of services whose name starts with this"),
    Param("service_id", "uint64", "only RPCs of this service"),
) + _window(RPC_ORDER_FIELDS)

LIST_SERVICE_TOPICS: tuple[Param, ...] = (
    Param("service", "string", "only topics of services whose name starts with this"),
    Param("service_id", "uint64", "only topics of this service"),
) + _window(TOPIC_ORDER_FIELDS)


KICK: tuple[Param, ...] = (
    Param("reconnect", "boolean", "true (default, as in Go): the client is told to reconnect after "
          "limits.kick_reconnect_delay seconds; false: it does not come back by itself"),
)

BAN_EDGE: tuple[Param, ...] = (
    Param("duration", "number", "seconds the edge id stays banned, more than 0 and at most a year (required)"),
    Param("reason", "string", "why, told to the edge and listed"),
)

_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?", re.ASCII)


def parse_int(name: str, raw: str) -> int:
    """A decimal integer (ASCII digits, optional ``-``), or :class:`InvalidArgument`."""
    if not _INT.fullmatch(raw):
        raise InvalidArgument(f"{name}: expected a decimal integer, got {raw[:40]!r}")
    return int(raw)


def parse_params(
    args: Mapping[str, Sequence[str]], spec: Sequence[Param]
) -> dict[str, Optional[Union[str, int, float, bool]]]:
    """Check ``args`` (name -> all its values) against ``spec``; values by name.

    Unknown names, repeated names and non-integers for integer parameters are
    refused; an absent or empty value is ``None`` (no filter, default page).
    """
    known = {p.name: p for p in spec}
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise InvalidArgument(
            f"unknown query parameter {unknown[0]!r}; this call takes: {', '.join(known)}"
        )
    out: dict[str, Optional[Union[str, int, float, bool]]] = {}
    for name, values in args.items():
        if len(values) > 1:
            raise InvalidArgument(f"{name}: given {len(values)} times, expected once")
        raw = values[0] if values else ""
        if raw == "":
            out[name] = None
        elif known[name].kind == "string":
            out[name] = raw
        elif known[name].kind == "boolean":
            if raw.lower() not in _BOOLEANS:
                raise InvalidArgument(f"{name}: expected true or false, got {raw[:40]!r}")
            out[name] = _BOOLEANS[raw.lower()]
        elif known[name].kind == "number":
            if not _NUMBER.fullmatch(raw):
                raise InvalidArgument(f"{name}: expected a number of seconds, got {raw[:40]!r}")
            out[name] = float(raw)
        else:
            out[name] = parse_int(name, raw)
    return out
