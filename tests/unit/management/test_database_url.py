"""general_settings.database_url as users write it -> the async URL management runs on."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard_management.database import DatabaseURLError, resolve_url, safe_url


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (
            "postgresql://user:pw@db.internal:5432/litellm",
            "postgresql+asyncpg://user:pw@db.internal:5432/litellm",
        ),
        ("postgres://user:pw@db.internal/litellm", "postgresql+asyncpg://user:pw@db.internal/litellm"),
        ("postgresql+psycopg2://user@db/litellm", "postgresql+asyncpg://user@db/litellm"),
        ("postgresql+asyncpg://user@db/litellm", "postgresql+asyncpg://user@db/litellm"),
        ("postgresql://user@db/litellm?sslmode=require", "postgresql+asyncpg://user@db/litellm?ssl=require"),
        (
            "postgresql://user@db/litellm?connection_limit=5&pool_timeout=10",
            "postgresql+asyncpg://user@db/litellm",
        ),
        ("  sqlite:////var/lib/switchyard/spend.db ", "sqlite+aiosqlite:////var/lib/switchyard/spend.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ],
    ids=[
        "postgresql",
        "postgres-scheme",
        "sync-driver",
        "already-async",
        "sslmode",
        "prisma-only-params",
        "sqlite-file",
        "sqlite-memory",
    ],
)
def test_litellm_style_urls_become_async_urls(configured: str, expected: str, tmp_path: Path) -> None:
    if configured.strip().startswith("sqlite:////var"):
        configured = configured.replace("/var/lib/switchyard", str(tmp_path / "lib"))
        expected = expected.replace("/var/lib/switchyard", str(tmp_path / "lib"))

    assert resolve_url(configured, tmp_path).render_as_string(hide_password=False) == expected


def test_an_empty_url_is_the_embedded_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "state" / "switchyard"

    url = resolve_url("", data_dir)

    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(data_dir / "switchyard.db")
    assert data_dir.is_dir()


def test_a_sqlite_file_gets_its_directory(tmp_path: Path) -> None:
    resolve_url(f"sqlite:///{tmp_path}/new/dir/db.sqlite", tmp_path / "unused")

    assert (tmp_path / "new" / "dir").is_dir()


@pytest.mark.parametrize("configured", ["mysql://user:hunter2-pw@db/x", "not a url at all"], ids=["mysql", "garbage"])
def test_unusable_urls_are_refused_without_echoing_the_password(configured: str, tmp_path: Path) -> None:
    with pytest.raises(DatabaseURLError) as caught:
        resolve_url(configured, tmp_path)

    assert "hunter2-pw" not in str(caught.value)
    assert "database_url" in str(caught.value)


def test_safe_url_masks_the_password(tmp_path: Path) -> None:
    url = resolve_url("postgresql://admin:hunter2-pw@db.internal/litellm", tmp_path)

    assert "hunter2-pw" not in safe_url(url)
    assert safe_url(url) == "postgresql+asyncpg://admin:***@db.internal/litellm"
