"""Datasets for the API and the CLI: import a file, list, preview, download, delete, count.

`import_upload` (GraphQL multipart) and `import_path` (`backtester import`) only read
the file under the size cap; from there both take the one path of `import_bytes`:
metadata checked, the file parsed and scored in a worker thread (`engine.ingest`), the
timeframe detected or checked against the data, then saved by
`store.dataset_uploads.save_upload` (the same bars twice: the existing dataset, with
`duplicate=True`). Rejections are `IngestError`s (line and column in the message) or
`BadInputError`s naming the metadata field.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select

from engine.ingest import (
    Codes,
    IngestError,
    IngestResult,
    QualityReport,
    parse_ohlcv,
    quality_report,
)
from store.audit import record as audit
from store.blobs import BlobStore
from store.dataset_uploads import dataset_stats, load_original, save_upload
from store.datasets import delete_dataset, get_dataset, list_datasets, load_bars
from store.db import Database
from store.errors import BadInputError, QuotaExceededError
from store.models import DatasetRow, RunRow
from store.pagination import Page
from store.scope import SYSTEM, Scope, set_shared
from workers.dataset_meta import (
    DatasetMeta,
    canonical_timeframe,
    check_timeframe,
    clean_meta,
    clean_text,
    timeframe_labels,
)
from workers.dataset_preview import DatasetPreview, preview

__all__ = [
    "DatasetMeta",
    "DatasetService",
    "DeletedDataset",
    "ImportResult",
    "UploadTooLargeError",
    "canonical_timeframe",
    "timeframe_labels",
]

log = logging.getLogger("backtester.datasets")

CHUNK = 1 << 20
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1_048_576
DEFAULT_MAX_DECOMPRESSED_BYTES = 512 * 1_048_576


class UploadTooLargeError(IngestError):
    """The file is over the upload cap (`limit` bytes); nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            Codes.TOO_LARGE,
            f"the file is larger than the upload limit of {limit} bytes "
            f"({limit / 1_048_576:g} MiB); nothing was stored",
        )
        self.limit = limit


class Readable(Protocol):
    """An uploaded file (strawberry's `Upload` is Starlette's `UploadFile`)."""

    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class ImportResult:
    """The dataset, whether it was already stored, and this file's warnings and quality."""

    row: DatasetRow
    duplicate: bool
    warnings: list[dict[str, Any]]
    quality: dict[str, Any]
    seconds: float


@dataclass(frozen=True)
class DeletedDataset:
    row: DatasetRow
    detached_runs: int


def _ingest(
    data: bytes, filename: str | None, meta: DatasetMeta, max_decompressed: int
) -> tuple[IngestResult, QualityReport]:
    result = parse_ohlcv(
        data,
        filename=filename,
        tz=meta.timezone,
        dayfirst=meta.dayfirst,
        max_decompressed_bytes=max_decompressed,
    )
    return result, quality_report(result.bars, result.warnings, tz=result.bars.tz)


