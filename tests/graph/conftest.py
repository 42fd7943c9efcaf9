"""Graph fixtures: the real ASGI app (lifespan included) on SQLite and PostgreSQL.

Requests go through httpx's ASGI transport, so everything from the middleware down to
the database is the production code path; only the TCP socket is missing (tests/e2e
has that).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.asgi import create_app
from app.settings import Settings
from app.stack import Stack
from store.datasets import BARS_CACHE

SLOW_RUNS = json.dumps({"chunk_bars": 500, "chunk_delay_s": 0.05})
"""BT_TEST_FAULTS for runs that take a few seconds (to cancel or watch them)."""


@dataclass
class Api:
    app: Starlette
    client: httpx.AsyncClient
    settings: Settings

    @property
    def stack(self) -> Stack:
        return self.app.state.stack  # type: ignore[no-any-return]

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a GraphQL operation; the HTTP status must be 200."""
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of an operation that must not fail."""
        body = await self.post(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def error(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The single error of an operation that must fail."""
        body = await self.post(query, variables)
        assert body.get("errors"), body
        assert len(body["errors"]) == 1, body["errors"]
        return body["errors"][0]  # type: ignore[no-any-return]


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "redis_url": None,
        "environment": "development",
        "auto_migrate": True,
        "load_samples": True,
        "heartbeat_seconds": 0.5,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def api_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path / "var")


async def _open(settings: Settings) -> AsyncIterator[Api]:
    BARS_CACHE.clear()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(app, client, settings)


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[Api]:
    """The app on each database (SQLite and PostgreSQL), samples loaded, worker in-process."""
    async for a in _open(api_settings):
        yield a


@pytest.fixture
async def slow_api(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    """Like `api`, but every run takes a few seconds (small chunks with pauses)."""
    monkeypatch.setenv("BT_TEST_FAULTS", SLOW_RUNS)
    async for a in _open(make_settings(db_url, tmp_path / "var")):
        yield a


@pytest.fixture
async def sqlite_api(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app on SQLite only, for tests about HTTP behaviour rather than storage."""
    async for a in _open(make_settings(sqlite_url, tmp_path / "var", max_body_bytes=4096)):
        yield a


async def sample_id(api: Api, timeframe: str = "1min") -> str:
    data = await api.data("{ datasets { nodes { id timeframe } } }")
    return next(d["id"] for d in data["datasets"]["nodes"] if d["timeframe"] == timeframe)
