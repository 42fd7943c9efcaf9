"""`backtester user ...` and `backtester token ...`: identities for a team deployment.

    backtester user add alice --admin
    backtester token create --user alice --scope admin --expires 30d
    backtester token list
    backtester token revoke 3f2a9c01b7de

They work on the database the server uses (DATABASE_URL, else the embedded SQLite file
in the data directory). A token is printed once, on standard output alone (so scripts
can capture it); only its hash is stored. Once any user exists, the server asks every
caller for a token. Each change is written to the audit log as the actor `cli`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from app.cli import main
from app.cli_service import load_settings, one_line_errors
from app.settings import Settings

T = TypeVar("T")


async def _with_db(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from app.stack import prepare_database
    from store.db import Database

    if settings.should_migrate or settings.database_url is None:
        await prepare_database(settings)
    db = Database(settings.effective_database_url)
    try:
        return await work(db)
    finally:
        await db.dispose()


def _cli_scope() -> Any:
    from store.scope import Scope

    return Scope(user_id=None, admin=True, name="cli")


def _when(value: Any) -> str:
    return "-" if value is None else value.isoformat(timespec="seconds")


@main.group()
def user() -> None:
    """Users of a team deployment (once one exists, every API caller needs a token)."""


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Sees and changes every user's runs and datasets.")
@one_line_errors
def user_add(name: str, admin: bool) -> None:
    """Add user NAME."""
    from store import audit, auth

    async def work(db: Any) -> Any:
        row = await auth.create_user(db, name, admin=admin)
        await audit.record(db, _cli_scope(), "user.create", "user", row.id, name=name, admin=admin)
        return row

    row = asyncio.run(_with_db(load_settings(), work))
    role = "admin" if row.is_admin else "user"
    click.echo(f"added {role} {row.name} (id {row.id}); create a token with "
               f"`backtester token create --user {row.name} --scope {'admin' if admin else 'run'}`")


@user.command("list")
@one_line_errors
def user_list() -> None:
    """List users."""
    from store import auth

    rows = asyncio.run(_with_db(load_settings(), auth.list_users))
    for row in rows:
        click.echo(f"{row.id}\t{row.name}\t{'admin' if row.is_admin else 'user'}\t{_when(row.created_at)}")


@main.group()
def token() -> None:
    """API tokens (sent as `Authorization: Bearer <token>`)."""


@token.command("create")
@click.option("--user", "user_name", required=True, help="The user the token acts as.")
@click.option(
    "--scope", "scopes", multiple=True, type=click.Choice(["read", "run", "admin"]),
    default=("read",), show_default=True,
    help="read: queries and subscriptions; run: also submit, cancel, upload; admin: also "
    "audit log and user admin (admin users only). Repeatable.",
)
@click.option("--expires", default=None, help="Lifetime such as 30d, 12h or 2w (default: never).")
@click.option("--note", default=None, help="What the token is for.")
@one_line_errors
def token_create(user_name: str, scopes: tuple[str, ...], expires: str | None, note: str | None) -> None:
    """Create a token; it is printed once (stdout), only its hash is kept."""
    from store import audit, auth

    lifetime = auth.parse_duration(expires) if expires else None

    async def work(db: Any) -> Any:
        issued = await auth.create_token(db, user_name, list(scopes), expires_in=lifetime, note=note)
        await audit.record(db, _cli_scope(), "token.create", "token", issued.row.id,
                           user=user_name, scopes=list(issued.row.scopes))
        return issued

    issued = asyncio.run(_with_db(load_settings(), work))
    click.echo(
        f"token {issued.row.id} for {issued.user.name} (scopes: {', '.join(issued.row.scopes)}; "
        f"expires: {_when(issued.row.expires_at)}). It is shown only now: store it safely.",
        err=True,
    )
    click.echo(issued.secret)


@token.command("revoke")
@click.argument("token_id")
@one_line_errors
def token_revoke(token_id: str) -> None:
    """Revoke token TOKEN_ID now (its open subscriptions end within 2 s)."""
    from store import audit, auth

    async def work(db: Any) -> Any:
        row = await auth.revoke_token(db, token_id.removeprefix("bt_").split("_")[0])
        await audit.record(db, _cli_scope(), "token.revoke", "token", row.id)
        return row

    row = asyncio.run(_with_db(load_settings(), work))
    click.echo(f"revoked token {row.id} at {_when(row.revoked_at)}")


@token.command("list")
@click.option("--user", "user_name", default=None, help="Only this user's tokens.")
@one_line_errors
def token_list(user_name: str | None) -> None:
    """List tokens (never their secrets)."""
    from store import auth

    async def work(db: Any) -> Any:
        return await auth.list_tokens(db, user=user_name)

    rows = asyncio.run(_with_db(load_settings(), work))
    click.echo("id\tuser\tscopes\tcreated\texpires\trevoked\tlast used")
    for row, name in rows:
        click.echo("\t".join([
            row.id, name, ",".join(row.scopes or []), _when(row.created_at), _when(row.expires_at),
            _when(row.revoked_at), _when(row.last_used_at),
        ]))
