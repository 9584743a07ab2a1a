import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchyard.auth.v1 import auth_service_pb2 as _auth_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SpendReportGroupBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPEND_REPORT_GROUP_BY_UNSPECIFIED: _ClassVar[SpendReportGroupBy]
    SPEND_REPORT_GROUP_BY_TEAM: _ClassVar[SpendReportGroupBy]
    SPEND_REPORT_GROUP_BY_CUSTOMER: _ClassVar[SpendReportGroupBy]
    SPEND_REPORT_GROUP_BY_API_KEY: _ClassVar[SpendReportGroupBy]

class TeamRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEAM_ROLE_UNSPECIFIED: _ClassVar[TeamRole]
    TEAM_ROLE_ADMIN: _ClassVar[TeamRole]
    TEAM_ROLE_USER: _ClassVar[TeamRole]
SPEND_REPORT_GROUP_BY_UNSPECIFIED: SpendReportGroupBy
SPEND_REPORT_GROUP_BY_TEAM: SpendReportGroupBy
SPEND_REPORT_GROUP_BY_CUSTOMER: SpendReportGroupBy
SPEND_REPORT_GROUP_BY_API_KEY: SpendReportGroupBy
TEAM_ROLE_UNSPECIFIED: TeamRole
TEAM_ROLE_ADMIN: TeamRole
TEAM_ROLE_USER: TeamRole

class Key(_message.Message):
    __slots__ = ("key_hash", "key_name", "key_alias", "models", "max_budget", "budget_duration", "tpm_limit", "rpm_limit", "max_parallel_requests", "expires", "blocked", "team_id", "user_id", "metadata", "spend", "create_time", "budget_reset_time", "role", "model_rpm_limit", "model_tpm_limit")
    class ModelRpmLimitEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ModelTpmLimitEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_DURATION_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    BUDGET_RESET_TIME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    key_hash: str
    key_name: str
    key_alias: str
    models: _containers.RepeatedScalarFieldContainer[str]
    max_budget: float
    budget_duration: str
    tpm_limit: int
    rpm_limit: int
    max_parallel_requests: int
    expires: _timestamp_pb2.Timestamp
    blocked: bool
    team_id: str
    user_id: str
    metadata: _struct_pb2.Struct
    spend: float
    create_time: _timestamp_pb2.Timestamp
    budget_reset_time: _timestamp_pb2.Timestamp
    role: _auth_service_pb2.PrincipalRole
    model_rpm_limit: _containers.ScalarMap[str, int]
    model_tpm_limit: _containers.ScalarMap[str, int]
    def __init__(self, key_hash: _Optional[str] = ..., key_name: _Optional[str] = ..., key_alias: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., max_budget: _Optional[float] = ..., budget_duration: _Optional[str] = ..., tpm_limit: _Optional[int] = ..., rpm_limit: _Optional[int] = ..., max_parallel_requests: _Optional[int] = ..., expires: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., blocked: _Optional[bool] = ..., team_id: _Optional[str] = ..., user_id: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., spend: _Optional[float] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., budget_reset_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., role: _Optional[_Union[_auth_service_pb2.PrincipalRole, str]] = ..., model_rpm_limit: _Optional[_Mapping[str, int]] = ..., model_tpm_limit: _Optional[_Mapping[str, int]] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("key", "duration")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    key: Key
    duration: str
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., duration: _Optional[str] = ...) -> None: ...

class CreateKeyResponse(_message.Message):
    __slots__ = ("secret", "key")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    secret: str
    key: Key
    def __init__(self, secret: _Optional[str] = ..., key: _Optional[_Union[Key, _Mapping]] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("key_hash",)
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    key_hash: str
    def __init__(self, key_hash: _Optional[str] = ...) -> None: ...

class GetKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: Key
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "team_id", "user_id", "key_alias")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    team_id: str
    user_id: str
    key_alias: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., team_id: _Optional[str] = ..., user_id: _Optional[str] = ..., key_alias: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys", "next_page_token")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    next_page_token: str
    def __init__(self, keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateKeyRequest(_message.Message):
    __slots__ = ("key", "update_mask")
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    key: Key
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: Key
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ...) -> None: ...

