"""The agent-memory schema as SQLAlchemy 2.0 models (schema.md), one module per domain.

Importing this package registers every table on :data:`metadata`.
"""

from memctl.models.base import NAMING_CONVENTION, SCHEMA, Base, metadata
from memctl.models.consolidation import ConsolidatedMemory, ConsolidationJob
from memctl.models.embeddings import (
    ConsolidatedMemoryEmbedding,
    EmbeddingModel,
    MemoryEmbedding,
    ModelSpec,
    OrganizationModel,
    hnsw_index,
    hnsw_index_name,
)
from memctl.models.governance import MemoryAccessPolicy, RetentionPolicy
from memctl.models.graph import (
    MemoryCollection,
    MemoryCollectionItem,
    MemoryRelationship,
    MemoryTag,
    MemoryVersion,
)
from memctl.models.memory import Memory
from memctl.models.tasks import CompressionMetric, StageMemory, TaskContext, TaskError
from memctl.models.tenancy import (
    Agent,
    ApiToken,
    Checkpoint,
    DataSource,
    Directive,
    Organization,
    Project,
    Session,
    User,
)

__all__ = [
    "NAMING_CONVENTION", "SCHEMA", "Base", "metadata",
    "Organization", "OrganizationModel", "Project", "User", "Agent", "ApiToken", "Directive", "Session", "Checkpoint",
    "DataSource", "Memory", "EmbeddingModel", "MemoryEmbedding", "ConsolidatedMemoryEmbedding",
    "ModelSpec", "hnsw_index", "hnsw_index_name", "MemoryVersion", "MemoryRelationship", "MemoryTag",
    "MemoryCollection", "MemoryCollectionItem", "ConsolidatedMemory", "ConsolidationJob",
    "TaskContext", "StageMemory", "TaskError", "CompressionMetric", "MemoryAccessPolicy",
    "RetentionPolicy",
]
