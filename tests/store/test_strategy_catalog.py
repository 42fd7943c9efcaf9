"""The strategy catalog mirrors the registry and keeps edits, usage and soft deletes."""

from __future__ import annotations

import pytest

from store import strategy_catalog as catalog
from store.db import Database
from store.errors import NotFoundError
from strategies.registry import list_strategies


async def test_sync_edit_validate_delete(db: Database) -> None:
    rows = await catalog.sync_strategies(db)
    names = {cls.name for cls in list_strategies()}
    assert {r.name for r in rows} == names
    ema = await catalog.get_strategy_row(db, "ema_crossover")
    assert ema.module.startswith("strategies.") and ema.params_schema[0]["name"] == "fast"
    assert ema.validation_status == "unknown" and len(ema.code_hash) == 64

    edited = await catalog.update_strategy(db, "ema_crossover", description="mine")
    await catalog.record_validation(db, "ema_crossover", ok=False, error="bad signals")
    await catalog.bump_usage(db, "ema_crossover")
    await catalog.bump_usage(db, "not_in_catalog")  # no-op
    again = await catalog.sync_strategies(db)  # same code: edits and state survive
    ema = next(r for r in again if r.name == "ema_crossover")
    assert edited.description == ema.description == "mine"
    assert ema.validation_status == "invalid" and ema.validation_error == "bad signals"
    assert ema.usage_count == 1 and ema.last_validated_at is not None

    deleted = await catalog.delete_strategy(db, "ema_crossover")
    assert deleted.deleted
    assert "ema_crossover" not in {r.name for r in await catalog.sync_strategies(db)}
    assert len(await catalog.list_strategy_rows(db, include_deleted=True)) == len(names)
    with pytest.raises(NotFoundError):
        await catalog.get_strategy_row(db, "ema_crossover")
    assert (await catalog.find_strategy(db, "ema_crossover")) is not None
