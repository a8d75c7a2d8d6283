"""What the ``memctl models`` commands return: plain dataclasses, rendered by ``memctl.cli.render``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IndexState:
    """One HNSW index of a model: ``status`` valid, building (a build is in progress), invalid
    (a failed concurrent build left it) or missing; ``size_bytes`` when it exists."""

    table: str
    index: str
    status: str
    size_bytes: int | None = None


@dataclass
class OrgCoverage:
    """A model's coverage of one organisation: ``active`` memories (status active, not deleted) and
    consolidated memories, ``embedded`` those with a current embedding of the model, ``stale`` those
    whose embedding was computed from a content since changed. ``uses``: this model is the
    organisation's current one (its own choice or the global default)."""

    org: str
    active: int
    embedded: int
    stale: int
    uses: bool
    coverage: float = field(init=False)  # embedded / active (1.0 when there is nothing to embed)

    def __post_init__(self) -> None:
        self.coverage = self.embedded / self.active if self.active else 1.0


@dataclass
class ModelStatus:
    """A row of ``memctl models list``: the model's parameters, state and where it is the default,
    its indexes, and how many memories it covers. ``coverage``: share of the active memories and
    consolidated memories with a current embedding of the model (stale ones do not count);
    ``stale_rows``: embeddings computed from a content since changed."""

    id: int
    name: str
    dim: int
    distance: str
    storage: str
    m: int
    ef_construction: int
    state: str
    default: bool
    default_for: list[str]
    indexes: list[IndexState]
    embedded_rows: int
    active_memories: int
    covered_memories: int
    stale_rows: int
    by_org: list[OrgCoverage] = field(default_factory=list)
    coverage: float = field(init=False)  # covered_memories / active_memories (1.0 when there is none)

    def __post_init__(self) -> None:
        self.coverage = self.covered_memories / self.active_memories if self.active_memories else 1.0


@dataclass
class ModelList:
    """Every registered model (``memctl models list``)."""

    models: list[ModelStatus]


@dataclass
class BackfillResult:
    """What ``models backfill`` did. Rows are embedding rows; seconds are wall time.

    ``written``: new rows, ``refreshed``: stale rows replaced (--stale), ``unmatched``: memories
    whose content the source had no vector for (a file with other texts), ``changed``: memories
    whose content changed between read and write, or that were deleted (left for the next run).
    ``remaining``: memories in scope still without a current embedding afterwards, ``stale`` of them
    the ones with an embedding of an older content (left without ``--stale``); ``clean`` when none.
    """

    model: str
    source: str
    scope: str
    written: int = 0
    refreshed: int = 0
    unmatched: int = 0
    changed: int = 0
    batches: int = 0
    remaining: int = 0
    stale: int = 0
    elapsed_s: float = 0.0
    rows_per_s: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """True when every memory in scope has a current embedding of the model."""
        return self.remaining == 0


@dataclass
class IndexBuild:
    """One index of ``models index``: ``action`` built, rebuilt (an INVALID leftover dropped first) or
    present (valid already, untouched); ``seconds`` wall time of the build; ``rows`` indexed."""

    table: str
    index: str
    action: str
    rows: int
    seconds: float
    size_bytes: int | None


@dataclass
class IndexResult:
    """What ``models index`` did: the builds, the ``maintenance_work_mem`` it used (bytes), the graph
    size it estimated (bytes), PostgreSQL's warnings (pgvector's "graph no longer fits" notice), and
    the model's state afterwards (ready once every index is valid)."""

    model: str
    builds: list[IndexBuild]
    maintenance_work_mem_bytes: int
    estimated_graph_bytes: int
    state: str
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the model is ready (every index valid). A warning (a graph that did not fit
        builds, but slowly) is reported, not a failure."""
        return self.state == "ready"


@dataclass
class SwitchResult:
    """What ``models set-default`` did for ``scope`` ('global' or an organisation's slug).

    ``refused`` says why nothing changed (None: switched, or already so). ``coverage`` is the share
    of the scope's active memories with an embedding of the model.
    """

    model: str
    scope: str
    previous: str | None
    changed: bool
    coverage: float
    active: int
    embedded: int
    index_valid: bool
    refused: str | None = None
    unpinned: list[str] = field(default_factory=list)  # organisations whose own choice was the new default

    @property
    def ok(self) -> bool:
        """True unless the switch was refused. ``coverage``, ``active`` and ``embedded`` count the
        scope's active memories and consolidated memories, with a current (not stale) embedding."""
        return self.refused is None


@dataclass
class RetireResult:
    """What ``models retire`` did: rows deleted per table, indexes dropped, whether the model left the
    registry (``removed``), and why not (``refused``: still in use; ``stopped_by_budget``: run again)."""

    model: str
    deleted: dict[str, int] = field(default_factory=dict)
    indexes_dropped: list[str] = field(default_factory=list)
    removed: bool = False
    stopped_by_budget: bool = False
    refused: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the model is gone from the registry."""
        return self.removed
