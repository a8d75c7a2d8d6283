"""The enumerations of schema.md, each mirrored by a named ``CHECK (col IN (...))`` (rule 5)."""

from __future__ import annotations

from enum import StrEnum


class Distance(StrEnum):
    """embedding_models.distance: the metric of an embedding space (pgvector operators <=>, <->, <#>)."""

    COSINE = "cosine"
    L2 = "l2"
    INNER_PRODUCT = "inner_product"


class IndexStorage(StrEnum):
    """embedding_models.index_storage: HNSW over ``vector`` (dim <= 2000) or ``halfvec`` (dim <= 4000)."""

    VECTOR = "vector"
    HALFVEC = "halfvec"


class ModelState(StrEnum):
    """embedding_models.state (revision 0013): ``registered`` (backfilling, no index required),
    ``ready`` (valid HNSW indexes: searchable, may be a default), ``retiring`` (being removed)."""

    REGISTERED = "registered"
    READY = "ready"
    RETIRING = "retiring"


class Tier(StrEnum):
    """memories.tier (S5 memory_type)."""

    PERSONAL = "personal"
    PROJECT = "project"
    TASK = "task"


class Category(StrEnum):
    """memories.category (S3)."""

    FACTUAL = "factual"
    PREFERENCE = "preference"
    BEHAVIORAL = "behavioral"
    EPISODIC = "episodic"
    PROCEDURAL = "procedural"


class MemorySource(StrEnum):
    """memories.source (S3)."""

    EXTRACTED = "extracted"
    USER_PROVIDED = "user_provided"
    IMPORTED = "imported"
    INFERRED = "inferred"


class Origin(StrEnum):
    """memories.origin (S4 source_type)."""

    CONVERSATION = "conversation"
    TOOL_OUTPUT = "tool_output"
    DOCUMENT = "document"
    OBSERVATION = "observation"
    EXTERNAL = "external"


class MemoryStatus(StrEnum):
    """memories.status (S3)."""

    ACTIVE = "active"
    SUPERSEDED = "superseded"
    MERGED = "merged"
    ARCHIVED = "archived"
    PENDING_REVIEW = "pending_review"


class DataSourceType(StrEnum):
    """data_sources.source_type (S4)."""

    API = "api"
    DATABASE = "database"
    FILE_SYSTEM = "file_system"
    WEBHOOK = "webhook"
    MANUAL = "manual"


class RelationshipType(StrEnum):
    """memory_relationships.relationship_type (S3, S4)."""

    REFERENCES = "references"
    CONTRADICTS = "contradicts"
    SUPPORTS = "supports"
    FOLLOWS = "follows"
    RELATED = "related"
    SUPERSEDES = "supersedes"
    DERIVED_FROM = "derived_from"


class PatternType(StrEnum):
    """consolidated_memories.pattern_type (S2)."""

    SUMMARY = "summary"
    PATTERN = "pattern"
    PREFERENCE = "preference"
    PROCEDURE = "procedure"
    FACT = "fact"
    INSIGHT = "insight"


class ConsolidationMethod(StrEnum):
    """consolidated_memories.consolidation_method (S2)."""

    LLM_SUMMARY = "llm_summary"
    CLUSTERING = "clustering"
    RULE_BASED = "rule_based"
    MANUAL = "manual"


class JobStatus(StrEnum):
    """consolidation_jobs.status (S2)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TriggerType(StrEnum):
    """consolidation_jobs.trigger_type (S2)."""

    SCHEDULED = "scheduled"
    THRESHOLD = "threshold"
    MANUAL = "manual"
    API = "api"


class TaskStatus(StrEnum):
    """task_contexts.status (S1)."""

    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"


class StageType(StrEnum):
    """stage_memories.stage_type (S1)."""

    PLANNING = "planning"
    EXECUTION = "execution"
    REFLECTION = "reflection"
    VERIFICATION = "verification"


class ErrorType(StrEnum):
    """task_errors.error_type (S1)."""

    HALLUCINATION = "hallucination"
    MISSING_INFO = "missing_info"
    INCORRECT_ACTION = "incorrect_action"
    CONTEXT_DEGRADATION = "context_degradation"


class CompressionType(StrEnum):
    """compression_metrics.compression_type (S1)."""

    STAGE = "stage"
    TASK = "task"
    MEMORY = "memory"


class AgeBasis(StrEnum):
    """retention_policies.age_basis."""

    ACCESSED_AT = "accessed_at"
    CREATED_AT = "created_at"


class RetentionAction(StrEnum):
    """retention_policies.action."""

    ARCHIVE = "archive"
    DELETE = "delete"
