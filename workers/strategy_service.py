"""The strategy half of `Services`: sync the catalog, validate, edit, delete, gate runs.

Discovery imports user files and validation computes signals, so both run in threads,
never on the event loop. A sync registers what it found in this process's registry
(`strategies.registry`) so runs can be validated and executed here, and validates every
new or changed strategy on a small sample, so a broken one is refused at submit time
instead of wasting a queue slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.bars import Bars
from engine.errors import EngineInputError
from store import strategy_catalog as catalog
from store.audit import record as audit
from store.blobs import BlobStore
from store.datasets import get_dataset, load_bars
from store.db import Database
from store.errors import BadInputError, NotFoundError
from store.models import StrategyRow
from store.scope import Scope
from strategies import registry
from strategies.base import ParamError, Strategy
from strategies.discovery import (
    DiscoveryResult,
    StrategySpec,
    describe,
    discover,
    load_file,
    spec_for_class,
    spec_of,
)
from strategies.validation import sample_bars, validate_strategy

__all__ = ["StrategyServices", "failed_step"]

_UNSET: Any = object()


def failed_step(row: StrategyRow) -> tuple[str, str]:
    """(step, message) of the row's failed validation."""
    for step in row.validation_steps or []:
        if not step.get("ok"):
            return str(step.get("name")), str(step.get("message"))
    step, _, message = (row.validation_error or "unknown: no details recorded").partition(": ")
    return step, message


