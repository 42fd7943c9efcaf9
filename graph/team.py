"""Working as a team: who am I, sharing runs and datasets, API tokens, users, the audit log.

Tokens and users are created on the command line (`backtester user add`, `backtester
token create`); through the API a user lists and revokes its own tokens, an admin
everyone's. `shareRun` / `shareDataset` show a row to the whole team (only its owner or
an admin may). `auditLog` and `users` need the `admin` scope (`graph.permissions`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from graph.context import Info
from graph.datasets import Dataset, parse_dataset_id
from graph.pagination import Connection, build_connection, page_size
from graph.runs import Run
from graph.scalars import JSON, json_safe, to_utc
from store import audit as audit_store
from store import auth as auth_store
from store.models import utcnow


@strawberry.type(description="Who the API sees you as.")
class Me:
    name: str
    admin: bool = strawberry.field(description="Sees and changes every user's rows.")
    scopes: list[str]
    token_id: str | None = strawberry.field(description="Null for the embedded local user.")
    expires_at: datetime | None
    local: bool = strawberry.field(
        description="The single user of an embedded server with no users configured."
    )


@strawberry.type(description="An API token (its secret is shown once, when created).")
class ApiToken:
    id: strawberry.ID
    user: str
    scopes: list[str]
    note: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @strawberry.field(description="Neither revoked nor expired.")
    def active(self) -> bool:
        now = utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def from_row(cls, row: Any, user: str) -> ApiToken:
        return cls(
            id=strawberry.ID(row.id), user=user, scopes=list(row.scopes or []), note=row.note,
            created_at=to_utc(row.created_at),  # type: ignore[arg-type]
            expires_at=to_utc(row.expires_at), revoked_at=to_utc(row.revoked_at),
            last_used_at=to_utc(row.last_used_at),
        )


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    admin: bool
    created_at: datetime


@strawberry.type(description="One audit log entry: who did what to which object, and when.")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    actor: str = strawberry.field(description="User name (`local`, `system` without users).")
    token_id: str | None
    action: str = strawberry.field(
        description="e.g. run.create, run.cancel, run.share, dataset.create, dataset.delete, "
        "strategy.update, token.create, token.revoke, user.create."
    )
    target_kind: str
    target_id: str | None
    detail: JSON | None
    request_id: str | None

    @classmethod
    def from_row(cls, row: Any) -> AuditEntry:
        return cls(
            id=strawberry.ID(str(row.id)), at=to_utc(row.at),  # type: ignore[arg-type]
            actor=row.actor, token_id=row.token_id, action=row.action,
            target_kind=row.target_kind, target_id=row.target_id,
            detail=json_safe(row.detail) if row.detail is not None else None,
            request_id=row.request_id,
        )


@strawberry.type
class TeamQueries:
    @strawberry.field(description="The caller: user, admin or not, the token's scopes.")
    async def me(self, info: Info) -> Me:
        p = info.context.principal
        assert p is not None  # `authorize` refuses anonymous callers
        return Me(name=p.name, admin=p.admin, scopes=sorted(p.scopes), token_id=p.token_id,
                  expires_at=to_utc(p.expires_at), local=p.local)

    @strawberry.field(description="Your API tokens (an admin: everyone's), newest first.")
    async def api_tokens(self, info: Info) -> list[ApiToken]:
        rows = await auth_store.list_tokens(info.context.services.db, scope=info.context.scope)
        return [ApiToken.from_row(row, user) for row, user in rows]

    @strawberry.field(description="Every user (admin scope).")
    async def users(self, info: Info) -> list[User]:
        rows = await auth_store.list_users(info.context.services.db)
        return [User(id=strawberry.ID(str(u.id)), name=u.name, admin=u.is_admin,
                     created_at=to_utc(u.created_at)) for u in rows]  # type: ignore[arg-type]

    @strawberry.field(
        description="The audit log, newest first (admin scope); `action` matches exactly, or "
        "as a prefix when it ends in '.' (`run.`)."
    )
    async def audit_log(
        self,
        info: Info,
        first: int | None = 50,
        after: str | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> Connection[AuditEntry]:
        page = await audit_store.list_entries(
            info.context.services.db,
            first=page_size(first, maximum=info.context.limits.max_page),
            after=after, actor=actor, action=action,
        )
        return build_connection(page.items, page.cursors, shape=AuditEntry.from_row,
                                has_next=page.has_next, has_previous=after is not None,
                                total=page.total)


@strawberry.type
class TeamMutations:
    @strawberry.mutation(description="Show a run to the whole team, or stop (owner or admin).")
    async def share_run(self, info: Info, id: strawberry.ID, shared: bool = True) -> Run:
        return Run.from_row(await info.context.services.share_run(str(id), shared))

    @strawberry.mutation(description="Show a dataset to the whole team, or stop (owner or admin).")
    async def share_dataset(self, info: Info, id: strawberry.ID, shared: bool = True) -> Dataset:
        row = await info.context.services.datasets.share(parse_dataset_id(id), shared)
        return Dataset.from_row(row)

    @strawberry.mutation(
        description="Revoke an API token now: your own (an admin: anyone's). It stops working "
        "at once and its open subscriptions end within 2 seconds."
    )
    async def revoke_api_token(self, info: Info, id: strawberry.ID) -> ApiToken:
        services = info.context.services
        row = await auth_store.revoke_token(services.db, str(id), scope=info.context.scope)
        await services.audit("token.revoke", "token", row.id)
        mine = await auth_store.list_tokens(services.db, scope=info.context.scope)
        owner = next((user for token, user in mine if token.id == row.id), "")
        return ApiToken.from_row(row, owner)
