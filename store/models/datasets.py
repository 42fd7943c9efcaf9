"""Datasets (OHLCV bars kept as Parquet in the blob store) and database-held blobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Json, Owned, UTCDateTime, utcnow

__all__ = ["BlobRow", "DatasetRow"]


class DatasetRow(Owned, Base):
    """An uploaded (or shipped) OHLCV dataset; the bars live in the blob store as Parquet.

    The same bars are stored once per owner (unique owner + content hash); the blobs are
    content-addressed, so two owners of the same bars share them.
    """

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("owner_id", "content_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    symbol: Mapped[str] = mapped_column(String(64), index=True)
    exchange: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))
    timeframe: Mapped[str] = mapped_column(String(16), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    start_ts: Mapped[int] = mapped_column(BigInteger)
    end_ts: Mapped[int] = mapped_column(BigInteger)
    file_size: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    blob_key: Mapped[str] = mapped_column(String(200))
    original_key: Mapped[str | None] = mapped_column(String(200))
    source_name: Mapped[str | None] = mapped_column(String(300))
    quality: Mapped[dict[str, Any] | None] = mapped_column(Json)
    quality_score: Mapped[int | None] = mapped_column(Integer, index=True)
    """`quality["score"]` (0-100) as a column, so lists can filter on it."""
    warnings: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    """The repairs made while reading the upload (`IngestWarning.to_dict()` each)."""
    dialect: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """How the upload was read (delimiter, time format, ...: `Dialect.to_dict()`)."""
    raw_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    """sha256 of the original file's bytes; `content_hash` is of the bars."""
    original_size: Mapped[int | None] = mapped_column(BigInteger)
    """Bytes of the original file as uploaded (`file_size` is the stored Parquet)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"DatasetRow(id={self.id}, name={self.name!r}, rows={self.rows})"


class BlobRow(Base):
    """Bytes by key, for `DatabaseBlobStore` (dataset Parquet files in team deployments)."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
