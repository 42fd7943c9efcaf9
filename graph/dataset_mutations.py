"""Dataset mutations: `uploadDataset` (GraphQL multipart upload) and `deleteDataset`.

Reading the file under the size cap, parsing it in a thread, scoring and storing it
happen in `workers.dataset_service` (the same code path as `backtester import`); a
rejected file is an `IngestError`, which `graph.errors` maps to BAD_USER_INPUT with
`ingestCode`, `line` and `column`. Uploads need the multipart CSRF header that
`app.asgi` checks (`Apollo-Require-Preflight: true`).
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.file_uploads import Upload

from graph.context import Info
from graph.dataset_types import DatasetQuality, DatasetWarning
from graph.datasets import Dataset, parse_dataset_id
from workers.dataset_service import DatasetMeta


@strawberry.type(description="The uploaded dataset, or the one already holding the same bars.")
class UploadDatasetPayload:
    dataset: Dataset
    duplicate: bool = strawberry.field(
        description="True when the same bars were stored already: `dataset` is that one and "
        "nothing new was stored (its name and metadata are the first upload's)."
    )
    warnings: list[DatasetWarning] = strawberry.field(
        description="Repairs made while reading this file."
    )
    quality: DatasetQuality | None = strawberry.field(description="This file's quality report.")
    seconds: float = strawberry.field(description="Time to read, check and store it.")


@strawberry.type(description="A deleted dataset.")
class DeletedDataset:
    id: strawberry.ID
    name: str
    detached_runs: int = strawberry.field(
        description="Runs that used it (only with force): they keep their results, without it."
    )


@strawberry.type
class DatasetMutations:
    @strawberry.mutation(
        description="Upload an OHLCV file (CSV, gzip or a zip of one CSV) as a multipart "
        "request with an `Apollo-Require-Preflight: true` header. Repairs are reported as "
        "warnings; a file that cannot be read without guessing is refused with "
        "BAD_USER_INPUT naming the line and column. Name and symbol default to the file "
        "name; the timeframe is detected unless given (a given one must match the data)."
    )
    async def upload_dataset(
        self,
        info: Info,
        file: Upload,
        name: str | None = None,
        symbol: str | None = None,
        exchange: str | None = None,
        timezone: Annotated[
            str | None,
            strawberry.argument(
                description="Exchange time zone (IANA); naive times are read in it. Default: UTC."
            ),
        ] = None,
        timeframe: str | None = None,
        description: str | None = None,
        dayfirst: Annotated[
            bool | None,
            strawberry.argument(description="Settles dd/mm vs mm/dd when the data cannot."),
        ] = None,
    ) -> UploadDatasetPayload:
        meta = DatasetMeta(
            name=name,
            symbol=symbol,
            exchange=exchange,
            description=description,
            timezone=timezone,
            timeframe=timeframe,
            dayfirst=dayfirst,
        )
        filename = getattr(file, "filename", None)
        done = await info.context.services.datasets.import_upload(file, filename, meta)  # type: ignore[arg-type]
        return UploadDatasetPayload(
            dataset=Dataset.from_row(done.row),
            duplicate=done.duplicate,
            warnings=DatasetWarning.from_dicts(done.warnings),
            quality=DatasetQuality.from_dict(done.quality),
            seconds=done.seconds,
        )

    @strawberry.mutation(
        description="Delete a dataset and its stored files. CONFLICT while runs use it, "
        "unless `force`: then the runs keep their results and lose the link."
    )
    async def delete_dataset(
        self, info: Info, id: strawberry.ID, force: bool = False
    ) -> DeletedDataset:
        gone = await info.context.services.datasets.delete(parse_dataset_id(id), force=force)
        return DeletedDataset(
            id=strawberry.ID(str(gone.row.id)), name=gone.row.name, detached_runs=gone.detached_runs
        )
