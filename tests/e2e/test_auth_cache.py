"""Servers cache verified API tokens, yet a revocation anywhere takes effect at once.

Two `backtester serve` processes share one PostgreSQL database. Server A has just
verified (and cached) a token; revoking it through server B, or with the
`backtester token revoke` CLI, must make A refuse it on the very next request, and end
A's open subscription of that token at once (PostgreSQL NOTIFY, not a poll).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.live import ROOT, Server, TransportWS, base_env

pytestmark = pytest.mark.slow

ME = "{ me { name } }"
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) { active } }"


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**base_env(), **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def servers(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    env = {
        "DATABASE_URL": pg_url.replace("postgresql+asyncpg://", "postgresql://"),
        "REDIS_URL": redis_url, "BT_DATA_DIR": str(tmp_path / "var"), "BT_LOG_LEVEL": "info",
    }
    cli(env, "migrate")
    cli(env, "user", "add", "alice")
    cli(env, "user", "add", "root", "--admin")
    tokens = {"root": cli(env, "token", "create", "--user", "root", "--scope", "admin"), "env": ""}
    for name in ("a", "b", "c"):
        tokens[name] = cli(env, "token", "create", "--user", "alice", "--scope", "read")
    tokens["env"] = json.dumps(env)
    a = Server(env, tmp_path / "a.log")
    b = Server(env, tmp_path / "b.log")
    try:
        a.start()
        b.start()
        yield a, b, tokens
    finally:
        a.stop()
        b.stop()
    for server in (a, b):
        assert "Traceback" not in server.log(), server.log()


async def call(client: httpx.AsyncClient, token: str, query: str,
               variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                                 headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or [{}]
    return (errors[0].get("extensions") or {}).get("code")  # type: ignore[no-any-return]


async def test_a_cached_token_is_refused_right_after_it_is_revoked_elsewhere(
    servers: tuple[Server, Server, dict[str, str]],
) -> None:
    a, b, tokens = servers
    async with (httpx.AsyncClient(base_url=a.url, timeout=30) as on_a,
                httpx.AsyncClient(base_url=b.url, timeout=30) as on_b):
        for _ in range(3):  # verified, then answered from A's cache
            assert (await call(on_a, tokens["a"], ME))["data"]["me"]["name"] == "alice"
        revoked = await call(on_b, tokens["root"], REVOKE, {"id": tokens["a"].split("_")[1]})
        assert revoked["data"]["revokeApiToken"]["active"] is False
        assert code(await call(on_a, tokens["a"], ME)) == "UNAUTHENTICATED"  # no wait, no retry

        # The CLI (a third process, no server involved) is heard just the same.
        assert (await call(on_a, tokens["b"], ME))["data"]["me"]["name"] == "alice"
        cli(json.loads(tokens["env"]), "token", "revoke", tokens["b"].split("_")[1])
        assert code(await call(on_a, tokens["b"], ME)) == "UNAUTHENTICATED"

        # Tokens nobody revoked keep working on both servers.
        assert (await call(on_a, tokens["c"], ME))["data"]["me"]["name"] == "alice"
        assert (await call(on_b, tokens["c"], ME))["data"]["me"]["name"] == "alice"


async def test_revoking_through_another_server_ends_an_open_subscription_at_once(
    servers: tuple[Server, Server, dict[str, str]],
) -> None:
    a, b, tokens = servers
    ws = await TransportWS.connect(a.ws_url, payload={"Authorization": f"Bearer {tokens['c']}"})
    try:
        await ws.ws.send(json.dumps({"id": "e", "type": "subscribe",
                                     "payload": {"query": "subscription { runEvents { runId } }"}}))
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=b.url, timeout=30) as on_b:
            revoked = await call(on_b, tokens["root"], REVOKE, {"id": tokens["c"].split("_")[1]})
        assert revoked["data"]["revokeApiToken"]["active"] is False
        revoked_at = time.monotonic()
        async with asyncio.timeout(5):
            while True:
                msg = json.loads(await ws.ws.recv())
                if msg.get("id") == "e" and msg["type"] in ("next", "error", "complete"):
                    break
        # NOTIFY ends it at once; the 1 s per-token re-check would take up to ~1.5 s.
        assert time.monotonic() - revoked_at < 0.5
        assert msg["type"] == "next", msg
        assert msg["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await ws.close()
