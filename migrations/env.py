"""Alembic environment: runs migrations over an async engine (asyncpg or aiosqlite).

The URL comes from `config.attributes["database_url"]` (set by `store.db.run_migrations`)
or, for the alembic CLI, from `sqlalchemy.url` / the DATABASE_URL environment variable.
A caller may also pass a live sync connection in `config.attributes["connection"]`.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection, make_url

from store.db import create_engine_for
from store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> object:
    url = config.attributes.get("database_url")
    if url is None:
        url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: pass one to store.db.run_migrations(url)")
    return url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs via table copies
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine_for(_url())  # type: ignore[arg-type]
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_sync)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=make_url(_url()).render_as_string(hide_password=False),  # type: ignore[arg-type]
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
