"""A team over real HTTP and websockets: `backtester serve` with users and tokens made by
`backtester user add` / `backtester token create`.

Every operation of the schema that names an object by id is tried by bob with alice's
ids (generated from the live schema, `tests.e2e.probes`) and must answer NOT_FOUND or
FORBIDDEN, without data, exactly as for an id that does not exist. Also: revoking a
token ends its open subscription within 2 s; a burst is RATE_LIMITED and recovers;
/metrics scraped during a run shows its progress and the request counts; with no users
the server answers local clients without login, and refuses to listen on 0.0.0.0.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import build_client_schema, get_introspection_query
from websockets.exceptions import ConnectionClosed

from tests.e2e.live import ROOT, Server, TransportWS, base_env, free_port
from tests.e2e.probes import IdRef, normalized, probes
from tests.graph.test_upload import CSRF, UPLOAD, nse_csv

pytestmark = pytest.mark.slow

SLOW_RUNS = json.dumps({"chunk_bars": 500, "chunk_delay_s": 0.06})
RUN = """mutation($input: BacktestInput!) { runBacktest(input: $input, timeoutSeconds: 120) {
  id status } }"""
SUBMIT = "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id } }"
START_OPTIMIZATION = """mutation($input: OptimizationInput!) {
  startOptimization(input: $input) { id } }"""
WINDOW_S = 6


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**base_env(), **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("team")
    env = {
        "BT_DATA_DIR": str(tmp / "var"), "BT_TEST_FAULTS": SLOW_RUNS, "BT_LOG_LEVEL": "info",
        "BT_RATE_LIMIT_REQUESTS": "150", "BT_RATE_LIMIT_RUNS": "30",
        "BT_RATE_LIMIT_WINDOW_SECONDS": str(WINDOW_S), "BT_LOG_FORMAT": "json",
    }
    cli(env, "user", "add", "alice")
    cli(env, "user", "add", "bob")
    cli(env, "user", "add", "root", "--admin")
    tokens = {
        "alice": cli(env, "token", "create", "--user", "alice", "--scope", "run"),
        "alice_ws": cli(env, "token", "create", "--user", "alice", "--scope", "read"),
        "bob": cli(env, "token", "create", "--user", "bob", "--scope", "run"),
        "burst": cli(env, "token", "create", "--user", "bob", "--scope", "read"),
        "root": cli(env, "token", "create", "--user", "root", "--scope", "admin", "--expires", "1d"),
    }
    server = Server(env, tmp / "server.log").start()
    yield server, tokens
    server.stop()
    log = server.log()
    assert "Traceback" not in log, log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(rec.get("request_id") for rec in lines), "JSON logs carry request ids"
    assert any(rec.get("run_id") for rec in lines), "JSON logs carry run ids"


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def post(client: httpx.AsyncClient, token: str | None, query: str,
               variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                                 headers=auth(token) if token else {})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def subscribe_once(server: Server, token: str, query: str, variables: dict[str, Any]) -> dict:  # type: ignore[type-arg]
    """A subscription's outcome as one `{data, errors}` body (its first result or its error)."""
    ws = await TransportWS.connect(server.ws_url, payload={"Authorization": f"Bearer {token}"})
    try:
        await ws.ws.send(json.dumps({"id": "p", "type": "subscribe",
                                     "payload": {"query": query, "variables": variables}}))
        async with asyncio.timeout(15):
            while True:
                msg = json.loads(await ws.ws.recv())
                if msg.get("id") != "p":
                    continue
                if msg["type"] == "error":
                    return {"data": None, "errors": msg["payload"]}
                if msg["type"] == "next":
                    return msg["payload"]  # type: ignore[no-any-return]
                return {"data": None, "errors": []}  # completed without a result
    finally:
        await ws.close()


