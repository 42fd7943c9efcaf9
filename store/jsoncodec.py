"""The JSON codec of the database's JSON columns (`store.db.create_engine_for`).

orjson writes and reads the same documents as the standard library's `json` for what
this project stores (plain dicts, lists, strings, finite floats, ints), 5-10x faster:
an optimization's trial log and batch metrics are tens of thousands of floats a batch,
and their encoding ran on the event loop. Anything orjson refuses (an integer wider
than 64 bits, a value with no JSON form) goes to `json` as before, and a stored
document orjson cannot read (a NaN token an older version let through on SQLite) is
read by `json` too. orjson writes NaN and infinities as null (`json` wrote the tokens
`NaN`/`Infinity`, which are not JSON and which PostgreSQL refuses).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

__all__ = ["dumps", "loads"]

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """`value` as a JSON document (str)."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=_default, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """The value of a stored JSON document."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
