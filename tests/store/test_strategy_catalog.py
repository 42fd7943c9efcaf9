"""The strategy catalog mirrors discovery and keeps edits, usage, best metrics and soft deletes."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import runs
from store import strategy_catalog as catalog
from store.blobs import FileBlobStore
from store.datasets import save_dataset
from store.db import Database
from store.errors import NotFoundError
from strategies.discovery import discover
from strategies.registry import list_strategies
from tests.store.conftest import fake_result, make_bars
from tests.strategies.user_files import BROKEN, GOOD, GOOD_EDITED, write


async def test_sync_edit_validate_delete(db: Database) -> None:
    rows = await catalog.sync_strategies(db)
    names = {cls.name for cls in list_strategies()}
    assert {r.name for r in rows} == names
    ema = await catalog.get_strategy_row(db, "ema_crossover")
    assert ema.module.startswith("strategies.") and ema.params_schema[0]["name"] == "fast"
    assert ema.validation_status == "unvalidated" and len(ema.code_hash or "") == 64
    assert ema.path is None and ema.tags == [] and ema.best_metrics is None

    edited = await catalog.update_strategy(db, "ema_crossover", description="mine")
    await catalog.record_validation(db, "ema_crossover", ok=False, error="bad signals")
    await catalog.bump_usage(db, "ema_crossover")
    await catalog.bump_usage(db, "not_in_catalog")  # no-op
    again = await catalog.sync_strategies(db)  # same code: edits and state survive
    ema = next(r for r in again if r.name == "ema_crossover")
    assert edited.description == ema.description == "mine" and ema.description_edited
    assert ema.validation_status == "invalid" and ema.validation_error == "bad signals"
    assert ema.usage_count == 1 and ema.last_validated_at is not None

    deleted = await catalog.delete_strategy(db, "ema_crossover")
    assert deleted.deleted
    assert "ema_crossover" not in {r.name for r in await catalog.sync_strategies(db)}
    assert len(await catalog.list_strategy_rows(db, include_deleted=True)) == len(names)
    with pytest.raises(NotFoundError):
        await catalog.get_strategy_row(db, "ema_crossover")
    assert (await catalog.find_strategy(db, "ema_crossover")) is not None


async def _sync(db: Database, folder: Path) -> catalog.SyncOutcome:
    return await catalog.sync_discovered(db, discover([folder]))


async def test_user_files_through_their_lifecycle(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "strats"
    good = write(folder, "good.py", GOOD)
    write(folder, "syntax_error.py", BROKEN["syntax_error.py"][0])
    outcome = await _sync(db, folder)
    rows = {r.name: r for r in outcome.rows}
    user = rows["user_momentum"]
    assert user.path == str(good.resolve()) and user.class_name == "UserMomentum"
    assert user.validation_status == "unvalidated" and user.description.startswith("Long after")
    assert set(outcome.to_validate) == {cls.name for cls in list_strategies()} | {"user_momentum"}
    # A file that never loaded: a placeholder row named after it, invalid, with the error.
    broken = rows["syntax_error"]
    assert broken.validation_status == "invalid" and broken.class_name == ""
    assert broken.validation_error.startswith("import: SyntaxError")
    assert broken.validation_steps == [
        {"name": "import", "ok": False, "message": broken.validation_error.removeprefix("import: ")}
    ]
    assert [e.step for e in outcome.errors] == ["import"]

    # Validation is recorded only for the code it examined.
    first_hash = user.code_hash
    await catalog.record_validation(db, "user_momentum", ok=True, steps=[], code_hash="0" * 64)
    assert (await catalog.get_strategy_row(db, "user_momentum")).validation_status == "unvalidated"
    await catalog.record_validation(db, "user_momentum", ok=True, steps=[], code_hash=first_hash)
    await catalog.update_strategy(db, "user_momentum", tags=["b", " a ", "a", ""], default_params={"lookback": 4})
    outcome = await _sync(db, folder)
    user = await catalog.get_strategy_row(db, "user_momentum")
    assert user.validation_status == "valid" and "user_momentum" not in outcome.to_validate
    assert user.tags == ["a", "b"] and user.default_params == {"lookback": 4}

    # An edited file: new hash, validation reset, user defaults kept while still valid.
    good.write_text(GOOD_EDITED)
    outcome = await _sync(db, folder)
    user = await catalog.get_strategy_row(db, "user_momentum")
    assert user.code_hash != first_hash and user.validation_status == "unvalidated"
    assert user.validation_steps is None and user.default_params == {"lookback": 4}
    assert user.params_schema[0]["default"] == 5 and "user_momentum" in outcome.to_validate
    good.write_text(GOOD.replace("le=50", "le=3"))  # the saved default is now out of bounds
    await _sync(db, folder)
    assert (await catalog.get_strategy_row(db, "user_momentum")).default_params is None

    # The broken file is fixed (and defines another name): the placeholder goes away.
    write(folder, "syntax_error.py", GOOD.replace("user_momentum", "fixed_now").replace("UserMomentum", "Fixed"))
    names = {r.name for r in (await _sync(db, folder)).rows}
    assert "fixed_now" in names and "syntax_error" not in names

    # The good file breaks: its strategy becomes invalid with the import error.
    good.write_text(BROKEN["import_error.py"][0])
    await _sync(db, folder)
    user = await catalog.get_strategy_row(db, "user_momentum")
    assert user.validation_status == "invalid" and "no_such_package_for_tests" in user.validation_error
    assert user.code_hash != first_hash

    # The file is removed: missing (its runs keep their record); back again: unvalidated.
    good.unlink()
    await _sync(db, folder)
    user = await catalog.get_strategy_row(db, "user_momentum")
    assert user.validation_status == "missing" and "no longer found" in user.validation_error
    good.write_text(GOOD)
    await _sync(db, folder)
    assert (await catalog.get_strategy_row(db, "user_momentum")).validation_status == "unvalidated"

    # Soft deletes survive syncs, and a deleted placeholder is not recreated.
    await catalog.delete_strategy(db, "user_momentum")
    write(folder, "import_error.py", BROKEN["import_error.py"][0])
    await _sync(db, folder)
    await catalog.delete_strategy(db, "import_error")
    names = {r.name for r in (await _sync(db, folder)).rows}
    assert "user_momentum" not in names and "import_error" not in names
    assert (await catalog.find_strategy(db, "user_momentum")).deleted  # type: ignore[union-attr]


async def test_list_filters_and_stats(db: Database) -> None:
    await catalog.sync_strategies(db)
    await catalog.record_validation(db, "ema_crossover", ok=True)
    await catalog.record_validation(db, "macd_trend", ok=False, error="signals: boom")
    await catalog.update_strategy(db, "rsi_reversion", tags=["Mean-Reversion"])
    valid = await catalog.list_strategy_rows(db, status="valid")
    assert [r.name for r in valid] == ["ema_crossover"]
    both = await catalog.list_strategy_rows(db, status=["valid", "invalid"])
    assert [r.name for r in both] == ["ema_crossover", "macd_trend"]
    assert [r.name for r in await catalog.list_strategy_rows(db, search="EMA")] == [
        "ema10_scalper", "ema_crossover",
    ]
    assert [r.name for r in await catalog.list_strategy_rows(db, search="mean-rev")] == ["rsi_reversion"]
    assert [r.name for r in await catalog.list_strategy_rows(db, search="intraday.py")] == []
    assert {r.name for r in await catalog.list_strategy_rows(db, search="strategies.intraday")} == {
        "ema10_scalper", "vwap_reversion",
    }
    assert await catalog.list_strategy_rows(db, search="100%_sure") == []

    for _ in range(3):
        await catalog.bump_usage(db, "rsi_reversion")
    await catalog.bump_usage(db, "ema_crossover")
    await catalog.delete_strategy(db, "donchian_breakout")
    stats = await catalog.strategy_stats(db)
    n = len(list_strategies())
    assert stats["total"] == n - 1 and stats["deleted"] == 1 and stats["user"] == 0
    assert stats["by_status"] == {"invalid": 1, "unvalidated": n - 3, "valid": 1}
    assert stats["total_runs"] == 4 and stats["builtin"] == n - 1
    assert stats["most_used"] == [
        {"name": "rsi_reversion", "usage_count": 3}, {"name": "ema_crossover", "usage_count": 1},
    ]


async def test_best_metrics_follow_finished_runs(db: Database, tmp_path: Path) -> None:
    await catalog.sync_strategies(db)
    data = await save_dataset(db, FileBlobStore(tmp_path), make_bars(), name="d", symbol="T")

    async def finish(sharpe: float | None) -> str:
        run = await runs.create_run(
            db, strategy="ema_crossover", dataset_id=data.id, params={}, options={}
        )
        attempt = await runs.claim_run(db, run.id, "w", 30)
        assert attempt is not None
        assert await runs.finish_run(db, run.id, attempt, fake_result(sharpe=sharpe))
        return run.id

    first = await finish(1.5)
    best = (await catalog.get_strategy_row(db, "ema_crossover")).best_metrics
    assert best == {"sharpe": {"value": 1.5, "run_id": first}}  # NaN/None metrics are skipped
    await finish(0.5)  # worse: no change
    await finish(None)
    assert (await catalog.get_strategy_row(db, "ema_crossover")).best_metrics == best
    third = await finish(2.5)
    best = (await catalog.get_strategy_row(db, "ema_crossover")).best_metrics
    assert best == {"sharpe": {"value": 2.5, "run_id": third}}
    assert (await catalog.get_strategy_row(db, "macd_trend")).best_metrics is None


def test_merge_best_directions() -> None:
    from store.strategy_usage import merge_best

    best = merge_best(None, "a", {"sharpe": 1.0, "max_drawdown_pct": 10.0, "n_trades": 3})
    best = merge_best(best, "b", {"sharpe": 0.5, "max_drawdown_pct": 5.0, "win_rate": True})
    assert best == {
        "sharpe": {"value": 1.0, "run_id": "a"},
        "max_drawdown_pct": {"value": 5.0, "run_id": "b"},
    }
