"""Alembic environment for the system of record; async-capable, for PostgreSQL and SQLite.

Two ways in:

- From the service (:func:`switchyard_management.database.migrate`): the caller passes an open
  synchronous connection (an AsyncConnection's ``run_sync`` view) in
  ``config.attributes["connection"]``, and migrations run on it, inside the caller's transaction.
- From the ``alembic`` command line with ``-x url=...`` or ``sqlalchemy.url`` set: an async engine
  is created for the URL (LiteLLM-style URLs are accepted, as in the config file).

Offline mode (``alembic upgrade head --sql``) renders the SQL for the URL's dialect.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from switchyard_management.database import VERSION_TABLE, create_engine, resolve_url
from switchyard_management.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**options: Any) -> None:
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
        **options,
    )


def _cli_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    return url or config.get_main_option("sqlalchemy.url") or ""


def run_migrations_offline() -> None:
    _configure(url=resolve_url(_cli_url(), Path(".switchyard")), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(resolve_url(_cli_url(), Path(".switchyard")))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
