"""Wire shapes of the public REST API (pydantic models) and how bodies are validated against them."""

from switchyard_edge.protocol._common import CALLER_FORBIDDEN, parse_body
from switchyard_edge.protocol.chat import ChatCompletionRequest, ChatMessage
from switchyard_edge.protocol.embeddings import EmbeddingRequest

__all__ = ["CALLER_FORBIDDEN", "ChatCompletionRequest", "ChatMessage", "EmbeddingRequest", "parse_body"]
