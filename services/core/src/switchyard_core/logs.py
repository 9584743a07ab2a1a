"""Logging that never prints a secret.

:func:`configure_logging` installs one handler whose filter replaces every registered secret (the
master key, provider keys) and anything shaped like a bearer token or an ``sk-`` key with
``[REDACTED…last4]`` before a record is formatted.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{8,})"),
    re.compile(r"()\b(sk-[A-Za-z0-9_-]{6,})"),
    re.compile(r"(?i)((?:api[_-]?key|x-api-key|authorization|master_key)[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]{8,})"),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace secrets in ``text`` with a marker that keeps at most the last four characters."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, _mask(secret))
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + _mask(m.group(2)), text)
    return text


def _mask(secret: str) -> str:
    return f"[REDACTED…{secret[-4:]}]" if len(secret) > 12 else "[REDACTED]"


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with secrets removed."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned = redact(message, self.secrets)
        record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Send logs to stderr, one line per record, with secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "aiosqlite", "uvicorn.access", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
