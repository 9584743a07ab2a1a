"""Where the system of record lives and how to reach it: URL, engine, migrations.

Users write ``general_settings.database_url`` the way LiteLLM documents it
(``postgresql://user:pass@host/db``); :func:`resolve_url` turns that into the async SQLAlchemy URL
Switchyard runs on (``postgresql+asyncpg://``, ``sqlite+aiosqlite://``). An empty URL means the
embedded SQLite file ``<data_dir>/switchyard.db``.

A URL holds a password: log it only as :func:`safe_url` renders it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

SQLITE_FILE = "switchyard.db"
"""File name of the embedded database inside ``ServiceSettings.data_dir``."""

MIGRATIONS = "switchyard_management:migrations"
"""Alembic ``script_location``: the migrations ship inside the package."""

VERSION_TABLE = "switchyard_alembic_version"
"""Alembic's bookkeeping table. Not the default ``alembic_version``: the database may be shared
with another application that uses Alembic, and two histories in one table break both."""

# Any fixed 64-bit number works; it only has to be the same in every replica.
_MIGRATION_LOCK_ID = 0x5377_7961_7264_0001

# Drivers we ship. Any PostgreSQL URL (postgres://, postgresql+psycopg2://, ...) runs on asyncpg.
_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}

# Query parameters of LiteLLM / Prisma style PostgreSQL URLs, as asyncpg connect arguments.
_PG_QUERY_RENAMES = {"sslmode": "ssl", "connect_timeout": "timeout"}
# Prisma-only parameters with no asyncpg meaning: the pool is sized by SQLAlchemy.
_PG_QUERY_IGNORED = frozenset({"connection_limit", "pool_timeout", "pgbouncer", "socket_timeout", "sslaccept"})


class DatabaseURLError(ValueError):
    """``database_url`` cannot be used; the message never contains the password."""


def resolve_url(database_url: str, data_dir: Path) -> URL:
    """The async SQLAlchemy URL for a configured ``database_url``.

    Empty → SQLite file ``<data_dir>/switchyard.db`` (the directory is created). ``postgres://``
    and ``postgresql[+driver]://`` → ``postgresql+asyncpg://``; ``sqlite:///path`` →
    ``sqlite+aiosqlite:///path`` (its directory is created). Raises :class:`DatabaseURLError` for
    anything else.
    """
    if not database_url.strip():
        data_dir.mkdir(parents=True, exist_ok=True)
        return URL.create("sqlite+aiosqlite", database=str(data_dir / SQLITE_FILE))
    raw = database_url.strip()
    if raw.startswith("postgres://"):  # Heroku and many hosting providers still write this.
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        url = make_url(raw)
    except ArgumentError:
        raise DatabaseURLError("general_settings.database_url is not a database URL") from None
    backend = url.get_backend_name()
    driver = _ASYNC_DRIVERS.get(backend)
    if driver is None:
        raise DatabaseURLError(
            f"general_settings.database_url: unsupported database {backend!r} (use postgresql or sqlite)"
        )
    url = url.set(drivername=driver)
    if backend == "postgresql":
        return _asyncpg_query(url)
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return url


def _asyncpg_query(url: URL) -> URL:
    query: dict[str, Any] = {}
    for name, value in url.query.items():
        if name in _PG_QUERY_IGNORED:
            continue
        query[_PG_QUERY_RENAMES.get(name, name)] = value
    return url.set(query=query)


def safe_url(url: URL) -> str:
    """The URL for logs and messages: the password is masked."""
    return url.render_as_string(hide_password=True)


def create_engine(url: URL, **options: Any) -> AsyncEngine:
    """An async engine for ``url`` with the settings every Switchyard process uses.

    Bound parameters are kept out of error messages (``hide_parameters``): spend rows name users.
    SQLite runs in WAL mode with a busy timeout, so readers never block the writer.
    """
    settings: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
    is_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    if is_memory:
        # An in-memory database lives in one connection; share it or each checkout sees nothing.
        settings["poolclass"] = StaticPool
    if url.get_backend_name() == "postgresql":
        settings.update(connect_args=_pg_connect_args(url.query))
        url = url.set(query={k: v for k, v in url.query.items() if k != "schema"})
    settings.update(options)
    engine = create_async_engine(url, **settings)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(wal=not is_memory))
    return engine


def _pg_connect_args(query: Mapping[str, Any]) -> dict[str, Any]:
    # Prisma's ?schema=name selects the search path; asyncpg takes it as a server setting.
    schema = query.get("schema")
    return {"server_settings": {"search_path": str(schema)}} if schema else {}


def _sqlite_pragmas(*, wal: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def alembic_config() -> Config:
    """Alembic configuration for the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database behind ``engine`` to the newest revision; a no-op when current.

    Safe to call from every replica at once: on PostgreSQL the upgrade runs in one transaction
    under an advisory lock, so one replica migrates and the others then find nothing to do.
    """
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def migrate_url(database_url: str, data_dir: Path) -> None:
    """Resolve ``database_url`` like the service does and upgrade that database to head."""
    engine = create_engine(resolve_url(database_url, data_dir))
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
