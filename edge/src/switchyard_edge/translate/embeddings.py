"""Embeddings: validated OpenAI request -> proto, proto answer -> OpenAI ``list`` JSON bytes."""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any

import orjson

from switchyard.completion.v1 import completion_service_pb2
from switchyard.type.v1 import embedding_pb2
from switchyard_edge.protocol.embeddings import EmbeddingRequest
from switchyard_edge.translate._struct import fill_struct
from switchyard_edge.translate.gateway import fill_gateway, provider_extra

__all__ = ["embed_request", "embedding_json", "vector_base64"]

_SWAP = sys.byteorder != "little"


def embed_request(body: EmbeddingRequest) -> completion_service_pb2.EmbedRequest:
    """The router's request for a validated body (``encoding_format`` stays at the edge)."""
    request = completion_service_pb2.EmbedRequest()
    params = request.params
    params.model = body.model
    params.input.extend(body.input)
    if body.dimensions is not None:
        params.dimensions = body.dimensions
    if body.user:
        params.user = body.user
    fill_gateway(body, params.gateway)
    extra = provider_extra(body, body.model_extra)
    if extra:
        fill_struct(params.extra, extra, "extra")
    return request


def vector_base64(vector: Any) -> str:
    """OpenAI's ``base64`` encoding: the vector as little-endian float32, base64-encoded."""
    packed = array("f", vector)
    if _SWAP:
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def embedding_json(result: embedding_pb2.EmbeddingResult, encoding_format: str | None) -> bytes:
    """An OpenAI embeddings ``list`` as JSON bytes; vectors as float lists or base64 strings."""
    encode = vector_base64 if encoding_format == "base64" else list
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": item.index, "embedding": encode(item.vector)} for item in result.data
            ],
            "model": result.model,
            "usage": {"prompt_tokens": result.usage.prompt_tokens, "total_tokens": result.usage.total_tokens},
        }
    )
