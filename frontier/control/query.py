"""What a control-plane list request asks for, checked once, shared by REST and gRPC.

A query is a frozen value: filters (``None`` = no filter), a time range, one sort
order and a page. Builders here turn loosely typed input (strings from a URL,
proto fields) into these values and raise :class:`~frontier.wire.errors.InvalidArgument`
with a message naming the bad field, so both front ends answer 400 /
INVALID_ARGUMENT the same way.

Semantics (identical in every store backend):

* text filters ``meta``, ``addr``, ``service`` match by prefix, case-sensitive;
  ``rpc`` and ``topic`` match exactly; ids match exactly;
* an empty filter (``""``) is no filter, as in the Go frontier;
* the time range is ``start_time <= create_time < end_time`` in unix seconds,
  either bound optional;
* ``order`` is ``field``, ``+field`` (ascending) or ``-field`` (descending); ties
  are broken by id (or by name for RPC and topic lists), ascending;
* ``page`` counts from 1; ``page_size`` is 1..:data:`MAX_PAGE_SIZE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Optional, Sequence, TypeVar

from frontier.wire.errors import InvalidArgument

#: page used when the request leaves it out (or sends 0, the proto default)
DEFAULT_PAGE = 1
#: page size used when the request leaves it out (or sends 0)
DEFAULT_PAGE_SIZE = 10
#: largest page a request may ask for
MAX_PAGE_SIZE = 1000

UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1
#: the largest page whose offset, ``(page - 1) * page_size``, still fits in an int64
MAX_PAGE = INT64_MAX // MAX_PAGE_SIZE + 1

#: sortable fields of each list, the first being the default (descending)
EDGE_ORDER_FIELDS = ("create_time", "edge_id", "meta", "addr")
SERVICE_ORDER_FIELDS = ("create_time", "service_id", "service", "addr")
RPC_ORDER_FIELDS = ("create_time", "rpc")
TOPIC_ORDER_FIELDS = ("create_time", "topic")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Order:
    """Sort by ``field``; ``desc`` for descending."""

    field: str
    desc: bool = False


@dataclass(frozen=True, slots=True)
class Window:
    """The part every list query shares: time range, order and page."""

    start_time: Optional[int] = None
    end_time: Optional[int] = None
    order: Order = Order("create_time", desc=True)
    page: int = DEFAULT_PAGE
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        """How many matches come before this page."""
        return (self.page - 1) * self.page_size


@dataclass(frozen=True, slots=True)
class EdgeQuery:
    """``ListEdges``: edges by meta/addr prefix, registered RPC, id and time."""

    meta: Optional[str] = None
    addr: Optional[str] = None
    rpc: Optional[str] = None
    edge_id: Optional[int] = None
    window: Window = Window()


@dataclass(frozen=True, slots=True)
class EdgeRPCQuery:
    """``ListEdgeRPCs``: the distinct RPCs of the edges that match."""

    meta: Optional[str] = None
    edge_id: Optional[int] = None
    window: Window = Window()


@dataclass(frozen=True, slots=True)
class ServiceQuery:
    """``ListServices``: services by name/addr prefix, RPC, topic, id and time."""

    service: Optional[str] = None
    addr: Optional[str] = None
    rpc: Optional[str] = None
    topic: Optional[str] = None
    service_id: Optional[int] = None
    window: Window = Window()


@dataclass(frozen=True, slots=True)
class ServiceNamesQuery:
    """``ListServiceRPCs`` / ``ListServiceTopics``: distinct names of matching services."""

    service: Optional[str] = None
    service_id: Optional[int] = None
    window: Window = Window()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results and the true number of matches over all pages."""

    items: tuple[T, ...]
    count: int


def text_of(raw: bytes | str) -> str:
    """The text form of a meta or name: valid UTF-8, bad bytes become U+FFFD.

    Stores filter and sort on this form, and the APIs show it, so all agree.
    """
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw).decode("utf-8", "replace")
    if raw.isascii():
        return raw
    return raw.encode("utf-8", "replace").decode("utf-8")


def parse_order(value: Optional[str], fields: Sequence[str]) -> Order:
    """``"-f"`` / ``"+f"`` / ``"f"`` to an :class:`Order`; default ``-fields[0]``.

    A leading space counts as ``+``: that is what an unescaped ``+`` in a URL
    query string decodes to.
    """
    if value is None or value == "":
        return Order(fields[0], desc=True)
    desc = False
    name = value
    if value[0] in "+ ":
        name = value[1:]
    elif value[0] == "-":
        name, desc = value[1:], True
    if name not in fields:
        raise InvalidArgument(
            f"order: unknown field {name!r}; use one of {', '.join(fields)}, "
            "optionally prefixed with - (descending) or + (ascending)"
        )
    return Order(name, desc)


