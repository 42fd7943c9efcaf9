"""Logging setup: the classic text lines, or one JSON object per line tagged with ids.

Every record gets `request_id` and `run_id` attributes from `store.logctx` (None when
not inside a request or a run), so either format can show them. JSON lines carry `ts`,
`level`, `logger`, `message`, those ids when set, and `exc` with the traceback; a log
shipper needs no parsing rules. The text format is unchanged from before.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from store.logctx import REQUEST_ID, RUN_ID

__all__ = ["TEXT_FORMAT", "ContextFilter", "JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "request_id", "run_id",
}


class ContextFilter(logging.Filter):
    """Adds `request_id` and `run_id` (from the context variables) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        if getattr(record, "run_id", None) is None:
            record.run_id = RUN_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; extra attributes (`log.info(..., extra={...})`) kept."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "run_id"):
            value = getattr(record, key, None)
            if value is None:
                value = (REQUEST_ID if key == "request_id" else RUN_ID).get()
            if value is not None:
                out[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str, *, json_lines: bool = False) -> None:
    """Root logging for the CLI's long-running commands (serve, worker)."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
