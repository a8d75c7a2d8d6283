"""Consolidation of memories into higher-level ones (schema.md "consolidation"; S2)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, Computed, Index, Numeric, text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from memctl.models.base import (
    SMALLINT,
    Base,
    Json,
    created_at,
    enum_check,
    fk_index,
    json_check,
    jsonb_object,
    length_check,
    nonneg_check,
    org_fk,
    org_pk,
    score_check,
    tenant_fk,
    updated_at,
    uuid_pk,
)
from memctl.models.enums import ConsolidationMethod, JobStatus, PatternType, Tier, TriggerType
from memctl.models.memory import CONTENT_HASH_SQL, CONTENT_TSV_SQL


class ConsolidatedMemory(Base):
    """A memory distilled from several source memories (S2 consolidated_memories).

    ``source_memory_ids`` cannot carry a foreign key; ``memctl check-constraints`` reports ids
    that name no memory of the same organisation. ``source_count`` is generated from it.
    """

    __tablename__ = "consolidated_memories"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "project_id"], "projects", "CASCADE"),
        tenant_fk(["org_id", "agent_id"], "agents", "CASCADE"),
        tenant_fk(["org_id", "consolidation_job_id"], "consolidation_jobs", "SET NULL"),
        fk_index("org_id", "project_id"),  # S2 idx_cm_project
        fk_index("org_id", "agent_id"),
        fk_index("org_id", "consolidation_job_id"),
        Index(None, "org_id", "abstraction_level"),  # S2 idx_cm_abstraction
        Index(None, "org_id", "tier"),  # S2 idx_cm_type
        Index("ix_consolidated_memories_content_tsv", "content_tsv", postgresql_using="gin"),
        Index("ix_consolidated_memories_source_memory_ids", "source_memory_ids", postgresql_using="gin"),
        Index("ix_consolidated_memories_tags", "tags", postgresql_using="gin"),
        length_check("content", 1, 16384),
        enum_check("tier", Tier),
        CheckConstraint("abstraction_level >= 1 AND abstraction_level <= 5", name="abstraction_level_range"),
        enum_check("pattern_type", PatternType),
        score_check("confidence_score"),
        CheckConstraint("cardinality(source_memory_ids) >= 1", name="has_sources"),
        nonneg_check("reuse_count"),
        enum_check("consolidation_method", ConsolidationMethod),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    project_id: Mapped[uuid.UUID | None]
    agent_id: Mapped[uuid.UUID | None]
    content: Mapped[str]
    content_hash: Mapped[str] = mapped_column(Computed(CONTENT_HASH_SQL, persisted=True))
    content_tsv: Mapped[str] = mapped_column(TSVECTOR, Computed(CONTENT_TSV_SQL, persisted=True))
    tier: Mapped[str]
    abstraction_level: Mapped[int] = mapped_column(SMALLINT)
    pattern_type: Mapped[str]
    confidence_score: Mapped[Decimal] = mapped_column(server_default=text("0.800"))
    source_memory_ids: Mapped[list[uuid.UUID]]
    source_count: Mapped[int] = mapped_column(Computed("cardinality(source_memory_ids)", persisted=True))
    reuse_count: Mapped[int] = mapped_column(server_default=text("0"))
    tags: Mapped[list[str]] = mapped_column(server_default=text("'{}'::text[]"))
    consolidation_method: Mapped[str]
    consolidation_job_id: Mapped[uuid.UUID | None]
    consolidated_at: Mapped[dt.datetime] = created_at()
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class ConsolidationJob(Base):
    """A run of the consolidation pipeline (S2 consolidation_jobs)."""

    __tablename__ = "consolidation_jobs"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "project_id"], "projects", "CASCADE"),
        tenant_fk(["org_id", "agent_id"], "agents", "CASCADE"),
        Index(None, "org_id", "project_id", "status"),  # S2 idx_cj_project_status; supports FK project_id
        Index("ix_consolidation_jobs_org_id_created_at", "org_id", text("created_at DESC")),  # idx_cj_created
        fk_index("org_id", "agent_id"),
        enum_check("status", JobStatus),
        enum_check("trigger_type", TriggerType),
        json_check("scope", "object"),
        json_check("metrics", "object"),
        nonneg_check("retry_count"),
        CheckConstraint("retry_count <= max_retries", name="retry_count_le_max"),
        CheckConstraint("completed_at >= started_at", name="completed_after_started"),
        CheckConstraint("status <> 'running' OR started_at IS NOT NULL", name="running_has_started_at"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    project_id: Mapped[uuid.UUID | None]
    agent_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(server_default=text("'pending'"))
    trigger_type: Mapped[str]
    scope: Mapped[Json] = jsonb_object()
    phases_completed: Mapped[list[str]] = mapped_column(server_default=text("'{}'::text[]"))
    metrics: Mapped[Json] = jsonb_object()
    started_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    duration_seconds: Mapped[Decimal | None] = mapped_column(
        Numeric(),
        Computed("EXTRACT(epoch FROM (completed_at - started_at))", persisted=True))
    error_message: Mapped[str | None]
    retry_count: Mapped[int] = mapped_column(SMALLINT, server_default=text("0"))
    max_retries: Mapped[int] = mapped_column(SMALLINT, server_default=text("3"))
    triggered_by: Mapped[str]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
