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

class AppFrontend(_message.Message):
    __slots__ = ("kind", "hostname", "path_prefix")
    KIND_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PATH_PREFIX_FIELD_NUMBER: _ClassVar[int]
    kind: str
    hostname: str
    path_prefix: str
    def __init__(self, kind: _Optional[str] = ..., hostname: _Optional[str] = ..., path_prefix: _Optional[str] = ...) -> None: ...

class EdgeHttpOpts(_message.Message):
    __slots__ = ("edge_id", "edge_from", "target")
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    EDGE_FROM_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    edge_from: str
    target: str
    def __init__(self, edge_id: _Optional[int] = ..., edge_from: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class PeerSetOpts(_message.Message):
    __slots__ = ("addrs",)
    ADDRS_FIELD_NUMBER: _ClassVar[int]
    addrs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, addrs: _Optional[_Iterable[str]] = ...) -> None: ...

class RedirectOpts(_message.Message):
    __slots__ = ("to",)
    TO_FIELD_NUMBER: _ClassVar[int]
    to: str
    def __init__(self, to: _Optional[str] = ...) -> None: ...

class AppBackend(_message.Message):
    __slots__ = ("kind", "edge_http_opts", "peer_set_opts", "redirect_opts")
    KIND_FIELD_NUMBER: _ClassVar[int]
    EDGE_HTTP_OPTS_FIELD_NUMBER: _ClassVar[int]
    PEER_SET_OPTS_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_OPTS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    edge_http_opts: EdgeHttpOpts
    peer_set_opts: PeerSetOpts
    redirect_opts: RedirectOpts
    def __init__(self, kind: _Optional[str] = ..., edge_http_opts: _Optional[_Union[EdgeHttpOpts, _Mapping]] = ..., peer_set_opts: _Optional[_Union[PeerSetOpts, _Mapping]] = ..., redirect_opts: _Optional[_Union[RedirectOpts, _Mapping]] = ...) -> None: ...

class AppAuth(_message.Message):
    __slots__ = ("kind", "tokens", "users")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    tokens: _containers.RepeatedScalarFieldContainer[str]
    users: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[str] = ..., tokens: _Optional[_Iterable[str]] = ..., users: _Optional[_Iterable[str]] = ...) -> None: ...

class App(_message.Message):
    __slots__ = ("id", "frontends", "backend", "auth")
    ID_FIELD_NUMBER: _ClassVar[int]
    FRONTENDS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    id: str
    frontends: _containers.RepeatedCompositeFieldContainer[AppFrontend]
    backend: AppBackend
    auth: AppAuth
    def __init__(self, id: _Optional[str] = ..., frontends: _Optional[_Iterable[_Union[AppFrontend, _Mapping]]] = ..., backend: _Optional[_Union[AppBackend, _Mapping]] = ..., auth: _Optional[_Union[AppAuth, _Mapping]] = ...) -> None: ...

class ListAppsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAppsResponse(_message.Message):
    __slots__ = ("apps", "count")
    APPS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    apps: _containers.RepeatedCompositeFieldContainer[App]
    count: int
    def __init__(self, apps: _Optional[_Iterable[_Union[App, _Mapping]]] = ..., count: _Optional[int] = ...) -> None: ...

class GetAppRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteAppRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteAppResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