class DatasetService:
    """Dataset use cases over one database and blob store (`Services.datasets`, the CLI)."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        max_datasets_per_user: int | None = None,
        max_bytes_per_user: int | None = None,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.max_upload_bytes = max_upload_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.max_datasets_per_user = max_datasets_per_user
        self.max_bytes_per_user = max_bytes_per_user
        self.scope: Scope = SYSTEM
        """Whose datasets this service sees and creates (`scoped`)."""

    def scoped(self, scope: Scope) -> DatasetService:
        """This service acting for `scope` (reads filtered, writes owned and checked)."""
        clone = copy.copy(self)
        clone.scope = scope
        return clone

    async def _check_quota(self, size: int) -> None:
        """Dataset count and stored bytes of the importing user (QuotaExceededError)."""
        if self.scope.user_id is None:
            return
        async with self.db.session() as s:
            count, used = (
                await s.execute(
                    select(func.count(DatasetRow.id), func.coalesce(func.sum(DatasetRow.original_size), 0))
                    .where(DatasetRow.owner_id == self.scope.user_id)
                )
            ).one()
        if self.max_datasets_per_user is not None and count >= self.max_datasets_per_user:
            raise QuotaExceededError(
                "datasets", self.max_datasets_per_user,
                f"you have {count} datasets (quota {self.max_datasets_per_user}); delete some first",
            )
        if self.max_bytes_per_user is not None and used + size > self.max_bytes_per_user:
            raise QuotaExceededError(
                "dataset_bytes", self.max_bytes_per_user,
                f"this file ({size} bytes) would take your stored uploads past the quota of "
                f"{self.max_bytes_per_user} bytes ({int(used)} used); delete some datasets first",
            )

    async def import_upload(
        self, upload: Readable, filename: str | None, meta: DatasetMeta
    ) -> ImportResult:
        """Read an upload (spooled to disk by the multipart parser) under the cap, then import it."""
        size = getattr(upload, "size", None)
        if isinstance(size, int) and size > self.max_upload_bytes:
            raise UploadTooLargeError(self.max_upload_bytes)
        digest, parts, total = hashlib.sha256(), [], 0
        while chunk := await upload.read(CHUNK):
            total += len(chunk)
            if total > self.max_upload_bytes:
                raise UploadTooLargeError(self.max_upload_bytes)
            digest.update(chunk)
            parts.append(chunk)
        return await self.import_bytes(
            b"".join(parts), filename=filename, meta=meta, raw_hash=digest.hexdigest()
        )

    async def import_path(self, path: str | Path, meta: DatasetMeta) -> ImportResult:
        """Import a file on this machine (`backtester import`), under the same cap."""
        path = Path(path)
        if (await asyncio.to_thread(path.stat)).st_size > self.max_upload_bytes:
            raise UploadTooLargeError(self.max_upload_bytes)
        data = await asyncio.to_thread(path.read_bytes)
        return await self.import_bytes(data, filename=path.name, meta=meta)

    async def import_bytes(
        self, data: bytes, *, filename: str | None, meta: DatasetMeta, raw_hash: str | None = None
    ) -> ImportResult:
        """Parse, check, score and store one file: the one path of every import."""
        started = time.perf_counter()
        clean = clean_meta(meta, filename)
        if len(data) > self.max_upload_bytes:
            raise UploadTooLargeError(self.max_upload_bytes)
        await self._check_quota(len(data))
        if raw_hash is None:
            raw_hash = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        result, report = await asyncio.to_thread(
            _ingest, data, filename, clean, self.max_decompressed_bytes
        )
        timeframe = check_timeframe(clean.timeframe, result)
        warnings = [w.to_dict() for w in result.warnings]
        quality = report.to_dict()
        saved = await save_upload(
            self.db,
            self.blobs,
            result.bars,
            name=str(clean.name),
            symbol=str(clean.symbol),
            timeframe=timeframe,
            original=data,
            raw_hash=raw_hash,
            source_name=Path(filename or "").name[:300] or None,
            exchange=clean.exchange,
            description=clean.description,
            quality=quality,
            warnings=warnings,
            dialect=result.dialect.to_dict(),
            owner_id=self.scope.owner_id,
        )
        if saved.created:
            await audit(self.db, self.scope, "dataset.create", "dataset", saved.row.id,
                        name=saved.row.name, bytes=len(data))
        seconds = time.perf_counter() - started
        log.info(
            "dataset %s %s: %d rows, %s, quality %d, %d warning(s), %.2fs",
            saved.row.id,
            "recognised as a duplicate" if not saved.created else "imported",
            result.rows,
            timeframe,
            report.score,
            len(warnings),
            seconds,
        )
        return ImportResult(saved.row, not saved.created, warnings, quality, seconds)

    async def find(
        self,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        min_score: int | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[DatasetRow]:
        """Datasets newest first, filtered; `timeframe` in any spelling (`1m` = `1min`)."""
        if min_score is not None and not 0 <= min_score <= 100:
            raise BadInputError("minScore", f"must be between 0 and 100, got {min_score}")
        return await list_datasets(
            self.db,
            symbol=clean_text(symbol, "symbol", 64),
            timeframe=None if timeframe is None else timeframe_labels(timeframe),
            min_score=min_score,
            first=first,
            after=after,
            count=True,
            scope=self.scope,
        )

    async def get(self, dataset_id: int) -> DatasetRow:
        return await get_dataset(self.db, dataset_id, scope=self.scope)

    async def share(self, dataset_id: int, shared: bool = True) -> DatasetRow:
        """Show a dataset to the whole team (or stop); only its owner or an admin may."""
        row = await set_shared(self.db, DatasetRow, dataset_id, shared, self.scope, "dataset")
        await audit(self.db, self.scope, "dataset.share" if shared else "dataset.unshare",
                    "dataset", row.id)
        return row

    async def preview(self, dataset_id: int, rows: int = 20) -> DatasetPreview:
        """The first `rows` bars and statistics of the whole dataset."""
        if rows < 0:
            raise BadInputError("rows", f"must be 0 or more, got {rows}")
        await get_dataset(self.db, dataset_id, scope=self.scope)  # NOT_FOUND unless visible
        bars = await load_bars(self.db, self.blobs, dataset_id)
        return await asyncio.to_thread(preview, bars, rows)

    async def original(self, dataset_id: int) -> tuple[DatasetRow, bytes]:
        """The row and the bytes of the file as it was uploaded (NotFoundError without one)."""
        return await load_original(self.db, self.blobs, dataset_id, scope=self.scope)

    async def delete(self, dataset_id: int, *, force: bool = False) -> DeletedDataset:
        """Delete a dataset; CONFLICT while runs use it unless `force` (they keep results)."""
        row = await get_dataset(self.db, dataset_id, scope=self.scope)
        async with self.db.session() as s:
            runs = (
                await s.execute(
                    select(func.count(RunRow.id)).where(RunRow.dataset_id == dataset_id)
                )
            ).scalar_one()
        await delete_dataset(self.db, self.blobs, dataset_id, force=force, scope=self.scope)
        await audit(self.db, self.scope, "dataset.delete", "dataset", dataset_id,
                    name=row.name, force=force)
        return DeletedDataset(row, int(runs))

    async def stats(self) -> dict[str, Any]:
        """`store.dataset_uploads.dataset_stats` with timeframe spellings merged."""
        raw = await dataset_stats(self.db, scope=self.scope)
        merged: dict[str, dict[str, Any]] = {}
        for group in raw["by_timeframe"]:
            try:
                label = canonical_timeframe(group["timeframe"])
            except BadInputError:
                label = group["timeframe"]
            into = merged.setdefault(label, {"timeframe": label, "count": 0, "rows": 0})
            into["count"] += group["count"]
            into["rows"] += group["rows"]
        return {**raw, "by_timeframe": sorted(merged.values(), key=lambda g: -g["count"])}
