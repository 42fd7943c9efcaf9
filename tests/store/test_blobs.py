"""Both blob stores: put/get/exists/delete, overwrite, missing keys, key checks."""

from __future__ import annotations

import pytest

from store.blobs import BlobStore, DatabaseBlobStore, FileBlobStore, blob_store_for
from store.db import Database
from store.errors import NotFoundError


async def test_roundtrip(blobs: BlobStore) -> None:
    assert isinstance(blobs, BlobStore)
    assert not await blobs.exists("datasets/x.parquet")
    await blobs.put("datasets/x.parquet", b"\x00abc" * 1000)
    assert await blobs.exists("datasets/x.parquet")
    assert await blobs.get("datasets/x.parquet") == b"\x00abc" * 1000
    await blobs.put("datasets/x.parquet", b"new")
    assert await blobs.get("datasets/x.parquet") == b"new"
    await blobs.delete("datasets/x.parquet")
    await blobs.delete("datasets/x.parquet")  # deleting twice is fine
    assert not await blobs.exists("datasets/x.parquet")


async def test_missing_key_is_not_found(blobs: BlobStore) -> None:
    with pytest.raises(NotFoundError) as info:
        await blobs.get("nope")
    assert info.value.kind == "blob"


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "", "a/../b", "with space"])
async def test_bad_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        await blobs.put(key, b"x")


async def test_default_store_per_deployment(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = blob_store_for(db, tmp_path)
    expected = DatabaseBlobStore if db.dialect == "postgresql" else FileBlobStore
    assert isinstance(store, expected)
