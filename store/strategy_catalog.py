"""The strategy catalog: one row per known strategy, with its code hash and validation state.

`sync_discovered` mirrors a `strategies.discovery.DiscoveryResult` into the table: new
strategies are inserted "unvalidated", a changed code hash resets the validation state
(and refreshes the description unless a user edited it), a file that no longer loads
marks its strategies "invalid" with the error (a placeholder row named after the file
when it never loaded), and strategies no longer found become "missing". Soft deletes
and user edits (description, tags, default params) survive every sync. Usage counts,
best metrics and summary statistics live in `store.strategy_usage`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from engine.errors import EngineInputError
from store.db import Database
from store.errors import ForbiddenError, NotFoundError
from store.models import StrategyRow, utcnow
from store.scope import Scope
from store.strategy_snapshot import catalog_write
from store.strategy_usage import bump_usage, note_run_success, strategy_stats, usage_by_strategy
from strategies.base import ParamError, Strategy
from strategies.discovery import (
    DiscoveryError,
    DiscoveryResult,
    StrategySpec,
    load_file,
    spec_for_class,
    spec_of,
)
from strategies.registry import UnknownStrategyError, get_strategy, list_strategies

__all__ = [
    "RUNNABLE",
    "STATUSES",
    "SyncOutcome",
    "bump_usage",
    "claim_settings",
    "code_hash",
    "delete_strategy",
    "filter_rows",
    "find_strategy",
    "get_strategy_row",
    "list_strategy_rows",
    "load_strategy_class",
    "mark_missing",
    "note_run_success",
    "record_validation",
    "strategy_stats",
    "sync_discovered",
    "sync_strategies",
    "update_strategy",
    "usage_by_strategy",
]

STATUSES = ("unvalidated", "valid", "invalid", "missing")
RUNNABLE = frozenset({"unvalidated", "valid"})
FILE_STEPS = frozenset({"path", "import", "discover"})  # errors about a whole file
_UNSET: Any = object()


@dataclass
class SyncOutcome:
    """Live rows after a sync, the discovery errors, and what needs validating now."""

    rows: list[StrategyRow] = field(default_factory=list)
    errors: list[DiscoveryError] = field(default_factory=list)
    to_validate: list[str] = field(default_factory=list)
    """Names found in this discovery whose rows are live and "unvalidated"."""


def code_hash(cls: type[Strategy]) -> str:
    """sha256 of the file that defines `cls` (what the catalog records)."""
    return spec_for_class(cls).code_hash


def _clean_defaults(spec: StrategySpec, defaults: dict[str, Any] | None) -> dict[str, Any] | None:
    """User default params still valid for the (new) class, or None."""
    if not defaults or spec.cls is None:
        return defaults
    try:
        spec.cls.validate_params(defaults)
    except ParamError:
        return None
    return defaults


async def _upsert(db: Database, spec: StrategySpec) -> None:
    now = utcnow()
    fields = {
        "module": spec.module, "class_name": spec.class_name, "path": spec.path,
        "params_schema": spec.params_schema, "code_hash": spec.code_hash,
    }
    for tries in (1, 2):  # a concurrent insert of the same name: update it instead
        try:
            async with catalog_write(db) as s:
                row = await _by_name(s, spec.name)
                if row is None:
                    s.add(StrategyRow(
                        name=spec.name, description=spec.description, tags=[],
                        validation_status="unvalidated", usage_count=0,
                        description_edited=False, created_at=now, updated_at=now, **fields,
                    ))
                    return
                if row.code_hash != spec.code_hash or row.validation_status == "missing":
                    row.validation_status = "unvalidated"
                    row.validation_error = row.validation_steps = None
                    row.default_params = _clean_defaults(spec, row.default_params)
                    if not row.description_edited:
                        row.description = spec.description
                    row.updated_at = now
                for key, value in fields.items():
                    if getattr(row, key) != value:
                        setattr(row, key, value)
                        row.updated_at = now
                return
        except IntegrityError:
            if tries == 2:
                raise


async def _by_name(s: AsyncSession, name: str) -> StrategyRow | None:
    return (await s.execute(select(StrategyRow).where(StrategyRow.name == name))).scalar_one_or_none()


def _placeholder_name(path: str, taken: set[str]) -> str:
    stem = re.sub(r"\W", "_", path.rsplit("/", 1)[-1].removesuffix(".py"))[:80] or "strategy"
    if stem not in taken:
        return stem
    return f"{stem}_{hashlib.sha256(path.encode()).hexdigest()[:8]}"


async def _mark_file_error(db: Database, error: DiscoveryError) -> None:
    """The strategies of a file that no longer loads become invalid, with its error; a
    file that never loaded gets a placeholder row so its author sees what is wrong."""
    now = utcnow()
    step = "import" if error.step == "path" else error.step
    values = {
        "validation_status": "invalid",
        "validation_error": f"{step}: {error.message}",
        "validation_steps": [{"name": "import", "ok": False, "message": error.message}],
        "last_validated_at": now,
        "updated_at": now,
    }
    if error.code_hash is not None:
        values["code_hash"] = error.code_hash
    async with catalog_write(db) as s:
        rows = list((await s.execute(select(StrategyRow).where(StrategyRow.path == error.path))).scalars())
        if rows:
            live = [r.id for r in rows if not r.deleted]
            if live:
                await s.execute(update(StrategyRow).where(StrategyRow.id.in_(live)).values(**values))
            return
        taken = set((await s.execute(select(StrategyRow.name))).scalars())
        s.add(StrategyRow(
            name=_placeholder_name(error.path, taken), module="", class_name="",
            path=error.path, description=None, params_schema=[], tags=[], usage_count=0,
            description_edited=False, created_at=now, **values,
        ))


async def _mark_missing(db: Database, result: DiscoveryResult) -> None:
    found = {spec.name for spec in result.found}
    broken = {e.path for e in result.errors if e.step in FILE_STEPS}
    now = utcnow()
    async with catalog_write(db) as s:
        rows = (await s.execute(select(StrategyRow).where(StrategyRow.deleted_at.is_(None)))).scalars()
        for row in list(rows):
            if row.name in found or (row.path is not None and row.path in broken):
                continue
            if row.class_name == "":  # a placeholder whose file loads now (or is gone)
                await s.execute(delete(StrategyRow).where(StrategyRow.id == row.id))
                continue
            if row.validation_status == "missing":
                continue
            where = row.path or row.module
            row.validation_status = "missing"
            row.validation_error = (
                f"no longer found: {where} does not define {row.class_name} any more, or "
                "its folder is no longer in STRATEGY_PATHS"
            )
            row.updated_at = now


async def sync_discovered(db: Database, result: DiscoveryResult, *, prune: bool = True) -> SyncOutcome:
    """Mirror a discovery into the catalog; `prune` marks rows it did not find "missing"
    (pass False when `result` covers only some files)."""
    for spec in result.found:
        await _upsert(db, spec)
    for error in result.errors:
        if error.step in FILE_STEPS and error.path.endswith(".py"):
            await _mark_file_error(db, error)
    if prune:
        await _mark_missing(db, result)
    rows = await list_strategy_rows(db)
    found = {spec.name for spec in result.found}
    todo = [r.name for r in rows if r.name in found and r.validation_status == "unvalidated"]
    return SyncOutcome(rows=rows, errors=list(result.errors), to_validate=todo)


async def sync_strategies(db: Database, classes: Iterable[Any] | None = None) -> list[StrategyRow]:
    """Upsert a row per strategy class (default: every registered one); returns live rows.

    Never marks anything missing: use `sync_discovered` for a full sync.
    """
    specs = [spec_for_class(cls) for cls in (list_strategies() if classes is None else classes)]
    return (await sync_discovered(db, DiscoveryResult(found=specs), prune=False)).rows


async def list_strategy_rows(
    db: Database,
    *,
    include_deleted: bool = False,
    status: str | Sequence[str] | None = None,
    search: str | None = None,
) -> list[StrategyRow]:
    """Rows by name; `status` filters on validation status, `search` matches name,
    description, class, module, path or a tag (case-insensitive substring)."""
    q = select(StrategyRow).order_by(StrategyRow.name)
    if not include_deleted:
        q = q.where(StrategyRow.deleted_at.is_(None))
    if status is not None:
        q = q.where(StrategyRow.validation_status.in_([status] if isinstance(status, str) else status))
    async with db.read() as s:
        rows = list((await s.execute(q)).scalars())
    return filter_rows(rows, search=search)


def filter_rows(
    rows: Iterable[StrategyRow], *, status: str | None = None, search: str | None = None
) -> list[StrategyRow]:
    """The rows with validation `status` whose name, description, class, module, path or
    a tag contains `search` (case-insensitive substring)."""
    text = (search or "").strip().lower()
    # a catalog holds hundreds of rows at most; tags are JSON in either database
    return [
        row for row in rows
        if (status is None or row.validation_status == status)
        and (not text or any(text in h.lower() for h in _haystack(row)))
    ]


def _haystack(row: StrategyRow) -> list[str]:
    fields = [row.name, row.description, row.class_name, row.module, row.path]
    return [f for f in fields if f] + list(row.tags or [])


async def find_strategy(db: Database, name: str) -> StrategyRow | None:
    """The row for `name`, deleted or not; None if the catalog has never seen it."""
    async with db.read() as s:
        return await _by_name(s, name)


async def get_strategy_row(db: Database, name: str) -> StrategyRow:
    row = await find_strategy(db, name)
    if row is None or row.deleted:
        raise NotFoundError("strategy", name)
    return row


async def update_strategy(
    db: Database,
    name: str,
    *,
    description: str | None = _UNSET,
    tags: Sequence[str] | None = _UNSET,
    default_params: dict[str, Any] | None = _UNSET,
    edited: bool = True,
) -> StrategyRow:
    """Edit what users may edit; only the arguments given change. `default_params` must
    already be validated (see `workers.strategy_service`). `edited=False` stores a
    description taken from the code (syncs keep refreshing it). NotFoundError for
    unknown/deleted names."""
    row = await get_strategy_row(db, name)
    values: dict[str, Any] = {"updated_at": utcnow()}
    if description is not _UNSET:
        values["description"] = description
        values["description_edited"] = edited
    if tags is not _UNSET:
        values["tags"] = sorted({t.strip() for t in tags or [] if t.strip()})
    if default_params is not _UNSET:
        values["default_params"] = dict(default_params) if default_params else None
    async with catalog_write(db) as s:
        await s.execute(update(StrategyRow).where(StrategyRow.id == row.id).values(**values))
    return await get_strategy_row(db, name)


async def claim_settings(db: Database, name: str, scope: Scope) -> StrategyRow:
    """The strategy, if `scope` may change its settings (description, tags, default params,
    deletion): they belong to the first user who edits them, who then owns them; others get
    ForbiddenError (the catalog itself is everyone's, so this is not a NOT_FOUND)."""
    row = await get_strategy_row(db, name)
    if row.owner_id is not None and not scope.changes(row):
        raise ForbiddenError(
            f"the settings of strategy {name!r} belong to another user; only they or an admin "
            "may change them"
        )
    if row.owner_id is None and scope.user_id is not None:
        async with catalog_write(db) as s:
            await s.execute(
                update(StrategyRow)
                .where(StrategyRow.id == row.id, StrategyRow.owner_id.is_(None))
                .values(owner_id=scope.user_id)
            )
    return row


async def mark_missing(db: Database, name: str, reason: str) -> StrategyRow:
    """A strategy whose code is gone: kept (its runs refer to it) but not runnable."""
    row = await get_strategy_row(db, name)
    async with catalog_write(db) as s:
        await s.execute(
            update(StrategyRow).where(StrategyRow.id == row.id).values(
                validation_status="missing", validation_error=reason, updated_at=utcnow()
            )
        )
    return await get_strategy_row(db, name)


async def delete_strategy(db: Database, name: str) -> StrategyRow:
    """Soft delete: hidden from lists and refused for new runs; past runs keep the name."""
    row = await get_strategy_row(db, name)
    now = utcnow()
    async with catalog_write(db) as s:
        await s.execute(
            update(StrategyRow).where(StrategyRow.id == row.id).values(deleted_at=now, updated_at=now)
        )
    found = await find_strategy(db, name)
    assert found is not None
    return found


async def record_validation(
    db: Database,
    name: str,
    *,
    ok: bool,
    error: str | None = None,
    steps: list[dict[str, Any]] | None = None,
    code_hash: str | None = None,
) -> StrategyRow:
    """Store a validation outcome. With `code_hash`, only if the row still has that hash
    (a report about code that changed meanwhile is dropped)."""
    row = await get_strategy_row(db, name)
    now = utcnow()
    stmt = update(StrategyRow).where(StrategyRow.id == row.id)
    if code_hash is not None:
        stmt = stmt.where(StrategyRow.code_hash == code_hash)
    async with catalog_write(db) as s:
        await s.execute(
            stmt.values(
                validation_status="valid" if ok else "invalid",
                validation_error=None if ok else error,
                validation_steps=steps,
                last_validated_at=now,
                updated_at=now,
            )
        )
    return await get_strategy_row(db, name)


async def load_strategy_class(db: Database, name: str) -> tuple[type[Strategy], str | None]:
    """(class, code hash) that a run of `name` executes: the class loaded in this process
    when its code is the catalog's, else the catalog's file loaded afresh (a worker on
    another machine). EngineInputError (UnknownStrategyError for unknown names) when the
    code cannot be had, or the file changed since it was synced: runs only execute code
    the catalog knows, so every result is traceable to its code hash."""
    row = await find_strategy(db, name)
    if row is None or row.path is None:
        return get_strategy(name), None if row is None else row.code_hash
    try:
        registered: type[Strategy] | None = get_strategy(name)
    except UnknownStrategyError:
        registered = None
    known = spec_of(registered) if registered is not None else None
    if known is not None and known.code_hash == row.code_hash:
        return registered, row.code_hash  # type: ignore[return-value]
    specs, error = await asyncio.to_thread(load_file, row.path)
    if error is not None:
        raise EngineInputError(f"strategy {name!r} cannot be loaded: {error.message}")
    spec = next((x for x in specs if x.name == name and x.cls is not None), None)
    if spec is None or spec.cls is None:
        raise EngineInputError(f"{row.path} no longer defines strategy {name!r}; run syncStrategies")
    if spec.code_hash != row.code_hash:
        raise EngineInputError(
            f"{row.path} changed since strategy {name!r} was synced; run syncStrategies so the "
            "new code is validated before it runs"
        )
    return spec.cls, row.code_hash
