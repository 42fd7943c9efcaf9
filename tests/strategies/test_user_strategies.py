"""User strategy folders on the embedded stack: sync, validate, refuse broken ones, run new ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store import runs as run_store
from store import strategy_catalog as catalog
from store.datasets import BARS_CACHE
from store.errors import BadInputError, NotFoundError
from store.models import RunStatus
from strategies import registry
from tests.strategies.user_files import BROKEN, GOOD, GOOD_EDITED, write
from tests.workers.conftest import Embedded, close_embedded, open_embedded
from workers.jobs import execute_run
from workers.service import Services


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """User classes registered by a sync stay inside the test."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture
async def stack(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[Embedded, Services, Path]]:
    BARS_CACHE.clear()
    e = await open_embedded(sqlite_url, tmp_path, days=5)
    folder = tmp_path / "user_strategies"
    folder.mkdir()
    services = Services(e.db, e.blobs, e.queue, e.bus, e.services.limits, strategy_paths=[folder])
    try:
        yield e, services, folder
    finally:
        await close_embedded(e)


async def test_dropped_file_appears_after_sync_and_runs(stack: tuple[Embedded, Services, Path]) -> None:
    e, services, folder = stack
    outcome = await services.sync_strategies()
    assert "user_momentum" not in {r.name for r in outcome.rows}
    assert all(r.validation_status == "valid" for r in outcome.rows)  # built-ins validated
    with pytest.raises(BadInputError, match="unknown strategy 'user_momentum'"):
        await services.submit_backtest("user_momentum", e.dataset_id)

    write(folder, "momentum.py", GOOD)
    outcome = await services.sync_strategies()
    row = next(r for r in outcome.rows if r.name == "user_momentum")
    assert row.validation_status == "valid" and row.path == str((folder / "momentum.py").resolve())
    assert [s["name"] for s in row.validation_steps] == [
        "import", "instantiate", "signals", "values", "look_ahead",
    ]
    await services.update_strategy("user_momentum", default_params={"lookback": "7"})
    run = await services.submit_backtest("user_momentum", e.dataset_id, {}, {})
    assert run.params == {"lookback": 7}  # the user's default, coerced
    done = await services.wait_for_run(run.id, 30)
    assert done.status is RunStatus.SUCCEEDED, done.error
    assert done.engine_info["strategy_code_hash"] == row.code_hash
    row = await catalog.get_strategy_row(e.db, "user_momentum")
    assert row.usage_count == 1 and row.best_metrics is not None
    assert row.best_metrics["max_drawdown_pct"]["run_id"] == run.id


async def test_broken_files_are_refused_naming_the_step(stack: tuple[Embedded, Services, Path]) -> None:
    e, services, folder = stack
    for name, (source, _, _) in BROKEN.items():
        write(folder, name, source)
    await services.sync_strategies()
    for file, (_, step, words) in BROKEN.items():
        name = Path(file).stem  # every broken strategy (or placeholder) is named after its file
        row = await catalog.get_strategy_row(e.db, name)
        assert row.validation_status == "invalid", (file, row.validation_error)
        assert row.validation_error.startswith(f"{step}: "), (file, row.validation_error)
        assert all(w in row.validation_error for w in words), (file, row.validation_error)
        with pytest.raises(BadInputError) as info:
            await services.submit_backtest(name, e.dataset_id, {}, {})
        assert info.value.field == "strategy"
        assert f"failed validation at step {step!r}" in str(info.value), str(info.value)
    assert (await run_store.list_runs(e.db)).total == 0