class DeleteKeyRequest(_message.Message):
    __slots__ = ("key_hashes", "key_aliases")
    KEY_HASHES_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIASES_FIELD_NUMBER: _ClassVar[int]
    key_hashes: _containers.RepeatedScalarFieldContainer[str]
    key_aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key_hashes: _Optional[_Iterable[str]] = ..., key_aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteKeyResponse(_message.Message):
    __slots__ = ("deleted_key_hashes",)
    DELETED_KEY_HASHES_FIELD_NUMBER: _ClassVar[int]
    deleted_key_hashes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_key_hashes: _Optional[_Iterable[str]] = ...) -> None: ...

class RegenerateKeyRequest(_message.Message):
    __slots__ = ("key_hash",)
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    key_hash: str
    def __init__(self, key_hash: _Optional[str] = ...) -> None: ...

class RegenerateKeyResponse(_message.Message):
    __slots__ = ("secret", "key")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    secret: str
    key: Key
    def __init__(self, secret: _Optional[str] = ..., key: _Optional[_Union[Key, _Mapping]] = ...) -> None: ...

class LookupKeyRequest(_message.Message):
    __slots__ = ("key_hash",)
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    key_hash: str
    def __init__(self, key_hash: _Optional[str] = ...) -> None: ...

class LookupKeyResponse(_message.Message):
    __slots__ = ("found", "key", "team", "user", "organization")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    found: bool
    key: Key
    team: Team
    user: User
    organization: Organization
    def __init__(self, found: _Optional[bool] = ..., key: _Optional[_Union[Key, _Mapping]] = ..., team: _Optional[_Union[Team, _Mapping]] = ..., user: _Optional[_Union[User, _Mapping]] = ..., organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class LookupOwnersRequest(_message.Message):
    __slots__ = ("team_id", "user_id")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    user_id: str
    def __init__(self, team_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class LookupOwnersResponse(_message.Message):
    __slots__ = ("team", "user", "organization")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    team: Team
    user: User
    organization: Organization
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ..., user: _Optional[_Union[User, _Mapping]] = ..., organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class LookupEndUserRequest(_message.Message):
    __slots__ = ("end_user_id",)
    END_USER_ID_FIELD_NUMBER: _ClassVar[int]
    end_user_id: str
    def __init__(self, end_user_id: _Optional[str] = ...) -> None: ...

class LookupEndUserResponse(_message.Message):
    __slots__ = ("found", "end_user")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    END_USER_FIELD_NUMBER: _ClassVar[int]
    found: bool
    end_user: EndUser
    def __init__(self, found: _Optional[bool] = ..., end_user: _Optional[_Union[EndUser, _Mapping]] = ...) -> None: ...

class WriteSpendLogsRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_auth_service_pb2.UsageRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[_auth_service_pb2.UsageRecord, _Mapping]]] = ...) -> None: ...

class WriteSpendLogsResponse(_message.Message):
    __slots__ = ("inserted", "duplicates")
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    inserted: int
    duplicates: int
    def __init__(self, inserted: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class SpendLog(_message.Message):
    __slots__ = ("request_id", "key_hash", "team_id", "user_id", "end_user", "model_group", "deployment_id", "model", "provider", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "latency_ms", "status", "operation", "start_time", "end_time", "cache_hit", "organization_id")
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
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
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
    total_tokens: int
    cost: float
    latency_ms: float
    status: str
    operation: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    cache_hit: bool
    organization_id: str
    def __init__(self, request_id: _Optional[str] = ..., key_hash: _Optional[str] = ..., team_id: _Optional[str] = ..., user_id: _Optional[str] = ..., end_user: _Optional[str] = ..., model_group: _Optional[str] = ..., deployment_id: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., cost: _Optional[float] = ..., latency_ms: _Optional[float] = ..., status: _Optional[str] = ..., operation: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cache_hit: _Optional[bool] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ListSpendLogsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "key_hash", "request_id", "start_time", "end_time")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    key_hash: str
    request_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., key_hash: _Optional[str] = ..., request_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSpendLogsResponse(_message.Message):
    __slots__ = ("logs", "next_page_token")
    LOGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    logs: _containers.RepeatedCompositeFieldContainer[SpendLog]
    next_page_token: str
    def __init__(self, logs: _Optional[_Iterable[_Union[SpendLog, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ModelDeployment(_message.Message):
    __slots__ = ("model_id", "model_name", "litellm_params", "model_info", "db_model", "create_time")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    LITELLM_PARAMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_INFO_FIELD_NUMBER: _ClassVar[int]
    DB_MODEL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    model_name: str
    litellm_params: _struct_pb2.Struct
    model_info: _struct_pb2.Struct
    db_model: bool
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, model_id: _Optional[str] = ..., model_name: _Optional[str] = ..., litellm_params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_info: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., db_model: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelDeployment
    def __init__(self, model: _Optional[_Union[ModelDeployment, _Mapping]] = ...) -> None: ...

class CreateModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelDeployment
    def __init__(self, model: _Optional[_Union[ModelDeployment, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("model_name",)
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    def __init__(self, model_name: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelDeployment]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelDeployment, _Mapping]]] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelDeployment]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelDeployment, _Mapping]]] = ...) -> None: ...

