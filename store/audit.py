"""The audit log: who created, cancelled, deleted or shared what, and when; append-only.

`record` appends one entry for the acting `Scope` (its user, name and token) with the
current request id (`store.logctx`); nothing updates or deletes entries (the migration's
triggers refuse it on both databases). `list_entries` pages them newest first for admins.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select

from store.db import Database
from store.logctx import REQUEST_ID
from store.models import AuditRow, utcnow
from store.pagination import Page, check_first, decode_cursor, encode_cursor
from store.results import json_safe
from store.scope import Scope

__all__ = ["list_entries", "record"]

log = logging.getLogger("backtester.audit")


async def record(
    db: Database,
    scope: Scope,
    action: str,
    target_kind: str,
    target_id: object = None,
    **detail: Any,
) -> AuditRow:
    """Append one entry, e.g. `record(db, scope, "run.cancel", "run", run_id)`."""
    row = AuditRow(
        at=utcnow(),
        actor_id=scope.user_id,
        actor=scope.name[:100],
        token_id=scope.token_id,
        action=action[:64],
        target_kind=target_kind[:32],
        target_id=None if target_id is None else str(target_id)[:64],
        detail=json_safe(detail) if detail else None,
        request_id=(REQUEST_ID.get() or None),
    )
    async with db.session() as s:
        s.add(row)
    log.info("audit: %s %s %s %s", row.actor, action, target_kind, row.target_id or "")
    return row


async def list_entries(
    db: Database,
    *,
    first: int | None = 50,
    after: str | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> Page[AuditRow]:
    """Entries newest first; `action` matches exactly or as a prefix ending in '.' ("run.")."""
    size = check_first(first)
    filters = []
    if actor is not None:
        filters.append(AuditRow.actor == actor)
    if action is not None:
        filters.append(
            AuditRow.action.startswith(action, autoescape=True)
            if action.endswith(".") else AuditRow.action == action
        )
    q = select(AuditRow).where(*filters).order_by(AuditRow.id.desc())
    if after is not None:
        (last,) = decode_cursor(after, 1)
        q = q.where(AuditRow.id < int(last))
    async with db.session() as s:
        rows = list((await s.execute(q.limit(size + 1))).scalars())
        total = (await s.execute(select(func.count(AuditRow.id)).where(*filters))).scalar_one()
    more = len(rows) > size
    rows = rows[:size]
    cursors = [encode_cursor([r.id]) for r in rows]
    return Page(rows, cursors[-1] if more and cursors else None, cursors, total=int(total))