async def alices_objects(client: httpx.AsyncClient, tokens: dict[str, str]) -> dict[str, str]:
    operations = {"query": UPLOAD, "variables": {"file": None, "timezone": "Asia/Kolkata"}}
    form = {"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})}
    files = {"0": ("alice.csv", nse_csv(2, seed=11), "text/csv")}
    upload = await client.post("/graphql", data=form, files=files,
                               headers={**CSRF, **auth(tokens["alice"])})
    dataset = upload.json()["data"]["uploadDataset"]["dataset"]["id"]
    done = await post(client, tokens["alice"], RUN,
                      {"input": {"strategy": "ema_crossover", "datasetId": dataset}})
    assert done["data"]["runBacktest"]["status"] == "SUCCEEDED", done
    mine = await post(client, tokens["alice"], "{ apiTokens { id } }")
    out = {"run": done["data"]["runBacktest"]["id"], "dataset": dataset,
           "token": mine["data"]["apiTokens"][0]["id"]}
    started = await post(client, tokens["alice"], START_OPTIMIZATION, {"input": {
        "strategy": "ema_crossover", "datasetId": dataset,
        "space": {"fast": "4:12:4", "slow": "20:40:10"}}})
    out["optimization"] = started["data"]["startOptimization"]["id"]
    return out


async def test_every_operation_with_another_users_ids(team: tuple[Server, dict[str, str]]) -> None:
    server, tokens = team
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        theirs = await alices_objects(client, tokens)
        unknown = {"run": str(uuid.uuid4()), "dataset": "987654321", "token": "0123456789ab",
                   "optimization": str(uuid.uuid4())}
        raw = await post(client, tokens["bob"], get_introspection_query())
        generated = probes(build_client_schema(raw["data"]))
        assert {p.field for p in generated} >= {
            "run", "dataset", "compareRuns", "submitBacktest", "runBacktest", "cancelRun",
            "deleteDataset", "shareRun", "shareDataset", "revokeApiToken", "validateStrategy",
            "runProgress",
        }
        missing = {ref for p in generated for ref in _kinds(p)} - theirs.keys()
        assert not missing, f"give alice an object of each kind probed: {missing}"
        for probe in generated:
            answers = []
            for ids in (theirs, unknown):
                variables = probe.variables(ids)
                if probe.operation == "subscription":
                    body = await subscribe_once(server, tokens["bob"], probe.query, variables)
                else:
                    body = await post(client, tokens["bob"], probe.query, variables)
                answers.append(body)
            body = answers[0]
            codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
            assert codes and set(codes) <= {"NOT_FOUND", "FORBIDDEN"}, (probe.field, body)
            assert not (body.get("data") or {}).get(probe.field), (probe.field, body)
            if codes == ["NOT_FOUND"]:  # indistinguishable from an id that does not exist
                assert normalized(answers[0], theirs) == normalized(answers[1], unknown), probe.field
        # Nothing happened to alice's objects, and the admin sees them.
        run = await post(client, tokens["root"], "query($id: ID!) { run(id: $id) { status } }",
                         {"id": theirs["run"]})
        assert run["data"]["run"]["status"] == "SUCCEEDED"
        report = await client.get(f"/runs/{theirs['run']}/report.html", headers=auth(tokens["bob"]))
        download = await client.get(f"/datasets/{theirs['dataset']}/download",
                                    headers=auth(tokens["bob"]))
        assert (report.status_code, download.status_code) == (404, 404)
        assert (await client.get(f"/datasets/{theirs['dataset']}/download",
                                 headers=auth(tokens["alice"]))).status_code == 200


def _kinds(probe: Any) -> set[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, IdRef):
            found.add(value.kind)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk([value for _, _, value in probe.args])
    return found


async def test_revoking_a_token_closes_its_subscription(team: tuple[Server, dict[str, str]]) -> None:
    server, tokens = team
    token_id = tokens["alice_ws"].split("_")[1]
    ws = await TransportWS.connect(server.ws_url, payload={"Authorization": f"Bearer {tokens['alice_ws']}"})
    await ws.ws.send(json.dumps({"id": "e", "type": "subscribe",
                                 "payload": {"query": "subscription { runEvents { runId } }"}}))
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        revoke = "mutation($id: ID!) { revokeApiToken(id: $id) { active } }"
        assert not (await post(client, tokens["root"], revoke, {"id": token_id}))["data"][
            "revokeApiToken"]["active"]
        revoked_at = time.monotonic()
        async with asyncio.timeout(5):
            while True:
                msg = json.loads(await ws.ws.recv())
                if msg.get("id") == "e" and msg["type"] in ("next", "error", "complete"):
                    if msg["type"] == "next" and not msg["payload"].get("errors"):
                        continue
                    break
        assert time.monotonic() - revoked_at < 2.0
        if msg["type"] == "next":
            assert msg["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        again = await post(client, tokens["alice_ws"], "{ me { name } }")
        assert again["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await ws.close()
    with pytest.raises(ConnectionClosed, match=r"4403"):  # a new connection is refused
        await TransportWS.connect(server.ws_url, payload={"Authorization": f"Bearer {tokens['alice_ws']}"})


async def test_a_burst_is_rate_limited_and_recovers(team: tuple[Server, dict[str, str]]) -> None:
    server, tokens = team
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        sem = asyncio.Semaphore(16)

        async def one() -> dict[str, Any]:
            async with sem:
                return await post(client, tokens["burst"], "{ me { name } }")

        # Over twice the limit: cut even if the burst straddles two windows.
        replies = await asyncio.gather(*(one() for _ in range(320)))
        limited = [r for r in replies if r.get("errors")]
        assert limited, "a burst over the limit must be cut"
        codes = {r["errors"][0]["extensions"]["code"] for r in limited}
        assert codes == {"RATE_LIMITED"}
        wait = max(r["errors"][0]["extensions"]["retryAfter"] for r in limited)
        assert 1 <= wait <= WINDOW_S
        assert "errors" not in await post(client, tokens["bob"], "{ me { name } }")  # per token
        await asyncio.sleep(wait + 0.2)
        assert (await post(client, tokens["burst"], "{ me { name } }"))["data"]["me"]["name"] == "bob"


async def test_metrics_show_a_run_and_the_requests(team: tuple[Server, dict[str, str]]) -> None:
    server, tokens = team
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        samples = await post(client, tokens["bob"], "{ datasets { nodes { id timeframe } } }")
        dataset = next(d["id"] for d in samples["data"]["datasets"]["nodes"] if d["timeframe"] == "1min")
        run_id = (await post(client, tokens["bob"], SUBMIT, {"input": {
            "strategy": "ema_crossover", "datasetId": dataset}}))["data"]["submitBacktest"]["id"]
        seen: list[float] = []
        async with asyncio.timeout(60):
            while True:
                text = (await client.get("/metrics")).text
                for line in text.splitlines():
                    if line.startswith("bt_run_progress{") and f'run_id="{run_id}"' in line:
                        seen.append(float(line.rsplit(" ", 1)[1]))
                status = (await post(client, tokens["bob"], 'query($id: ID!) { run(id: $id) { status } }',
                                     {"id": run_id}))["data"]["run"]["status"]
                if status == "SUCCEEDED":
                    break
                await asyncio.sleep(0.1)
        assert seen and any(0 < p < 1 for p in seen), seen
        assert seen == sorted(seen)
        text = (await client.get("/metrics")).text
        assert 'bt_graphql_operations_total{operation="query:run",outcome="ok"}' in text
        assert 'bt_graphql_operations_total{operation="mutation:submitBacktest",outcome="ok"}' in text
        assert 'bt_runs{status="SUCCEEDED"}' in text and "bt_engine_bars_per_second" in text
        assert 'bt_http_request_duration_seconds_bucket{le="0.005",route="/graphql"}' in text


async def test_without_users_local_clients_need_no_token_and_open_binds_are_refused(
    tmp_path: Path,
) -> None:
    env = {"BT_DATA_DIR": str(tmp_path / "var")}
    refused = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, env={**base_env(), **env}, timeout=120,
    )
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to serve on 0.0.0.0"), lines
    assert "backtester token create" in lines[0]
    server = Server(env, tmp_path / "server.log").start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            me = await post(client, None, "{ me { name local } }")
            assert me["data"]["me"] == {"name": "local", "local": True}
        ws = await TransportWS.connect(server.ws_url)
        await ws.close()
    finally:
        server.stop()
