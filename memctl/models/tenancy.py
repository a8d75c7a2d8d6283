"""Tenants, identities and sessions (schema.md "Global tables" and "identity and sessions"; S3, S4, S5)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from memctl.models.base import (
    HEX64,
    SMALLINT,
    Base,
    Json,
    created_at,
    enum_check,
    fk_index,
    json_check,
    jsonb_object,
    length_check,
    org_fk,
    org_pk,
    tenant_fk,
    updated_at,
    uuid_pk,
)
from memctl.models.enums import DataSourceType


class Organization(Base):
    """A tenant (S3 organizations; S4's string tenant_id maps to ``slug``)."""

    __tablename__ = "organizations"
    __table_args__ = (
        UniqueConstraint("slug"),
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name="slug_format"),
        length_check("name", 1, 255),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    slug: Mapped[str]
    name: Mapped[str]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()
    deleted_at: Mapped[dt.datetime | None]


class Project(Base):
    """A project within a tenant (S2 project_id, S5 project tier)."""

    __tablename__ = "projects"
    __table_args__ = (org_fk(), UniqueConstraint("org_id", "name"))

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    description: Mapped[str | None]
    archived_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class User(Base):
    """An end user of a tenant (S3, S5). Deleting one erases their memories (S5, rule 10)."""

    __tablename__ = "users"
    __table_args__ = (
        org_fk(),
        UniqueConstraint("org_id", "external_id"),
        CheckConstraint("position('@' in email) > 0", name="email_format"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    external_id: Mapped[str]
    display_name: Mapped[str | None]
    email: Mapped[str | None]
    deleted_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Agent(Base):
    """An agent of a tenant (S3; S4's string agent_id maps to ``name``)."""

    __tablename__ = "agents"
    __table_args__ = (org_fk(), UniqueConstraint("org_id", "name"))

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    description: Mapped[str | None]
    deleted_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class ApiToken(Base):
    """An API token (S3 token.py): only the SHA-256 of the secret is stored, never the secret."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "agent_id"], "agents", "CASCADE"),
        tenant_fk(["org_id", "user_id"], "users", "CASCADE"),
        fk_index("org_id", "agent_id"),
        fk_index("org_id", "user_id"),
        UniqueConstraint("org_id", "token_hash"),  # per org: every key includes org_id (rule 1, revision 0009)
        Index(None, "token_hash"),  # lookup by hash before the organisation is known (authentication)
        CheckConstraint(f"token_hash ~ {HEX64}", name="token_hash_sha256"),
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        CheckConstraint("char_length(token_prefix) = 8", name="token_prefix_length"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    agent_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None]
    name: Mapped[str]
    token_prefix: Mapped[str]
    token_hash: Mapped[str]
    scopes: Mapped[list[str]] = mapped_column(server_default=text("'{}'::text[]"))
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Directive(Base):
    """A standing instruction for an agent (S3)."""

    __tablename__ = "directives"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "agent_id"], "agents", "CASCADE"),
        fk_index("org_id", "agent_id"),
        length_check("content", 1, 8192),
        CheckConstraint("priority >= 0 AND priority <= 100", name="priority_range"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    agent_id: Mapped[uuid.UUID]
    content: Mapped[str]
    priority: Mapped[int] = mapped_column(SMALLINT, server_default=text("50"))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Session(Base):
    """A conversation session of an agent, optionally with a user (S3)."""

    __tablename__ = "sessions"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "agent_id"], "agents", "CASCADE"),
        tenant_fk(["org_id", "user_id"], "users", "SET NULL"),
        fk_index("org_id", "agent_id"),
        fk_index("org_id", "user_id"),
        CheckConstraint("ended_at >= started_at", name="ended_after_started"),
        json_check("metadata", "object"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    agent_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID | None]
    started_at: Mapped[dt.datetime] = created_at()
    ended_at: Mapped[dt.datetime | None]
    metadata_: Mapped[Json] = jsonb_object("metadata")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class Checkpoint(Base):
    """A saved state of a session at a step (S3)."""

    __tablename__ = "checkpoints"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "session_id"], "sessions", "CASCADE"),
        UniqueConstraint("org_id", "session_id", "step"),
        CheckConstraint("step >= 0", name="step_nonneg"),
        json_check("state", "object"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    session_id: Mapped[uuid.UUID]
    step: Mapped[int]
    state: Mapped[Json] = jsonb_object()
    created_at: Mapped[dt.datetime] = created_at()


class DataSource(Base):
    """Where memories were ingested from (S4); ``source_name`` is unique per organisation."""

    __tablename__ = "data_sources"
    __table_args__ = (
        org_fk(),
        UniqueConstraint("org_id", "source_name"),
        enum_check("source_type", DataSourceType),
        json_check("metadata", "object"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    source_name: Mapped[str]
    source_type: Mapped[str]
    source_uri: Mapped[str | None]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    last_ingestion_at: Mapped[dt.datetime | None]
    metadata_: Mapped[Json] = jsonb_object("metadata")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()

