"""Value types of datasets: quality report, ingest warnings, preview rows and statistics.

They only shape what `workers.dataset_service` computed (dicts from the store and
`workers.dataset_preview`); nothing here reads the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from graph.scalars import JSON, EpochMs, finite_or_none, ns_to_datetime, ns_to_ms


@strawberry.type(description="One quality check: 0-100, pass (>= 90) / warn (>= 60) / fail.")
class QualityCheck:
    name: str = strawberry.field(description="e.g. `timestamp_gaps`, `price_outliers`.")
    score: int
    status: str
    details: str = strawberry.field(description="What was found, in a sentence.")
    values: JSON | None = strawberry.field(description="The numbers behind the score.")


@strawberry.type(description="Data quality: the weighted 0-100 score and its checks.")
class DatasetQuality:
    score: int
    status: str = strawberry.field(description="pass, warn or fail (from the score).")
    checks: list[QualityCheck]
    weights: JSON | None = strawberry.field(description="Each check's weight in the score.")

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> DatasetQuality | None:
        """None for datasets without a report (or with one of another shape)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("checks"), list):
            return None
        score = raw.get("score")
        if not isinstance(score, int | float):
            return None
        checks = [
            QualityCheck(
                name=str(c.get("name")),
                score=int(c.get("score", 0)),
                status=str(c.get("status", "")),
                details=str(c.get("details", "")),
                values=c.get("values"),
            )
            for c in raw["checks"]
            if isinstance(c, dict)
        ]
        status = raw.get("status") or ("pass" if score >= 90 else "warn" if score >= 60 else "fail")
        return cls(score=int(score), status=str(status), checks=checks, weights=raw.get("weights"))


@strawberry.type(description="A repair made while reading the file (the row count it touched).")
class DatasetWarning:
    code: str = strawberry.field(description="e.g. UNSORTED, DUPLICATE_ROWS, TZ_ASSUMED.")
    message: str
    line: int | None = strawberry.field(description="First affected line of the file.")
    column: str | None
    count: int

    @classmethod
    def from_dicts(cls, raw: list[dict[str, Any]] | None) -> list[DatasetWarning]:
        return [
            cls(
                code=str(w.get("code")),
                message=str(w.get("message", "")),
                line=w.get("line"),
                column=w.get("column"),
                count=int(w.get("count", 1)),
            )
            for w in raw or []
            if isinstance(w, dict)
        ]


@strawberry.type(description="One bar.")
class PreviewBar:
    time: datetime
    time_ms: EpochMs
    open: float
    high: float
    low: float
    close: float
    volume: float


@strawberry.type(description="Close-to-close returns of every bar, in percent.")
class ReturnStatistics:
    count: int
    mean_pct: float | None
    std_pct: float | None
    min_pct: float | None
    max_pct: float | None
    positive_share: float | None = strawberry.field(description="Share of rising bars, 0-1.")
    annualized_volatility_pct: float | None = strawberry.field(
        description="Standard deviation x sqrt(bars per year, from the data's own sessions)."
    )


@strawberry.type(description="Summary statistics over every bar of the dataset.")
class DatasetStatistics:
    rows: int
    start: datetime | None
    end: datetime | None
    start_ms: EpochMs | None
    end_ms: EpochMs | None
    trading_days: int | None = strawberry.field(description="Distinct exchange-local dates.")
    price_low: float | None = strawberry.field(description="Lowest low.")
    price_high: float | None = strawberry.field(description="Highest high.")
    first_close: float | None
    last_close: float | None
    change_pct: float | None = strawberry.field(description="Last close vs first close.")
    average_volume: float | None
    total_volume: float | None
    zero_volume_bars: int | None
    returns: ReturnStatistics | None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DatasetStatistics:
        start, end = raw.get("start_ts"), raw.get("end_ts")
        ret = raw.get("returns")
        return cls(
            rows=int(raw.get("rows", 0)),
            start=None if start is None else ns_to_datetime(start),
            end=None if end is None else ns_to_datetime(end),
            start_ms=None if start is None else ns_to_ms(start),  # type: ignore[arg-type]
            end_ms=None if end is None else ns_to_ms(end),  # type: ignore[arg-type]
            trading_days=raw.get("trading_days"),
            price_low=finite_or_none(raw.get("price_low")),
            price_high=finite_or_none(raw.get("price_high")),
            first_close=finite_or_none(raw.get("first_close")),
            last_close=finite_or_none(raw.get("last_close")),
            change_pct=finite_or_none(raw.get("change_pct")),
            average_volume=finite_or_none(raw.get("average_volume")),
            total_volume=finite_or_none(raw.get("total_volume")),
            zero_volume_bars=raw.get("zero_volume_bars"),
            returns=None if not isinstance(ret, dict) else ReturnStatistics(**ret),
        )


@strawberry.type(description="The first bars of a dataset and statistics of all of them.")
class DatasetPreview:
    rows: list[PreviewBar]
    stats: DatasetStatistics

    @classmethod
    def from_preview(cls, preview: Any) -> DatasetPreview:
        return cls(
            rows=[
                PreviewBar(
                    time=ns_to_datetime(r["ts"]),
                    time_ms=ns_to_ms(r["ts"]),  # type: ignore[arg-type]
                    open=r["open"],
                    high=r["high"],
                    low=r["low"],
                    close=r["close"],
                    volume=r["volume"],
                )
                for r in preview.rows
            ],
            stats=DatasetStatistics.from_dict(preview.stats),
        )


@strawberry.type
class TimeframeCount:
    timeframe: str
    count: int
    rows: float = strawberry.field(description="Bars of this timeframe.")


@strawberry.type(description="Dataset totals for dashboards.")
class DatasetStats:
    count: int
    total_rows: float = strawberry.field(description="Bars over every dataset.")
    symbols: int = strawberry.field(description="Distinct symbols.")
    stored_bytes: float = strawberry.field(description="Parquet bytes in the blob store.")
    original_bytes: float = strawberry.field(description="Original uploaded files kept.")
    average_quality_score: float | None = strawberry.field(
        description="Mean score of the datasets that have a quality report."
    )
    scored: int = strawberry.field(description="Datasets that have a quality report.")
    by_timeframe: list[TimeframeCount]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DatasetStats:
        return cls(
            count=raw["count"],
            total_rows=float(raw["total_rows"]),
            symbols=raw["symbols"],
            stored_bytes=float(raw["stored_bytes"]),
            original_bytes=float(raw["original_bytes"]),
            average_quality_score=raw["average_quality_score"],
            scored=raw["scored"],
            by_timeframe=[
                TimeframeCount(timeframe=g["timeframe"], count=g["count"], rows=float(g["rows"]))
                for g in raw["by_timeframe"]
            ],
        )
