"""The ingest corpus: every file in corpus/manifest.json parses (or fails) as its entry says."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from engine.errors import EngineInputError
from engine.ingest import IngestError, parse_ohlcv
from engine.ingest.quality import quality_report

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
ENTRIES: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))["files"]


def _parse(entry: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {"filename": entry["file"], "tz": entry.get("tz")}
    if "dayfirst" in entry:
        kwargs["dayfirst"] = entry["dayfirst"]
    if "max_decompressed_bytes" in entry:
        kwargs["max_decompressed_bytes"] = entry["max_decompressed_bytes"]
    return parse_ohlcv((CORPUS / entry["file"]).read_bytes(), **kwargs)


def _local(ts: int, tz: str) -> str:
    return pd.Timestamp(int(ts), tz="UTC").tz_convert(tz).isoformat()


def test_corpus_size_and_manifest_cover_every_file() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.is_file()} - {"manifest.json"}
    assert files == {e["file"] for e in ENTRIES}
    assert len(files) >= 40
    assert sum(p.stat().st_size for p in CORPUS.iterdir()) < 1_000_000
    assert sum(e["expect"] == "accept" for e in ENTRIES) >= 15
    assert sum(e["expect"] == "reject" for e in ENTRIES) >= 25


def test_corpus_on_disk_matches_its_generator() -> None:
    spec = importlib.util.spec_from_file_location("make_corpus", HERE / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, data in module.build().items():
        assert (CORPUS / name).read_bytes() == data, f"{name} is stale: run make_corpus.py"


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if e["expect"] == "accept"], ids=lambda e: e["file"]
)
def test_accepted(entry: dict[str, Any]) -> None:
    res = _parse(entry)
    assert sorted({w.code for w in res.warnings}) == entry["warnings"], res.warnings
    assert res.rows == entry["rows"] == len(res.bars)
    assert res.timeframe == entry["timeframe"]
    tz = res.bars.tz
    assert _local(res.bars.ts[0], tz) == entry["first"]
    assert _local(res.bars.ts[-1], tz) == entry["last"]
    got = res.dialect.to_dict()
    for key, want in entry["dialect"].items():
        assert got[key] == want, (key, got)
    for code, line in entry.get("warning_lines", {}).items():
        assert [w.line for w in res.warnings if w.code == code] == [line]
    assert res.source_bytes == (CORPUS / entry["file"]).stat().st_size
    assert len(res.content_hash) == 64
    report = quality_report(res.bars, res.warnings)
    assert 0 <= report.score <= 100
    json.dumps(report.to_dict())
    json.dumps(res.to_dict())


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if e["expect"] == "reject"], ids=lambda e: e["file"]
)
def test_rejected(entry: dict[str, Any]) -> None:
    with pytest.raises(IngestError) as info:
        _parse(entry)
    err = info.value
    assert isinstance(err, EngineInputError)
    assert (err.code, err.line, err.column) == (entry["code"], entry["line"], entry["column"]), str(
        err
    )
    text = str(err)
    if err.line is not None:
        assert text.startswith(f"line {err.line}")
    if err.column is not None:
        assert repr(err.column) in text
    assert "\n" not in text
    assert err.to_dict()["code"] == entry["code"]