class GetSpendReportRequest(_message.Message):
    __slots__ = ("start_date", "end_date", "group_by")
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    start_date: str
    end_date: str
    group_by: SpendReportGroupBy
    def __init__(self, start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., group_by: _Optional[_Union[SpendReportGroupBy, str]] = ...) -> None: ...

class SpendReportRow(_message.Message):
    __slots__ = ("date", "group", "key_alias", "model_group", "requests", "prompt_tokens", "completion_tokens", "cost")
    DATE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    KEY_ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    date: str
    group: str
    key_alias: str
    model_group: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    def __init__(self, date: _Optional[str] = ..., group: _Optional[str] = ..., key_alias: _Optional[str] = ..., model_group: _Optional[str] = ..., requests: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost: _Optional[float] = ...) -> None: ...

class GetSpendReportResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[SpendReportRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[SpendReportRow, _Mapping]]] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_budget", "budget_duration", "spend", "budget_reset_time", "tpm_limit", "rpm_limit", "max_parallel_requests", "model_rpm_limit", "model_tpm_limit")
    class ModelRpmLimitEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ModelTpmLimitEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_DURATION_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    BUDGET_RESET_TIME_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    max_budget: float
    budget_duration: str
    spend: float
    budget_reset_time: _timestamp_pb2.Timestamp
    tpm_limit: int
    rpm_limit: int
    max_parallel_requests: int
    model_rpm_limit: _containers.ScalarMap[str, int]
    model_tpm_limit: _containers.ScalarMap[str, int]
    def __init__(self, max_budget: _Optional[float] = ..., budget_duration: _Optional[str] = ..., spend: _Optional[float] = ..., budget_reset_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tpm_limit: _Optional[int] = ..., rpm_limit: _Optional[int] = ..., max_parallel_requests: _Optional[int] = ..., model_rpm_limit: _Optional[_Mapping[str, int]] = ..., model_tpm_limit: _Optional[_Mapping[str, int]] = ...) -> None: ...

