"""Pure translations between the public JSON dialects and the gRPC contracts (no I/O)."""

from switchyard_edge.translate import chat, embeddings, gateway, health, models, route, spend

__all__ = ["chat", "embeddings", "gateway", "health", "models", "route", "spend"]
