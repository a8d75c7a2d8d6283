"""Access policies and retention (schema.md "memory_access_policies" (S4) and "retention" (S5))."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from memctl.models.base import (
    SCHEMA,
    Base,
    Json,
    created_at,
    enum_check,
    json_check,
    org_fk,
    updated_at,
    uuid_pk,
)
from memctl.models.enums import AgeBasis, RetentionAction, Tier

# S5: task memories are deleted 30 days after their last access; other tiers are never pruned.
DEFAULT_TASK_RETENTION_DAYS = 30


class MemoryAccessPolicy(Base):
    """An OPA Rego access policy (S4); ``org_id`` NULL means platform-wide."""

    __tablename__ = "memory_access_policies"
    __table_args__ = (
        ForeignKeyConstraint(["org_id"], [f"{SCHEMA}.organizations.id"], ondelete="CASCADE"),
        UniqueConstraint("org_id", "policy_name", postgresql_nulls_not_distinct=True),
        Index("ix_memory_access_policies_active", "org_id", postgresql_where=text("is_active")),
        json_check("policy_rules", "object"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID | None]
    policy_name: Mapped[str]
    policy_rules: Mapped[Json]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class RetentionPolicy(Base):
    """How long memories of a tier live in an organisation. PK (org_id, tier)."""

    __tablename__ = "retention_policies"
    __table_args__ = (
        org_fk(),
        enum_check("tier", Tier),
        CheckConstraint("max_age_days > 0", name="max_age_days_positive"),
        enum_check("age_basis", AgeBasis),
        enum_check("action", RetentionAction),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tier: Mapped[str] = mapped_column(primary_key=True)
    max_age_days: Mapped[int]
    age_basis: Mapped[str] = mapped_column(server_default=text("'accessed_at'"))
    action: Mapped[str] = mapped_column(server_default=text("'delete'"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
