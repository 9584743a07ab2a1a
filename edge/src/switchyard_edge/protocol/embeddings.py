"""OpenAI embeddings request, as the edge accepts it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from switchyard_edge.protocol._common import INT32_MAX, ModelName
from switchyard_edge.protocol.gateway import GatewayFields

__all__ = ["EmbeddingRequest"]


def _texts(value: Any) -> Any:
    """A string becomes a one-element list; token arrays are refused (not supported yet)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and isinstance(value[0], int | list) and not isinstance(value[0], bool):
        raise PydanticCustomError(
            "unsupported_input", "Token arrays as input are not supported; send the text as strings"
        )
    return value


class EmbeddingRequest(GatewayFields):
    """``POST /v1/embeddings`` body. Extra top-level fields land in ``model_extra``; the gateway's
    own fields are declared in :class:`GatewayFields`."""

    model_config = ConfigDict(strict=True, extra="allow")

    model: ModelName
    input: Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_texts), Field(min_length=1)]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None
    user: str | None = None
