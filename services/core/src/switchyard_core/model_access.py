"""Which model groups a list of allowed models admits (keys, teams, JWT claims, model listings).

Entries are model group names, LiteLLM's ``all-proxy-models``, or fnmatch patterns such as
``openai/*``; an empty list allows every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

ALL_MODELS = "all-proxy-models"
"""LiteLLM's name for "every model" in a model list."""
_WILDCARDS = frozenset("*?[")


def model_allowed(model: str, allowed: Sequence[str]) -> bool:
    """Whether ``model`` is among ``allowed``: exact names or fnmatch patterns; empty allows all."""
    if not allowed or model in allowed or ALL_MODELS in allowed:
        return True
    return any(_WILDCARDS.intersection(name) and fnmatchcase(model, name) for name in allowed)
