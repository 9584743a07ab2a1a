"""Shapes and checks shared by every request body."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from switchyard_core.errors import SwitchyardError
from switchyard_edge.errors import from_validation_error

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

ModelName = Annotated[str, Field(min_length=1, max_length=256)]
"""A model group name: non-empty, at most 256 characters."""

CALLER_FORBIDDEN = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "organization",
        "extra_headers",
        "headers",
        "custom_llm_provider",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_region_name",
        "vertex_credentials",
        "vertex_project",
        "vertex_location",
        "azure_ad_token",
    }
)
"""Fields that would let a caller choose the upstream host or credentials (LiteLLM honours them).

A caller must never make the gateway send a provider key to a host of the caller's choosing, so
these are refused rather than passed on in ``extra``.
"""

_Model = TypeVar("_Model", bound=BaseModel)


def as_list(value: Any) -> Any:
    """OpenAI accepts a single string where a list of strings is expected."""
    return [value] if isinstance(value, str) else value


def parse_body(model: type[_Model], body: dict[str, Any]) -> _Model:
    """Validate a decoded JSON object against ``model``; ``SwitchyardError`` names the field at fault."""
    if not CALLER_FORBIDDEN.isdisjoint(body):
        field = min(CALLER_FORBIDDEN.intersection(body))
        raise SwitchyardError("invalid_request", f"The '{field}' parameter cannot be set by the caller.", param=field)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise from_validation_error(exc.errors(include_url=False)) from None
