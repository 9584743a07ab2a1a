"""Thin HTTP routes: read the request, call one translate function and one RPC, write the answer.

Each module exposes ``router(edge: EdgeContext) -> APIRouter``.
"""

from switchyard_edge.routes import chat, embeddings, health, keys, model_admin, models, spend, spend_report, tenancy

__all__ = ["ALL", "chat", "embeddings", "health", "keys", "model_admin", "models", "spend", "spend_report", "tenancy"]

ALL = (chat, embeddings, models, spend, keys, tenancy, health, model_admin, spend_report)
"""Every route module, in the order they are mounted."""
