"""Request fields the gateway itself acts on, in LiteLLM's shapes; never sent to a provider.

    "cache":       {"no-cache": bool, "no-store": bool, "ttl": seconds, "namespace": str, "use-cache": bool}
                   (snake_case ``no_cache``, ``no_store``, ``use_cache`` accepted too; other keys,
                   such as LiteLLM's ``s-maxage``, are ignored)
    "tags":        ["prod", ...]                   routing tags
    "metadata":    {"tags": [...], ...}            LiteLLM's other place for tags; the rest of
                                                   ``metadata`` travels on in ``extra`` as before
    "timeout":     seconds for the whole request (capped by ``general_settings.request_timeout``)
    "num_retries": retries for this request

Every model that accepts them inherits :class:`GatewayFields`; being declared fields, they never
land in ``model_extra`` and so never in ``params.extra``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from switchyard_edge.protocol._common import INT32_MAX

__all__ = ["CacheParams", "GatewayFields", "Metadata"]

Tag = Annotated[str, Field(min_length=1, max_length=256)]
Tags = Annotated[list[Tag], Field(max_length=64)]


class CacheParams(BaseModel):
    """The ``cache`` object of a request (LiteLLM's dynamic cache controls)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    no_cache: bool = Field(False, validation_alias=AliasChoices("no-cache", "no_cache"))
    no_store: bool = Field(False, validation_alias=AliasChoices("no-store", "no_store"))
    use_cache: bool | None = Field(None, validation_alias=AliasChoices("use-cache", "use_cache"))
    ttl: Annotated[float, Field(ge=0, le=INT32_MAX)] | None = None
    namespace: Annotated[str, Field(max_length=256)] | None = None


class Metadata(BaseModel):
    """LiteLLM's request ``metadata``: only ``tags`` is read; every other key is kept as sent."""

    model_config = ConfigDict(strict=True, extra="allow")

    tags: Tags | None = None


class GatewayFields(BaseModel):
    """Gateway controls shared by chat and embeddings requests."""

    cache: CacheParams | None = None
    tags: Tags | None = None
    metadata: Metadata | None = None
    timeout: Annotated[float, Field(gt=0, le=INT32_MAX)] | None = None
    num_retries: Annotated[int, Field(ge=0, le=100)] | None = None

    def metadata_rest(self) -> dict[str, Any] | None:
        """``metadata`` without ``tags``, as the caller sent it; None when nothing is left."""
        if self.metadata is None or not self.metadata.model_extra:
            return None
        return dict(self.metadata.model_extra)
