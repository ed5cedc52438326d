from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Edge(_message.Message):
    __slots__ = ("edge_id", "meta", "addr", "create_time", "rpcs")
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RPCS_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    meta: str
    addr: str
    create_time: int
    rpcs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, edge_id: _Optional[int] = ..., meta: _Optional[str] = ..., addr: _Optional[str] = ..., create_time: _Optional[int] = ..., rpcs: _Optional[_Iterable[str]] = ...) -> None: ...

class ListEdgesRequest(_message.Message):
    __slots__ = ("meta", "addr", "rpc", "edge_id", "page", "page_size", "start_time", "end_time", "order")
    META_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    meta: str
    addr: str
    rpc: str
    edge_id: int
    page: int
    page_size: int
    start_time: int
    end_time: int
    order: str
    def __init__(self, meta: _Optional[str] = ..., addr: _Optional[str] = ..., rpc: _Optional[str] = ..., edge_id: _Optional[int] = ..., page: _Optional[int] = ..., page_size: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., order: _Optional[str] = ...) -> None: ...

class ListEdgesResponse(_message.Message):
    __slots__ = ("edges", "count")
    EDGES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    edges: _containers.RepeatedCompositeFieldContainer[Edge]
    count: int
    def __init__(self, edges: _Optional[_Iterable[_Union[Edge, _Mapping]]] = ..., count: _Optional[int] = ...) -> None: ...

class GetEdgeRequest(_message.Message):
    __slots__ = ("edge_id",)
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    def __init__(self, edge_id: _Optional[int] = ...) -> None: ...

class KickEdgeRequest(_message.Message):
    __slots__ = ("edge_id", "reconnect")
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    reconnect: bool
    def __init__(self, edge_id: _Optional[int] = ..., reconnect: _Optional[bool] = ...) -> None: ...

class KickEdgeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEdgeRPCsRequest(_message.Message):
    __slots__ = ("meta", "edge_id", "page", "page_size", "start_time", "end_time", "order")
    META_FIELD_NUMBER: _ClassVar[int]
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    meta: str
    edge_id: int
    page: int
    page_size: int
    start_time: int
    end_time: int
    order: str
    def __init__(self, meta: _Optional[str] = ..., edge_id: _Optional[int] = ..., page: _Optional[int] = ..., page_size: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., order: _Optional[str] = ...) -> None: ...

class ListEdgeRPCsResponse(_message.Message):
    __slots__ = ("rpcs", "count")
    RPCS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    rpcs: _containers.RepeatedScalarFieldContainer[str]
    count: int
    def __init__(self, rpcs: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ...) -> None: ...

class Service(_message.Message):
    __slots__ = ("service_id", "service", "addr", "create_time", "rpcs", "topics")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RPCS_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    service: str
    addr: str
    create_time: int
    rpcs: _containers.RepeatedScalarFieldContainer[str]
    topics: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service_id: _Optional[int] = ..., service: _Optional[str] = ..., addr: _Optional[str] = ..., create_time: _Optional[int] = ..., rpcs: _Optional[_Iterable[str]] = ..., topics: _Optional[_Iterable[str]] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ("service", "addr", "rpc", "topic", "page", "page_size", "start_time", "end_time", "order", "service_id")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    service: str
    addr: str
    rpc: str
    topic: str
    page: int
    page_size: int
    start_time: int
    end_time: int
    order: str
    service_id: int
    def __init__(self, service: _Optional[str] = ..., addr: _Optional[str] = ..., rpc: _Optional[str] = ..., topic: _Optional[str] = ..., page: _Optional[int] = ..., page_size: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., order: _Optional[str] = ..., service_id: _Optional[int] = ...) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("services", "count")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[Service]
    count: int
    def __init__(self, services: _Optional[_Iterable[_Union[Service, _Mapping]]] = ..., count: _Optional[int] = ...) -> None: ...

class GetServiceRequest(_message.Message):
    __slots__ = ("service_id",)
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    def __init__(self, service_id: _Optional[int] = ...) -> None: ...

class KickServiceRequest(_message.Message):
    __slots__ = ("service_id", "reconnect")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    reconnect: bool
    def __init__(self, service_id: _Optional[int] = ..., reconnect: _Optional[bool] = ...) -> None: ...

class KickServiceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListServiceRPCsRequest(_message.Message):
    __slots__ = ("service", "service_id", "page", "page_size", "start_time", "end_time", "order")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    service: str
    service_id: int
    page: int
    page_size: int
    start_time: int
    end_time: int
    order: str
    def __init__(self, service: _Optional[str] = ..., service_id: _Optional[int] = ..., page: _Optional[int] = ..., page_size: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., order: _Optional[str] = ...) -> None: ...

class ListServiceRPCsResponse(_message.Message):
    __slots__ = ("rpcs", "count")
    RPCS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    rpcs: _containers.RepeatedScalarFieldContainer[str]
    count: int
    def __init__(self, rpcs: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ...) -> None: ...

class ListServiceTopicsRequest(_message.Message):
    __slots__ = ("service", "service_id", "page", "page_size", "start_time", "end_time", "order")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    service: str
    service_id: int
    page: int
    page_size: int
    start_time: int
    end_time: int
    order: str
    def __init__(self, service: _Optional[str] = ..., service_id: _Optional[int] = ..., page: _Optional[int] = ..., page_size: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., order: _Optional[str] = ...) -> None: ...

class ListServiceTopicsResponse(_message.Message):
    __slots__ = ("topics", "count")
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    topics: _containers.RepeatedScalarFieldContainer[str]
    count: int
    def __init__(self, topics: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ...) -> None: ...

class Ban(_message.Message):
    __slots__ = ("edge_id", "until", "remaining", "reason", "create_time")
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    until: float
    remaining: float
    reason: str
    create_time: int
    def __init__(self, edge_id: _Optional[int] = ..., until: _Optional[float] = ..., remaining: _Optional[float] = ..., reason: _Optional[str] = ..., create_time: _Optional[int] = ...) -> None: ...

class BanEdgeRequest(_message.Message):
    __slots__ = ("edge_id", "duration", "reason")
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    duration: float
    reason: str
    def __init__(self, edge_id: _Optional[int] = ..., duration: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class ListBansRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBansResponse(_message.Message):
    __slots__ = ("bans", "count")
    BANS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    bans: _containers.RepeatedCompositeFieldContainer[Ban]
    count: int
    def __init__(self, bans: _Optional[_Iterable[_Union[Ban, _Mapping]]] = ..., count: _Optional[int] = ...) -> None: ...

class LiftBanRequest(_message.Message):
    __slots__ = ("edge_id",)
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    def __init__(self, edge_id: _Optional[int] = ...) -> None: ...

class LiftBanResponse(_message.Message):
    __slots__ = ("lifted",)
    LIFTED_FIELD_NUMBER: _ClassVar[int]
    lifted: bool
    def __init__(self, lifted: _Optional[bool] = ...) -> None: ...
