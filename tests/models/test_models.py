"""Static rules of schema.md that the models must satisfy (no database needed)."""

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, PrimaryKeyConstraint
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from memctl.models import metadata
from memctl.models.ddl import REFERENCE_TABLES, tenant_tables


def test_all_27_tables_in_agent_memory():
    assert len(metadata.tables) == 27
    assert {t.schema for t in metadata.tables.values()} == {"agent_memory"}


def test_every_check_is_named_by_convention():
    for t in metadata.tables.values():
        for c in t.constraints:
            if isinstance(c, CheckConstraint):
                assert str(c.name).startswith(f"ck_{t.name}_"), (t.name, c.sqltext)


def test_tenant_tables_have_org_id_first_in_pk_and_composite_fks():
    for t in metadata.tables.values():
        if t.name in REFERENCE_TABLES:
            continue
        pk = [c.name for c in t.primary_key.columns]
        assert pk[0] == "org_id", t.name
        for fk in t.foreign_key_constraints:
            cols = [c.name for c in fk.columns]
            assert cols[0] == "org_id" or fk.referred_table.name == "embedding_models", (t.name, fk.name)


def test_every_fk_has_a_supporting_index():
    """Rule 9: an index (or the PK / a unique constraint) whose leading columns are the FK's."""
    for t in metadata.tables.values():
        leading = [[c.name for c in ix.expressions if hasattr(c, "name")] for ix in t.indexes]
        leading += [[c.name for c in k.columns] for k in t.constraints
                    if isinstance(k, PrimaryKeyConstraint) or k.__class__.__name__ == "UniqueConstraint"]
        for fk in t.constraints:
            if isinstance(fk, ForeignKeyConstraint):
                cols = [c.name for c in fk.columns]
                assert any(lead[:len(cols)] == cols for lead in leading), (t.name, cols)


def test_names_fit_63_bytes_after_compilation():
    d = postgresql.dialect()
    for t in metadata.sorted_tables:
        ddl = str(CreateTable(t).compile(dialect=d))
        for name in __import__("re").findall(r"CONSTRAINT (\w+)", ddl):
            assert len(name.encode()) <= 63, name
        for ix in t.indexes:
            name = __import__("re").search(r"INDEX (\w+)", str(CreateIndex(ix).compile(dialect=d))).group(1)
            assert len(name.encode()) <= 63, name


def test_tenant_tables_found_from_columns():
    tables = tenant_tables()
    assert "memories" in tables and "organizations" not in tables and "embedding_models" not in tables
    assert len(tables) == 25  # 27 minus organizations and embedding_models
