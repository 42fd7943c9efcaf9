"""One run read for display (`run(id)`, the API's hottest read), at the lowest cost.

`read_run` returns a `RunView`, a read-only tuple with the attributes of `RunRow`'s
columns: no ORM identity map or change tracking. On PostgreSQL the statement, compiled
once per scope from the same Core query as on SQLite (so `Scope.visible` stays the one
visibility rule), runs on a pooled connection's asyncpg driver directly: SQLAlchemy's
execution and result layers cost more than the read itself (a run's JSON columns are
decoded by the codecs SQLAlchemy installs on every asyncpg connection; asyncpg returns
aware UTC datetimes).
"""

from __future__ import annotations

from collections import namedtuple
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import Select, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.util.concurrency import greenlet_spawn

from store.db import Database
from store.errors import NotFoundError
from store.models import RunRow, RunStatus
from store.scope import SYSTEM, Scope

__all__ = ["RunView", "read_run"]

_RUNS = RunRow.__table__
RunView = namedtuple("RunView", [c.key for c in _RUNS.columns])  # type: ignore[misc]
"""A run row's columns as attributes (`status` a `RunStatus`), read-only."""


@lru_cache(maxsize=1024)
def _run_by_id(scope: Scope) -> Select[Any]:
    """`SELECT runs.* WHERE id = :id` and what `scope` sees, built once per scope."""
    return select(_RUNS).where(_RUNS.c.id == bindparam("id"), *scope.visible(RunRow))


@lru_cache(maxsize=1024)
def _for_asyncpg(scope: Scope, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """(SQL with $n placeholders, parameter names in order, the scope's bound values)."""
    compiled = _run_by_id(scope).compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params)


async def read_run(db: Database, run_id: str, *, scope: Scope = SYSTEM) -> RunView:
    """The run if `scope` sees it, for display; NotFoundError (as for an unknown id) otherwise."""
    if db.dialect == "postgresql":
        record = await _fetch_asyncpg(db, str(run_id), scope)
        row = None if record is None else RunView(*record)
    else:
        async with db.read() as s:
            found = (await s.execute(_run_by_id(scope), {"id": str(run_id)})).first()
        row = None if found is None else RunView(*found)
    if row is None:
        raise NotFoundError("run", run_id)
    return row._replace(status=RunStatus(row.status))


async def _fetch_asyncpg(db: Database, run_id: str, scope: Scope) -> Any:
    sql, names, bound = _for_asyncpg(scope, db.engine.dialect)
    values = {**bound, "id": run_id}
    # A pooled connection (checkout hooks included) outside any transaction: asyncpg
    # runs a lone statement in autocommit, so there is no BEGIN/ROLLBACK round trip.
    conn = await db.engine.raw_connection()
    try:
        return await conn.driver_connection.fetchrow(sql, *(values[n] for n in names))
    except asyncpg.PostgresError:
        raise  # the server refused the statement; the connection is fine
    except BaseException:
        await greenlet_spawn(conn.invalidate)  # cut short (e.g. cancelled): state unknown
        raise
    finally:
        await greenlet_spawn(conn.close)
