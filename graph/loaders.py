"""DataLoaders: one batched database read per kind of object per request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

from store import datasets as dataset_store

if TYPE_CHECKING:
    from workers.service import Services


class Loaders:
    """Created with each context; caches live as long as the request (or websocket)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self.dataset = DataLoader[str, Any](load_fn=self._load_datasets)

    async def _load_datasets(self, ids: Sequence[str]) -> list[Any]:
        rows = await dataset_store.list_datasets(self._services.db, scope=self._services.scope)
        by_id = {str(row.id): row for row in rows}
        return [by_id.get(str(i)) for i in ids]
