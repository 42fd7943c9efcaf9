"""Blob storage for dataset bytes: a `BlobStore` protocol, a folder and a database table.

`FileBlobStore` suits the embedded deployment (the data directory); a team deployment
uses `DatabaseBlobStore`, so every worker machine reads the same bytes from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from store.db import Database
from store.errors import ConflictError, NotFoundError
from store.models import BlobRow, utcnow

__all__ = ["BlobStore", "DatabaseBlobStore", "FileBlobStore", "blob_store_for", "check_key"]

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


def check_key(key: str) -> str:
    """Keys are relative slash-separated names (no '..', no absolute paths)."""
    if not isinstance(key, str) or len(key) > 300 or not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid blob key {key!r}: use letters, digits, '.', '_', '-' and '/'")
    return key


@runtime_checkable
class BlobStore(Protocol):
    """Bytes by key; `get` raises NotFoundError("blob", key) for a missing key."""

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...


class FileBlobStore:
    """One file per key under `root`; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), bytes(data))

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFoundError("blob", key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.root)!r})"


class DatabaseBlobStore:
    """Rows of the `blobs` table: readable from every machine that reaches the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, key: str, data: bytes) -> None:
        check_key(key)
        payload = bytes(data)
        for _ in range(2):  # a concurrent first put of the same key: update theirs
            try:
                async with self.db.session() as s:
                    row = await s.get(BlobRow, key)
                    if row is None:
                        s.add(BlobRow(key=key, data=payload, size=len(payload), created_at=utcnow()))
                    else:
                        row.data, row.size = payload, len(payload)
                return
            except IntegrityError:
                continue
        raise ConflictError(f"blob {key!r} is being written concurrently; try again")

    async def get(self, key: str) -> bytes:
        async with self.db.session() as s:
            data = (await s.execute(select(BlobRow.data).where(BlobRow.key == key))).scalar()
        if data is None:
            raise NotFoundError("blob", key)
        return bytes(data)

    async def exists(self, key: str) -> bool:
        async with self.db.session() as s:
            found = (await s.execute(select(BlobRow.key).where(BlobRow.key == key))).scalar()
        return found is not None

    async def delete(self, key: str) -> None:
        async with self.db.session() as s:
            await s.execute(delete(BlobRow).where(BlobRow.key == key))

    def __repr__(self) -> str:
        return f"DatabaseBlobStore({self.db!r})"


def blob_store_for(db: Database, data_dir: str | os.PathLike[str] | None) -> BlobStore:
    """The default for a deployment: the database on PostgreSQL, files next to SQLite.

    Use the same rule in the API process and in every worker, so both see the same bytes.
    """
    if db.dialect == "postgresql" or data_dir is None:
        return DatabaseBlobStore(db)
    return FileBlobStore(Path(data_dir) / "blobs")
