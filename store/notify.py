"""PostgreSQL LISTEN with reconnects: the one feed loop behind every cross-process cache.

A per-process cache (verified tokens, the strategy catalog snapshot) may be trusted only
while the process hears the NOTIFYs that invalidate it. `listen` keeps one dedicated
asyncpg connection LISTENing on a channel, pings it (a dead connection shows only when
used), reconnects with a capped back-off, and tells the caller when it is live and when
it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from store.db import Database

__all__ = ["listen"]

log = logging.getLogger("backtester.store")


async def listen(
    db: Database, channel: str, on_payload: Callable[[str], None],
    on_live: Callable[[bool], None], *, ping_s: float = 5.0, what: str = "notification feed",
) -> None:
    """LISTEN on `channel` until cancelled, calling `on_payload(payload)` for each NOTIFY,
    `on_live(True)` once listening and `on_live(False)` as soon as the connection is lost
    (it reconnects by itself). Returns at once on SQLite (one process, nothing to hear)."""
    if db.dialect != "postgresql":
        return
    import asyncpg

    dsn = db.url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    delay = 0.1
    while True:
        conn: Any = None
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            lost = asyncio.get_running_loop().create_future()
            conn.add_termination_listener(lambda c, f=lost: f.done() or f.set_result(None))
            await conn.add_listener(channel, lambda c, pid, ch, payload: on_payload(str(payload)))
            on_live(True)
            delay = 0.1
            while not lost.done():  # a dead connection shows only when used: ping it
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(lost), ping_s)
                if not lost.done():
                    await conn.fetchval("SELECT 1", timeout=ping_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s lost (%s); reconnecting", what, exc)
        finally:
            on_live(False)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 1.0)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
