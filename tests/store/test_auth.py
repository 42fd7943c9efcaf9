"""Users, tokens, the audit log and ownership scopes in the store, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from store import audit, auth
from store.datasets import delete_dataset, get_dataset, list_datasets, save_dataset
from store.db import Database
from store.errors import BadInputError, ConflictError, ForbiddenError, NotFoundError
from store.models import AuditRow, TokenRow
from store.run_queries import list_runs, run_stats, visible_run_ids
from store.runs import cancel_run, create_run, get_run
from store.scope import NOBODY, SYSTEM, Scope, set_shared
from tests.store.conftest import make_bars


async def test_tokens_keep_only_a_hash_and_stop_when_revoked_or_expired(db: Database) -> None:
    await auth.create_user(db, "alice", admin=True)
    bob = await auth.create_user(db, "bob")
    with pytest.raises(ConflictError):
        await auth.create_user(db, "bob")
    with pytest.raises(BadInputError):
        await auth.create_user(db, "no spaces")
    with pytest.raises(BadInputError, match="not an admin"):
        await auth.create_token(db, "bob", ["admin"])
    with pytest.raises(NotFoundError):
        await auth.create_token(db, "carol", ["read"])

    issued = await auth.create_token(db, "bob", ["run"], note="ci")
    async with db.session() as s:
        stored = await s.get(TokenRow, issued.row.id)
    assert stored is not None and issued.secret not in (stored.token_hash, stored.id)
    assert stored.token_hash == auth.hash_token(issued.secret)

    me = await auth.authenticate(db, issued.secret)
    assert (me.user_id, me.name, me.admin) == (bob.id, "bob", False)
    assert me.scopes == {"read", "run"} and me.scope == Scope.user(bob.id, name="bob", token_id=me.token_id)
    for bad in ("", "bt_123", issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B"),
                f"bt_{'0' * 12}_{'x' * 43}"):
        with pytest.raises(auth.AuthError):
            await auth.authenticate(db, bad)

    # A scope reaches only its own user's tokens: someone else's id is simply not found.
    with pytest.raises(NotFoundError):
        await auth.revoke_token(db, issued.row.id, scope=Scope.user(bob.id + 100))
    await auth.revoke_token(db, issued.row.id, scope=Scope.user(bob.id))
    assert not await auth.token_active(db, issued.row.id)
    with pytest.raises(auth.AuthError, match="revoked"):
        await auth.authenticate(db, issued.secret)

    brief = await auth.create_token(db, "alice", ["admin"], expires_in=timedelta(seconds=1))
    admin = await auth.authenticate(db, brief.secret)
    assert admin.admin and admin.scopes == {"read", "run", "admin"} and admin.scope.admin
    async with db.session() as s:
        await s.execute(update(TokenRow).where(TokenRow.id == brief.row.id)
                        .values(expires_at=brief.row.created_at - timedelta(seconds=1)))
    with pytest.raises(auth.AuthError, match="expired"):
        await auth.authenticate(db, brief.secret)
    assert [t.id for t, _ in await auth.list_tokens(db, scope=Scope.user(bob.id))] == [issued.row.id]
    assert len(await auth.list_tokens(db)) == 2


def test_durations() -> None:
    assert auth.parse_duration("30d") == timedelta(days=30)
    assert auth.parse_duration(" 12h ") == timedelta(hours=12)
    for bad in ("", "0d", "3x", "d"):
        with pytest.raises(BadInputError):
            auth.parse_duration(bad)


async def test_audit_log_is_append_only(db: Database) -> None:
    scope = Scope.user(7, name="alice", token_id="abc")
    await audit.record(db, scope, "run.create", "run", "r1", strategy="ema")
    await audit.record(db, SYSTEM, "dataset.delete", "dataset", 3)
    page = await audit.list_entries(db)
    assert [e.action for e in page] == ["dataset.delete", "run.create"] and page.total == 2
    assert page[1].actor == "alice" and page[1].token_id == "abc" and page[1].detail == {"strategy": "ema"}
    assert [e.action for e in await audit.list_entries(db, action="run.")] == ["run.create"]
    assert [e.actor for e in await audit.list_entries(db, actor="system")] == ["system"]
    with pytest.raises((DBAPIError, IntegrityError)):
        async with db.session() as s:
            await s.execute(update(AuditRow).values(actor="mallory"))
    with pytest.raises((DBAPIError, IntegrityError)):
        async with db.session() as s:
            await s.execute(delete(AuditRow))
    async with db.session() as s:
        assert (await s.execute(select(AuditRow.actor).order_by(AuditRow.id))).scalars().all() == [
            "alice", "system"]


async def test_scopes_filter_runs_and_datasets(db: Database, blobs) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await auth.create_user(db, "alice"), await auth.create_user(db, "bob")
    a, b = Scope.user(alice.id), Scope.user(bob.id)
    bars = make_bars(300)
    ds_a = await save_dataset(db, blobs, bars, name="a", symbol="X", owner_id=alice.id)
    ds_b = await save_dataset(db, blobs, bars, name="b", symbol="X", owner_id=bob.id)
    assert ds_a.id != ds_b.id and ds_a.blob_key == ds_b.blob_key  # same bars, two owners
    again = await save_dataset(db, blobs, bars, name="a2", symbol="X", owner_id=alice.id)
    assert again.id == ds_a.id
    run = await create_run(db, strategy="s", dataset_id=ds_a.id, params={}, options={},
                           owner_id=alice.id)

    assert [d.id for d in await list_datasets(db, scope=b)] == [ds_b.id]
    assert [r.id for r in await list_runs(db, scope=b)] == []
    assert (await run_stats(db, scope=b))["total"] == 0
    assert (await run_stats(db, scope=a))["total"] == 1
    assert await visible_run_ids(db, [run.id, "nope"], scope=b) == set()
    assert len(await list_runs(db, scope=NOBODY)) == 0
    for scope in (b, NOBODY):  # exactly what an unknown id gives
        with pytest.raises(NotFoundError) as hidden:
            await get_run(db, run.id, scope=scope)
        with pytest.raises(NotFoundError) as unknown:
            await get_run(db, "0" * 36, scope=scope)
        assert str(hidden.value).replace(run.id, "?") == str(unknown.value).replace("0" * 36, "?")
        with pytest.raises(NotFoundError):
            await get_dataset(db, ds_a.id, scope=scope)
        with pytest.raises(NotFoundError):
            await cancel_run(db, run.id, scope=scope)

    # Shared: bob reads it but may not change it; admins and the owner may.
    with pytest.raises(NotFoundError):
        await set_shared(db, type(run), run.id, True, b, "run")
    await set_shared(db, type(run), run.id, True, a, "run")
    assert (await get_run(db, run.id, scope=b)).shared
    assert (await run_stats(db, scope=b))["total"] == 1
    with pytest.raises(ForbiddenError):
        await cancel_run(db, run.id, scope=b)
    with pytest.raises(ForbiddenError):
        await set_shared(db, type(run), run.id, False, b, "run")
    await cancel_run(db, run.id, scope=Scope.user(999, admin=True))

    # Deleting one owner's copy keeps the blob the other copy uses.
    await delete_dataset(db, blobs, ds_b.id, force=True, scope=b)
    assert await blobs.exists(ds_a.blob_key)
    with pytest.raises(NotFoundError):
        await delete_dataset(db, blobs, ds_a.id, force=True, scope=b)
