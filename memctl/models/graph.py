"""Versions, relationships, tags and collections of memories (schema.md "memory graph and grouping")."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memctl.models.base import (
    HEX64,
    Base,
    created_at,
    enum_check,
    fk_index,
    length_check,
    org_fk,
    org_pk,
    score_check,
    tenant_fk,
    updated_at,
    uuid_pk,
)
from memctl.models.enums import RelationshipType


class MemoryVersion(Base):
    """A previous content of a memory, written by the memory version trigger (S3)."""

    __tablename__ = "memory_versions"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "memory_id"], "memories", "CASCADE"),
        UniqueConstraint("org_id", "memory_id", "version_num"),
        CheckConstraint("version_num >= 1", name="version_num_positive"),
        CheckConstraint(f"content_hash ~ {HEX64}", name="content_hash_sha256"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    memory_id: Mapped[uuid.UUID]
    version_num: Mapped[int]
    content: Mapped[str]
    content_hash: Mapped[str]
    changed_by: Mapped[str | None]
    change_reason: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()


class MemoryRelationship(Base):
    """A typed edge between two memories of one tenant (S3, S4)."""

    __tablename__ = "memory_relationships"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "source_memory_id"], "memories", "CASCADE"),
        tenant_fk(["org_id", "target_memory_id"], "memories", "CASCADE"),
        UniqueConstraint("org_id", "source_memory_id", "target_memory_id", "relationship_type"),
        fk_index("org_id", "target_memory_id"),
        Index(None, "org_id", "relationship_type"),
        enum_check("relationship_type", RelationshipType),
        score_check("confidence_score"),
        CheckConstraint("source_memory_id <> target_memory_id", name="no_self_reference"),  # S4
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    source_memory_id: Mapped[uuid.UUID]
    target_memory_id: Mapped[uuid.UUID]
    relationship_type: Mapped[str]
    confidence_score: Mapped[Decimal | None]
    created_at: Mapped[dt.datetime] = created_at()


class MemoryTag(Base):
    """A tag on a memory (S3, S2 tags). PK (org_id, memory_id, tag)."""

    __tablename__ = "memory_tags"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "memory_id"], "memories", "CASCADE"),
        Index(None, "org_id", "tag"),
        CheckConstraint("tag ~ '^[a-z0-9][a-z0-9_.:-]{0,63}$'", name="tag_format"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    memory_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = created_at()


class MemoryCollection(Base):
    """A user's named collection of memories (S5)."""

    __tablename__ = "memory_collections"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "user_id"], "users", "CASCADE"),
        UniqueConstraint("org_id", "user_id", "name"),
        Index(None, "org_id", "collection_type"),  # S5 migration 004
        length_check("collection_type", 1, 50),
        length_check("name", 1, 255),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID]
    collection_type: Mapped[str]
    name: Mapped[str]
    description: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


class MemoryCollectionItem(Base):
    """Membership of a memory in a collection. PK (org_id, collection_id, memory_id)."""

    __tablename__ = "memory_collection_items"
    __table_args__ = (
        org_fk(),
        tenant_fk(["org_id", "collection_id"], "memory_collections", "CASCADE"),
        tenant_fk(["org_id", "memory_id"], "memories", "CASCADE"),
        fk_index("org_id", "memory_id"),
    )

    org_id: Mapped[uuid.UUID] = org_pk()
    collection_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    memory_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    added_at: Mapped[dt.datetime] = created_at()
    created_at: Mapped[dt.datetime] = created_at()
