from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Frontier(_message.Message):
    __slots__ = ("frontier_id", "advertised_sb_addr", "advertised_eb_addr", "edge_count", "service_count", "update_time")
    FRONTIER_ID_FIELD_NUMBER: _ClassVar[int]
    ADVERTISED_SB_ADDR_FIELD_NUMBER: _ClassVar[int]
    ADVERTISED_EB_ADDR_FIELD_NUMBER: _ClassVar[int]
    EDGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    frontier_id: str
    advertised_sb_addr: str
    advertised_eb_addr: str
    edge_count: int
    service_count: int
    update_time: int
    def __init__(self, frontier_id: _Optional[str] = ..., advertised_sb_addr: _Optional[str] = ..., advertised_eb_addr: _Optional[str] = ..., edge_count: _Optional[int] = ..., service_count: _Optional[int] = ..., update_time: _Optional[int] = ...) -> None: ...

class EdgeRecord(_message.Message):
    __slots__ = ("edge_id", "addr", "update_time", "frontier_id")
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FRONTIER_ID_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    addr: str
    update_time: int
    frontier_id: str
    def __init__(self, edge_id: _Optional[int] = ..., addr: _Optional[str] = ..., update_time: _Optional[int] = ..., frontier_id: _Optional[str] = ...) -> None: ...

class ServiceRecord(_message.Message):
    __slots__ = ("service", "addr", "update_time", "frontier_id", "service_id", "rpcs", "topics")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FRONTIER_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    RPCS_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    service: str
    addr: str
    update_time: int
    frontier_id: str
    service_id: int
    rpcs: _containers.RepeatedScalarFieldContainer[str]
    topics: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service: _Optional[str] = ..., addr: _Optional[str] = ..., update_time: _Optional[int] = ..., frontier_id: _Optional[str] = ..., service_id: _Optional[int] = ..., rpcs: _Optional[_Iterable[str]] = ..., topics: _Optional[_Iterable[str]] = ...) -> None: ...

class GetFrontierByEdgeIDRequest(_message.Message):
    __slots__ = ("edge_id",)
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    def __init__(self, edge_id: _Optional[int] = ...) -> None: ...

class GetFrontierByEdgeIDResponse(_message.Message):
    __slots__ = ("frontier",)
    FRONTIER_FIELD_NUMBER: _ClassVar[int]
    frontier: Frontier
    def __init__(self, frontier: _Optional[_Union[Frontier, _Mapping]] = ...) -> None: ...

class ListFrontiersRequest(_message.Message):
    __slots__ = ("cursor", "count", "edge_ids", "frontier_ids")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EDGE_IDS_FIELD_NUMBER: _ClassVar[int]
    FRONTIER_IDS_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    count: int
    edge_ids: _containers.RepeatedScalarFieldContainer[int]
    frontier_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cursor: _Optional[int] = ..., count: _Optional[int] = ..., edge_ids: _Optional[_Iterable[int]] = ..., frontier_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListFrontiersResponse(_message.Message):
    __slots__ = ("cursor", "frontiers")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    FRONTIERS_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    frontiers: _containers.RepeatedCompositeFieldContainer[Frontier]
    def __init__(self, cursor: _Optional[int] = ..., frontiers: _Optional[_Iterable[_Union[Frontier, _Mapping]]] = ...) -> None: ...

class ListClusterEdgesRequest(_message.Message):
    __slots__ = ("cursor", "count", "edge_ids")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EDGE_IDS_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    count: int
    edge_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, cursor: _Optional[int] = ..., count: _Optional[int] = ..., edge_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ListClusterEdgesResponse(_message.Message):
    __slots__ = ("cursor", "edges")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    edges: _containers.RepeatedCompositeFieldContainer[EdgeRecord]
    def __init__(self, cursor: _Optional[int] = ..., edges: _Optional[_Iterable[_Union[EdgeRecord, _Mapping]]] = ...) -> None: ...

class GetEdgeByIDRequest(_message.Message):
    __slots__ = ("edge_id",)
    EDGE_ID_FIELD_NUMBER: _ClassVar[int]
    edge_id: int
    def __init__(self, edge_id: _Optional[int] = ...) -> None: ...

class GetEdgeByIDResponse(_message.Message):
    __slots__ = ("edge",)
    EDGE_FIELD_NUMBER: _ClassVar[int]
    edge: EdgeRecord
    def __init__(self, edge: _Optional[_Union[EdgeRecord, _Mapping]] = ...) -> None: ...

class GetEdgesCountRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetEdgesCountResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ListClusterServicesRequest(_message.Message):
    __slots__ = ("cursor", "count", "service_ids")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    count: int
    service_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, cursor: _Optional[int] = ..., count: _Optional[int] = ..., service_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ListClusterServicesResponse(_message.Message):
    __slots__ = ("cursor", "services")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    services: _containers.RepeatedCompositeFieldContainer[ServiceRecord]
    def __init__(self, cursor: _Optional[int] = ..., services: _Optional[_Iterable[_Union[ServiceRecord, _Mapping]]] = ...) -> None: ...

class GetServiceByIDRequest(_message.Message):
    __slots__ = ("service_id", "frontier_id")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    FRONTIER_ID_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    frontier_id: str
    def __init__(self, service_id: _Optional[int] = ..., frontier_id: _Optional[str] = ...) -> None: ...

class GetServiceByIDResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: ServiceRecord
    def __init__(self, service: _Optional[_Union[ServiceRecord, _Mapping]] = ...) -> None: ...

class GetServicesCountRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServicesCountResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class HealthCheckRequest(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: str
    def __init__(self, service: _Optional[str] = ...) -> None: ...

class HealthCheckResponse(_message.Message):
    __slots__ = ("status",)
    class ServingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[HealthCheckResponse.ServingStatus]
        SERVING: _ClassVar[HealthCheckResponse.ServingStatus]
        NOT_SERVING: _ClassVar[HealthCheckResponse.ServingStatus]
        SERVICE_UNKNOWN: _ClassVar[HealthCheckResponse.ServingStatus]
    UNKNOWN: HealthCheckResponse.ServingStatus
    SERVING: HealthCheckResponse.ServingStatus
    NOT_SERVING: HealthCheckResponse.ServingStatus
    SERVICE_UNKNOWN: HealthCheckResponse.ServingStatus
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: HealthCheckResponse.ServingStatus
    def __init__(self, status: _Optional[_Union[HealthCheckResponse.ServingStatus, str]] = ...) -> None: ...