async def test_validate_on_demand_edit_and_delete(stack: tuple[Embedded, Services, Path]) -> None:
    e, services, folder = stack
    path = write(folder, "momentum.py", GOOD)
    await services.sync_strategies(validate=False)
    assert (await catalog.get_strategy_row(e.db, "user_momentum")).validation_status == "unvalidated"
    checked = await services.validate_strategy("user_momentum", e.dataset_id)
    assert checked.validation_status == "valid"
    assert "8 cut points" in checked.validation_steps[-1]["message"]

    # Edited on disk: validating reloads the file and records the new hash.
    path.write_text(GOOD_EDITED)
    checked = await services.validate_strategy("user_momentum")
    assert checked.validation_status == "valid" and checked.params_schema[0]["default"] == 5
    assert registry.get_strategy("user_momentum").defaults() == {"lookback": 5}

    # By path: only files inside STRATEGY_PATHS, and a broken one reports its import error.
    write(folder, "peeks_ahead.py", BROKEN["peeks_ahead.py"][0])
    (leaky,) = await services.validate_strategy_path(str(folder / "peeks_ahead.py"))
    assert leaky.validation_status == "invalid"
    assert leaky.validation_error.startswith("look_ahead: signals computed on the first")
    write(folder, "syntax_error.py", BROKEN["syntax_error.py"][0])
    (syntax,) = await services.validate_strategy_path(str(folder / "syntax_error.py"))
    assert syntax.name == "syntax_error" and syntax.validation_error.startswith("import: SyntaxError")
    with pytest.raises(BadInputError, match="STRATEGY_PATHS") as info:
        await services.validate_strategy_path(__file__)
    assert info.value.field == "path"

    with pytest.raises(BadInputError) as info:
        await services.update_strategy("user_momentum", default_params={"lookbak": 4})
    assert info.value.field == "default_params.lookbak" and "did you mean 'lookback'" in str(info.value)
    with pytest.raises(BadInputError, match="<= 50"):
        await services.update_strategy("user_momentum", default_params={"lookback": 99})
    edited = await services.update_strategy("user_momentum", description="mine", tags=["trend"])
    assert edited.description == "mine" and edited.tags == ["trend"] and edited.description_edited
    cleared = await services.update_strategy("user_momentum", description="  ")
    assert cleared.description.startswith("Long after the close rose") and not cleared.description_edited
    with pytest.raises(BadInputError, match="list of strings"):
        await services.update_strategy("user_momentum", tags="trend")  # type: ignore[arg-type]

    # Renamed in its file: validating the old name finds it gone.
    path.write_text(GOOD.replace('"user_momentum"', '"renamed_momentum"'))
    gone = await services.validate_strategy("user_momentum")
    assert gone.validation_status == "missing" and "does not define" in gone.validation_error
    path.write_text(GOOD)
    assert (await services.validate_strategy("user_momentum")).validation_status == "valid"

    await services.delete_strategy("user_momentum")
    with pytest.raises(BadInputError, match="was deleted"):
        await services.submit_backtest("user_momentum", e.dataset_id)
    with pytest.raises(NotFoundError):
        await services.validate_strategy("user_momentum")


async def test_removed_file_is_missing(stack: tuple[Embedded, Services, Path]) -> None:
    e, services, folder = stack
    path = write(folder, "momentum.py", GOOD)
    await services.sync_strategies()
    path.unlink()
    await services.sync_strategies()
    assert (await catalog.get_strategy_row(e.db, "user_momentum")).validation_status == "missing"
    with pytest.raises(registry.UnknownStrategyError):
        registry.get_strategy("user_momentum")
    with pytest.raises(BadInputError, match="not available: no longer found"):
        await services.submit_backtest("user_momentum", e.dataset_id)


async def test_a_worker_loads_the_file_itself(stack: tuple[Embedded, Services, Path]) -> None:
    """A worker process that never synced (team deployment) loads the catalog's file, and
    refuses to run code that changed since it was synced."""
    e, services, folder = stack
    path = write(folder, "momentum.py", GOOD)
    await services.sync_strategies()
    first = await run_store.create_run(
        e.db, strategy="user_momentum", dataset_id=e.dataset_id, params={}, options={}
    )
    registry.unregister_strategy("user_momentum")  # as in another process
    await execute_run(e.ctx, first.id)
    done = await run_store.get_run(e.db, first.id)
    assert done.status is RunStatus.SUCCEEDED, done.error

    path.write_text(GOOD_EDITED)
    registry.unregister_strategy("user_momentum")
    second = await run_store.create_run(
        e.db, strategy="user_momentum", dataset_id=e.dataset_id, params={}, options={}
    )
    await execute_run(e.ctx, second.id)
    failed = await run_store.get_run(e.db, second.id)
    assert failed.status is RunStatus.FAILED and "changed since" in (failed.error or "")
