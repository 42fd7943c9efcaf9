"""SQLAlchemy 2 models: datasets, strategies, runs, trades, equity curves and blobs.

Types are portable so one alembic history serves PostgreSQL and SQLite: JSON,
LargeBinary, BigInteger nanosecond timestamps, and `UTCDateTime` (aware datetimes,
stored as UTC). Enums are plain strings, which keeps migrations free of
database-specific enum types.

One module per domain (`base`: Base, types, `RunStatus`, the `Owned` mixin; `auth`;
`datasets`; `strategies`; `runs`; `optimizations`); importing this package registers every
table on `Base.metadata` (what alembic's env.py compares against). Import from here.
"""

from __future__ import annotations

from store.models.auth import AuditRow, TokenRow, UserRow
from store.models.base import (
    NAMING as NAMING,
)
from store.models.base import (
    TERMINAL_STATUSES,
    Base,
    Owned,
    RunStatus,
    UTCDateTime,
    utcnow,
)
from store.models.base import (
    Json as Json,
)
from store.models.base import (
    StatusType as StatusType,
)
from store.models.datasets import BlobRow, DatasetRow
from store.models.optimizations import (
    OptimizationBatchRow,
    OptimizationRow,
    OptimizationTrialRow,
)
from store.models.runs import EquityRow, RunRow, TradeRow
from store.models.strategies import StrategyRow

__all__ = [
    "TERMINAL_STATUSES",
    "AuditRow",
    "Base",
    "BlobRow",
    "DatasetRow",
    "EquityRow",
    "OptimizationBatchRow",
    "OptimizationRow",
    "OptimizationTrialRow",
    "Owned",
    "RunRow",
    "RunStatus",
    "StrategyRow",
    "TokenRow",
    "TradeRow",
    "UTCDateTime",
    "UserRow",
    "utcnow",
]