class TeamMember(_message.Message):
    __slots__ = ("user_id", "role", "create_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: TeamRole
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[_Union[TeamRole, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Team(_message.Message):
    __slots__ = ("team_id", "team_alias", "organization_id", "models", "limits", "blocked", "metadata", "create_time", "update_time", "members")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    team_alias: str
    organization_id: str
    models: _containers.RepeatedScalarFieldContainer[str]
    limits: Limits
    blocked: bool
    metadata: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    members: _containers.RepeatedCompositeFieldContainer[TeamMember]
    def __init__(self, team_id: _Optional[str] = ..., team_alias: _Optional[str] = ..., organization_id: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., blocked: _Optional[bool] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., members: _Optional[_Iterable[_Union[TeamMember, _Mapping]]] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("user_id", "user_email", "user_alias", "user_role", "models", "limits", "metadata", "create_time", "update_time", "team_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    USER_ALIAS_FIELD_NUMBER: _ClassVar[int]
    USER_ROLE_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TEAM_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    user_email: str
    user_alias: str
    user_role: _auth_service_pb2.PrincipalRole
    models: _containers.RepeatedScalarFieldContainer[str]
    limits: Limits
    metadata: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    team_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., user_email: _Optional[str] = ..., user_alias: _Optional[str] = ..., user_role: _Optional[_Union[_auth_service_pb2.PrincipalRole, str]] = ..., models: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., team_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Organization(_message.Message):
    __slots__ = ("organization_id", "organization_alias", "models", "limits", "metadata", "create_time", "update_time")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ALIAS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    organization_alias: str
    models: _containers.RepeatedScalarFieldContainer[str]
    limits: Limits
    metadata: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., organization_alias: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("budget_id", "max_budget", "soft_budget", "budget_duration", "tpm_limit", "rpm_limit", "max_parallel_requests", "model_max_budget", "create_time", "update_time")
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    SOFT_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_DURATION_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_MAX_BUDGET_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    budget_id: str
    max_budget: float
    soft_budget: float
    budget_duration: str
    tpm_limit: int
    rpm_limit: int
    max_parallel_requests: int
    model_max_budget: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, budget_id: _Optional[str] = ..., max_budget: _Optional[float] = ..., soft_budget: _Optional[float] = ..., budget_duration: _Optional[str] = ..., tpm_limit: _Optional[int] = ..., rpm_limit: _Optional[int] = ..., max_parallel_requests: _Optional[int] = ..., model_max_budget: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EndUser(_message.Message):
    __slots__ = ("user_id", "alias", "blocked", "budget_id", "spend", "create_time", "update_time", "budget")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    alias: str
    blocked: bool
    budget_id: str
    spend: float
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    budget: Budget
    def __init__(self, user_id: _Optional[str] = ..., alias: _Optional[str] = ..., blocked: _Optional[bool] = ..., budget_id: _Optional[str] = ..., spend: _Optional[float] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class CreateTeamRequest(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: Team
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ...) -> None: ...

class CreateTeamResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: Team
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ...) -> None: ...

class GetTeamRequest(_message.Message):
    __slots__ = ("team_id",)
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    def __init__(self, team_id: _Optional[str] = ...) -> None: ...

class GetTeamResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: Team
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ...) -> None: ...

class ListTeamsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "organization_id", "user_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    organization_id: str
    user_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., organization_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class ListTeamsResponse(_message.Message):
    __slots__ = ("teams", "next_page_token")
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    teams: _containers.RepeatedCompositeFieldContainer[Team]
    next_page_token: str
    def __init__(self, teams: _Optional[_Iterable[_Union[Team, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateTeamRequest(_message.Message):
    __slots__ = ("team", "update_mask")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    team: Team
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateTeamResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: Team
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ...) -> None: ...

class DeleteTeamRequest(_message.Message):
    __slots__ = ("team_ids",)
    TEAM_IDS_FIELD_NUMBER: _ClassVar[int]
    team_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, team_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteTeamResponse(_message.Message):
    __slots__ = ("deleted_team_ids",)
    DELETED_TEAM_IDS_FIELD_NUMBER: _ClassVar[int]
    deleted_team_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_team_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AddTeamMemberRequest(_message.Message):
    __slots__ = ("team_id", "members")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    members: _containers.RepeatedCompositeFieldContainer[TeamMember]
    def __init__(self, team_id: _Optional[str] = ..., members: _Optional[_Iterable[_Union[TeamMember, _Mapping]]] = ...) -> None: ...

class AddTeamMemberResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: Team
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ...) -> None: ...

class RemoveTeamMemberRequest(_message.Message):
    __slots__ = ("team_id", "user_ids")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, team_id: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveTeamMemberResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: Team
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("user", "create_key", "key", "key_duration")
    USER_FIELD_NUMBER: _ClassVar[int]
    CREATE_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_DURATION_FIELD_NUMBER: _ClassVar[int]
    user: User
    create_key: bool
    key: Key
    key_duration: str
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., create_key: _Optional[bool] = ..., key: _Optional[_Union[Key, _Mapping]] = ..., key_duration: _Optional[str] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user", "secret", "key")
    USER_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    user: User
    secret: str
    key: Key
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., secret: _Optional[str] = ..., key: _Optional[_Union[Key, _Mapping]] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "user_role", "team_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_ROLE_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    user_role: _auth_service_pb2.PrincipalRole
    team_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., user_role: _Optional[_Union[_auth_service_pb2.PrincipalRole, str]] = ..., team_id: _Optional[str] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateUserRequest(_message.Message):
    __slots__ = ("user", "update_mask")
    USER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    user: User
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteUserResponse(_message.Message):
    __slots__ = ("deleted_user_ids",)
    DELETED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    deleted_user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateOrganizationRequest(_message.Message):
    __slots__ = ("organization",)
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class CreateOrganizationResponse(_message.Message):
    __slots__ = ("organization",)
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class GetOrganizationRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class GetOrganizationResponse(_message.Message):
    __slots__ = ("organization",)
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class ListOrganizationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOrganizationsResponse(_message.Message):
    __slots__ = ("organizations", "next_page_token")
    ORGANIZATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organizations: _containers.RepeatedCompositeFieldContainer[Organization]
    next_page_token: str
    def __init__(self, organizations: _Optional[_Iterable[_Union[Organization, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateOrganizationRequest(_message.Message):
    __slots__ = ("organization", "update_mask")
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateOrganizationResponse(_message.Message):
    __slots__ = ("organization",)
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class DeleteOrganizationRequest(_message.Message):
    __slots__ = ("organization_ids",)
    ORGANIZATION_IDS_FIELD_NUMBER: _ClassVar[int]
    organization_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, organization_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteOrganizationResponse(_message.Message):
    __slots__ = ("deleted_organization_ids",)
    DELETED_ORGANIZATION_IDS_FIELD_NUMBER: _ClassVar[int]
    deleted_organization_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_organization_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateEndUserRequest(_message.Message):
    __slots__ = ("end_user", "budget")
    END_USER_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    end_user: EndUser
    budget: Budget
    def __init__(self, end_user: _Optional[_Union[EndUser, _Mapping]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class CreateEndUserResponse(_message.Message):
    __slots__ = ("end_user",)
    END_USER_FIELD_NUMBER: _ClassVar[int]
    end_user: EndUser
    def __init__(self, end_user: _Optional[_Union[EndUser, _Mapping]] = ...) -> None: ...

class GetEndUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetEndUserResponse(_message.Message):
    __slots__ = ("end_user",)
    END_USER_FIELD_NUMBER: _ClassVar[int]
    end_user: EndUser
    def __init__(self, end_user: _Optional[_Union[EndUser, _Mapping]] = ...) -> None: ...

class ListEndUsersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEndUsersResponse(_message.Message):
    __slots__ = ("end_users", "next_page_token")
    END_USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    end_users: _containers.RepeatedCompositeFieldContainer[EndUser]
    next_page_token: str
    def __init__(self, end_users: _Optional[_Iterable[_Union[EndUser, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteEndUserRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteEndUserResponse(_message.Message):
    __slots__ = ("deleted_user_ids",)
    DELETED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    deleted_user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateBudgetRequest(_message.Message):
    __slots__ = ("budget",)
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class CreateBudgetResponse(_message.Message):
    __slots__ = ("budget",)
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class GetBudgetRequest(_message.Message):
    __slots__ = ("budget_id",)
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    budget_id: str
    def __init__(self, budget_id: _Optional[str] = ...) -> None: ...

class GetBudgetResponse(_message.Message):
    __slots__ = ("budget",)
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class ListBudgetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBudgetsResponse(_message.Message):
    __slots__ = ("budgets", "next_page_token")
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    budgets: _containers.RepeatedCompositeFieldContainer[Budget]
    next_page_token: str
    def __init__(self, budgets: _Optional[_Iterable[_Union[Budget, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateBudgetRequest(_message.Message):
    __slots__ = ("budget", "update_mask")
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateBudgetResponse(_message.Message):
    __slots__ = ("budget",)
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class DeleteBudgetRequest(_message.Message):
    __slots__ = ("budget_ids",)
    BUDGET_IDS_FIELD_NUMBER: _ClassVar[int]
    budget_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, budget_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteBudgetResponse(_message.Message):
    __slots__ = ("deleted_budget_ids",)
    DELETED_BUDGET_IDS_FIELD_NUMBER: _ClassVar[int]
    deleted_budget_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_budget_ids: _Optional[_Iterable[str]] = ...) -> None: ...
