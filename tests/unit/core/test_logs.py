"""Secrets never reach a log line."""

from __future__ import annotations

import logging

import pytest

from switchyard_core.logs import RedactingFilter, redact


@pytest.mark.parametrize(
    "line",
    [
        "calling with Authorization: Bearer sk-live-0123456789abcdef",
        "api_key=sk-live-0123456789abcdef failed",
        '{"api_key": "sk-live-0123456789abcdef"}',
        "bad key sk-live-0123456789abcdef",
    ],
    ids=["bearer", "kv", "json", "bare-sk"],
)
def test_key_shapes_are_redacted(line: str) -> None:
    cleaned = redact(line)
    assert "0123456789ab" not in cleaned
    assert "cdef" in cleaned or "REDACTED" in cleaned


def test_registered_secret_without_known_shape_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    secret = "hunter2-very-private-value"
    logger.addFilter(RedactingFilter([secret]))
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("connecting with %s", secret)
    assert secret not in caplog.text
    assert "alue" in caplog.text
