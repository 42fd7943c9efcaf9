"""`backtester serve --workers N`: several API processes on one port in the team
deployment (they meet over PostgreSQL and Redis), refused for the embedded one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from graph.schema import build_schema, schema
from graph.subscriptions import SharedEventExecution
from tests.e2e.live import ROOT, Process, Server, TransportWS, base_env
from tests.e2e.live import gql as post

PROGRESS = "subscription($id: ID!) { runProgress(id: $id) { seq type status progress } }"
SUBMIT = "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id status } }"


def test_every_schema_shares_subscription_executions() -> None:
    """The app, `export-schema` and tests build the same schema (`build_schema`)."""
    assert schema.execution_context_class is SharedEventExecution
    assert build_schema(max_depth=4).execution_context_class is SharedEventExecution


def test_embedded_serve_refuses_several_workers(tmp_path: Path) -> None:
    env = {**base_env(), "BT_DATA_DIR": str(tmp_path / "var")}
    env.pop("BT_REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "app", "serve", "--workers", "2"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --workers 2 needs the team deployment")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var").exists()  # refused before touching anything


@pytest.mark.slow
async def test_two_api_processes_serve_queries_and_progress(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "BT_DATA_DIR": str(tmp_path / "var"),
        "BT_AUTO_MIGRATE": "true", "BT_LOAD_SAMPLES": "true", "BT_LOG_LEVEL": "info",
        "BT_TEST_FAULTS": json.dumps({"chunk_bars": 500, "chunk_delay_s": 0.04}),
    }
    server = Server(env, tmp_path / "server.log")
    server.args += ["--workers", "2", "--no-ws-compression"]
    worker = Process(["worker"], env, tmp_path / "worker.log")
    try:
        server.start()  # migrates and loads the samples once, before the processes start
        worker.start()
        assert server.proc is not None
        api = [p for p in psutil.Process(server.proc.pid).children(recursive=True)
               if "spawn_main" in " ".join(p.cmdline())]
        assert len(api) == 2, [p.cmdline() for p in api]
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            answers = await asyncio.gather(*(post(client, "{ strategies { name } }")
                                             for _ in range(40)))
            assert all(a == answers[0] and a["strategies"] for a in answers)
            datasets = (await post(client, "{ datasets { nodes { id timeframe } } }"))["datasets"]["nodes"]
            assert len({d["id"] for d in datasets}) == len(datasets)  # samples loaded once
            dataset = next(d["id"] for d in datasets if d["timeframe"] == "1min")
            run_id = (await post(client, SUBMIT, {"input": {
                "strategy": "ema_crossover", "datasetId": dataset
            }}))["submitBacktest"]["id"]
            followers = [await TransportWS.connect(server.ws_url) for _ in range(4)]

            async def follow(ws: TransportWS) -> list[dict[str, Any]]:
                return [p["data"]["runProgress"] async for p in ws.subscribe(PROGRESS, {"id": run_id})]

            try:
                async with asyncio.timeout(90):
                    seen = await asyncio.gather(*(follow(ws) for ws in followers))
            finally:
                for ws in followers:
                    await ws.close()
        for events in seen:
            assert events[-1]["type"] == "TERMINAL" and events[-1]["status"] == "SUCCEEDED"
            assert len([e for e in events if e["type"] == "PROGRESS"]) >= 3, events
    finally:
        server.stop()
        worker.stop()
    assert "Traceback" not in server.log() + worker.log(), server.log() + worker.log()