class StrategyServices:
    """Mixed into `workers.service.Services`, which provides `db`, `blobs` and the paths."""

    db: Database
    blobs: BlobStore
    strategy_paths: tuple[Path, ...]
    _sync_lock: asyncio.Lock
    scope: Scope

    # -- discovery and validation ---------------------------------------------------
    def _register(self, result: DiscoveryResult, *, full: bool) -> None:
        for spec in result.found:
            if spec.cls is not None:
                registry.register_strategy(spec.cls, replace=not spec.builtin)
        if full:  # user-file classes no longer found: their files are gone or broken
            found = result.by_name()
            for cls in registry.list_strategies():
                if cls.name not in found and spec_of(cls) is not None:
                    registry.unregister_strategy(cls.name)

    async def _bars(self, dataset_id: int | None) -> Bars:
        if dataset_id is None:
            return await asyncio.to_thread(sample_bars)
        await get_dataset(self.db, dataset_id, scope=self.scope)  # NotFoundError unless visible
        return await load_bars(self.db, self.blobs, dataset_id)

    async def _validate(self, spec: StrategySpec, bars: Bars) -> StrategyRow:
        report = await asyncio.to_thread(validate_strategy, spec, bars)
        return await catalog.record_validation(
            self.db, spec.name, ok=report.ok, error=report.error, steps=report.to_list(),
            code_hash=spec.code_hash,
        )

    async def sync_strategies(self, *, validate: bool = True) -> catalog.SyncOutcome:
        """Discover the built-ins and every STRATEGY_PATHS folder, mirror them into the
        catalog, and validate each new or changed strategy on the small sample."""
        async with self._sync_lock:
            result = await asyncio.to_thread(discover, self.strategy_paths)
            self._register(result, full=True)
            outcome = await catalog.sync_discovered(self.db, result)
            if validate and outcome.to_validate:
                specs, bars = result.by_name(), await self._bars(None)
                for name in outcome.to_validate:
                    await self._validate(specs[name], bars)
                outcome.rows = await catalog.list_strategy_rows(self.db)
            return outcome

    async def _sync_file(self, path: Path) -> DiscoveryResult:
        """Reload one user file and mirror it (nothing else is marked missing)."""
        specs, error = await asyncio.to_thread(load_file, path)
        result = DiscoveryResult(found=specs, errors=[error] if error else [])
        self._register(result, full=False)
        await catalog.sync_discovered(self.db, result, prune=False)
        return result

    def _allowed(self, raw: str) -> Path:
        """`raw` resolved, if it is a .py file inside a STRATEGY_PATHS entry (the server
        only executes code its operator pointed it at)."""
        path = Path(raw).expanduser().resolve()
        for root in self.strategy_paths:
            base = Path(root).expanduser().resolve()
            if path == base or base in path.parents:
                if path.suffix != ".py" or not path.is_file():
                    raise BadInputError("path", f"{raw} is not a .py file")
                return path
        raise BadInputError("path", f"{raw} is not inside a folder listed in STRATEGY_PATHS")

    async def validate_strategy(self, name: str, dataset_id: int | None = None) -> StrategyRow:
        """Run every validation step on a dataset (default: the small sample) and record
        the report (`row.validation_steps`). A user strategy's file is reloaded first, so
        what is validated is the code on disk now."""
        row = await catalog.find_strategy(self.db, name)
        if row is None or row.path is None:
            try:
                spec = spec_for_class(registry.get_strategy(name))
            except registry.UnknownStrategyError as exc:
                raise BadInputError("strategy", str(exc)) from None
            if row is None:
                await catalog.sync_discovered(self.db, DiscoveryResult(found=[spec]), prune=False)
        else:
            if row.deleted:
                raise NotFoundError("strategy", name)
            result = await self._sync_file(Path(row.path))
            found = result.by_name().get(name)
            if found is None:
                if result.errors:  # the file does not load: the sync marked it invalid
                    return await catalog.get_strategy_row(self.db, name)
                return await catalog.mark_missing(
                    self.db, name, f"no longer found: {row.path} does not define {name!r} any more"
                )
            spec = found
        bars = await self._bars(dataset_id)
        return await self._validate(spec, bars)

    async def validate_strategy_path(self, path: str, dataset_id: int | None = None) -> list[StrategyRow]:
        """Load, catalog and validate every strategy of one file in STRATEGY_PATHS; a file
        that does not load comes back as its (placeholder) row marked invalid."""
        file = self._allowed(path)
        result = await self._sync_file(file)
        if not result.found:
            rows = await catalog.list_strategy_rows(self.db, include_deleted=True)
            return [r for r in rows if r.path == str(file)]
        bars = await self._bars(dataset_id)
        return [await self._validate(spec, bars) for spec in result.found]

    # -- edits ------------------------------------------------------------------------
    async def update_strategy(
        self,
        name: str,
        *,
        description: str | None = _UNSET,
        tags: Sequence[str] | None = _UNSET,
        default_params: dict[str, Any] | None = _UNSET,
    ) -> StrategyRow:
        """Edit description, tags or default params (checked against the parameter schema;
        BadInputError field "default_params.<name>"). The settings belong to the first
        user who edits them (ForbiddenError for others, admins excepted)."""
        row = await catalog.claim_settings(self.db, name, self.scope)
        edits: dict[str, Any] = {}
        if description is not _UNSET:
            text = (description or "").strip()
            if len(text) > 5000:
                raise BadInputError("description", "is at most 5000 characters")
            if not text:  # cleared: back to the docstring, refreshed by later syncs
                text, edits["edited"] = await self._docstring(row), False
            edits["description"] = text or None
        if tags is not _UNSET:
            if tags is not None and (isinstance(tags, str) or any(not isinstance(t, str) for t in tags)):
                raise BadInputError("tags", "must be a list of strings")
            if tags and any(len(t) > 50 for t in tags):
                raise BadInputError("tags", "a tag is at most 50 characters")
            edits["tags"] = tags
        if default_params is not _UNSET:
            edits["default_params"] = await self._checked_defaults(row, default_params)
        updated = await catalog.update_strategy(self.db, name, **edits)
        await audit(self.db, self.scope, "strategy.update", "strategy", name, fields=sorted(edits))
        return updated

    async def _docstring(self, row: StrategyRow) -> str | None:
        try:
            cls, _ = await catalog.load_strategy_class(self.db, row.name)
        except EngineInputError:
            return row.description if not row.description_edited else None
        return describe(cls)

    async def _checked_defaults(
        self, row: StrategyRow, raw: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise BadInputError("default_params", "must be a JSON object")
        try:
            cls, _ = await catalog.load_strategy_class(self.db, row.name)
        except EngineInputError as exc:
            raise BadInputError("strategy", str(exc)) from None
        try:
            full = cls.validate_params(raw)
        except ParamError as exc:
            raise BadInputError(f"default_params.{exc.param}", str(exc)) from None
        return {key: full[key] for key in raw}  # coerced, only what the user chose

    async def delete_strategy(self, name: str) -> StrategyRow:
        """Soft delete: new runs are refused; runs that used it keep their record. Only the
        owner of the strategy's settings (or an admin) may."""
        await catalog.claim_settings(self.db, name, self.scope)
        row = await catalog.delete_strategy(self.db, name)
        await audit(self.db, self.scope, "strategy.delete", "strategy", name)
        return row

    # -- the gate in front of submit ---------------------------------------------------
    async def runnable_strategy(self, name: str) -> tuple[type[Strategy], dict[str, Any]]:
        """(class, user default params) of a strategy that may run now, or BadInputError
        (field "strategy") saying why not: unknown, deleted, missing, or failed validation
        (naming the failed step)."""
        row = await catalog.find_strategy(self.db, name)
        if row is not None:
            if row.deleted:
                raise BadInputError("strategy", f"strategy {name!r} was deleted")
            if row.validation_status == "invalid":
                step, message = failed_step(row)
                raise BadInputError(
                    "strategy",
                    f"strategy {name!r} failed validation at step {step!r}: {message}; fix it, "
                    "then call validateStrategy (or syncStrategies)",
                )
            if row.validation_status == "missing":
                raise BadInputError("strategy", f"strategy {name!r} is not available: {row.validation_error}")
        try:
            cls, _ = await catalog.load_strategy_class(self.db, name)
        except EngineInputError as exc:  # UnknownStrategyError included, with its suggestion
            raise BadInputError("strategy", str(exc)) from None
        return cls, dict(row.default_params or {}) if row is not None else {}
