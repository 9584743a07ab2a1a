from switchyard.type.v1 import chat_pb2 as _chat_pb2
from switchyard.type.v1 import embedding_pb2 as _embedding_pb2
from switchyard.type.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeploymentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOYMENT_STATE_UNSPECIFIED: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_HEALTHY: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_COOLING_DOWN: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_UNHEALTHY: _ClassVar[DeploymentState]
DEPLOYMENT_STATE_UNSPECIFIED: DeploymentState
DEPLOYMENT_STATE_HEALTHY: DeploymentState
DEPLOYMENT_STATE_COOLING_DOWN: DeploymentState
DEPLOYMENT_STATE_UNHEALTHY: DeploymentState

class Route(_message.Message):
    __slots__ = ("model_group", "deployment_id", "attempts", "cost", "cache_hit", "request_id", "upstream_ms", "served_by_group", "rate_limit_headers")
    class RateLimitHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MS_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_GROUP_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_HEADERS_FIELD_NUMBER: _ClassVar[int]
    model_group: str
    deployment_id: str
    attempts: int
    cost: float
    cache_hit: bool
    request_id: str
    upstream_ms: float
    served_by_group: str
    rate_limit_headers: _containers.ScalarMap[str, str]
    def __init__(self, model_group: _Optional[str] = ..., deployment_id: _Optional[str] = ..., attempts: _Optional[int] = ..., cost: _Optional[float] = ..., cache_hit: _Optional[bool] = ..., request_id: _Optional[str] = ..., upstream_ms: _Optional[float] = ..., served_by_group: _Optional[str] = ..., rate_limit_headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ChatRequest(_message.Message):
    __slots__ = ("params",)
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    params: _chat_pb2.ChatCompletionParams
    def __init__(self, params: _Optional[_Union[_chat_pb2.ChatCompletionParams, _Mapping]] = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("completion", "route")
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    completion: _chat_pb2.ChatCompletion
    route: Route
    def __init__(self, completion: _Optional[_Union[_chat_pb2.ChatCompletion, _Mapping]] = ..., route: _Optional[_Union[Route, _Mapping]] = ...) -> None: ...

class StreamChatRequest(_message.Message):
    __slots__ = ("params",)
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    params: _chat_pb2.ChatCompletionParams
    def __init__(self, params: _Optional[_Union[_chat_pb2.ChatCompletionParams, _Mapping]] = ...) -> None: ...

class StreamChatResponse(_message.Message):
    __slots__ = ("chunk", "route")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    chunk: _chat_pb2.ChatCompletionChunk
    route: Route
    def __init__(self, chunk: _Optional[_Union[_chat_pb2.ChatCompletionChunk, _Mapping]] = ..., route: _Optional[_Union[Route, _Mapping]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("params",)
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    params: _embedding_pb2.EmbeddingParams
    def __init__(self, params: _Optional[_Union[_embedding_pb2.EmbeddingParams, _Mapping]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("result", "route")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    result: _embedding_pb2.EmbeddingResult
    route: Route
    def __init__(self, result: _Optional[_Union[_embedding_pb2.EmbeddingResult, _Mapping]] = ..., route: _Optional[_Union[Route, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_model_pb2.ModelCard]
    def __init__(self, models: _Optional[_Iterable[_Union[_model_pb2.ModelCard, _Mapping]]] = ...) -> None: ...

class DeploymentHealth(_message.Message):
    __slots__ = ("model_group", "deployment_id", "provider", "model", "state", "cooldown_remaining", "last_error", "in_flight", "latency_ms")
    MODEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_REMAINING_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    model_group: str
    deployment_id: str
    provider: str
    model: str
    state: DeploymentState
    cooldown_remaining: float
    last_error: str
    in_flight: int
    latency_ms: float
    def __init__(self, model_group: _Optional[str] = ..., deployment_id: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., state: _Optional[_Union[DeploymentState, str]] = ..., cooldown_remaining: _Optional[float] = ..., last_error: _Optional[str] = ..., in_flight: _Optional[int] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class GetDeploymentHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetDeploymentHealthResponse(_message.Message):
    __slots__ = ("deployments",)
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentHealth]
    def __init__(self, deployments: _Optional[_Iterable[_Union[DeploymentHealth, _Mapping]]] = ...) -> None: ...
