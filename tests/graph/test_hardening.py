"""HTTP hardening of /graphql: request limits, GET, body cap, CSRF, CORS, masked errors."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.asgi import create_app
from tests.graph.conftest import Api, _open, make_settings


@pytest.fixture
async def strict_api(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_settings(
        sqlite_url, tmp_path / "var",
        max_query_depth=4, max_aliases=3, max_tokens=120, max_body_bytes=4096,
        allowed_origins="https://app.example, https://ops.example",
    )
    async for a in _open(settings):
        yield a


async def test_depth_alias_and_token_limits(strict_api: Api) -> None:
    api = strict_api
    ok = await api.data("{ runs { edges { node { id } } } }")  # depth 4
    assert ok["runs"]["edges"] == []

    err = await api.error("{ runs { edges { node { trades { edges { node { index } } } } } } }")
    assert "exceeds maximum operation depth of 4" in err["message"]
    assert err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    err = await api.error("{ a: health { ok } b: health { ok } c: health { ok } d: health { ok } }")
    assert "aliases found" in err["message"] or "alias" in err["message"].lower()

    many = "{ " + " ".join("strategies { name }" for _ in range(40)) + " }"
    err = await api.error(many)
    assert "token" in err["message"].lower()
    assert err["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_graphql_errors_carry_codes(sqlite_api: Api) -> None:
    err = await sqlite_api.error("{ strategies { name ")
    assert err["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    err = await sqlite_api.error("{ strategies { nme } }")
    assert err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "Did you mean 'name'?" in err["message"]
    err = await sqlite_api.error("query($id: ID!) { run(id: $id) { id } }", {})
    assert err["extensions"]["code"] == "BAD_USER_INPUT"


async def test_queries_over_get_are_refused(sqlite_api: Api) -> None:
    response = await sqlite_api.client.get("/graphql", params={"query": "{ strategies { name } }"})
    assert response.status_code == 400
    assert "queries are not allowed when using GET" in response.text
    response = await sqlite_api.client.get(
        "/graphql", params={"query": 'mutation { cancelRun(id: "x") { id } }'}
    )
    assert response.status_code == 400
    assert "mutations are not allowed when using GET" in response.text
    page = await sqlite_api.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()  # development only


async def test_body_cap_answers_413_before_parsing(sqlite_api: Api) -> None:
    big = {"query": "{ strategies { name } }", "variables": {"pad": "x" * 5000}}
    response = await sqlite_api.client.post("/graphql", json=big)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted as it streams
        yield b'{"query": "{ strategies { name } }", "variables": {"pad": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}}'

    response = await sqlite_api.client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413

    small = await sqlite_api.client.post("/graphql", json={"query": "{ strategies { name } }"})
    assert small.status_code == 200


async def test_multipart_needs_the_csrf_preflight_header(sqlite_api: Api) -> None:
    form = {
        "operations": json.dumps({"query": "{ strategies { name } }", "variables": {}}),
        "map": "{}",
    }
    files = {"0": ("a.csv", b"timestamp,open\n", "text/csv")}
    refused = await sqlite_api.client.post("/graphql", data=form, files=files)
    assert refused.status_code == 400
    assert "Apollo-Require-Preflight" in refused.text

    allowed = await sqlite_api.client.post(
        "/graphql", data=form, files=files, headers={"apollo-require-preflight": "true"}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["data"]["strategies"]

    plain = await sqlite_api.client.post(
        "/graphql", content=b"query={strategies{name}}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert plain.status_code == 400


async def test_cors_allows_only_configured_origins(strict_api: Api) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        }

    ok = await strict_api.client.options("/graphql", headers=preflight("https://ops.example"))
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://ops.example"
    bad = await strict_api.client.options("/graphql", headers=preflight("https://evil.example"))
    assert bad.status_code == 400
    assert "access-control-allow-origin" not in bad.headers


async def test_unexpected_errors_are_masked_and_logged(
    sqlite_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # A real fault: the datasets table disappears under the running service.
    async with sqlite_api.stack.db.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE datasets RENAME TO datasets_gone")
    with caplog.at_level(logging.ERROR, logger="backtester.graph"):
        response = await sqlite_api.client.post("/graphql", json={"query": "{ datasets { nodes { id } } }"})
    assert response.status_code == 200
    [err] = response.json()["errors"]
    request_id = response.headers["x-request-id"]
    assert err["message"] == f"internal error; request id {request_id}"
    assert err["extensions"] == {"code": "INTERNAL"}
    assert "datasets" not in err["message"] and "sqlite" not in response.text.lower()
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback went to the log


async def test_health_is_503_until_the_stack_is_up(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(sqlite_url, tmp_path / "var"))
    transport = httpx.ASGITransport(app=app)  # no lifespan: nothing started
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/health")
        assert response.status_code == 503 and response.json()["ok"] is False
        response = await client.post("/graphql", json={"query": "{ strategies { name } }"})
        assert response.status_code == 503


async def test_no_graphiql_in_production(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(sqlite_url, tmp_path / "var", environment="production")
    async for api in _open(settings):
        page = await api.client.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404


async def test_graphql_response_json_media_type(sqlite_api: Api) -> None:
    accept = {"accept": "application/graphql-response+json, application/json;q=0.9"}
    post = sqlite_api.client.post
    bad = await post("/graphql", json={"query": "{ strategies { nme } }"}, headers=accept)
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/graphql-response+json")
    assert "data" not in bad.json() and bad.json()["errors"]

    good = await post("/graphql", json={"query": "{ strategies { name } }"}, headers=accept)
    assert good.status_code == 200 and good.json()["data"]["strategies"]
    assert good.headers["content-type"].startswith("application/graphql-response+json")

    # A field error during execution still has a `data` entry: 200.
    missing = await post("/graphql", json={"query": '{ dataset(id: "999") { id } }'}, headers=accept)
    assert missing.status_code == 200 and missing.json()["data"] is None

    legacy = await post("/graphql", json={"query": "{ strategies { nme } }"})
    assert legacy.status_code == 200 and legacy.headers["content-type"] == "application/json"


async def test_repeated_queries_are_validated_once_and_still_limited(
    strict_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing and validation are cached per query text (most of a small query's cost);
    a cached document keeps every limit and error code."""
    import strawberry.schema.schema as strawberry_schema

    calls: list[object] = []
    validate = strawberry_schema.validate

    def counting_validate(*args: object, **kwargs: object) -> object:
        calls.append(args[1])
        return validate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(strawberry_schema, "validate", counting_validate)
    query = "{ runs { edges { node { id status } } } }"
    for _ in range(4):
        assert (await strict_api.data(query))["runs"]["edges"] == []
    assert len(calls) == 1

    deep = "{ runs { edges { node { trades { edges { node { index } } } } } } }"
    for _ in range(3):
        err = await strict_api.error(deep)
        assert "exceeds maximum operation depth of 4" in err["message"]
        assert err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    aliases = "{ a: health { ok } b: health { ok } c: health { ok } d: health { ok } }"
    for _ in range(2):
        assert "alias" in (await strict_api.error(aliases))["message"].lower()
    many = "{ " + " ".join("strategies { name }" for _ in range(40)) + " }"
    for _ in range(2):
        assert (await strict_api.error(many))["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
