import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PrincipalRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRINCIPAL_ROLE_UNSPECIFIED: _ClassVar[PrincipalRole]
    PRINCIPAL_ROLE_PROXY_ADMIN: _ClassVar[PrincipalRole]
    PRINCIPAL_ROLE_PROXY_ADMIN_VIEWER: _ClassVar[PrincipalRole]
    PRINCIPAL_ROLE_INTERNAL_USER: _ClassVar[PrincipalRole]
    PRINCIPAL_ROLE_INTERNAL_USER_VIEWER: _ClassVar[PrincipalRole]
PRINCIPAL_ROLE_UNSPECIFIED: PrincipalRole
PRINCIPAL_ROLE_PROXY_ADMIN: PrincipalRole
PRINCIPAL_ROLE_PROXY_ADMIN_VIEWER: PrincipalRole
PRINCIPAL_ROLE_INTERNAL_USER: PrincipalRole
PRINCIPAL_ROLE_INTERNAL_USER_VIEWER: PrincipalRole

class Principal(_message.Message):
    __slots__ = ("key_hash", "key_alias", "team_id", "user_id", "role", "models", "end_user", "org_id")
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    END_USER_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    key_hash: str
    key_alias: str
    team_id: str
    user_id: str
    role: PrincipalRole
    models: _containers.RepeatedScalarFieldContainer[str]
    end_user: str
    org_id: str
    def __init__(self, key_hash: _Optional[str] = ..., key_alias: _Optional[str] = ..., team_id: _Optional[str] = ..., user_id: _Optional[str] = ..., role: _Optional[_Union[PrincipalRole, str]] = ..., models: _Optional[_Iterable[str]] = ..., end_user: _Optional[str] = ..., org_id: _Optional[str] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("api_key", "operation", "model", "estimated_tokens", "end_user", "request_id", "estimated_cost")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    END_USER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    operation: str
    model: str
    estimated_tokens: int
    end_user: str
    request_id: str
    estimated_cost: float
    def __init__(self, api_key: _Optional[str] = ..., operation: _Optional[str] = ..., model: _Optional[str] = ..., estimated_tokens: _Optional[int] = ..., end_user: _Optional[str] = ..., request_id: _Optional[str] = ..., estimated_cost: _Optional[float] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("principal", "reservation_id", "rate_limit_headers")
    class RateLimitHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_HEADERS_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    reservation_id: str
    rate_limit_headers: _containers.ScalarMap[str, str]
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., reservation_id: _Optional[str] = ..., rate_limit_headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UsageRecord(_message.Message):
    __slots__ = ("request_id", "key_hash", "team_id", "user_id", "end_user", "model_group", "deployment_id", "model", "provider", "prompt_tokens", "completion_tokens", "cost", "latency_ms", "status", "operation", "start_time", "end_time", "cache_hit", "reservation_id", "organization_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    END_USER_FIELD_NUMBER: _ClassVar[int]
    MODEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_hash: str
    team_id: str
    user_id: str
    end_user: str
    model_group: str
    deployment_id: str
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency_ms: float
    status: str
    operation: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    cache_hit: bool
    reservation_id: str
    organization_id: str
    def __init__(self, request_id: _Optional[str] = ..., key_hash: _Optional[str] = ..., team_id: _Optional[str] = ..., user_id: _Optional[str] = ..., end_user: _Optional[str] = ..., model_group: _Optional[str] = ..., deployment_id: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost: _Optional[float] = ..., latency_ms: _Optional[float] = ..., status: _Optional[str] = ..., operation: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cache_hit: _Optional[bool] = ..., reservation_id: _Optional[str] = ..., organization_id: _Optional[str] = ...) -> None: ...

class RecordUsageRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[UsageRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[UsageRecord, _Mapping]]] = ...) -> None: ...

class RecordUsageResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...
