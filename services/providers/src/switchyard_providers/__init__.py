"""Switchyard's provider worker: ProviderService, provider transformers and pooled upstream HTTP."""

from switchyard_providers.server import build

__all__ = ["build"]
