"""`backtester report RUN_ID -o out.html`: a finished run's standalone HTML report.

It reads the same database as `backtester serve` (DATABASE_URL, else the SQLite file in
the data directory) and the dataset blobs next to it, and writes the tear sheet that
`GET /runs/{id}/report.html` serves: plotly.js embedded, so it opens offline.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from app.cli import main
from app.cli_service import CliError, load_settings, one_line_errors
from app.settings import Settings

DEFAULT_POINTS = 2000


async def render_run_report(settings: Settings, run_id: str, *, points: int = DEFAULT_POINTS) -> str:
    """The report's HTML, read through `workers.analytics` like the API does."""
    from store.blobs import blob_store_for
    from store.db import Database
    from store.errors import ConflictError
    from workers.analytics import RunAnalytics

    if settings.database_url is None:
        path = settings.data_dir.resolve() / "backtester.sqlite3"
        if not path.exists():
            raise CliError(
                f"no database at {path}: run backtests with `backtester serve` first, or set "
                "DATABASE_URL / BT_DATA_DIR to the service's"
            )
    db = Database(settings.effective_database_url)
    try:
        analytics = RunAnalytics(db, blob_store_for(db, settings.data_dir))
        return await analytics.report_html(run_id, points=points)
    except ConflictError as exc:
        raise CliError(str(exc)) from None
    finally:
        await db.dispose()


@main.command()
@click.argument("run_id")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
    help="Where to write the HTML file.",
)
@click.option(
    "--points", type=int, default=DEFAULT_POINTS, show_default=True,
    help="Most points per chart series (extremes are kept).",
)
@one_line_errors
def report(run_id: str, output: Path, points: int) -> None:
    """Write the HTML report of finished run RUN_ID (from the service's database)."""
    settings = load_settings()
    page = asyncio.run(render_run_report(settings, run_id, points=points))
    output.write_text(page, encoding="utf-8")
    click.echo(f"wrote {output} ({len(page.encode()) / 1e6:.1f} MB)", err=True)
