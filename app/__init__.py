"""Composition root: settings, the ASGI app and the `backtester` CLI."""
