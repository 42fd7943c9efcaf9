"""The team deployment, end to end: PostgreSQL + Redis, `backtester serve` for the API and a
separate `backtester worker` (arq) process doing the work; followed with the `gql` client.

The worker-death takeover (SIGKILL mid-run) is tested by tests/workers; here the point is
that the API, the queue, the bus and the worker meet over real services.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.e2e.live import ROOT, Process, Server, base_env
from tests.e2e.live import gql as post

pytestmark = pytest.mark.slow

SLOW_RUNS = json.dumps({"chunk_bars": 500, "chunk_delay_s": 0.04})
PROGRESS = """
subscription($id: ID!) {
  runProgress(id: $id) { seq type status progress equity { t value } metrics error }
}
"""
SUBMIT = "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id status } }"


@pytest.fixture
def team(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[Server, Process]]:
    env = {
        "DATABASE_URL": pg_url.replace("postgresql+asyncpg://", "postgresql://"),
        "REDIS_URL": redis_url,
        "BT_DATA_DIR": str(tmp_path / "var"),
        "BT_LOAD_SAMPLES": "true",
        "BT_TEST_FAULTS": SLOW_RUNS,
        "BT_LOG_LEVEL": "info",
    }
    migrate = subprocess.run(
        [sys.executable, "-m", "app", "migrate"], cwd=ROOT, capture_output=True, text=True,
        env={**base_env(), **env}, timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    worker = Process(["worker"], env, tmp_path / "worker.log").start()
    server = Server(env, tmp_path / "server.log")
    try:
        server.start()
        yield server, worker
    finally:
        server.stop()
        worker.stop()
    assert "Traceback" not in server.log(), server.log()
    assert "Traceback" not in worker.log(), worker.log()


async def test_api_queue_worker_and_bus_over_real_services(team: tuple[Server, Process]) -> None:
    server, worker = team
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        health = (await client.get("/health")).json()
        assert health["mode"] == "team" and health["redis"] == "ok" and health["database"] == "ok"
        datasets = (await post(client, "{ datasets { nodes { id timeframe } } }"))["datasets"]["nodes"]
        dataset = next(d["id"] for d in datasets if d["timeframe"] == "1min")
        run_id = (await post(client, SUBMIT, {"input": {
            "strategy": "ema_crossover", "datasetId": dataset
        }}))["submitBacktest"]["id"]

        transport = WebsocketsTransport(
            url=server.ws_url,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        events: list[dict[str, Any]] = []
        async with Client(transport=transport, fetch_schema_from_transport=False) as session:
            request = GraphQLRequest(PROGRESS, variable_values={"id": run_id})
            async with asyncio.timeout(90):
                async for result in session.subscribe(request):
                    events.append(result["runProgress"])

        assert events[0]["type"] == "SNAPSHOT"
        assert events[-1]["type"] == "TERMINAL" and events[-1]["status"] == "SUCCEEDED", events[-1]
        live = [e for e in events if e["type"] == "PROGRESS"]
        assert len(live) >= 3
        assert [e["progress"] for e in live] == sorted(e["progress"] for e in live)
        assert sum(len(e["equity"]) for e in live) > 20

        run = (await post(client, 'query($id: ID!) { run(id: $id) { status attempt nTrades '
                          'summary { nTrades } equity(points: 100) { value } } }', {"id": run_id}))["run"]
        assert run["status"] == "SUCCEEDED" and run["attempt"] == 1
        assert run["summary"]["nTrades"] == events[-1]["metrics"]["n_trades"]
        assert len(run["equity"]) <= 100

        # A run cancelled while the worker has it.
        second = (await post(client, SUBMIT, {"input": {
            "strategy": "rsi_reversion", "datasetId": dataset
        }}))["submitBacktest"]["id"]
        async with asyncio.timeout(30):
            while (await post(client, 'query($id: ID!) { run(id: $id) { status } }',
                              {"id": second}))["run"]["status"] != "RUNNING":
                await asyncio.sleep(0.05)
        await post(client, 'mutation($id: ID!) { cancelRun(id: $id) { id } }', {"id": second})
        async with asyncio.timeout(10):
            while (status := (await post(client, 'query($id: ID!) { run(id: $id) { status } }',
                                         {"id": second}))["run"]["status"]) == "RUNNING":
                await asyncio.sleep(0.05)
        assert status == "CANCELLED"
        stats = (await post(client, "{ stats { totalRuns queueDepth byStatus { status count } } }"))
        assert stats["stats"]["totalRuns"] == 2 and stats["stats"]["queueDepth"] == 0
    assert worker.proc is not None and worker.proc.poll() is None  # the worker is still up
    assert f"run {run_id} attempt 1 started" in worker.log()


async def test_a_run_survives_its_worker_dying_as_seen_through_the_api(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    """The API view of a worker crash (the takeover itself is tested in tests/workers):
    one subscription sees attempt 1 die and attempt 2, on another worker, finish the run."""
    env = {
        "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "BT_DATA_DIR": str(tmp_path / "var"),
        "BT_LOAD_SAMPLES": "true", "BT_LEASE_SECONDS": "2", "BT_HEARTBEAT_SECONDS": "0.5",
        "BT_REAP_INTERVAL_SECONDS": "0.5", "BT_LOG_LEVEL": "info",
    }
    migrate = subprocess.run([sys.executable, "-m", "app", "migrate"], cwd=ROOT, timeout=120,
                             env={**base_env(), **env}, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    doomed_faults = {"chunk_bars": 500, "chunk_delay_s": 0.04,
                     "exit_on_dataset": "NIFTY synthetic 1-minute sample"}
    doomed = Process(["worker"], {**env, "BT_TEST_FAULTS": json.dumps(doomed_faults)},
                     tmp_path / "doomed.log")
    rescuer = Process(["worker"], {**env, "BT_TEST_FAULTS": SLOW_RUNS}, tmp_path / "rescuer.log")
    server = Server(env, tmp_path / "server.log")
    try:
        server.start()
        doomed.start()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            datasets = (await post(client, "{ datasets { nodes { id timeframe } } }"))["datasets"]["nodes"]
            dataset = next(d["id"] for d in datasets if d["timeframe"] == "1min")
            run_id = (await post(client, SUBMIT, {"input": {
                "strategy": "ema_crossover", "datasetId": dataset
            }}))["submitBacktest"]["id"]
            transport = WebsocketsTransport(
                url=server.ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
            )

            async def rescue() -> None:  # once the first worker is dead, bring up another
                while doomed.proc is not None and doomed.proc.poll() is None:
                    await asyncio.sleep(0.1)
                rescuer.start()

            rescuing = asyncio.create_task(rescue())
            events: list[dict[str, Any]] = []
            async with Client(transport=transport, fetch_schema_from_transport=False) as session:
                request = GraphQLRequest(PROGRESS, variable_values={"id": run_id})
                async with asyncio.timeout(90):
                    async for result in session.subscribe(request):
                        events.append(result["runProgress"])
            await rescuing
            run = (await post(client, 'query($id: ID!) { run(id: $id) { status attempt } }',
                              {"id": run_id}))["run"]
    finally:
        server.stop()
        rescuer.stop()
        doomed.stop()
    assert doomed.proc is not None and doomed.proc.returncode == 137, doomed.log()
    assert run == {"status": "SUCCEEDED", "attempt": 2}, rescuer.log()
    assert events[-1]["type"] == "TERMINAL" and events[-1]["status"] == "SUCCEEDED"
    seqs = [e["seq"] for e in events[1:]]
    assert seqs == sorted(seqs)  # attempt 2's events continue the order (seq jumps ahead)
    assert f"run {run_id} attempt 2 started" in rescuer.log()
