"""devstack.warehouse.dialect without a database: what each Redshift statement becomes on
DuckDB and PostgreSQL. (The same rules run against expected results in
tests/integration/test_warehouse_dialects.py.)"""
from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from devstack.warehouse import dialect
from devstack.warehouse.dialect import (
    DUCKDB,
    POSTGRES,
    CatalogEntry,
    Command,
    Copy,
    CreateMaterializedView,
    DropMaterializedView,
    Query,
    RefreshMaterializedView,
    strip_physical_attributes,
    translate,
)
from devstack.warehouse.errors import DialectError

BOTH = pytest.mark.parametrize("target", [DUCKDB, POSTGRES])


@pytest.mark.parametrize("redshift, local", [
    ("CREATE TABLE t (a INT NOT NULL ENCODE zstd, b INT ENCODE az64) DISTSTYLE KEY DISTKEY (a) COMPOUND SORTKEY (a, b)",
     "CREATE TABLE t (a INT NOT NULL, b INT)"),
    ("CREATE TABLE t (a INT DISTKEY SORTKEY ENCODE raw) BACKUP NO DISTSTYLE AUTO SORTKEY AUTO ENCODE AUTO",
     "CREATE TABLE t (a INT)"),
    ("CREATE TABLE t (a INT) INTERLEAVED SORTKEY (a)", "CREATE TABLE t (a INT)"),
    ("CREATE MATERIALIZED VIEW m BACKUP NO DISTSTYLE ALL SORTKEY (a) AUTO REFRESH YES AS SELECT 'ENCODE x' AS a",
     "CREATE MATERIALIZED VIEW m AS SELECT 'ENCODE x' AS a"),
    ("CREATE TABLE t DISTKEY (a) AS SELECT 1 AS distkey", "CREATE TABLE t AS SELECT 1 AS distkey"),
    ("SELECT 1 AS sortkey", "SELECT 1 AS sortkey"),
])
def test_physical_attributes_are_stripped_from_creates_only(redshift, local):
    stripped = re.sub(r"\s+([,)])", r"\1", " ".join(strip_physical_attributes(redshift).split()))
    assert stripped == local


@BOTH
def test_a_materialized_view_becomes_an_action_with_its_query(target):
    translation = translate("CREATE MATERIALIZED VIEW mv SORTKEY (country) AUTO REFRESH NO AS "
                            "SELECT country, COUNT(*) AS n FROM fact GROUP BY country", target)
    assert translation == CreateMaterializedView("mv", "SELECT country, COUNT(*) AS n FROM fact GROUP BY country")


@BOTH
@pytest.mark.parametrize("sql", ["REFRESH MATERIALIZED VIEW mv_daily;", "refresh materialized view MV_DAILY",
                                 "-- after the merge\nREFRESH MATERIALIZED VIEW mv_daily RESTRICT"])
def test_refresh_names_the_view(target, sql):
    assert translate(sql, target) == RefreshMaterializedView("mv_daily")


@BOTH
def test_creates_and_drops_keep_the_local_catalog(target):
    assert translate("CREATE TABLE IF NOT EXISTS fact (a INT)", target).creates == CatalogEntry("fact", "table")
    assert translate("CREATE VIEW v AS SELECT 1 AS one", target).creates == CatalogEntry("v", "view")
    temporary = translate("CREATE TEMP TABLE scratch AS SELECT 1 AS one", target)
    assert temporary.creates is None and temporary.temporary
    assert translate("DROP TABLE IF EXISTS a, b", target).drops == (CatalogEntry("a", "table"),
                                                                    CatalogEntry("b", "table"))
    assert translate("DROP MATERIALIZED VIEW IF EXISTS mv", target) == DropMaterializedView(("mv",), True)
    select_into = translate("SELECT a INTO copied FROM t", target)
    assert isinstance(select_into, Command) and select_into.creates == CatalogEntry("copied", "table")


@BOTH
def test_queries_and_commands_are_told_apart(target):
    assert isinstance(translate("WITH x AS (SELECT 1 AS n) SELECT n FROM x", target), Query)
    assert isinstance(translate("SELECT 1 UNION ALL SELECT 2", target), Query)
    for sql in ("INSERT INTO t VALUES (1)", "DELETE FROM t USING u WHERE t.k = u.k",
                "MERGE INTO t USING s ON t.k = s.k WHEN MATCHED THEN UPDATE SET v = s.v "
                "WHEN NOT MATCHED THEN INSERT (k, v) VALUES (s.k, s.v)"):
        translated = translate(sql, target)
        assert isinstance(translated, Command) and translated.creates is None


