"""Switchyard edge: OpenAI-compatible REST in front of the gRPC services."""

from switchyard_edge.app import create_app
from switchyard_edge.server import build_app, serve

__all__ = ["build_app", "create_app", "serve"]
