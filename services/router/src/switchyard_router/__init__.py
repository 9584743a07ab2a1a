"""Switchyard CompletionService: the policy enforcement point in front of every model call."""

from switchyard_router.server import build

__all__ = ["build"]
