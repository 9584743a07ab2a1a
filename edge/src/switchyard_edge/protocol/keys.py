"""Bodies of LiteLLM's ``/key/*`` admin endpoints, as the edge accepts them.

Fields LiteLLM documents that Switchyard does not implement (``aliases``, ``config``,
``permissions``, ``model_max_budget``, a caller-chosen ``key`` value, ...) are refused with a 400
naming the field rather than ignored: a limit that is silently dropped is worse than an error.

A key is named either by its secret (``sk-...``) or by its id, the SHA-256 hex digest that
``/key/list`` and ``/key/info`` return as ``token``; :func:`switchyard_edge.translate.keys.key_hash`
turns either into the hash before anything leaves the edge.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from switchyard_core.durations import EXAMPLES, duration_seconds
from switchyard_edge.protocol._common import INT64_MAX, ModelName

__all__ = [
    "DeleteKeysRequest",
    "GenerateKeyRequest",
    "KeyRefRequest",
    "KeySettings",
    "RegenerateKeyRequest",
    "UpdateKeyRequest",
]


def _duration(value: str) -> str:
    if duration_seconds(value) is None:
        raise PydanticCustomError("invalid_duration", f"expected a duration such as {EXAMPLES}")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
"""A validated LiteLLM duration string."""

KeyRef = Annotated[str, Field(min_length=1, max_length=512)]
"""A key's secret or its id (hash); never logged or echoed."""

Name = Annotated[str, Field(max_length=256)]
Limit = Annotated[int, Field(ge=0, le=INT64_MAX)]
PerModel = Annotated[dict[ModelName, Limit], Field(max_length=1024)]
"""Model group -> limit (``model_rpm_limit``, ``model_tpm_limit``)."""


class KeySettings(BaseModel):
    """Settings of a key (``/key/generate`` and ``/key/update``); null clears a field on update."""

    model_config = ConfigDict(strict=True, extra="forbid")

    key_alias: Name | None = None
    duration: Duration | None = None
    models: Annotated[list[ModelName], Field(max_length=1024)] | None = None
    max_budget: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    budget_duration: Duration | None = None
    tpm_limit: Limit | None = None
    rpm_limit: Limit | None = None
    max_parallel_requests: Limit | None = None
    model_rpm_limit: PerModel | None = None
    model_tpm_limit: PerModel | None = None
    metadata: dict[str, Any] | None = None
    team_id: Name | None = None
    user_id: Name | None = None
    blocked: bool | None = None


class GenerateKeyRequest(KeySettings):
    """``POST /key/generate`` body."""


class UpdateKeyRequest(KeySettings):
    """``POST /key/update`` body: ``key`` names the key; only the fields present are changed."""

    key: KeyRef


class DeleteKeysRequest(BaseModel):
    """``POST /key/delete`` body: keys by secret or id, and/or by alias; at least one name."""

    model_config = ConfigDict(strict=True, extra="forbid")

    keys: Annotated[list[KeyRef], Field(max_length=1000)] | None = None
    key_aliases: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=1000)] | None = (
        None
    )

    @model_validator(mode="after")
    def _names_something(self) -> DeleteKeysRequest:
        if not self.keys and not self.key_aliases:
            raise PydanticCustomError("missing_keys", "send 'keys' or 'key_aliases' with at least one entry")
        return self


class KeyRefRequest(BaseModel):
    """``{"key": ...}``: the body of ``/key/block`` and ``/key/unblock``."""

    model_config = ConfigDict(strict=True, extra="forbid")

    key: KeyRef


class RegenerateKeyRequest(BaseModel):
    """``POST /key/regenerate`` body, or the optional body of ``POST /key/{key}/regenerate``.

    LiteLLM also lets this body change the key's settings; Switchyard refuses those fields (use
    ``/key/update``), so a regeneration never changes limits as a side effect.
    """

    model_config = ConfigDict(strict=True, extra="forbid")

    key: KeyRef | None = None