def test_getdate_is_utc_whole_seconds_and_sysdate_utc():
    duck = translate("SELECT GETDATE(), SYSDATE", DUCKDB).sql
    pg = translate("SELECT GETDATE(), SYSDATE", POSTGRES).sql
    assert duck == ("SELECT CAST(DATE_TRUNC('second', TIMEZONE('UTC', NOW())) AS TIMESTAMP), "
                    "CAST(TIMEZONE('UTC', NOW()) AS TIMESTAMP)")
    assert pg == "SELECT DATE_TRUNC('second', NOW() AT TIME ZONE 'UTC'), (NOW() AT TIME ZONE 'UTC')"


def test_datediff_counts_boundaries_on_postgresql():
    sql = translate("SELECT DATEDIFF(day, a, b), DATEDIFF(hrs, a, b), DATEDIFF(qtr, a, b) FROM t", POSTGRES).sql
    assert "CAST((CAST(CAST(b AS TIMESTAMP) AS DATE) - CAST(CAST(a AS TIMESTAMP) AS DATE)) AS BIGINT)" in sql
    assert "DATE_TRUNC('hour', CAST(b AS TIMESTAMP)) - DATE_TRUNC('hour', CAST(a AS TIMESTAMP))" in sql
    assert "EXTRACT(QUARTER FROM CAST(b AS TIMESTAMP))" in sql and "AGE(" not in sql


@BOTH
@pytest.mark.parametrize("part", ["week", "w", "millisecond", "microsecond"])
def test_datediff_parts_without_a_verified_rule_are_refused(target, part):
    with pytest.raises(DialectError, match=rf"DATEDIFF\({part}"):
        translate(f"SELECT DATEDIFF({part}, a, b) FROM t", target)


@BOTH
def test_trunc_of_a_typed_timestamp_column_becomes_a_date_cast(target):
    types = {"fact": {"invoice_date": "TIMESTAMP", "amount": "DECIMAL(24,6)"}}.get
    sql = translate("SELECT TRUNC(invoice_date), TRUNC(amount), TRUNC(GETDATE()) FROM fact", target,
                    column_types=types).sql
    tree = sqlglot.parse_one(sql, read=target)
    casts, truncs = list(tree.find_all(exp.Cast)), list(tree.find_all(exp.Trunc))
    assert [c.this.sql() for c in casts if c.to.is_type("date")][0] == "invoice_date"
    assert [t.this.sql() for t in truncs] == ["amount"]


@BOTH
def test_listagg_becomes_string_agg_with_its_order(target):
    sql = translate("SELECT LISTAGG(DISTINCT tag, ',') WITHIN GROUP (ORDER BY tag), LISTAGG(tag) FROM t", target).sql
    assert "STRING_AGG(DISTINCT tag, ',' ORDER BY tag" in sql and "STRING_AGG(tag, '')" in sql
    assert "WITHIN GROUP" not in sql


def test_qualify_on_postgresql_filters_before_the_order_and_limit():
    sql = translate("SELECT g, s FROM scores QUALIFY ROW_NUMBER() OVER (PARTITION BY g ORDER BY s DESC) = 1 "
                    "ORDER BY s DESC LIMIT 2", POSTGRES).sql
    outer = sqlglot.parse_one(sql, read="postgres")
    inner = outer.args["from_"].this
    assert outer.args.get("limit") is not None and outer.args.get("order") is not None
    assert isinstance(inner, exp.Subquery) and inner.this.args.get("limit") is None
    assert "QUALIFY" not in sql


def test_identity_is_refused_on_duckdb_and_kept_on_postgresql():
    with pytest.raises(DialectError, match="IDENTITY"):
        translate("CREATE TABLE t (id BIGINT IDENTITY(1, 1))", DUCKDB)
    assert "GENERATED BY DEFAULT AS IDENTITY" in translate("CREATE TABLE t (id BIGINT IDENTITY(1, 1))", POSTGRES).sql


@BOTH
def test_copy_becomes_a_copy_action(target):
    translation = translate("COPY stg (a, b) FROM 's3://b/m' IAM_ROLE 'arn' MANIFEST JSON 'auto' GZIP", target)
    assert isinstance(translation, Copy) and translation.command.columns == ("a", "b")
    with pytest.raises(DialectError, match="MAXERROR"):
        translate("COPY stg FROM 's3://b/m' MANIFEST JSON 'auto' MAXERROR 5", target)


@BOTH
def test_one_statement_at_a_time_and_readable_errors(target):
    with pytest.raises(DialectError, match="expected one statement, got 2"):
        translate("SELECT 1; SELECT 2", target)
    with pytest.raises(DialectError) as caught:
        translate("SELEC oops FROM", target)
    assert "statement: SELEC oops FROM" in str(caught.value)
    with pytest.raises(DialectError, match="not Redshift SQL"):
        translate("SELECT 'unterminated", target)
    with pytest.raises(ValueError, match="unknown target"):
        translate("SELECT 1", "oracle")


def test_the_targets_are_the_two_local_engines():
    assert dialect.TARGETS == ("duckdb", "postgres")
