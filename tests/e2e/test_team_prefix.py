"""A deployment with its own bus prefix (BT_BUS_PREFIX): the API server and the arq
worker both publish and subscribe under it, so `runProgress` still gets live events, and
nothing goes out on the default channels another deployment on the same Redis follows."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.live import ROOT, Process, Server, TransportWS, base_env
from tests.e2e.live import gql as post
from workers.arq_worker import DEFAULT_BUS_PREFIX, WorkerConfig
from workers.bus import RedisBus

pytestmark = pytest.mark.slow

PROGRESS = "subscription($id: ID!) { runProgress(id: $id) { seq type status progress } }"
SUBMIT = "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id status } }"


def test_worker_config_reads_the_bus_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@127.0.0.1/db")
    monkeypatch.delenv("BT_BUS_PREFIX", raising=False)
    assert WorkerConfig.from_env().bus_prefix == DEFAULT_BUS_PREFIX == "bt"
    monkeypatch.setenv("BT_BUS_PREFIX", "acme-prod")
    assert WorkerConfig.from_env().bus_prefix == "acme-prod"


@pytest.fixture
def prefixed_team(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {
        "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "BT_DATA_DIR": str(tmp_path / "var"),
        "BT_LOAD_SAMPLES": "true", "BT_BUS_PREFIX": prefix, "BT_LOG_LEVEL": "info",
        "BT_TEST_FAULTS": json.dumps({"chunk_bars": 500, "chunk_delay_s": 0.04}),
    }
    migrate = subprocess.run([sys.executable, "-m", "app", "migrate"], cwd=ROOT, timeout=120,
                             env={**base_env(), **env}, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    worker = Process(["worker"], env, tmp_path / "worker.log").start()
    server = Server(env, tmp_path / "server.log")
    try:
        server.start()
        yield server, prefix
    finally:
        server.stop()
        worker.stop()
    assert "Traceback" not in server.log() + worker.log(), server.log() + worker.log()


async def test_server_and_worker_agree_on_a_custom_prefix(
    prefixed_team: tuple[Server, str], redis_url: str
) -> None:
    server, prefix = prefixed_team
    ours, default = RedisBus(redis_url, prefix=prefix), RedisBus(redis_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        datasets = (await post(client, "{ datasets { nodes { id timeframe } } }"))["datasets"]["nodes"]
        dataset = next(d["id"] for d in datasets if d["timeframe"] == "1min")
        events: list[dict[str, Any]] = []
        try:
            async with ours.subscribe_all() as mine, default.subscribe_all() as others:
                run_id = (await post(client, SUBMIT, {"input": {
                    "strategy": "ema_crossover", "datasetId": dataset
                }}))["submitBacktest"]["id"]
                ws = await TransportWS.connect(server.ws_url)
                try:
                    async with asyncio.timeout(90):
                        async for payload in ws.subscribe(PROGRESS, {"id": run_id}):
                            events.append(payload["data"]["runProgress"])
                finally:
                    await ws.close()
                seen = []  # the worker's events went out under the prefix ...
                while (event := await mine.get(1)) is not None:
                    seen.append(event)
                assert {"TERMINAL", "terminal"} & {e.get("type") for e in seen if e.get("run_id") == run_id}, seen
                while (leaked := await others.get(0.2)) is not None:  # ... and none under "bt"
                    assert leaked.get("run_id") != run_id, leaked
        finally:
            await ours.close()
            await default.close()
    assert events[0]["type"] == "SNAPSHOT"
    assert events[-1]["type"] == "TERMINAL" and events[-1]["status"] == "SUCCEEDED", events[-1]
    live = [e for e in events if e["type"] == "PROGRESS"]
    assert len(live) >= 3, events  # live progress crossed the bus, not only status polls
