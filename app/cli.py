"""The `backtester` command line: one click group, one module per command family."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="backtester")
def main() -> None:
    """Backtesting service: serve the API, run workers, run a backtest from a CSV file."""


def _register() -> None:
    # Each command family lives in its own module and attaches itself to `main`; a
    # module that cannot be imported must not take the other commands down with it.
    import importlib

    for module in (
        "app.cli_service", "app.cli_backtest", "app.cli_report", "app.cli_import", "app.cli_auth",
        "app.cli_optimize",
    ):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            if exc.name != module:  # a real bug inside the module: show it
                raise


_register()
