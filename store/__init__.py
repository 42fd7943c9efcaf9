"""Persistence: SQLAlchemy models, async sessions, repositories and blob storage."""
