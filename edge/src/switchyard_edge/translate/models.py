"""Model listing: proto -> OpenAI ``list`` of ``model`` objects."""

from __future__ import annotations

import orjson

from switchyard.completion.v1 import completion_service_pb2

__all__ = ["models_json"]


def models_json(response: completion_service_pb2.ListModelsResponse) -> bytes:
    """``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}`` as JSON bytes."""
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {
                    "id": card.id,
                    "object": "model",
                    "created": card.created,
                    "owned_by": card.owned_by or "openai",
                }
                for card in response.models
            ],
        }
    )
