"""Alembic environment and versions: one migration history for PostgreSQL and SQLite."""
