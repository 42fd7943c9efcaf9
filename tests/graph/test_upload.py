"""Dataset uploads through the real HTTP endpoint (GraphQL multipart) and what follows them.

CSRF header, size caps, rejected files (line and column), duplicates, zip files, the
quality report, filters, preview statistics, download of the original, deletion with
CONFLICT and force, and a backtest on an uploaded dataset; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from store.blobs import DatabaseBlobStore, FileBlobStore
from store.models import BlobRow
from tests.graph.conftest import Api, _open, make_settings

CSRF = {"apollo-require-preflight": "true"}

UPLOAD = """
mutation Upload($file: Upload!, $name: String, $symbol: String, $timezone: String,
                $timeframe: String, $exchange: String) {
  uploadDataset(file: $file, name: $name, symbol: $symbol, timezone: $timezone,
                timeframe: $timeframe, exchange: $exchange) {
    duplicate seconds
    warnings { code line count }
    quality { score }
    dataset {
      id name symbol exchange timezone timeframe rows startMs endMs sourceName rawHash
      originalSize contentHash downloadUrl dialect
      quality { score status checks { name score status details } }
      warnings { code message line column count }
    }
  }
}
"""

COUNT = "{ datasets(first: 100) { totalCount } }"


def nse_csv(days: int = 3, seed: int = 1, *, shuffle: bool = False) -> bytes:
    """`days` NSE sessions of 1-minute bars with naive local times (Asia/Kolkata)."""
    rng = np.random.default_rng(seed)
    n = 375 * days
    close = np.round(20_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, n))), 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.round(np.maximum(open_, close) + rng.random(n) * 4, 2)
    low = np.round(np.minimum(open_, close) - rng.random(n) * 4, 2)
    volume = rng.integers(100, 5000, n)
    lines = []
    for i in range(n):
        day, minute = divmod(i, 375)
        hh, mm = divmod(9 * 60 + 15 + minute, 60)
        ts = f"2024-01-{2 + day:02d} {hh:02d}:{mm:02d}:00"
        lines.append(f"{ts},{open_[i]:.2f},{high[i]:.2f},{low[i]:.2f},{close[i]:.2f},{volume[i]}")
    if shuffle:
        lines[10], lines[11] = lines[11], lines[10]
    return ("Date,Open,High,Low,Close,Volume\n" + "\n".join(lines) + "\n").encode()


BAD = b"""Date,Open,High,Low,Close,Volume
2024-01-02,100.00,100.05,99.85,99.90,1000
2024-01-03,99.90,99.95,99.85,99.90,1037
2024-01-04,99.90,90.00,95.00,100.00,1074
2024-01-05,100.00,100.05,99.90,99.95,1111
"""


async def upload(
    api: Api,
    content: bytes,
    filename: str = "NIFTY_1min.csv",
    *,
    headers: dict[str, str] | None = CSRF,
    **variables: Any,
) -> httpx.Response:
    """POST a GraphQL multipart request (the spec's operations + map + file)."""
    operations = {"query": UPLOAD, "variables": {"file": None, **variables}}
    form = {"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})}
    files = {"0": (filename, content, "application/octet-stream")}
    return await api.client.post("/graphql", data=form, files=files, headers=headers or {})


async def uploaded(api: Api, content: bytes, filename: str = "NIFTY_1min.csv", **kw: Any) -> dict:
    response = await upload(api, content, filename, **kw)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]["uploadDataset"]  # type: ignore[no-any-return]


async def count(api: Api) -> int:
    return int((await api.data(COUNT))["datasets"]["totalCount"])


async def blob_keys(api: Api) -> set[str]:
    """Every key in the blob store: files next to SQLite, rows of `blobs` on PostgreSQL."""
    blobs = api.stack.blobs
    if isinstance(blobs, DatabaseBlobStore):
        async with api.stack.db.session() as s:
            return set((await s.execute(select(BlobRow.key))).scalars())
    assert isinstance(blobs, FileBlobStore)
    return {p.relative_to(blobs.root).as_posix() for p in blobs.root.rglob("*") if p.is_file()}


async def test_upload_query_preview_download_and_duplicates(api: Api) -> None:
    content = nse_csv(shuffle=True)
    before = await count(api)
    done = await uploaded(
        api, content, timezone="Asia/Kolkata", exchange="NSE", timeframe="1m", name="My NIFTY"
    )
    ds = done["dataset"]
    assert done["duplicate"] is False
    assert ds["name"] == "My NIFTY" and ds["symbol"] == "NIFTY" and ds["exchange"] == "NSE"
    assert ds["timeframe"] == "1min" and ds["rows"] == 3 * 375 and ds["timezone"] == "Asia/Kolkata"
    assert ds["sourceName"] == "NIFTY_1min.csv" and ds["originalSize"] == len(content)
    assert ds["downloadUrl"] == f"/datasets/{ds['id']}/download"
    assert [w["code"] for w in ds["warnings"]] == ["UNSORTED"]
    assert ds["warnings"][0]["line"] and done["warnings"][0]["code"] == "UNSORTED"
    quality = ds["quality"]
    assert 0 <= quality["score"] <= 100 and quality["score"] == done["quality"]["score"]
    assert {c["name"] for c in quality["checks"]} >= {"timestamp_gaps", "ohlc_consistency"}
    assert all(c["status"] in {"pass", "warn", "fail"} and c["details"] for c in quality["checks"])
    assert await count(api) == before + 1
    keys = await blob_keys(api)  # Parquet by bars hash, the original by the file's sha256
    assert {f"datasets/{ds['contentHash']}.parquet", f"originals/{ds['rawHash']}"} <= keys

    # The same file again, and the same bars in a gzip: recognised, not stored twice.
    again = await uploaded(api, content, timezone="Asia/Kolkata", name="other name")
    assert again["duplicate"] is True and again["dataset"]["id"] == ds["id"]
    assert again["dataset"]["name"] == "My NIFTY"
    zipped = await uploaded(api, gzip.compress(content), "nifty.csv.gz", timezone="Asia/Kolkata")
    assert zipped["duplicate"] is True and zipped["dataset"]["id"] == ds["id"]
    assert await count(api) == before + 1 and await blob_keys(api) == keys

    one = (
        await api.data(
            """query($id: ID!) { dataset(id: $id) {
             quality { score checks { name score status details } }
             warnings { code }
             preview(rows: 3) {
               rows { time timeMs open high low close volume }
               stats { rows start end tradingDays priceLow priceHigh firstClose lastClose
                       averageVolume zeroVolumeBars
                       returns { count meanPct stdPct minPct maxPct annualizedVolatilityPct } }
             } } }""",
            {"id": ds["id"]},
        )
    )["dataset"]
    preview = one["preview"]
    assert len(preview["rows"]) == 3 and preview["rows"][0]["timeMs"] == ds["startMs"]
    assert preview["rows"][0]["time"].startswith("2024-01-02T03:45:00")  # 09:15 IST in UTC
    stats = preview["stats"]
    assert stats["rows"] == 3 * 375 and stats["tradingDays"] == 3
    assert stats["priceLow"] <= stats["firstClose"] <= stats["priceHigh"]
    assert 100 <= stats["averageVolume"] <= 5000 and stats["zeroVolumeBars"] == 0
    assert stats["returns"]["count"] == 3 * 375 - 1 and stats["returns"]["stdPct"] > 0
    assert stats["returns"]["annualizedVolatilityPct"] > stats["returns"]["stdPct"]

    download = await api.client.get(ds["downloadUrl"])
    assert download.status_code == 200 and download.content == content
    assert 'filename="NIFTY_1min.csv"' in download.headers["content-disposition"]
    assert download.headers["content-type"].startswith("text/csv")


async def test_filters_pages_and_stats(api: Api) -> None:
    await uploaded(api, nse_csv(seed=2), "AAA_1min.csv", timezone="Asia/Kolkata")
    await uploaded(api, nse_csv(seed=3), "BBB_1min.csv", timezone="Asia/Kolkata")
    listing = """query($first: Int, $after: String, $symbol: String, $tf: String, $min: Int) {
      datasets(first: $first, after: $after, symbol: $symbol, timeframe: $tf, minScore: $min) {
        totalCount pageInfo { hasNextPage endCursor } nodes { id symbol timeframe quality { score } }
      } }"""
    only = (await api.data(listing, {"symbol": "AAA"}))["datasets"]
    assert [d["symbol"] for d in only["nodes"]] == ["AAA"] and only["totalCount"] == 1
    minutes = (await api.data(listing, {"tf": "1m"}))["datasets"]["nodes"]
    assert {d["symbol"] for d in minutes} >= {"AAA", "BBB", "NIFTY-SYNTH"}  # `1m` = `1min`
    assert {d["timeframe"] for d in minutes} <= {"1m", "1min"}
    scored = (await api.data(listing, {"min": 1}))["datasets"]["nodes"]
    assert all(d["quality"]["score"] >= 1 for d in scored) and len(scored) >= 2
    none = (await api.data(listing, {"min": 100, "symbol": "AAA"}))["datasets"]
    assert none["totalCount"] in (0, 1)  # a perfect score is possible but not promised

    page = (await api.data(listing, {"first": 1}))["datasets"]
    assert page["pageInfo"]["hasNextPage"] and len(page["nodes"]) == 1
    nxt = await api.data(listing, {"first": 1, "after": page["pageInfo"]["endCursor"]})
    assert nxt["datasets"]["nodes"][0]["id"] != page["nodes"][0]["id"]

    err = await api.error(listing, {"min": 101})
    assert (
        err["extensions"]["code"] == "BAD_USER_INPUT" and err["extensions"]["field"] == "minScore"
    )
    err = await api.error(listing, {"tf": "fortnightly"})
    assert (
        err["extensions"]["code"] == "BAD_USER_INPUT" and err["extensions"]["field"] == "timeframe"
    )

    stats = (
        await api.data(
            "{ datasetStats { count totalRows symbols averageQualityScore scored "
            "byTimeframe { timeframe count rows } } }"
        )
    )["datasetStats"]
    assert stats["count"] == await count(api) and stats["scored"] >= 2
    by_tf = {g["timeframe"]: g for g in stats["byTimeframe"]}
    assert "1m" not in by_tf and by_tf["1min"]["count"] >= 3  # legacy `1m` rows counted as `1min`
    assert stats["totalRows"] == sum(g["rows"] for g in stats["byTimeframe"])
    assert 0 < stats["averageQualityScore"] <= 100


async def test_rejected_files_name_line_and_column_and_store_nothing(api: Api) -> None:
    before, keys = await count(api), await blob_keys(api)
    response = await upload(api, BAD, "prices.csv")
    assert response.status_code == 200
    [err] = response.json()["errors"]
    assert err["message"].startswith("line 4, column 'High': ")
    assert err["extensions"] == {
        "code": "BAD_USER_INPUT",
        "ingestCode": "OHLC_INCONSISTENT",
        "line": 4,
        "column": "High",
    }
    response = await upload(api, b"", "empty.csv")
    assert response.json()["errors"][0]["extensions"]["ingestCode"] == "EMPTY_FILE"

    bad_meta = await upload(api, nse_csv(), timeframe="1d", timezone="Asia/Kolkata")
    [err] = bad_meta.json()["errors"]
    assert err["extensions"] == {"code": "BAD_USER_INPUT", "field": "timeframe"}
    assert "1min apart" in err["message"]
    bad_tz = await upload(api, nse_csv(), timezone="Mars/Olympus")
    assert bad_tz.json()["errors"][0]["extensions"]["field"] == "timezone"
    assert await count(api) == before and await blob_keys(api) == keys


async def test_multipart_needs_the_csrf_header(sqlite_api: Api) -> None:
    before = await count(sqlite_api)
    refused = await upload(sqlite_api, nse_csv(), headers={})
    assert refused.status_code == 400 and "Apollo-Require-Preflight" in refused.text
    assert await count(sqlite_api) == before
    accepted = await upload(sqlite_api, nse_csv(), headers={"graphql-preflight": "1"})
    assert accepted.status_code == 200 and "errors" not in accepted.json()


@pytest.fixture
async def capped_api(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_settings(
        sqlite_url, tmp_path / "var", max_upload_bytes=64 * 1024, max_body_bytes=8 * 1024
    )
    async for a in _open(settings):
        yield a


async def test_uploads_over_the_size_cap_are_refused(capped_api: Api) -> None:
    api = capped_api
    before, keys = await count(api), await blob_keys(api)
    content = nse_csv(days=4)[: 66 * 1024].rsplit(b"\n", 1)[0] + b"\n"
    assert 64 * 1024 < len(content) < 72 * 1024 - 1024
    response = await upload(api, content)  # body within the request cap: the service refuses
    assert response.status_code == 200
    [err] = response.json()["errors"]
    assert err["extensions"]["code"] == "BAD_USER_INPUT"
    assert err["extensions"]["ingestCode"] == "TOO_LARGE"
    assert err["extensions"]["maxBytes"] == 64 * 1024 and "65536 bytes" in err["message"]

    huge = await upload(api, nse_csv(days=4))  # body over cap + 8 KiB: 413 before parsing
    assert huge.status_code == 413
    assert huge.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert await count(api) == before and await blob_keys(api) == keys

    small = await uploaded(api, nse_csv(days=1))
    assert small["duplicate"] is False


async def test_zip_upload_and_download(sqlite_api: Api) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("export/EURUSD_1min.csv", nse_csv(seed=5))
        zf.writestr("__MACOSX/export/._EURUSD_1min.csv", b"junk")
    content = buf.getvalue()
    done = await uploaded(sqlite_api, content, "EURUSD.zip", symbol="EURUSD")
    ds = done["dataset"]
    assert (
        ds["dialect"]["compression"] == "zip"
        and ds["dialect"]["member"] == "export/EURUSD_1min.csv"
    )
    assert ds["timezone"] == "UTC" and "TZ_ASSUMED" in {w["code"] for w in ds["warnings"]}
    download = await sqlite_api.client.get(ds["downloadUrl"])
    assert download.content == content
    assert download.headers["content-type"] == "application/zip"


async def test_download_errors_have_the_report_routes_shape(sqlite_api: Api) -> None:
    missing = await sqlite_api.client.get("/datasets/424242/download")
    assert missing.status_code == 404
    [err] = missing.json()["errors"]
    assert err["extensions"]["code"] == "NOT_FOUND" and "424242" in err["message"]
    bad = await sqlite_api.client.get("/datasets/abc/download")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    sample = (await sqlite_api.data("{ datasets { nodes { id downloadUrl } } }"))["datasets"]
    shipped = sample["nodes"][0]
    assert shipped["downloadUrl"] is None
    no_file = await sqlite_api.client.get(f"/datasets/{shipped['id']}/download")
    assert no_file.status_code == 404 and "original file" in no_file.json()["errors"][0]["message"]


async def test_backtest_on_an_upload_then_delete_with_conflict_and_force(api: Api) -> None:
    ds = (await uploaded(api, nse_csv(seed=9), timezone="Asia/Kolkata"))["dataset"]
    run = (
        await api.data(
            """mutation($input: BacktestInput!) {
                 runBacktest(input: $input, timeoutSeconds: 120) { id status dataset { id } } }""",
            {"input": {"strategy": "ema_crossover", "datasetId": ds["id"]}},
        )
    )["runBacktest"]
    assert run["status"] == "SUCCEEDED" and run["dataset"]["id"] == ds["id"]

    delete = "mutation($id: ID!, $force: Boolean!) { deleteDataset(id: $id, force: $force) { id name detachedRuns } }"
    err = await api.error(delete, {"id": ds["id"], "force": False})
    assert err["extensions"]["code"] == "CONFLICT" and "force" in err["message"]
    assert await api.data("query($id: ID!) { dataset(id: $id) { id } }", {"id": ds["id"]})

    gone = (await api.data(delete, {"id": ds["id"], "force": True}))["deleteDataset"]
    assert gone == {"id": ds["id"], "name": ds["name"], "detachedRuns": 1}
    err = await api.error("query($id: ID!) { dataset(id: $id) { id } }", {"id": ds["id"]})
    assert err["extensions"]["code"] == "NOT_FOUND"
    kept = await api.data(
        "query($id: ID!) { run(id: $id) { status dataset { id } } }", {"id": run["id"]}
    )
    assert kept["run"] == {"status": "SUCCEEDED", "dataset": None}
    assert (await api.client.get(ds["downloadUrl"])).status_code == 404

    unused = (await uploaded(api, nse_csv(seed=10), timezone="Asia/Kolkata"))["dataset"]
    gone = (await api.data(delete, {"id": unused["id"], "force": False}))["deleteDataset"]
    assert gone["detachedRuns"] == 0
    err = await api.error(delete, {"id": "999999", "force": False})
    assert err["extensions"]["code"] == "NOT_FOUND"
