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
    assert [m.name for m in migrations] == ["staging", "model", "materialized_views", "view_refreshes",
                                            "invoice_deliveries", "customers_by_country", "versions"]
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
        "mv_sales_by_country_day", "mv_top_products_by_country", "mv_customer_summary", "mv_customers_by_country"}
    assert len(statements.refresh_statements()) == 4


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


def mv_problems(query: exp.Expression) -> list[str]:
    """What Redshift refuses in a materialized view's query: ORDER BY (outside a window),
    LIMIT or OFFSET at any depth; relations other than the base tables."""
    problems = [f"ORDER BY {o.sql()}" for o in query.find_all(exp.Order) if not isinstance(o.parent, exp.Window)]
    problems += [f"{type(n).__name__.upper()} {n.sql()}" for n in query.find_all(exp.Limit, exp.Offset)]
    problems += [f"reads {t.name}" for t in query.find_all(exp.Table)
                 if t.name not in {"fact_invoice_lines", "dim_products", "dim_customers", "dim_date"}]
    return problems


def test_materialized_views_use_nothing_redshift_refuses_in_them():
    # Redshift: no ORDER BY / LIMIT / OFFSET, no views, temporary tables or UDFs in a materialized view
    views = [s for m in statements.migrations() for s in m.statements if "MATERIALIZED VIEW" in s.upper()]
    assert len(views) == 4
    for statement in views:
        assert mv_problems(sqlglot.parse_one(statement, read="redshift").expression) == [], statement
    # the check sees what it is for, at any depth
    nested = sqlglot.parse_one("SELECT * FROM (SELECT a, ROW_NUMBER() OVER (ORDER BY a) AS r FROM fact_invoice_lines "
                               "ORDER BY a LIMIT 3) x JOIN mv_other m ON TRUE", read="redshift")
    assert sorted(p.split()[0] for p in mv_problems(nested)) == ["LIMIT", "ORDER", "reads"]


def merge_problems(tree: exp.Merge) -> list[str]:
    """Redshift's MERGE: a target without alias, a table as the source, then exactly
    WHEN MATCHED THEN UPDATE|DELETE and WHEN NOT MATCHED THEN INSERT, without conditions."""
    problems = []
    if tree.this.args.get("alias") is not None:
        problems.append("target alias")
    if not isinstance(tree.args["using"], exp.Table):
        problems.append("source is not a table")
    whens = tree.args["whens"].expressions
    for when in whens:
        if when.args.get("condition") is not None:
            problems.append("WHEN ... AND condition")
        if when.args.get("source"):
            problems.append("NOT MATCHED BY SOURCE")
    shapes = [(bool(w.args.get("matched")), type(w.args["then"]).__name__) for w in whens]
    if sorted(shapes) not in ([(False, "Insert"), (True, "Update")], [(False, "Insert"), (True, "Var")]):
        problems.append(f"clauses {shapes}")
    return problems


def test_every_merge_has_the_only_form_redshift_accepts():
    merges = [tree for statement in statements.all_statements()
              for tree in [sqlglot.parse_one(statement.sql, read="redshift")] if isinstance(tree, exp.Merge)]
    assert len(merges) >= 4  # fact, invoice deliveries, two dimensions
    for tree in merges:
        assert merge_problems(tree) == [], tree.sql()
    # forms DuckDB and PostgreSQL accept, and Redshift does not, are caught
    accepted_elsewhere = sqlglot.parse_one(
        "MERGE INTO fact AS t USING (SELECT 1 AS x) s ON t.x = s.x WHEN MATCHED AND s.x > 0 THEN DELETE "
        "WHEN NOT MATCHED BY SOURCE THEN DELETE", read="redshift")
    assert len(merge_problems(accepted_elsewhere)) == 5


def test_non_product_codes_are_excluded_from_product_lists_in_the_sql():
    top = next(s for s in statements.migrations()[2].statements if "mv_top_products_by_country" in s)
    assert "WHERE f.is_product" in top
