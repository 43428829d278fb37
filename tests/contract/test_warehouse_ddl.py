"""warehouse.schema.STAGING_COLUMNS and the SQL of warehouse/sql describe the same staging
table; the fact carries every staged value the model needs, keyed as the merge assumes."""
from __future__ import annotations

import sqlglot
from sqlglot import exp

from warehouse import statements
from warehouse.schema import STAGING_COLUMN_NAMES, STAGING_COLUMNS, STAGING_TABLE


def _table(name: str) -> exp.Create:
    """The table as the migrations leave it: its CREATE TABLE with every later
    ``ALTER TABLE … ADD COLUMN`` appended (Redshift adds a column last)."""
    create: exp.Create | None = None
    for migration in statements.migrations():
        for sql in migration.statements:
            tree = sqlglot.parse_one(sql, read="redshift")
            if isinstance(tree, exp.Create) and tree.this.this.name == name:
                create = tree.copy()
            elif isinstance(tree, exp.Alter) and tree.this.name == name and create is not None:
                for action in tree.args.get("actions") or []:
                    assert isinstance(action, exp.ColumnDef), f"only ADD COLUMN is modelled here: {sql}"
                    create.this.append("expressions", action.copy())
    if create is None:
        raise AssertionError(f"no CREATE TABLE {name} in warehouse/sql/migrations")
    return create


def _columns(create: exp.Create) -> list[exp.ColumnDef]:
    return [c for c in create.this.expressions if isinstance(c, exp.ColumnDef)]


def _type(text: str) -> str:
    return exp.DataType.build(text, dialect="redshift").sql("redshift")


def _not_null(column: exp.ColumnDef) -> bool:
    return any(isinstance(c.kind, exp.NotNullColumnConstraint) for c in column.constraints)


def _primary_key(create: exp.Create) -> list[str]:
    keys = [c for c in create.this.expressions if isinstance(c, exp.PrimaryKey)]
    return [e.name for e in keys[0].expressions] if keys else []


def test_the_staging_ddl_is_exactly_the_staging_columns():
    columns = _columns(_table(STAGING_TABLE))
    assert [c.name for c in columns] == list(STAGING_COLUMN_NAMES)
    assert [c.kind.sql("redshift") for c in columns] == [_type(c.type) for c in STAGING_COLUMNS]
    assert [_not_null(c) for c in columns] == [not c.nullable for c in STAGING_COLUMNS]


def test_the_merge_captures_every_staging_column():
    snapshot = sqlglot.parse_one(statements.merge_statements(statements.EXAMPLE_RUN_ID)[0], read="redshift")
    assert snapshot.this.name == "merge_snapshot"
    assert [e.name for e in snapshot.expression.expressions] == list(STAGING_COLUMN_NAMES)
    assert snapshot.expression.args["from_"].this.name == STAGING_TABLE


def test_the_fact_holds_every_staged_value_with_the_same_type_keyed_by_invoice_and_line():
    fact = _table("fact_invoice_lines")
    types = {c.name: (c.kind.sql("redshift"), _not_null(c)) for c in _columns(fact)}
    for column in STAGING_COLUMNS:
        assert types[column.name] == (_type(column.type), not column.nullable), column.name
    assert _primary_key(fact) == ["invoice_no", "line_no"]
    assert {"merged_at"} == set(types) - set(STAGING_COLUMN_NAMES)
    assert _primary_key(_table("dim_products")) == ["stock_code"]
    assert _primary_key(_table("dim_customers")) == ["customer_id"]
    assert _primary_key(_table("dim_date")) == ["calendar_date"]
