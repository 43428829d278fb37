"""warehouse.statements: the SQL files read, split and filled in, and every statement valid Redshift."""
from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from warehouse import statements
from warehouse.statements import SqlFileError, render, split_statements


def test_split_respects_quotes_and_drops_comments():
    # GIVEN a script with comments, a quoted semicolon, an escaped quote and a quoted identifier
    script = """-- a heading comment
    SELECT 'a;b' AS "odd;name", 'it''s' -- trailing
    FROM t; /* block; comment */ INSERT INTO t VALUES ('--not a comment');
    ;
    """
    # WHEN it is split
    parts = split_statements(script)
    # THEN there are two statements, text intact, comments gone
    assert parts == ["SELECT 'a;b' AS \"odd;name\", 'it''s'\n    FROM t", "INSERT INTO t VALUES ('--not a comment')"]


def test_split_reports_an_unterminated_quote():
    with pytest.raises(SqlFileError, match="unterminated ' quote"):
        split_statements("SELECT 'oops")


def test_render_fills_only_safe_values():
    assert render("SELECT '{run_id}', {version}", run_id="ab12", version=3) == "SELECT 'ab12', 3"
    with pytest.raises(ValueError, match="letters, digits"):
        render("'{name}'", name="x'; DROP TABLE fact; --")
    with pytest.raises(ValueError, match="has no value"):
        render("'{run_id}'")
    with pytest.raises(ValueError, match="bool"):
        render("{version}", version=True)


def test_migrations_are_numbered_from_one_without_gaps_and_fit_a_batch():
    migrations = statements.migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert [m.name for m in migrations] == ["staging", "model", "materialized_views", "view_refreshes"]
    assert all(0 < len(m.statements) < statements.MAX_BATCH_STATEMENTS for m in migrations)


def test_the_merge_is_one_data_api_batch_with_the_run_id_filled_in():
    merge = statements.merge_statements("0123456789abcdef0123456789abcdef")
    assert len(merge) <= statements.MAX_BATCH_STATEMENTS
    assert sum("'0123456789abcdef0123456789abcdef'" in s for s in merge) == 1
    assert not any("{" in s for s in merge)
    with pytest.raises(ValueError, match="32 lowercase hex"):
        statements.merge_statements("not-a-run-id")


def test_refresh_is_one_statement_per_materialized_view_the_migrations_create():
    created = {
        tree.this.name
        for m in statements.migrations() for s in m.statements
        for tree in [sqlglot.parse_one(s, read="redshift")]
        if isinstance(tree, exp.Create) and tree.args.get("properties") is not None
        and any(isinstance(p, exp.MaterializedProperty) for p in tree.args["properties"].expressions)
    }
    assert set(statements.materialized_views()) == created == {
        "mv_sales_by_country_day", "mv_top_products_by_country", "mv_customer_summary"}
    assert len(statements.refresh_statements()) == 3


def test_every_statement_parses_as_redshift():
    # GIVEN every statement the project sends to Redshift
    listed = statements.all_statements()
    assert len(listed) > 30
    for statement in listed:
        # WHEN sqlglot reads it as Redshift, raising on any error
        trees = [t for t in sqlglot.parse(statement.sql, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
                 if t is not None]
        # THEN it is exactly one statement (REFRESH is one sqlglot keeps as a command)
        assert len(trees) == 1, statement
        if isinstance(trees[0], exp.Command):
            assert trees[0].this.upper() == "REFRESH", statement


def test_materialized_views_use_nothing_redshift_refuses_in_them():
    # Redshift: no ORDER BY / LIMIT / OFFSET, no views, temporary tables or UDFs in a materialized view
    for statement in statements.migrations()[2].statements:
        query = sqlglot.parse_one(statement, read="redshift").expression
        assert query.args.get("order") is None and query.args.get("limit") is None
        assert query.args.get("offset") is None
        tables = {t.name for t in query.find_all(exp.Table)}
        assert tables <= {"fact_invoice_lines", "dim_products", "dim_customers"}, tables


def test_non_product_codes_are_excluded_from_product_lists_in_the_sql():
    top = next(s for s in statements.migrations()[2].statements if "mv_top_products_by_country" in s)
    assert "WHERE f.is_product" in top
