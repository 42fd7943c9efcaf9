"""The load benchmark's deployment and helpers: scratch database, API token, server and
worker processes, GraphQL calls, result rows (for `bench/load_bench.py`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.live import Process, Server, TransportWS

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
N_BARS = 10_000
STRATEGY = "ema_crossover"

SUBMIT = "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id status } }"
PROGRESS = """
subscription($id: ID!) { runProgress(id: $id) { seq type status progress emittedAt } }
"""
RUN_EVENTS = "subscription { runEvents { runId type status emittedAt } }"


def now_ms() -> float:
    return time.time() * 1000.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("pass" if self.ok else "FAIL")


@dataclass
class Bench:
    """The live deployment under test and the rows measured so far."""

    args: argparse.Namespace
    tmp: Path
    env: dict[str, str]
    server: Server
    dataset_id: int
    token: str
    """An API token (scope `run`) of the bench's user: every request carries it."""
    rows: list[Row] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    """Worker processes running now; `spent` holds the stopped ones (for their logs)."""
    spent: list[Process] = field(default_factory=list)

    def start_workers(self, n: int, *, faults: dict[str, Any] | None = None) -> list[Process]:
        env = dict(self.env)
        if faults:
            env["BT_TEST_FAULTS"] = json.dumps(faults)
        started = []
        for _ in range(n):
            k = len(self.workers)
            proc = Process(["worker"], env, self.tmp / f"worker-{k}.log")
            self.workers.append(proc)  # before start: stopped in `finally` whatever happens
            started.append(proc.start())
        return started

    def stop_workers(self) -> None:
        while self.workers:
            proc = self.workers.pop()
            self.spent.append(proc)
            proc.stop()

    def client(self, connections: int = 16) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(
            base_url=self.server.url, timeout=60, limits=limits,
            headers={"authorization": f"Bearer {self.token}"},
        )

    async def websocket(self, **kwargs: Any) -> TransportWS:
        """A graphql-transport-ws connection authenticated with the bench's token."""
        return await TransportWS.connect(
            self.server.ws_url, payload={"Authorization": f"Bearer {self.token}"},
            ping_interval=None, **kwargs,
        )


# -- setup ---------------------------------------------------------------------------------


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """A new PostgreSQL database (plain `postgresql://` URL), dropped on the way out."""
    name = f"bt_bench_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pick_redis_url() -> str:
    """A Redis logical database with no keys: the queue's name is fixed, so a worker of
    another deployment on the same database would take the bench's jobs. Database 0 first
    (the tests pick 1-15 at random)."""
    import redis

    candidates = [0, *range(15, 0, -1)]
    for n in candidates:
        client = redis.Redis.from_url(f"{REDIS_BASE}/{n}", socket_connect_timeout=2)
        try:
            if client.dbsize() == 0:
                return f"{REDIS_BASE}/{n}"
        finally:
            client.close()
    return f"{REDIS_BASE}/{random.choice(candidates)}"


async def register_dataset(database_url: str, data_dir: Path) -> tuple[int, str]:
    """A 10k-bar synthetic 1-minute dataset owned by a new user, and that user's API token
    (what `backtester user add` and `backtester token create` make)."""
    from engine.synthetic import synthetic_intraday
    from store.auth import create_token, create_user
    from store.blobs import blob_store_for
    from store.datasets import save_dataset
    from store.db import Database

    bars = synthetic_intraday(days=N_BARS // 375 + 1, seed=11)
    bars = bars.slice(0, N_BARS)
    db = Database(database_url)
    try:
        user = await create_user(db, "bench")
        row = await save_dataset(
            db, blob_store_for(db, data_dir), bars, name="load bench 10k", symbol="BENCH",
            owner_id=user.id,
        )
        issued = await create_token(db, "bench", ["run"], note="bench/load_bench.py")
        return int(row.id), issued.secret
    finally:
        await db.dispose()


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's (and its children's) open-file soft limit; the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return int(soft)


# -- helpers -------------------------------------------------------------------------------


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


async def submit(client: httpx.AsyncClient, dataset_id: int, **params: Any) -> str:
    data = await gql(client, SUBMIT, {"input": {
        "strategy": STRATEGY, "datasetId": str(dataset_id), "params": params or None,
    }})
    return str(data["submitBacktest"]["id"])


async def wait_terminal(client: httpx.AsyncClient, ids: list[str], timeout: float) -> dict[str, str]:
    """Poll `run(id)` until every run is terminal; their statuses."""
    pending, done = set(ids), {}
    async with asyncio.timeout(timeout):
        while pending:
            for run_id in list(pending):
                status = (await gql(client, "query($id: ID!) { run(id: $id) { status } }",
                                    {"id": run_id}))["run"]["status"]
                if status in {"SUCCEEDED", "FAILED", "CANCELLED"}:
                    done[run_id] = status
                    pending.discard(run_id)
            if pending:
                await asyncio.sleep(0.1)
    return done


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
