"""The strategy catalog: one row per known strategy class, with usage and validation state.

Rows mirror the registry (`strategies.registry`): `sync_strategies` upserts them, keeping
user edits (description) and soft deletes. A changed code hash resets validation.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from store.db import Database
from store.errors import NotFoundError
from store.models import StrategyRow, utcnow
from strategies.registry import list_strategies

__all__ = [
    "bump_usage",
    "code_hash",
    "delete_strategy",
    "find_strategy",
    "get_strategy_row",
    "list_strategy_rows",
    "record_validation",
    "sync_strategies",
    "update_strategy",
]


def code_hash(cls: type) -> str:
    """sha256 of the class source (of its module if the source is unavailable)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = f"{cls.__module__}.{cls.__qualname__}"
    return hashlib.sha256(source.encode()).hexdigest()


def _description(cls: type) -> str | None:
    doc = inspect.getdoc(cls)
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip() if doc else None


async def sync_strategies(db: Database, classes: Iterable[Any] | None = None) -> list[StrategyRow]:
    """Upsert a row per strategy class (default: every registered one); returns live rows."""
    now = utcnow()
    for cls in list(classes) if classes is not None else list_strategies():
        digest = code_hash(cls)
        fields = {
            "module": cls.__module__,
            "class_name": cls.__qualname__,
            "params_schema": cls.params_schema(),
            "code_hash": digest,
        }
        try:
            async with db.session() as s:
                row = (
                    await s.execute(select(StrategyRow).where(StrategyRow.name == cls.name))
                ).scalar_one_or_none()
                if row is None:
                    s.add(
                        StrategyRow(
                            name=cls.name, description=_description(cls), validation_status="unknown",
                            usage_count=0, created_at=now, updated_at=now, **fields,
                        )
                    )
                    continue
                if row.code_hash != digest:
                    row.validation_status, row.validation_error = "unknown", None
                for key, value in fields.items():
                    setattr(row, key, value)
                row.updated_at = now
        except IntegrityError:  # another process inserted it first: fine
            continue
    return await list_strategy_rows(db)


async def list_strategy_rows(db: Database, *, include_deleted: bool = False) -> list[StrategyRow]:
    q = select(StrategyRow).order_by(StrategyRow.name)
    if not include_deleted:
        q = q.where(StrategyRow.deleted_at.is_(None))
    async with db.session() as s:
        return list((await s.execute(q)).scalars())


async def find_strategy(db: Database, name: str) -> StrategyRow | None:
    """The row for `name`, deleted or not; None if the catalog has never seen it."""
    async with db.session() as s:
        return (
            await s.execute(select(StrategyRow).where(StrategyRow.name == name))
        ).scalar_one_or_none()


async def get_strategy_row(db: Database, name: str) -> StrategyRow:
    row = await find_strategy(db, name)
    if row is None or row.deleted:
        raise NotFoundError("strategy", name)
    return row


async def update_strategy(db: Database, name: str, *, description: str | None = None) -> StrategyRow:
    """Edit what users may edit (the description); NotFoundError for unknown/deleted names."""
    row = await get_strategy_row(db, name)
    async with db.session() as s:
        await s.execute(
            update(StrategyRow)
            .where(StrategyRow.id == row.id)
            .values(description=description, updated_at=utcnow())
        )
    return await get_strategy_row(db, name)


async def delete_strategy(db: Database, name: str) -> StrategyRow:
    """Soft delete: hidden from lists and refused for new runs; past runs keep the name."""
    row = await get_strategy_row(db, name)
    now = utcnow()
    async with db.session() as s:
        await s.execute(
            update(StrategyRow).where(StrategyRow.id == row.id).values(deleted_at=now, updated_at=now)
        )
    found = await find_strategy(db, name)
    assert found is not None
    return found


async def record_validation(
    db: Database, name: str, *, ok: bool, error: str | None = None
) -> StrategyRow:
    row = await get_strategy_row(db, name)
    now = utcnow()
    async with db.session() as s:
        await s.execute(
            update(StrategyRow)
            .where(StrategyRow.id == row.id)
            .values(
                validation_status="valid" if ok else "invalid",
                validation_error=None if ok else error,
                last_validated_at=now,
                updated_at=now,
            )
        )
    return await get_strategy_row(db, name)


async def bump_usage(db: Database, name: str) -> None:
    """Count one more run of `name` (no-op when the catalog has no row for it)."""
    async with db.session() as s:
        await s.execute(
            update(StrategyRow)
            .where(StrategyRow.name == name)
            .values(usage_count=StrategyRow.usage_count + 1)
        )
