"""Ownership at the API: lists, counts, stats, comparisons, sharing, the audit log and
strategy settings, for two users and an admin, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graph.context import Context
from graph.schema import schema
from store.auth import authenticate
from tests.graph.teams import Team, team_app

RUN = """mutation($input: BacktestInput!) { runBacktest(input: $input, timeoutSeconds: 120) {
  id status } }"""
COUNTS = """{
  runs { totalCount nodes { id } }
  datasets { totalCount nodes { id shared } }
  stats { totalRuns byStatus { status count } }
  datasetStats { count }
  analyticsSummary { totalRuns bestRuns { run { id } } datasets { datasetId } byStrategy { total } }
  strategyStats { totalRuns mostUsed { name usageCount } }
  strategy(name: "ema_crossover") { usageCount bestMetrics }
}"""


@pytest.fixture
async def team(db_url: str, tmp_path: Path) -> AsyncIterator[Team]:
    async for t in team_app(db_url, tmp_path / "var"):
        yield t


async def own_dataset(team: Team, who: str) -> str:
    """A private copy of the daily sample for `who` (same bars, its own row)."""
    samples = (await team.data(who, "{ datasets { nodes { id timeframe } } }"))["datasets"]["nodes"]
    daily = next(d["id"] for d in samples if d["timeframe"] == "1d")
    async with team.api.stack.db.session() as s:
        from store.models import DatasetRow

        sample = await s.get(DatasetRow, int(daily))
        assert sample is not None and sample.shared
        me = await authenticate(team.api.stack.db, team.tokens[who])
        copy = DatasetRow(**{c.name: getattr(sample, c.name) for c in DatasetRow.__table__.columns
                             if c.name not in ("id", "owner_id", "shared")},
                          owner_id=me.user_id, shared=False)
        s.add(copy)
    return str(copy.id)


async def test_each_user_sees_their_own_and_the_shared(team: Team) -> None:
    mine = await own_dataset(team, "alice")
    run_id = (await team.data("alice", RUN, {"input": {"strategy": "ema_crossover",
                                                       "datasetId": mine}}))["runBacktest"]["id"]

    alice, bob, root = [await team.data(w, COUNTS) for w in ("alice", "bob", "root")]
    assert alice["runs"]["totalCount"] == 1 and alice["stats"]["totalRuns"] == 1
    assert alice["datasets"]["totalCount"] == 3 and alice["datasetStats"]["count"] == 3
    assert alice["analyticsSummary"]["totalRuns"] == 1
    assert alice["strategy"]["usageCount"] == 1 and alice["strategy"]["bestMetrics"]
    for empty in (bob,):
        assert empty["runs"] == {"totalCount": 0, "nodes": []}
        assert empty["stats"]["totalRuns"] == 0
        assert all(c["count"] == 0 for c in empty["stats"]["byStatus"])
        assert {d["id"] for d in empty["datasets"]["nodes"]} == {
            d["id"] for d in alice["datasets"]["nodes"] if d["shared"]}  # the samples only
        assert empty["datasetStats"]["count"] == 2
        assert empty["analyticsSummary"] == {"totalRuns": 0, "bestRuns": [], "datasets": [],
                                             "byStrategy": []}
        assert empty["strategyStats"] == {"totalRuns": 0, "mostUsed": []}
        assert empty["strategy"] == {"usageCount": 0, "bestMetrics": None}
    assert root["runs"]["totalCount"] == 1 and root["datasets"]["totalCount"] == 3

    # Someone else's id answers exactly like an id that does not exist.
    for query, key, other, unknown in (
        ("query($id: ID!) { run(id: $id) { id } }", "id", run_id, str(uuid.uuid4())),
        ("query($id: ID!) { dataset(id: $id) { id } }", "id", mine, "987654"),
        ("query($id: [ID!]!) { compareRuns(ids: $id) { overlap } }", "id", [run_id],
         [str(uuid.uuid4())]),
    ):
        hidden, missing = [await team.post("bob", query, {key: v}) for v in (other, unknown)]
        flat = str(other if isinstance(other, str) else other[0])
        absent = str(unknown if isinstance(unknown, str) else unknown[0])
        assert hidden["data"] is None and hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert str(hidden).replace(flat, "ID") == str(missing).replace(absent, "ID")
    report = await team.api.client.get(f"/runs/{run_id}/report.html", headers=team.headers("bob"))
    assert report.status_code == 404
    assert (await team.api.client.get(f"/runs/{run_id}/report.html")).status_code == 401
    own = await team.api.client.get(f"/runs/{run_id}/report.html", headers=team.headers("alice"))
    assert own.status_code == 200

    # Shared with the team: bob reads it, cannot cancel or unshare it; the admin can.
    share = "mutation($id: ID!, $s: Boolean!) { shareRun(id: $id, shared: $s) { id shared } }"
    assert await team.code("bob", share, {"id": run_id, "s": True}) == "NOT_FOUND"
    assert (await team.data("alice", share, {"id": run_id, "s": True}))["shareRun"]["shared"]
    assert (await team.data("bob", "query($id: ID!) { run(id: $id) { id shared } }",
                            {"id": run_id}))["run"] == {"id": run_id, "shared": True}
    assert (await team.data("bob", COUNTS))["stats"]["totalRuns"] == 1
    assert await team.code("bob", share, {"id": run_id, "s": False}) == "FORBIDDEN"
    assert await team.code("bob", "mutation($id: ID!) { cancelRun(id: $id) { id } }",
                           {"id": run_id}) == "FORBIDDEN"
    assert (await team.data("bob", "query($id: ID!) { run(id: $id) { dataset { id } } }",
                            {"id": run_id}))["run"]["dataset"] is None  # still alice's alone
    assert not (await team.data("root", share, {"id": run_id, "s": False}))["shareRun"]["shared"]
    assert await team.code("bob", "mutation($id: ID!) { deleteDataset(id: $id, force: true) { id } }",
                           {"id": mine}) == "NOT_FOUND"
    shared_ds = "mutation($id: ID!) { shareDataset(id: $id) { shared } }"
    assert (await team.data("alice", shared_ds, {"id": mine}))["shareDataset"]["shared"]
    assert await team.code("bob", "mutation($id: ID!) { deleteDataset(id: $id, force: true) { id } }",
                           {"id": mine}) == "FORBIDDEN"

    log = (await team.data("root", "{ auditLog { nodes { actor action targetKind targetId } } }"))
    entries = [(e["actor"], e["action"], e["targetId"]) for e in log["auditLog"]["nodes"]]
    assert entries[:4] == [("alice", "dataset.share", mine), ("root", "run.unshare", run_id),
                           ("alice", "run.share", run_id), ("alice", "run.create", run_id)]


async def test_strategy_settings_belong_to_their_first_editor(team: Team) -> None:
    edit = """mutation($n: String!, $d: String) { updateStrategy(name: $n, input: {description: $d})
      { description } }"""
    assert (await team.data("bob", edit, {"n": "rsi_reversion", "d": "bob's"}))["updateStrategy"]
    assert await team.code("alice", edit, {"n": "rsi_reversion", "d": "mine"}) == "FORBIDDEN"
    assert await team.code("alice", 'mutation { deleteStrategy(name: "rsi_reversion") { name } }'
                           ) == "FORBIDDEN"
    assert (await team.data("root", edit, {"n": "rsi_reversion", "d": "ops"}))["updateStrategy"] == {
        "description": "ops"}


async def test_run_events_show_only_visible_runs(team: Team) -> None:
    db = team.api.stack.db
    bob = await authenticate(db, team.tokens["bob"])
    context = Context(services=team.api.stack.services, principal=bob)
    results = await schema.subscribe("subscription { runEvents { runId } }", context_value=context)
    seen: list[str] = []

    async def collect() -> None:
        async with contextlib.aclosing(results):  # type: ignore[type-var]
            async for result in results:  # type: ignore[union-attr]
                assert not result.errors, result.errors
                seen.append(result.data["runEvents"]["runId"])

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.3)
    daily = await own_dataset(team, "alice")
    theirs = (await team.data("alice", RUN, {"input": {"strategy": "ema_crossover",
                                                       "datasetId": daily}}))["runBacktest"]["id"]
    assert await team.code("bob", RUN, {"input": {"strategy": "ema_crossover",
                                                  "datasetId": daily}}) == "NOT_FOUND"
    samples = (await team.data("bob", "{ datasets { nodes { id } } }"))["datasets"]["nodes"]
    mine = (await team.data("bob", RUN, {"input": {"strategy": "ema_crossover",
                                                   "datasetId": samples[-1]["id"]}}))
    await asyncio.sleep(0.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert theirs not in seen and mine["runBacktest"]["id"] in seen
