"""Strategies known to the service (built-in or loaded from a user folder)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Json, UTCDateTime, utcnow

__all__ = ["StrategyRow"]


class StrategyRow(Base):
    """A strategy known to the service (built-in or user folder), soft-deletable."""

    __tablename__ = "strategies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    module: Mapped[str] = mapped_column(String(300))
    class_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    params_schema: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(1000))
    """The user file it was loaded from; None for a built-in."""
    validation_status: Mapped[str] = mapped_column(String(16), default="unvalidated")
    """unvalidated | valid | invalid | missing (its file or class is gone)."""
    validation_error: Mapped[str | None] = mapped_column(Text)
    validation_steps: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    last_validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    best_metrics: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """{metric: {"value", "run_id"}}: the best value each key metric reached in a run."""
    tags: Mapped[list[str]] = mapped_column(Json, default=list)
    default_params: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """User-chosen defaults merged under a run's params (validated against the schema)."""
    description_edited: Mapped[bool] = mapped_column(Boolean, default=False)
    """The description was set by a user: syncing no longer refreshes it from the docstring."""
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    """Who owns the settings (description, tags, default params): the first user to edit
    them; NULL = the operator's. Only that user or an admin may change or delete them."""
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None
