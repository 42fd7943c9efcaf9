"""The strategy catalog through the API: sync at start-up and on demand, validate, edit, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strategies import registry
from tests.graph.conftest import Api, _open, make_settings, sample_id
from tests.strategies.user_files import BROKEN, GOOD, write

FIELDS = """
  name description module className path builtin codeHash validationStatus validationError
  validationSteps { name ok message } lastValidated runnable usageCount bestMetrics tags
  defaultParams params { name default } deleted
"""
SYNC = "mutation { syncStrategies { strategies { name validationStatus } problems { path step message } } }"
RUN = """
mutation($input: BacktestInput!) { runBacktest(input: $input, timeoutSeconds: 120) { id status params error } }
"""
VALIDATE = """
mutation($name: String, $path: String, $dataset: ID) {
  validateStrategy(name: $name, path: $path, datasetId: $dataset) {
    ok error steps { name ok message } strategy { name validationStatus lastValidated }
  }
}
"""
UPDATE = """
mutation($name: String!, $input: UpdateStrategyInput!) {
  updateStrategy(name: $name, input: $input) { name description tags defaultParams }
}
"""


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture
async def user_api(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Api, Path]]:
    """The app with a STRATEGY_PATHS folder holding one good and one leaky strategy."""
    folder = tmp_path / "strategies"
    write(folder, "momentum.py", GOOD)
    write(folder, "peeks_ahead.py", BROKEN["peeks_ahead.py"][0])
    async for api in _open(make_settings(db_url, tmp_path / "var", strategy_paths=[folder])):
        yield api, folder


async def _strategy(api: Api, name: str) -> dict:
    query = f"query($n: String!) {{ strategy(name: $n) {{ {FIELDS} }} }}"
    return (await api.data(query, {"n": name}))["strategy"]  # type: ignore[no-any-return]


async def test_startup_sync_lists_and_filters(user_api: tuple[Api, Path]) -> None:
    api, folder = user_api
    rows = (await api.data(f"{{ strategies {{ {FIELDS} }} }}"))["strategies"]
    by_name = {r["name"]: r for r in rows}
    ema = by_name["ema_crossover"]
    assert ema["builtin"] and ema["path"] is None and ema["validationStatus"] == "VALID"
    assert [s["name"] for s in ema["validationSteps"]] == [
        "import", "instantiate", "signals", "values", "look_ahead",
    ]
    assert ema["runnable"] and len(ema["codeHash"]) == 64 and ema["lastValidated"]
    user = by_name["user_momentum"]
    assert user["path"] == str((folder / "momentum.py").resolve()) and not user["builtin"]
    assert user["className"] == "UserMomentum" and user["validationStatus"] == "VALID"
    assert user["defaultParams"] == {"lookback": 3} and user["usageCount"] == 0
    leaky = by_name["peeks_ahead"]
    assert leaky["validationStatus"] == "INVALID" and not leaky["runnable"]
    assert leaky["validationError"].startswith("look_ahead: signals computed on the first")

    invalid = await api.data('{ strategies(status: INVALID) { name } }')
    assert invalid["strategies"] == [{"name": "peeks_ahead"}]
    found = await api.data('{ strategies(search: "usermomentum") { name } }')
    assert found["strategies"] == [{"name": "user_momentum"}]
    stats = (await api.data(
        "{ strategyStats { total user builtin deleted totalRuns byStatus { status count } "
        "mostUsed { name usageCount } } }"
    ))["strategyStats"]
    assert stats["user"] == 2 and stats["total"] == stats["builtin"] + 2
    assert {"status": "INVALID", "count": 1} in stats["byStatus"] and stats["mostUsed"] == []

    err = await api.error('{ strategy(name: "user_momentun") { name } }')
    assert err["extensions"]["code"] == "NOT_FOUND" and "did you mean 'user_momentum'" in err["message"]


async def test_new_file_appears_after_sync_and_runs(user_api: tuple[Api, Path]) -> None:
    api, folder = user_api
    write(folder, "fresh.py", GOOD.replace("user_momentum", "fresh_momentum").replace("UserMomentum", "Fresh"))
    write(folder, "syntax_error.py", BROKEN["syntax_error.py"][0])
    synced = (await api.data(SYNC))["syncStrategies"]
    statuses = {s["name"]: s["validationStatus"] for s in synced["strategies"]}
    assert statuses["fresh_momentum"] == "VALID" and statuses["syntax_error"] == "INVALID"
    (problem,) = synced["problems"]
    assert problem["step"] == "import" and problem["path"].endswith("syntax_error.py")
    assert problem["message"].startswith("SyntaxError")

    dataset = await sample_id(api)
    run = (await api.data(RUN, {"input": {"strategy": "fresh_momentum", "datasetId": dataset}}))
    assert run["runBacktest"]["status"] == "SUCCEEDED", run
    fresh = await _strategy(api, "fresh_momentum")
    assert fresh["usageCount"] == 1 and fresh["bestMetrics"]["sharpe"]["run_id"] == run["runBacktest"]["id"]

    err = await api.error(RUN, {"input": {"strategy": "peeks_ahead", "datasetId": dataset}})
    assert err["extensions"] == {"code": "BAD_USER_INPUT", "field": "strategy"}
    assert "failed validation at step 'look_ahead'" in err["message"]
    err = await api.error(RUN, {"input": {"strategy": "syntax_error", "datasetId": dataset}})
    assert "failed validation at step 'import'" in err["message"] and "SyntaxError" in err["message"]


async def test_validate_update_delete(user_api: tuple[Api, Path]) -> None:
    api, folder = user_api
    dataset = await sample_id(api, "1d")
    (report,) = (await api.data(VALIDATE, {"name": "user_momentum", "dataset": dataset}))["validateStrategy"]
    assert report["ok"] and report["error"] is None and len(report["steps"]) == 5
    assert report["strategy"]["validationStatus"] == "VALID"
    (leaky,) = (await api.data(VALIDATE, {"path": str(folder / "peeks_ahead.py")}))["validateStrategy"]
    assert not leaky["ok"] and leaky["steps"][-1]["name"] == "look_ahead" and not leaky["steps"][-1]["ok"]
    for variables, field in (({}, "name"), ({"name": "x", "path": "y"}, "name"), ({"path": "/etc/passwd.py"}, "path")):
        err = await api.error(VALIDATE, variables)
        assert err["extensions"]["code"] == "BAD_USER_INPUT" and err["extensions"]["field"] == field
    err = await api.error(VALIDATE, {"name": "nope"})
    assert err["extensions"]["code"] == "NOT_FOUND"

    updated = (await api.data(UPDATE, {"name": "user_momentum", "input": {
        "description": "My momentum", "tags": ["trend", "mine"], "defaultParams": {"lookback": 8},
    }}))["updateStrategy"]
    assert updated == {
        "name": "user_momentum", "description": "My momentum", "tags": ["mine", "trend"],
        "defaultParams": {"lookback": 8},
    }
    only_tags = (await api.data(UPDATE, {"name": "user_momentum", "input": {"tags": []}}))["updateStrategy"]
    assert only_tags["description"] == "My momentum" and only_tags["tags"] == []
    err = await api.error(UPDATE, {"name": "user_momentum", "input": {"defaultParams": {"lookbak": 2}}})
    assert err["extensions"] == {"code": "BAD_USER_INPUT", "field": "default_params.lookbak"}
    assert "did you mean 'lookback'" in err["message"]
    run = await api.data(RUN, {"input": {"strategy": "user_momentum", "datasetId": await sample_id(api)}})
    assert run["runBacktest"]["params"] == {"lookback": 8}

    deleted = await api.data('mutation { deleteStrategy(name: "user_momentum") { name deleted } }')
    assert deleted["deleteStrategy"] == {"name": "user_momentum", "deleted": True}
    names = [s["name"] for s in (await api.data("{ strategies { name } }"))["strategies"]]
    assert "user_momentum" not in names
    err = await api.error('{ strategy(name: "user_momentum") { name } }')
    assert err["extensions"]["code"] == "NOT_FOUND"
    err = await api.error('mutation { deleteStrategy(name: "user_momentum") { name } }')
    assert err["extensions"]["code"] == "NOT_FOUND"
    err = await api.error(RUN, {"input": {"strategy": "user_momentum", "datasetId": await sample_id(api)}})
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and "was deleted" in err["message"]
    # The run made before the delete keeps its record.
    runs = await api.data('{ runs(filter: {strategy: "user_momentum"}) { totalCount } }')
    assert runs["runs"]["totalCount"] == 1
