"""A team on the in-process app: users alice and bob, admin root, and their tokens.

`team_app(...)` migrates the database, creates the users and tokens, then opens the app
(so authentication is on from the first request); `Team.post(who, ...)` sends a request
with that user's token (`None`: anonymous).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store import auth
from store.db import Database, run_migrations
from tests.graph.conftest import Api, _open, make_settings

TOKENS = {"alice": ["run"], "bob": ["run"], "root": ["admin"], "reader": ["read"]}
"""reader is bob with a read-only token."""


@dataclass
class Team:
    api: Api
    tokens: dict[str, str]
    token_ids: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"authorization": f"Bearer {self.tokens[who]}"}

    async def post(self, who: str | None, query: str, variables: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
        response = await self.api.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers(who)
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def data(self, who: str | None, query: str, variables: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
        body = await self.post(who, query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def code(self, who: str | None, query: str, variables: dict[str, Any] | None = None) -> str:
        """The `extensions.code` of the operation's single error."""
        body = await self.post(who, query, variables)
        assert len(body.get("errors") or []) == 1, body
        return str(body["errors"][0]["extensions"]["code"])


async def make_team(database_url: str) -> dict[str, tuple[str, str]]:
    """Users and tokens in a migrated database: {who: (token id, token)}."""
    await asyncio.to_thread(run_migrations, database_url)
    db = Database(database_url)
    try:
        await auth.create_user(db, "alice")
        await auth.create_user(db, "bob")
        await auth.create_user(db, "root", admin=True)
        out = {}
        for who, scopes in TOKENS.items():
            issued = await auth.create_token(db, "bob" if who == "reader" else who, scopes)
            out[who] = (issued.row.id, issued.secret)
        return out
    finally:
        await db.dispose()


async def team_app(database_url: str, data_dir: Path, **overrides: Any) -> AsyncIterator[Team]:
    made = await make_team(database_url)
    async for api in _open(make_settings(database_url, data_dir, **overrides)):
        yield Team(api, {k: v[1] for k, v in made.items()}, {k: v[0] for k, v in made.items()})
