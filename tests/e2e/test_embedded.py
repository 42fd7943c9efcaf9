"""The embedded default, end to end: `backtester serve` with no database or Redis configured,
driven over real HTTP and a real graphql-transport-ws websocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.live import PROTOCOL, Server, TransportWS, gql

pytestmark = pytest.mark.slow

SLOW_RUNS = json.dumps({"chunk_bars": 500, "chunk_delay_s": 0.04})
PROGRESS = """
subscription($id: ID!) {
  runProgress(id: $id) { runId seq type status progress stage equity { t value } metrics error }
}
"""
SUBMIT = """
mutation($input: BacktestInput!) { submitBacktest(input: $input) { id status } }
"""
RESULT = """
query($id: ID!) {
  run(id: $id) {
    status nTrades summary { sharpe totalReturnPct maxDrawdownPct nTrades }
    trades(first: 5) { totalCount nodes { index side entryTime exitTime pnl } }
    equity(points: 300) { t value }
  }
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One embedded server for the module: a fresh data dir, slowed-down runs."""
    tmp = tmp_path_factory.mktemp("embedded")
    env = {
        "BT_DATA_DIR": str(tmp / "var"),
        "BT_TEST_FAULTS": SLOW_RUNS,
        "BT_WS_INIT_TIMEOUT_SECONDS": "1",
        "BT_ALLOWED_ORIGINS": "https://dash.example",
        "BT_LOG_LEVEL": "info",
    }
    srv = Server(env, tmp / "server.log").start()
    yield srv
    status = srv.stop()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it (exit status -15).
    assert status in (0, -15), f"unclean shutdown ({status}):\n{srv.log()}"
    assert "backtester stack closed" in srv.log(), srv.log()
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c


async def submit(client: httpx.AsyncClient) -> str:
    datasets = (await gql(client, "{ datasets { nodes { id timeframe } } }"))["datasets"]["nodes"]
    dataset = next(d["id"] for d in datasets if d["timeframe"] == "1min")
    run = (await gql(client, SUBMIT, {"input": {
        "strategy": "ema_crossover", "datasetId": dataset, "params": {"fast": 12, "slow": 40}
    }}))["submitBacktest"]
    assert run["status"] == "QUEUED"
    return run["id"]  # type: ignore[no-any-return]


async def test_submit_watch_live_and_fetch_the_result(server: Server, client: httpx.AsyncClient) -> None:
    run_id = await submit(client)
    ws = await TransportWS.connect(server.ws_url)
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        async for payload in ws.subscribe(PROGRESS, {"id": run_id}):
            assert "errors" not in payload, payload
            events.append(payload["data"]["runProgress"])
    await ws.close()

    assert events[0]["type"] == "SNAPSHOT" and events[0]["runId"] == run_id
    assert events[-1]["type"] == "TERMINAL" and events[-1]["status"] == "SUCCEEDED"
    live = [e for e in events if e["type"] == "PROGRESS"]
    assert len(live) >= 5, [e["type"] for e in events]
    progress = [e["progress"] for e in live]
    assert progress == sorted(progress) and progress[0] < progress[-1] <= 1
    seqs = [e["seq"] for e in live]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    points = [p for e in live for p in e["equity"]]
    assert len(points) > 40
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)

    run = (await gql(client, RESULT, {"id": run_id}))["run"]
    assert run["status"] == "SUCCEEDED"
    assert run["summary"]["nTrades"] == events[-1]["metrics"]["n_trades"] > 0
    assert run["trades"]["totalCount"] == run["nTrades"] and len(run["trades"]["nodes"]) == 5
    assert 2 <= len(run["equity"]) <= 300
    assert run["equity"][-1]["value"] == pytest.approx(events[-1]["metrics"]["final_equity"])


async def test_cancel_a_running_run_ends_its_stream(server: Server, client: httpx.AsyncClient) -> None:
    run_id = await submit(client)
    ws = await TransportWS.connect(server.ws_url)
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        async for payload in ws.subscribe(PROGRESS, {"id": run_id}):
            event = payload["data"]["runProgress"]
            events.append(event)
            if event["type"] == "PROGRESS" and event["progress"] > 0.05 and len(events) < 50:
                cancelled = await gql(
                    client, 'mutation($id: ID!) { cancelRun(id: $id) { status cancelRequested } }',
                    {"id": run_id},
                )
                assert cancelled["cancelRun"]["cancelRequested"] is True
                events.append({"type": "CANCEL-SENT"})
    await ws.close()
    assert events[-1]["type"] == "TERMINAL" and events[-1]["status"] == "CANCELLED"
    after_cancel = events[events.index({"type": "CANCEL-SENT"}) + 1:]
    assert len(after_cancel) < 30  # it stopped within a few chunks

    status = (await gql(client, 'query($id: ID!) { run(id: $id) { status } }', {"id": run_id}))
    assert status["run"]["status"] == "CANCELLED"
    body = (await client.post("/graphql", json={
        "query": 'mutation($id: ID!) { cancelRun(id: $id) { status } }', "variables": {"id": run_id},
    })).json()
    assert body["data"]["cancelRun"]["status"] == "CANCELLED"


async def test_websocket_hardening(server: Server) -> None:
    # Only graphql-transport-ws: the legacy protocol is refused.
    legacy = await websockets.connect(server.ws_url, subprotocols=["graphql-ws"])  # type: ignore[list-item]
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(legacy.recv(), 5)
    assert legacy.close_code == 4406

    # No connection_init in time: closed by the server.
    idle = await websockets.connect(server.ws_url, subprotocols=[PROTOCOL])  # type: ignore[list-item]
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(idle.recv(), 10)
    assert idle.close_code == 4408

    # Browsers from other origins are turned away at the handshake; listed ones are not.
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(
            server.ws_url, subprotocols=[PROTOCOL], origin="https://evil.example"  # type: ignore[list-item, arg-type]
        )
    assert refused.value.response.status_code == 403
    ok = await TransportWS.connect(server.ws_url, origin="https://dash.example")
    await ok.close()


async def test_http_surface(server: Server, client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["mode"] == "embedded" and health.json()["database"] == "ok"
    body = (await client.post("/graphql", json={"query": "{ strategies { nme } }"})).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await client.get("/graphql", params={"query": "{ strategies { name } }"})).status_code == 400
    big = await client.post("/graphql", content=b"x" * 2_000_000, headers={"content-type": "application/json"})
    assert big.status_code == 413
    assert "x-request-id" in big.headers


def test_sample_data_stays_in_the_data_dir(server: Server) -> None:
    data_dir = Path(server.env["BT_DATA_DIR"])
    assert (data_dir / "backtester.sqlite3").is_file()
    shipped = Path(__file__).resolve().parents[2] / "data"
    assert not any(p.suffix in {".sqlite3", ".parquet"} for p in shipped.rglob("*"))


async def test_shutdown_with_a_live_subscription_is_clean(tmp_path: Path) -> None:
    """SIGTERM while a run streams: the socket closes, the run is handed back, no traceback."""
    env = {"BT_DATA_DIR": str(tmp_path / "var"), "BT_TEST_FAULTS": SLOW_RUNS, "BT_LOG_LEVEL": "info"}
    srv = Server(env, tmp_path / "server.log").start()
    try:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
            run_id = await submit(client)
        ws = await TransportWS.connect(srv.ws_url)
        stream = ws.subscribe(PROGRESS, {"id": run_id})
        async with asyncio.timeout(30):
            async for payload in stream:
                if payload["data"]["runProgress"]["type"] == "PROGRESS":
                    break
        status = await asyncio.to_thread(srv.stop, 20)
        # Events sent just before SIGTERM may still be buffered: drain them until the close.
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.ws.recv()
        await stream.aclose()  # type: ignore[attr-defined]
    finally:
        srv.stop()
    assert status in (0, -15), srv.log()
    log = srv.log()
    assert "backtester stack closed" in log and "Traceback" not in log, log

    # The next start finds the run handed back (QUEUED) and finishes it at once.
    again = Server(env, tmp_path / "server2.log").start()
    try:
        async with httpx.AsyncClient(base_url=again.url, timeout=30) as client:
            async with asyncio.timeout(20):
                while (run := (await gql(client, 'query($id: ID!) { run(id: $id) { status attempt } }',
                                         {"id": run_id}))["run"])["status"] != "SUCCEEDED":
                    await asyncio.sleep(0.2)
        assert run["attempt"] == 1  # handing back on shutdown does not use up an attempt
    finally:
        again.stop()
