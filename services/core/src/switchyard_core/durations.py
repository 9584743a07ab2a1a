"""LiteLLM's duration strings (``"30s"``, ``"15m"``, ``"1h"``, ``"30d"``, ``"1w"``, ``"1mo"``).

One parser for every place that takes one (key lifetimes, budget windows), so the edge and
management agree on what is valid: a positive whole count and one unit; a month counts 30 days.
"""

from __future__ import annotations

import re

UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}
"""Seconds per unit."""

EXAMPLES = "'30s', '15m', '1h', '30d', '1w' or '1mo'"
"""Valid examples, for error messages."""

_PATTERN = re.compile(r"(\d{1,9})(mo|[smhdw])")


def duration_seconds(value: str) -> int | None:
    """Seconds in ``value``, or None when it is not a positive duration string."""
    match = _PATTERN.fullmatch(value.strip())
    if match is None:
        return None
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    return seconds or None
