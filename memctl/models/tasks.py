"""Task context: tasks, their stages, errors and compression costs (schema.md "task context"; S1 COMPASS)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import REAL, CheckConstraint, ForeignKeyConstraint, Numeric, text
from sqlalchemy.orm import Mapped, mapped_column

from memctl.models.base import (
    SCHEMA,
    Base,
    Json,
    JsonArray,
    created_at,
    enum_check,
    fk_index,
    json_check,
    jsonb_array,
    jsonb_object,
    nonneg_check,
    org_fk,
    org_pk,
    score_check,
    tenant_fk,
    updated_at,
    uuid_pk,
)
from memctl.models.enums import CompressionType, ErrorType, StageType, TaskStatus


class TaskContext(Base):
    """A task an agent works on (S1 TaskContextModel).

    ``current_stage_id`` and ``stage_memories.task_id`` form a cycle; the FK on
    ``current_stage_id`` is created after both tables (``use_alter``).
    """

    __tablename__ = "task_contexts"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "agent_id"], "agents", "CASCADE"),
        tenant_fk(["org_id", "session_id"], "sessions", "SET NULL"),
        ForeignKeyConstraint(["org_id", "current_stage_id"],
                             [f"{SCHEMA}.stage_memories.org_id", f"{SCHEMA}.stage_memories.id"],
                             ondelete="SET NULL (current_stage_id)", use_alter=True),
        fk_index("org_id", "agent_id"),
        fk_index("org_id", "session_id"),
        fk_index("org_id", "current_stage_id"),
        enum_check("status", TaskStatus),
        json_check("performance_metrics", "object"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    agent_id: Mapped[uuid.UUID]
    session_id: Mapped[uuid.UUID | None]
    task_goal: Mapped[str]
    status: Mapped[str] = mapped_column(server_default=text("'active'"))
    current_stage_id: Mapped[uuid.UUID | None]
    performance_metrics: Mapped[Json] = jsonb_object()
    completed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class StageMemory(Base):
    """A stage of a task with its compressed summary (S1 StageMemoryModel).

    ``raw_memory_refs`` is a JSON array of memory ids (S1); check-constraints reports dangling ones.
    """

    __tablename__ = "stage_memories"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "task_id"], "task_contexts", "CASCADE"),
        tenant_fk(["org_id", "agent_id"], "agents", "CASCADE"),
        fk_index("org_id", "task_id"),
        fk_index("org_id", "agent_id"),
        enum_check("stage_type", StageType),
        json_check("stage_insights", "array"),
        json_check("raw_memory_refs", "array"),
        json_check("quality_metrics", "object"),
        CheckConstraint("compression_ratio > 0", name="compression_ratio_positive"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    task_id: Mapped[uuid.UUID]
    agent_id: Mapped[uuid.UUID | None]
    stage_type: Mapped[str]
    stage_summary: Mapped[str | None]
    stage_insights: Mapped[JsonArray] = jsonb_array()
    raw_memory_refs: Mapped[JsonArray] = jsonb_array()
    quality_metrics: Mapped[Json] = jsonb_object()
    compression_ratio: Mapped[float | None] = mapped_column(REAL)
    compression_model: Mapped[str | None]
    completed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class TaskError(Base):
    """An error observed during a task (S1 ErrorModel)."""

    __tablename__ = "task_errors"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "task_id"], "task_contexts", "CASCADE"),
        tenant_fk(["org_id", "stage_id"], "stage_memories", "SET NULL"),
        tenant_fk(["org_id", "agent_id"], "agents", "CASCADE"),
        fk_index("org_id", "task_id"),
        fk_index("org_id", "stage_id"),
        fk_index("org_id", "agent_id"),
        enum_check("error_type", ErrorType),
        score_check("error_severity"),
        json_check("context_when_occurred", "object"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    task_id: Mapped[uuid.UUID]
    stage_id: Mapped[uuid.UUID | None]
    agent_id: Mapped[uuid.UUID | None]
    error_type: Mapped[str]
    error_severity: Mapped[Decimal]
    error_description: Mapped[str | None]
    context_when_occurred: Mapped[Json] = jsonb_object()
    recovery_action: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()


class CompressionMetric(Base):
    """Token and cost accounting of one compression (S1 CompressionMetricsModel)."""

    __tablename__ = "compression_metrics"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "task_id"], "task_contexts", "CASCADE"),
        tenant_fk(["org_id", "stage_id"], "stage_memories", "SET NULL"),
        fk_index("org_id", "task_id"),
        fk_index("org_id", "stage_id"),
        enum_check("compression_type", CompressionType),
        nonneg_check("input_tokens"),
        nonneg_check("output_tokens"),
        score_check("critical_fact_retention"),
        score_check("coherence_score"),
        nonneg_check("cost_usd"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    task_id: Mapped[uuid.UUID | None]
    stage_id: Mapped[uuid.UUID | None]
    compression_type: Mapped[str]
    input_tokens: Mapped[int]
    output_tokens: Mapped[int]
    critical_fact_retention: Mapped[Decimal | None]
    coherence_score: Mapped[Decimal | None]
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), server_default=text("0"))
    model_used: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
