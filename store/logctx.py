"""Context variables that tag log lines and audit entries: the request id and the run id.

`app` sets the request id per HTTP request or websocket, `workers.jobs` the run id while
it executes a run; the JSON log formatter (`app.logs`) and `store.audit` read them. They
are context variables, so concurrent requests and runs (tasks, threads started with
`asyncio.to_thread`) each see their own.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["REQUEST_ID", "RUN_ID"]

REQUEST_ID: ContextVar[str | None] = ContextVar("bt_request_id", default=None)
RUN_ID: ContextVar[str | None] = ContextVar("bt_run_id", default=None)
