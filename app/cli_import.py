"""`backtester import FILE`: read, check, score and store an OHLCV file, as an upload does.

It writes to the service's database and blob store (DATABASE_URL, else the SQLite file
and blob folder in the data directory) through `DatasetService.import_path`, the same
code path as the `uploadDataset` mutation, so the same file gives the same dataset, the
same warnings and the same quality score either way. A rejected file prints one line,
`error: line N, column 'X': ...`, and exits with status 2. `--owner NAME` stores it as
user NAME's (as if NAME had uploaded it) and `--shared` shares it with the team; without
an owner it belongs to nobody, which in a team deployment only admins see.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from app.cli import main
from app.cli_service import CliError, load_settings, one_line_errors
from app.settings import Settings

_STATUS_MARK = {"pass": "ok", "warn": "warn", "fail": "FAIL"}


async def import_file(
    settings: Settings, path: Path, meta: Any, *, owner: str | None = None, shared: bool = False
) -> Any:
    """Import `path` into the service's storage; returns the `ImportResult`.

    `owner`: the name of the user the dataset belongs to (CliError if there is none);
    `shared`: share it with the team (also when it was already stored)."""
    from dataclasses import replace

    from app.stack import prepare_database
    from store.auth import get_user
    from store.blobs import blob_store_for
    from store.db import Database
    from store.errors import NotFoundError
    from store.scope import SYSTEM, Scope
    from workers.dataset_service import DatasetService

    if settings.should_migrate or settings.database_url is None:
        await prepare_database(settings)  # a fresh data directory works at once
    db = Database(settings.effective_database_url)
    try:
        service = DatasetService(
            db,
            blob_store_for(db, settings.data_dir),
            max_upload_bytes=settings.max_upload_bytes,
            max_decompressed_bytes=settings.max_decompressed_bytes,
        )
        scope = SYSTEM
        if owner is not None:
            try:
                user = await get_user(db, owner)
            except NotFoundError:
                raise CliError(
                    f"no user named {owner!r}: add it with `backtester user add {owner}` "
                    "(or leave out --owner)"
                ) from None
            scope = Scope.user(user.id, admin=user.is_admin, name=user.name)
        service = service.scoped(scope)
        result = await service.import_path(path, meta)
        if shared and not result.row.shared:
            result = replace(result, row=await service.share(result.row.id, True))
        return result
    finally:
        await db.dispose()


def _when(ns: int, tz: str) -> str:
    import pandas as pd

    return str(pd.Timestamp(ns, unit="ns", tz="UTC").tz_convert(tz).strftime("%Y-%m-%d %H:%M"))


def describe(result: Any) -> list[str]:
    """The human-readable report: what was stored, its quality and every repair."""
    row = result.row
    span = (
        f"{_when(row.start_ts, row.timezone)} .. {_when(row.end_ts, row.timezone)} {row.timezone}"
    )
    head = (
        f"dataset {row.id} already holds these bars ({row.name!r}); nothing new was stored"
        if result.duplicate
        else f"imported dataset {row.id} {row.name!r}"
    )
    lines = [
        head,
        f"  {row.symbol} {row.timeframe}, {row.rows:,} rows, {span}",
        f"quality {result.quality['score']}/100 ({result.quality['status']})",
    ]
    for check in result.quality["checks"]:
        if check["status"] != "pass":
            mark = _STATUS_MARK.get(check["status"], check["status"])
            lines.append(f"  {mark:4s} {check['name']} {check['score']}: {check['details']}")
    for w in result.warnings:
        where = f"line {w['line']}: " if w.get("line") else ""
        lines.append(f"warning {w['code']}: {where}{w['message']}")
    return lines


def as_json(result: Any) -> dict[str, Any]:
    row = result.row
    return {
        "dataset": {
            "id": row.id,
            "name": row.name,
            "symbol": row.symbol,
            "exchange": row.exchange,
            "timezone": row.timezone,
            "timeframe": row.timeframe,
            "rows": row.rows,
            "start_ts": row.start_ts,
            "end_ts": row.end_ts,
            "content_hash": row.content_hash,
            "raw_hash": row.raw_hash,
            "source_name": row.source_name,
            "owner_id": row.owner_id,
            "shared": row.shared,
        },
        "duplicate": result.duplicate,
        "warnings": result.warnings,
        "quality": result.quality,
        "seconds": round(result.seconds, 3),
    }


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Dataset name (default: the file name).")
@click.option("--symbol", default=None, help="Symbol (default: the file name's first word).")
@click.option("--exchange", default=None, help="Exchange, e.g. NSE.")
@click.option("--description", default=None, help="Free text about the data.")
@click.option("--tz", default=None, help="Exchange time zone for naive times (default: UTC).")
@click.option("--timeframe", default=None, help="e.g. 1min, 1d (default: detected).")
@click.option(
    "--dayfirst/--monthfirst",
    default=None,
    help="Read dd/mm or mm/dd dates when the data cannot tell (default: refuse to guess).",
)
@click.option(
    "--owner",
    default=None,
    metavar="NAME",
    help="The user the dataset belongs to (must exist: `backtester user add NAME`). Default: "
    "no owner; in a team deployment an ownerless dataset is visible to admins only.",
)
@click.option("--shared", is_flag=True, help="Share the dataset with the whole team.")
@click.option("--json", "json_output", is_flag=True, help="Print the result as JSON.")
@one_line_errors
def import_command(
    file: Path,
    name: str | None,
    symbol: str | None,
    exchange: str | None,
    description: str | None,
    tz: str | None,
    timeframe: str | None,
    dayfirst: bool | None,
    owner: str | None,
    shared: bool,
    json_output: bool,
) -> None:
    """Import an OHLCV file (CSV, gzip, or a zip of one CSV) into the service's datasets."""
    from workers.dataset_service import DatasetMeta

    meta = DatasetMeta(
        name=name,
        symbol=symbol,
        exchange=exchange,
        description=description,
        timezone=tz,
        timeframe=timeframe,
        dayfirst=dayfirst,
    )
    result = asyncio.run(import_file(load_settings(), file, meta, owner=owner, shared=shared))
    if json_output:
        click.echo(json.dumps(as_json(result), indent=2))
    else:
        lines = describe(result)
        if owner is not None or result.row.shared:
            whose = f"owned by {owner}" if owner is not None else "no owner"
            lines.append(whose + (", shared with the team" if result.row.shared else ""))
        click.echo("\n".join(lines))
