"""The part of the conformance :class:`~tests.conformance.cases.Upstream` adapters every provider shares.

Every fake upstream in ``tests/fakes`` has the same provider-neutral knobs (``delay_next``,
``respond_raw_next``, ``drop_stream_next``, ``stream_interval``, ``cached_tokens``/``reasoning_tokens``,
``wait_for_disconnect``). :class:`FakeUpstreamAdapter` drives them; a provider adapter subclasses it,
adds ``deployment``/``last_sent`` and renders the faults whose bodies are its provider's own in
:meth:`FakeUpstreamAdapter.provider_fault`.
"""

from __future__ import annotations

from typing import Any

from switchyard.type.v1 import deployment_pb2

__all__ = ["FakeUpstreamAdapter"]

_HTML_PAGE = b"<html><body>502 Bad Gateway</body></html>"


class FakeUpstreamAdapter:
    """Base of the per-provider adapters: the fault knobs that look the same for every provider."""

    embedding_model: str = ""
    """The model of :meth:`embedding_deployment`; a provider adapter with embeddings sets it."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        raise NotImplementedError

    def embedding_deployment(self) -> deployment_pb2.Deployment:
        return self.deployment(model=self.embedding_model)

    def fail(self, kind: str, **options: Any) -> None:
        """Arm the fake with fault ``kind``; raises ValueError for a kind nobody knows."""
        fake = self.fake
        if kind == "slow":
            fake.delay_next(options["seconds"])
        elif kind == "html":
            fake.respond_raw_next(_HTML_PAGE, status=200, content_type="text/html")
        elif kind == "drop_stream":
            fake.drop_stream_next(options["after_chunks"])
        elif not self.provider_fault(kind, **options):
            raise ValueError(f"unknown fault {kind!r}")

    def provider_fault(self, kind: str, **options: Any) -> bool:
        """Arm a fault whose body is the provider's own; False when ``kind`` is not one of them."""
        return False

    def set_stream_interval(self, seconds: float) -> None:
        self.fake.stream_interval = seconds

    def set_usage_details(self, cached_tokens: int, reasoning_tokens: int) -> None:
        self.fake.cached_tokens = cached_tokens
        self.fake.reasoning_tokens = reasoning_tokens

    async def wait_for_disconnect(self, timeout: float) -> bool:
        return bool(await self.fake.wait_for_disconnect(timeout))
