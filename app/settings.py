"""Service settings: one pydantic-settings class, read only by `app/` and passed down.

With no configuration the service runs embedded: a SQLite file in the data directory,
the in-process queue and the in-memory progress bus. Setting both `DATABASE_URL` and
`REDIS_URL` switches to the team deployment: PostgreSQL, arq on Redis, Redis pub/sub and
dataset blobs in the database, so workers on other machines can read them.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["development", "production"]
LogFormat = Literal["text", "json"]

_DB_ALIASES = AliasChoices("DATABASE_URL", "BT_DATABASE_URL")
_REDIS_ALIASES = AliasChoices("REDIS_URL", "BT_REDIS_URL")


class Settings(BaseSettings):
    """Every knob of the service; environment variables are named in each field."""

    model_config = SettingsConfigDict(
        env_prefix="BT_", extra="ignore", populate_by_name=True, validate_default=True
    )

    database_url: str | None = Field(None, validation_alias=_DB_ALIASES)
    """`postgresql://...` or `sqlite:///...`; None = a SQLite file in `data_dir`."""
    redis_url: str | None = Field(None, validation_alias=_REDIS_ALIASES)
    """None = in-process queue and in-memory bus (embedded)."""
    bus_prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """Prefix of this deployment's Redis pub/sub channels (`BT_BUS_PREFIX`): pub/sub is
    shared by the whole Redis server, whatever its database number. None = "bt"."""
    data_dir: Path = Path("var")
    """Embedded SQLite file and dataset blobs (never the shipped `data/` samples folder)."""
    environment: Environment = Field("development", validation_alias=AliasChoices("BT_ENV"))
    database_pool_size: int = Field(20, ge=1, le=1000)
    """PostgreSQL connections one API process keeps open; requests beyond them wait for
    one (opening and closing extra connections per request costs more than waiting)."""
    worker_concurrency: int = Field(2, ge=1, le=256)
    lease_seconds: float = Field(30.0, gt=1, le=3600)
    heartbeat_seconds: float = Field(2.0, gt=0, le=600)
    reap_interval_seconds: float = Field(5.0, gt=0, le=3600)
    """How often each worker looks for orphaned (lease expired) and forgotten runs."""
    queued_grace_seconds: float = Field(30.0, ge=0, le=86400)
    """A run QUEUED this long is enqueued again, in case its enqueue was lost."""
    max_coordinators: int = Field(16, ge=1, le=1000)
    """Optimizations one worker process coordinates at once; coordinators run outside the
    `worker_concurrency` job slots (they mostly wait for their batches)."""
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """CORS and websocket origins, comma separated (`*` = any)."""
    max_body_bytes: int = Field(1_048_576, ge=1024)
    """Largest JSON request body; larger ones get 413 before any parsing."""
    max_upload_bytes: int = Field(64 * 1_048_576, ge=1024)
    """Largest dataset file (upload or `backtester import`); a multipart request body may
    exceed it by `max_body_bytes` (the other fields), larger ones get 413 unread."""
    max_decompressed_bytes: int = Field(512 * 1_048_576, ge=1024)
    """Largest content of a gzip or zip dataset once decompressed (zip bombs)."""
    graphiql: bool | None = None
    """Serve GraphiQL on GET /graphql; default: on in development, off in production."""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: str = "info"
    max_query_depth: int = Field(10, ge=2)
    max_aliases: int = Field(15, ge=1)
    max_tokens: int = Field(2000, ge=50)
    ws_init_timeout_seconds: float = Field(5.0, gt=0)
    run_wait_timeout_seconds: float = Field(60.0, gt=0)
    """Longest time `runBacktest` waits for its result."""
    max_run_wait_seconds: float = Field(300.0, gt=0)
    strategy_paths: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("STRATEGY_PATHS", "BT_STRATEGY_PATHS")
    )
    """Folders (or .py files) of user strategies, separated by commas or the OS path
    separator; discovered at start-up and by the `syncStrategies` mutation."""
    auto_migrate: bool | None = None
    """Run migrations when the server starts; default: only when embedded."""
    load_samples: bool | None = None
    """Load the shipped sample datasets at start; default: only when embedded."""
    log_format: LogFormat | None = None
    """`json`: one JSON object per line with request id and run id; default: json in
    production, text in development."""
    rate_limit_window_seconds: float = Field(60.0, gt=0, le=86400)
    """Length of a rate limit window (per API token; the embedded local user has none)."""
    rate_limit_requests: int = Field(600, ge=1)
    """GraphQL requests per token per window."""
    rate_limit_runs: int = Field(60, ge=1)
    """Runs submitted per token per window (starting an optimization counts as one)."""
    rate_limit_trials: int = Field(1_000_000, ge=1)
    """Optimization trials submitted per token per window (an optimization costs its trial
    count, known once its space is validated; refused before anything is stored)."""
    max_concurrent_runs: int = Field(100, ge=1)
    """Queued + running runs per user."""
    queue_share: float = Field(0.5, gt=0, le=1)
    """Most of the waiting runs one user may hold while other users' runs wait too."""
    max_datasets_per_user: int = Field(500, ge=1)
    max_dataset_bytes_per_user: int = Field(8 << 30, ge=1024)
    """Total bytes of original uploads one user may keep."""
    metrics_token: str | None = None
    """When set, GET /metrics needs `Authorization: Bearer <this>` (Prometheus'
    `authorization` setting); otherwise it is open like /health."""

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("strategy_paths", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            parts = value.replace(os.pathsep, ",").split(",")
            return [Path(part.strip()).expanduser() for part in parts if part.strip()]
        return value

    @field_validator("database_url", "redis_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _driver_url(cls, value: str | None) -> str | None:
        return None if value is None else normalize_database_url(value)

    @model_validator(mode="after")
    def _redis_needs_shared_database(self) -> Settings:
        if self.redis_url and not self.database_url:
            raise ValueError(
                "REDIS_URL is set but DATABASE_URL is not: workers on other machines cannot "
                "reach the embedded SQLite file; set DATABASE_URL to a PostgreSQL database"
            )
        return self

    @property
    def channel_prefix(self) -> str:
        """The progress bus's channel prefix (`RedisBus(prefix=...)`), the same on every
        server and worker of a deployment."""
        return self.bus_prefix or "bt"

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: queue, bus and worker live in this process."""
        return self.redis_url is None

    @property
    def effective_database_url(self) -> str:
        """The async SQLAlchemy URL, with the embedded SQLite default filled in."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'backtester.sqlite3'}"

    @property
    def json_logs(self) -> bool:
        if self.log_format is not None:
            return self.log_format == "json"
        return self.environment == "production"

    @property
    def loopback(self) -> bool:
        """Whether `host` only accepts connections from this machine."""
        return is_loopback(self.host)

    @property
    def graphiql_enabled(self) -> bool:
        if self.graphiql is not None:
            return self.graphiql
        return self.environment == "development"

    @property
    def should_migrate(self) -> bool:
        return self.auto_migrate if self.auto_migrate is not None else self.embedded

    @property
    def should_load_samples(self) -> bool:
        return self.load_samples if self.load_samples is not None else self.embedded

    def describe(self) -> str:
        """One line naming the deployment, without credentials."""
        db = self.effective_database_url
        db_kind = "SQLite" if db.startswith("sqlite") else "PostgreSQL"
        queue = "in-process queue" if self.embedded else "arq on Redis"
        return f"{db_kind} ({redact_url(db)}), {queue}"


def normalize_database_url(url: str) -> str:
    """Accept the usual spellings and return the async driver URL SQLAlchemy needs."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(
        f"unsupported DATABASE_URL scheme in {redact_url(url)!r}: "
        "use postgresql://user@host/db or sqlite:///path/file.sqlite3"
    )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; anything else (0.0.0.0, a LAN address) is not."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
