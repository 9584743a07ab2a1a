"""Bodies of LiteLLM's ``/model/new`` and ``/model/delete``, as the edge accepts them.

The edge checks only the shape; what ``litellm_params`` may hold (a known provider, an allowed
``api_base``, numbers where numbers belong) is checked by management exactly as the config loader
checks a ``model_list`` entry, and answered as a 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from switchyard_edge.protocol._common import ModelName

__all__ = ["DeleteModelRequest", "NewModelRequest"]


class NewModelRequest(BaseModel):
    """``POST /model/new``: one ``model_list`` entry."""

    model_config = ConfigDict(strict=True, extra="forbid")

    model_name: ModelName
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] | None = None


class DeleteModelRequest(BaseModel):
    """``POST /model/delete``: ``{"id": <model_info.id>}``."""

    model_config = ConfigDict(strict=True, extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=256)]
