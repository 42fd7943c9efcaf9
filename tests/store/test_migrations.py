"""The alembic history upgrades both databases and matches the models exactly."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from store.db import Database, run_migrations
from store.models import Base

TABLES = {
    "blobs", "datasets", "strategies", "runs", "trades", "equity_curves", "users", "api_tokens",
    "audit_log", "optimizations", "optimization_batches", "optimization_trials",
}


async def test_upgrade_head_creates_every_table(db_url: str) -> None:
    await asyncio.to_thread(run_migrations, db_url)
    await asyncio.to_thread(run_migrations, db_url)  # a second upgrade is a no-op
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:
            names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            version = (await conn.execute(text("select version_num from alembic_version"))).scalar()
        assert names >= TABLES
        assert version == "0006"
    finally:
        await db.dispose()


async def test_models_match_migrations(db_url: str) -> None:
    await asyncio.to_thread(run_migrations, db_url)
    db = Database(db_url)

    def diff(sync_conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)

    try:
        async with db.engine.connect() as conn:
            changes = await conn.run_sync(diff)
        assert changes == []
    finally:
        await db.dispose()


async def test_downgrade_to_base_and_back(sqlite_url: str) -> None:
    from alembic import command

    from store.db import alembic_config

    await asyncio.to_thread(run_migrations, sqlite_url)
    await asyncio.to_thread(command.downgrade, alembic_config(sqlite_url), "base")
    db = Database(sqlite_url)
    try:
        async with db.engine.connect() as conn:
            names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert not names & TABLES
    finally:
        await db.dispose()
    await asyncio.to_thread(run_migrations, sqlite_url)
