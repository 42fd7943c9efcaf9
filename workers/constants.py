"""Every Redis key, channel and queue name, and the job names, in one place."""

from __future__ import annotations

__all__ = [
    "ALL_RUNS_CHANNEL",
    "DEFAULT_QUEUE",
    "HEALTH_CHECK_SUFFIX",
    "IN_PROGRESS_PREFIX",
    "JOB_RUN_BACKTEST",
    "JOB_RUN_OPTIMIZATION",
    "JOB_RUN_OPTIMIZATION_BATCH",
    "KEY_PREFIX",
    "batch_job_id",
    "job_id_for",
    "rate_key",
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

JOB_RUN_OPTIMIZATION = "run_optimization"
"""The arq function name of an optimization's coordinator job."""

JOB_RUN_OPTIMIZATION_BATCH = "run_optimization_batch"
"""The arq function name of one batch of an optimization's trials."""

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


_RATE_KEY = "bt:rate:{kind}:{subject}"


def rate_key(kind: str, subject: str) -> str:
    """Counter of one rate limit window (`workers.limits.RedisRateLimiter`), e.g.
    `bt:rate:requests:<token id>` or `bt:rate:runs:<token id>`; it expires with its window."""
    return _RATE_KEY.format(kind=kind, subject=subject)


def batch_job_id(opt_id: str, number: int, attempt: int = 0) -> str:
    """The job id of one optimization batch (`job_id_for` rules: a new id per re-dispatch)."""
    return job_id_for(f"{opt_id}:b{number}", attempt)
