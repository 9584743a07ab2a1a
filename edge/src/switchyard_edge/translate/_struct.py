"""JSON values -> ``google.protobuf.Struct``, bounded so the message stays decodable downstream."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from switchyard_core.errors import SwitchyardError

MAX_DEPTH = 20
"""Deepest JSON nesting accepted inside a Struct-bound field.

Protobuf decoders stop at 100 nested messages and each JSON level costs about three (Struct, map
entry, Value), so deeper values would pass here and fail as an internal error one hop later.
"""


def _depth_ok(value: Any, budget: int) -> bool:
    if isinstance(value, dict):
        return budget > 0 and all(_depth_ok(v, budget - 1) for v in value.values())
    if isinstance(value, list):
        return budget > 0 and all(_depth_ok(v, budget - 1) for v in value)
    return True


def fill_struct(target: struct_pb2.Struct, value: dict[str, Any], param: str) -> None:
    """Copy a decoded JSON object into ``target``; ``invalid_request`` naming ``param`` if too deep."""
    if not _depth_ok(value, MAX_DEPTH):
        raise SwitchyardError("invalid_request", f"'{param}' is nested more than {MAX_DEPTH} levels deep.", param=param)
    try:
        target.update(value)
    except (ValueError, OverflowError, TypeError):
        raise SwitchyardError("invalid_request", f"'{param}' holds a value out of range.", param=param) from None
