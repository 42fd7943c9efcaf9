"""Service commands of `backtester`: serve, worker, migrate, export-schema, demo.

Every command reads `Settings` from the environment, and any failure prints one line
(`error: ...`) and exits with status 2: no tracebacks on the command line. Heavy
imports happen inside the commands so `backtester --help` stays fast.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import pydantic

from app.cli import main
from app.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
EXIT_ERROR = 2


class CliError(Exception):
    """A failure to report as one line."""


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, pydantic.ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "invalid settings: " + "; ".join(parts)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, CliError | ValueError | LookupError) else f"{type(exc).__name__}: {text}"


def one_line_errors(fn: F) -> F:
    """Run a command; turn any exception into `error: ...` and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            logging.getLogger("backtester.cli").debug("command failed", exc_info=True)
            fail(_one_line(exc))

    return wrapper  # type: ignore[return-value]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line options on top."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)


def _configure_logging(level: str, *, json_lines: bool = False) -> None:
    from app.logs import configure_logging

    configure_logging(level, json_lines=json_lines)


async def _refuse_open_bind(settings: Settings) -> None:
    """No users and a non-loopback address: CliError saying how to create a token."""
    from app.auth import BindRefused, check_bind
    from app.stack import prepare_database
    from store.db import Database

    if settings.loopback:
        return
    if settings.should_migrate or settings.database_url is None:
        await prepare_database(settings)
    db = Database(settings.effective_database_url)
    try:
        await check_bind(settings, db)
    except BindRefused as exc:
        raise CliError(str(exc)) from None
    finally:
        await db.dispose()


@main.command()
@click.option("--host", default=None, help="Interface to bind (BT_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (BT_PORT, default 8000).")
@click.option("--log-level", default=None, help="uvicorn log level (BT_LOG_LEVEL).")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True,
    help="API processes sharing the port (team mode only: PostgreSQL + Redis).",
)
@click.option(
    "--ws-compression/--no-ws-compression", default=True, show_default=True,
    help="Offer websocket per-message deflate (costs CPU per subscriber and event).",
)
@one_line_errors
def serve(host: str | None, port: int | None, log_level: str | None, workers: int,
          ws_compression: bool) -> None:
    """Serve the GraphQL API (embedded by default: SQLite, in-process worker)."""
    import uvicorn

    settings = load_settings(host=host, port=port, log_level=log_level)
    if workers > 1 and settings.embedded:
        raise CliError(
            f"--workers {workers} needs the team deployment (DATABASE_URL + REDIS_URL): the "
            "embedded queue, bus and SQLite writer live in one process"
        )
    asyncio.run(_refuse_open_bind(settings))
    _configure_logging(settings.log_level, json_lines=settings.json_logs)
    click.echo(f"backtester: {settings.describe()}", err=True)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "lifespan": "on",
        "server_header": False,
        "ws_per_message_deflate": ws_compression,
        # JSON logs: uvicorn's loggers go through the root handler like everything else.
        **({"log_config": None} if settings.json_logs else {}),
    }
    if workers == 1:
        from app.asgi import create_app

        click.echo(f"GraphQL at http://{settings.host}:{settings.port}/graphql", err=True)
        uvicorn.run(create_app(settings, freeze_gc=True), **options)
        return
    asyncio.run(_prepare_once(settings))
    # The worker processes are fresh interpreters: they read the settings from the
    # environment, with this command's options, and leave migrations and samples alone.
    os.environ.update({"BT_HOST": settings.host, "BT_PORT": str(settings.port),
                       "BT_LOG_LEVEL": settings.log_level,
                       "BT_AUTO_MIGRATE": "false", "BT_LOAD_SAMPLES": "false"})
    click.echo(f"GraphQL at http://{settings.host}:{settings.port}/graphql "
               f"({workers} processes)", err=True)
    uvicorn.run("app.asgi:create_app_from_env", factory=True, workers=workers, **options)


async def _prepare_once(settings: Settings) -> None:
    """What each API process would do at start and only one should: migrations, sample
    datasets, the strategy catalog sync (opening the stack once does all of them)."""
    from app.stack import open_stack

    async with open_stack(settings):
        pass


@main.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty (for scripts and tests).")
@one_line_errors
def worker(burst: bool) -> None:
    """Run an arq worker: needs DATABASE_URL (PostgreSQL) and REDIS_URL."""
    settings = load_settings()
    if not settings.database_url or not settings.redis_url:
        raise CliError(
            "the worker needs DATABASE_URL (PostgreSQL) and REDIS_URL; without them "
            "`backtester serve` runs the work in-process"
        )
    _configure_logging(settings.log_level, json_lines=settings.json_logs)
    from workers.arq_worker import run_worker
    from workers.jobs import freeze_startup_objects

    freeze_startup_objects()
    run_worker(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
        concurrency=settings.worker_concurrency,
        lease_s=settings.lease_seconds,
        heartbeat_s=settings.heartbeat_seconds,
        reap_interval_s=settings.reap_interval_seconds,
        queued_grace_s=settings.queued_grace_seconds,
        max_coordinators=settings.max_coordinators,
        bus_prefix=settings.channel_prefix,
        burst=burst,
    )


@main.command()
@one_line_errors
def migrate() -> None:
    """Bring the database schema up to date (the embedded server does this itself)."""
    from app.stack import prepare_database

    settings = load_settings()
    asyncio.run(prepare_database(settings))
    click.echo(f"migrated: {settings.describe()}")


@main.command("export-schema")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Write to FILE instead of standard output.",
)
@one_line_errors
def export_schema(output: Path | None) -> None:
    """Print the GraphQL schema (SDL), as committed in schema.graphql."""
    from graph.schema import schema_sdl

    sdl = schema_sdl()
    if output is None:
        click.echo(sdl, nl=False)
    else:
        output.write_text(sdl, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@main.command()
@click.option("--strategy", default="ema_crossover", show_default=True)
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait.")
@one_line_errors
def demo(strategy: str, timeout: float) -> None:
    """Load the sample datasets and run one backtest in this process, then summarise it."""
    from app.demo import run_demo

    settings = load_settings(load_samples=True)
    click.echo(asyncio.run(run_demo(settings, strategy=strategy, timeout=timeout)))
