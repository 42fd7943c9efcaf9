"""Ownership: the one `Scope` argument every store read and write of an owned row takes.

A row of an owned table (`store.models.Owned`: datasets, runs, and whatever table is
added next) has an `owner_id` and a `shared` flag. A `Scope` says whose rows a caller may
see and change:

- `SYSTEM` (the default of every store function): workers, the reaper and the CLI see
  and change everything;
- `Scope.local()`: the single user of an embedded server with no users configured
  (admin; the rows it creates have no owner);
- `Scope.user(id, admin=...)`: a signed-in user. A non-admin sees the rows it owns and
  rows shared with the team, and changes only its own; an admin sees and changes all.

Store functions turn a scope into SQL with `scope.visible(Model)` (list and get
queries) and check writes with `require_change`. A row the scope may not see raises the
very `NotFoundError` an unknown id raises, so ids cannot be probed; a visible row it may
not change raises `ForbiddenError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import or_, select, true, update
from sqlalchemy.sql import ColumnElement

from store.db import Database
from store.errors import ForbiddenError, NotFoundError

__all__ = ["NOBODY", "SYSTEM", "Scope", "get_visible", "require_change", "set_shared"]

T = TypeVar("T")


@dataclass(frozen=True)
class Scope:
    """Whose rows a caller may see and change; `name` and `token_id` are for the audit log."""

    user_id: int | None = None
    """The caller's user id; None = no user (system, or the embedded local user)."""
    admin: bool = True
    """Sees and changes every row."""
    name: str = "system"
    token_id: str | None = None
    nobody: bool = False
    """Sees nothing at all (an anonymous caller that slipped past authorization)."""

    @classmethod
    def local(cls) -> Scope:
        """The single user of an embedded server without users: sees everything."""
        return cls(user_id=None, admin=True, name="local")

    @classmethod
    def user(cls, user_id: int, *, admin: bool = False, name: str = "", token_id: str | None = None) -> Scope:
        return cls(user_id=user_id, admin=admin, name=name or f"user {user_id}", token_id=token_id)

    @property
    def owner_id(self) -> int | None:
        """The `owner_id` of rows this caller creates (None for system and local)."""
        return self.user_id

    def visible(self, model: Any) -> list[ColumnElement[bool]]:
        """WHERE conditions selecting the rows of `model` this scope may see ([] = all)."""
        if self.nobody:
            return [~true()]
        if self.admin:
            return []
        conditions: list[ColumnElement[bool]] = [model.owner_id == self.user_id]
        if hasattr(model, "shared"):
            conditions.append(model.shared.is_(True))
        return [or_(*conditions)]

    def sees(self, row: Any) -> bool:
        """The Python twin of `visible` for one loaded row."""
        if self.nobody:
            return False
        if self.admin:
            return True
        return row.owner_id == self.user_id or bool(getattr(row, "shared", False))

    def changes(self, row: Any) -> bool:
        """Whether this scope may change (cancel, delete, share, edit) `row`."""
        return not self.nobody and (self.admin or row.owner_id == self.user_id)


SYSTEM = Scope()
"""Everything: what workers, the reaper and command-line tools use."""

NOBODY = Scope(user_id=None, admin=False, name="anonymous", nobody=True)


async def get_visible(db: Database, model: type[T], id: Any, scope: Scope, kind: str) -> T:
    """The row of `model` with primary key `id` if `scope` sees it, else NotFoundError(kind, id)."""
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    async with db.session() as s:
        row = (await s.execute(select(model).where(pk == id, *scope.visible(model)))).scalar_one_or_none()
    if row is None:
        raise NotFoundError(kind, id)
    return row


def require_change(row: Any, scope: Scope, kind: str, id: Any) -> None:
    """NotFoundError when `scope` cannot even see `row`; ForbiddenError when it may only read it."""
    if not scope.sees(row):
        raise NotFoundError(kind, id)
    if not scope.changes(row):
        raise ForbiddenError(f"{kind} {id} belongs to another user; only its owner or an admin may change it")


async def set_shared(db: Database, model: type[T], id: Any, shared: bool, scope: Scope, kind: str) -> T:
    """Share a row with the team (or stop sharing it); only its owner or an admin may."""
    row = await get_visible(db, model, id, scope, kind)
    require_change(row, scope, kind, id)
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    async with db.session() as s:
        await s.execute(update(model).where(pk == id).values(shared=bool(shared)))
    return await get_visible(db, model, id, scope, kind)
