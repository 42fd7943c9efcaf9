"""Every Redis key, channel and queue name, and the job names, in one place."""

from __future__ import annotations

__all__ = [
    "ALL_RUNS_CHANNEL",
    "DEFAULT_QUEUE",
    "HEALTH_CHECK_SUFFIX",
    "IN_PROGRESS_PREFIX",
    "JOB_RUN_BACKTEST",
    "KEY_PREFIX",
    "job_id_for",
    "run_channel",
]

KEY_PREFIX = "bt:"
"""Every key and channel this service creates starts with it (arq's own keys start 'arq:')."""

DEFAULT_QUEUE = "bt:queue"
"""The arq queue (a sorted set) that `backtester worker` processes read."""

IN_PROGRESS_PREFIX = "arq:in-progress:"
"""arq marks a job a worker has started with `<prefix><job id>` (arq.constants)."""

HEALTH_CHECK_SUFFIX = ":health-check"
"""arq writes its worker health line to `<queue><suffix>`."""

JOB_RUN_BACKTEST = "run_backtest"
"""The arq function name of a backtest job."""

ALL_RUNS_CHANNEL = "bt:runs"
"""Pub/sub channel with every run's status and terminal events (dashboards)."""

_RUN_CHANNEL = "bt:run:{run_id}"


def run_channel(run_id: str) -> str:
    """Pub/sub channel with one run's progress, status and terminal events."""
    return _RUN_CHANNEL.format(run_id=run_id)


def job_id_for(run_id: str, attempt: int = 0) -> str:
    """The arq job id: the run id for the first dispatch, `<run id>:<attempt>` after a reap.

    arq refuses a job id whose job still exists (a killed worker leaves its job key behind
    until it expires), so a run re-dispatched after attempt N uses a new id.
    """
    return run_id if attempt <= 0 else f"{run_id}:{attempt}"