def _text_filter(value: Optional[str]) -> Optional[str]:
    return text_of(value) if value else None


def check_int(name: str, value: Optional[int], *, lo: int, hi: int) -> Optional[int]:
    """``value`` if within ``[lo, hi]`` (or ``None``), else :class:`InvalidArgument`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidArgument(f"{name}: {value} is out of range [{lo}, {hi}]")
    return value


def make_window(
    *,
    start_time: Optional[int] = None,
    end_time: Optional[int] = None,
    order: Optional[str] = None,
    page: Optional[int] = None,
    page_size: Optional[int] = None,
    order_fields: Sequence[str],
) -> Window:
    """Check and default the shared part of a list request.

    ``page``/``page_size`` of ``None`` or ``0`` take the defaults (proto3 sends 0
    for "unset"; the REST front end refuses 0 before this); negative values, a page
    size above :data:`MAX_PAGE_SIZE` and negative times are refused. A time range
    with ``end_time <= start_time`` is empty: it matches nothing.
    """
    page = check_int("page", page, lo=0, hi=MAX_PAGE) or DEFAULT_PAGE
    page_size = check_int("page_size", page_size, lo=0, hi=MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE
    start_time = check_int("start_time", start_time, lo=0, hi=INT64_MAX)
    end_time = check_int("end_time", end_time, lo=0, hi=INT64_MAX)
    return Window(
        start_time=start_time,
        end_time=end_time,
        order=parse_order(order, order_fields),
        page=page,
        page_size=page_size,
    )


def make_edge_query(
    *,
    meta: Optional[str] = None,
    addr: Optional[str] = None,
    rpc: Optional[str] = None,
    edge_id: Optional[int] = None,
    **window: Optional[int | str],
) -> EdgeQuery:
    """A checked :class:`EdgeQuery`; ``window`` takes :func:`make_window`'s arguments."""
    return EdgeQuery(
        meta=_text_filter(meta),
        addr=_text_filter(addr),
        rpc=_text_filter(rpc),
        edge_id=check_int("edge_id", edge_id, lo=0, hi=UINT64_MAX),
        window=make_window(order_fields=EDGE_ORDER_FIELDS, **window),  # type: ignore[arg-type]
    )


def make_edge_rpc_query(
    *, meta: Optional[str] = None, edge_id: Optional[int] = None, **window: Optional[int | str]
) -> EdgeRPCQuery:
    """A checked :class:`EdgeRPCQuery`."""
    return EdgeRPCQuery(
        meta=_text_filter(meta),
        edge_id=check_int("edge_id", edge_id, lo=0, hi=UINT64_MAX),
        window=make_window(order_fields=RPC_ORDER_FIELDS, **window),  # type: ignore[arg-type]
    )


def make_service_query(
    *,
    service: Optional[str] = None,
    addr: Optional[str] = None,
    rpc: Optional[str] = None,
    topic: Optional[str] = None,
    service_id: Optional[int] = None,
    **window: Optional[int | str],
) -> ServiceQuery:
    """A checked :class:`ServiceQuery`."""
    return ServiceQuery(
        service=_text_filter(service),
        addr=_text_filter(addr),
        rpc=_text_filter(rpc),
        topic=_text_filter(topic),
        service_id=check_int("service_id", service_id, lo=0, hi=UINT64_MAX),
        window=make_window(order_fields=SERVICE_ORDER_FIELDS, **window),  # type: ignore[arg-type]
    )


def make_service_names_query(
    *,
    kind: str,
    service: Optional[str] = None,
    service_id: Optional[int] = None,
    **window: Optional[int | str],
) -> ServiceNamesQuery:
    """A checked :class:`ServiceNamesQuery`; ``kind`` is ``"rpc"`` or ``"topic"``."""
    fields = RPC_ORDER_FIELDS if kind == "rpc" else TOPIC_ORDER_FIELDS
    return ServiceNamesQuery(
        service=_text_filter(service),
        service_id=check_int("service_id", service_id, lo=0, hi=UINT64_MAX),
        window=make_window(order_fields=fields, **window),  # type: ignore[arg-type]
    )
