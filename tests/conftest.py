"""Shared test databases: SQLite always, PostgreSQL when one is reachable.

Where PostgreSQL comes from, first match wins:

1. ``SWITCHYARD_TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/test``): a server
   the machine runs; the URL's user must be allowed to create databases;
2. a throwaway container from testcontainers, when a Docker engine answers;
3. neither: PostgreSQL cases are skipped, and the skip reason says how to enable them.

Each PostgreSQL test gets its own freshly created database, dropped afterwards, so concurrent
runs against one server never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

POSTGRES_URL_ENV = "SWITCHYARD_TEST_POSTGRES_URL"
POSTGRES_IMAGE = "postgres:16-alpine"


def _docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure means "no usable engine"; the reason goes in the skip
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """``postgresql://`` URL of a server whose user may create databases; skips when there is none."""
    configured = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if configured:
        yield configured
        return
    reason = _docker_unavailable_reason()
    if reason is not None:
        pytest.skip(
            f"no PostgreSQL: set {POSTGRES_URL_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test) "
            f"or start a Docker engine for testcontainers ({reason})"
        )
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer(POSTGRES_IMAGE, driver=None) as container:
        yield container.get_connection_url()


@asynccontextmanager
async def scratch_postgres_database(server_url: str) -> AsyncIterator[str]:
    """Create a uniquely named database on ``server_url``'s server; yield its URL; drop it after."""
    server = make_url(server_url).set(drivername="postgresql")
    name = f"switchyard_test_{uuid.uuid4().hex[:16]}"
    admin_dsn = server.render_as_string(hide_password=False)
    # Database names cannot be bound parameters; this one is built from hex digits only.
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """An empty PostgreSQL database of this test's own; skips without PostgreSQL."""
    async with scratch_postgres_database(postgres_server_url) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, as a user writes ``general_settings.database_url``; one per test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'switchyard.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


REDIS_URL_ENV = "SWITCHYARD_TEST_REDIS_URL"
REDIS_IMAGE = "redis:7-alpine"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``redis://`` URL of a server the tests may write to; skips when there is none."""
    configured = os.environ.get(REDIS_URL_ENV, "").strip()
    if configured:
        yield configured
        return
    reason = _docker_unavailable_reason()
    if reason is not None:
        pytest.skip(
            f"no Redis: set {REDIS_URL_ENV} (e.g. redis://127.0.0.1:6379/0) "
            f"or start a Docker engine for testcontainers ({reason})"
        )
    from testcontainers.redis import RedisContainer

    with RedisContainer(REDIS_IMAGE) as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(container.port)
        yield f"redis://{host}:{port}/0"
