"""`Settings` (app/settings.py): environment names, the embedded default, deployment rules."""

from __future__ import annotations

import os
from pathlib import Path

import pydantic
import pytest

from app.settings import Settings, normalize_database_url, redact_url

ENV_NAMES = [
    "DATABASE_URL", "REDIS_URL", "BT_DATA_DIR", "BT_WORKER_CONCURRENCY", "BT_LEASE_SECONDS",
    "BT_ALLOWED_ORIGINS", "BT_MAX_BODY_BYTES", "BT_GRAPHIQL", "BT_HOST", "BT_PORT", "BT_ENV",
    "STRATEGY_PATHS", "BT_STRATEGY_PATHS", "BT_DATABASE_POOL_SIZE",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_embedded_default_needs_no_configuration() -> None:
    s = Settings()
    assert s.embedded and s.database_url is None and s.redis_url is None
    assert s.effective_database_url == f"sqlite+aiosqlite:///{Path('var').resolve()}/backtester.sqlite3"
    assert s.should_migrate and s.should_load_samples and s.graphiql_enabled
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.describe().startswith("SQLite")


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://bt:secret@db.internal:5432/bt")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("BT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BT_WORKER_CONCURRENCY", "8")
    monkeypatch.setenv("BT_LEASE_SECONDS", "45")
    monkeypatch.setenv("BT_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("BT_MAX_BODY_BYTES", "65536")
    monkeypatch.setenv("BT_ENV", "production")
    monkeypatch.setenv("BT_PORT", "9000")
    s = Settings()
    assert s.database_url == "postgresql+asyncpg://bt:secret@db.internal:5432/bt"
    assert not s.embedded and not s.should_migrate and not s.should_load_samples
    assert s.worker_concurrency == 8 and s.lease_seconds == 45 and s.port == 9000
    assert s.allowed_origins == ["https://a.example", "https://b.example"]
    assert s.max_body_bytes == 65536 and s.data_dir == tmp_path
    assert not s.graphiql_enabled  # production
    assert "secret" not in s.describe() and "arq on Redis" in s.describe()
    monkeypatch.setenv("BT_GRAPHIQL", "true")
    assert Settings().graphiql_enabled


def test_invalid_combinations_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    with pytest.raises(pydantic.ValidationError, match="DATABASE_URL is not"):
        Settings()
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("DATABASE_URL", "mysql://x/y")
    with pytest.raises(pydantic.ValidationError, match="unsupported DATABASE_URL scheme"):
        Settings()
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("BT_WORKER_CONCURRENCY", "0")
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_url_helpers() -> None:
    assert normalize_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalize_database_url("postgresql://u@h/d") == "postgresql+asyncpg://u@h/d"
    assert redact_url("postgresql://u:p@h/d") == "postgresql://u:***@h/d"
    assert redact_url("redis://h:6379") == "redis://h:6379"


def test_strategy_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings().strategy_paths == []
    monkeypatch.setenv("STRATEGY_PATHS", f"{tmp_path / 'a'}, {tmp_path / 'b'}{os.pathsep}~/c")
    assert Settings().strategy_paths == [tmp_path / "a", tmp_path / "b", Path("~/c").expanduser()]
    assert Settings(strategy_paths=[tmp_path]).strategy_paths == [tmp_path]


async def test_the_api_keeps_a_fixed_postgres_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """No overflow connections opened and closed per request under load (BT_DATABASE_POOL_SIZE;
    bench/load_bench.py measured a third more CPU per request with SQLAlchemy's 5 + 10)."""
    from app.stack import pool_options
    from store.db import Database

    assert pool_options(Settings()) == {}  # SQLite keeps its own pool
    monkeypatch.setenv("BT_DATABASE_POOL_SIZE", "7")
    settings = Settings(database_url="postgresql://u@localhost/x")
    assert pool_options(settings) == {"pool_size": 7, "max_overflow": 0}
    db = Database(settings.effective_database_url, **pool_options(settings))
    try:
        assert db.engine.pool.size() == 7  # type: ignore[attr-defined]
    finally:
        await db.dispose()
