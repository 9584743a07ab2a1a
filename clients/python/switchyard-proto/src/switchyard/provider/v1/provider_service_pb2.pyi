from switchyard.type.v1 import chat_pb2 as _chat_pb2
from switchyard.type.v1 import deployment_pb2 as _deployment_pb2
from switchyard.type.v1 import embedding_pb2 as _embedding_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChatRequest(_message.Message):
    __slots__ = ("deployment", "params")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    deployment: _deployment_pb2.Deployment
    params: _chat_pb2.ChatCompletionParams
    def __init__(self, deployment: _Optional[_Union[_deployment_pb2.Deployment, _Mapping]] = ..., params: _Optional[_Union[_chat_pb2.ChatCompletionParams, _Mapping]] = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("completion",)
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    completion: _chat_pb2.ChatCompletion
    def __init__(self, completion: _Optional[_Union[_chat_pb2.ChatCompletion, _Mapping]] = ...) -> None: ...

class StreamChatRequest(_message.Message):
    __slots__ = ("deployment", "params")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    deployment: _deployment_pb2.Deployment
    params: _chat_pb2.ChatCompletionParams
    def __init__(self, deployment: _Optional[_Union[_deployment_pb2.Deployment, _Mapping]] = ..., params: _Optional[_Union[_chat_pb2.ChatCompletionParams, _Mapping]] = ...) -> None: ...

class StreamChatResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: _chat_pb2.ChatCompletionChunk
    def __init__(self, chunk: _Optional[_Union[_chat_pb2.ChatCompletionChunk, _Mapping]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("deployment", "params")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    deployment: _deployment_pb2.Deployment
    params: _embedding_pb2.EmbeddingParams
    def __init__(self, deployment: _Optional[_Union[_deployment_pb2.Deployment, _Mapping]] = ..., params: _Optional[_Union[_embedding_pb2.EmbeddingParams, _Mapping]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _embedding_pb2.EmbeddingResult
    def __init__(self, result: _Optional[_Union[_embedding_pb2.EmbeddingResult, _Mapping]] = ...) -> None: ...
