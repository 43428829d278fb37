"""Each hand-written Redshift → DuckDB / PostgreSQL rule, run on both engines against the
result Redshift gives (from its documentation where it has an example)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from devstack.warehouse import WarehouseError


def one(warehouse, sql):
    return warehouse.execute(sql).scalar()


@pytest.mark.parametrize("part, start, end, expected", [
    ("day", "2010-12-01 23:59:00", "2010-12-02 00:01:00", 1),      # sqlglot's PostgreSQL form gives 0
    ("day", "2010-12-02 00:01:00", "2010-12-01 23:59:00", -1),
    ("year", "2008-12-31 00:00:00", "2009-01-01 00:00:00", 1),     # the DATEDIFF documentation's example
    ("hour", "2009-01-01 08:30:00", "2009-01-01 10:00:00", 2),     # the documentation's example
    ("hours", "2009-01-01 08:30:00", "2009-01-01 10:00:00", 2),    # an abbreviation Redshift accepts
    ("month", "2010-01-31 12:00:00", "2010-02-01 00:00:00", 1),
    ("qtr", "2010-03-31 23:00:00", "2010-04-01 01:00:00", 1),
    ("quarter", "1998-07-01 00:00:00", "2008-06-05 00:00:00", 39),
    ("minute", "2010-12-01 10:00:59", "2010-12-01 10:01:00", 1),
    ("second", "2010-12-01 10:00:00.900", "2010-12-01 10:00:01.100", 1),
])
def test_datediff_counts_boundaries_crossed_like_redshift(warehouse, part, start, end, expected):
    # WHEN a DATEDIFF runs on the local engine
    value = one(warehouse, f"SELECT DATEDIFF({part}, CAST('{start}' AS TIMESTAMP), CAST('{end}' AS TIMESTAMP))")
    # THEN it is the number of part boundaries between the two, as in Redshift
    assert value == expected


def test_datediff_on_dates_and_on_weeks(warehouse):
    assert one(warehouse, "SELECT DATEDIFF(day, CAST('2010-12-01' AS DATE), CAST('2010-12-09' AS DATE))") == 8
    # week is refused, not guessed: DuckDB counts 7-day spans, Redshift counts boundaries
    with pytest.raises(WarehouseError, match=r"DATEDIFF\(week"):
        warehouse.execute("SELECT DATEDIFF(week, CAST('2009-01-01' AS DATE), CAST('2009-12-31' AS DATE))")


def test_getdate_is_utc_now_as_a_timestamp_without_fractional_seconds(warehouse):
    # WHEN GETDATE() and SYSDATE are asked for
    result = warehouse.execute("SELECT GETDATE() AS now, SYSDATE AS sys")
    now, sys_now = result.rows[0]
    utc = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # THEN both are naive UTC timestamps of now, GETDATE whole seconds
    assert [c.type_name for c in result.columns] == ["timestamp", "timestamp"]
    assert now.tzinfo is None and now.microsecond == 0
    assert abs((utc - now).total_seconds()) < 60 and abs((utc - sys_now).total_seconds()) < 60


def test_trunc_of_a_timestamp_is_its_date_and_of_a_number_its_integer_part(warehouse):
    # GIVEN a table with a timestamp and a decimal column
    warehouse.execute("CREATE TABLE trunc_cases (at TIMESTAMP, amount DECIMAL(10,2))")
    warehouse.execute("INSERT INTO trunc_cases VALUES ('2010-12-01 08:26:00', 12.75)")
    # WHEN TRUNC is applied to each
    before = dt.datetime.now(dt.UTC).date()
    result = warehouse.execute("SELECT TRUNC(at) AS day, TRUNC(amount) AS whole, TRUNC(GETDATE()) AS today "
                               "FROM trunc_cases")
    after = dt.datetime.now(dt.UTC).date()
    # THEN the timestamp becomes a date (as in Redshift), the number loses its fraction
    day, whole, today = result.rows[0]
    assert day == dt.date(2010, 12, 1) and result.columns[0].type_name == "date"
    assert whole == 12
    assert today in (before, after)


def test_listagg_with_and_without_distinct(warehouse):
    warehouse.execute("CREATE TABLE tags (k INTEGER, tag VARCHAR(10))")
    warehouse.execute("INSERT INTO tags VALUES (1, 'b'), (1, 'a'), (1, 'b'), (2, 'c')")
    result = warehouse.execute(
        "SELECT k, LISTAGG(DISTINCT tag, ',') WITHIN GROUP (ORDER BY tag) AS distinct_tags, "
        "LISTAGG(tag, '|') WITHIN GROUP (ORDER BY tag DESC) AS all_tags, LISTAGG(tag) AS glued "
        "FROM tags GROUP BY k ORDER BY k"
    )
    rows = result.records()
    assert [(r["k"], r["distinct_tags"], r["all_tags"]) for r in rows] == [(1, "a,b", "b|b|a"), (2, "c", "c")]
    assert sorted(rows[0]["glued"]) == ["a", "b", "b"] and rows[1]["glued"] == "c"


def test_qualify_filters_before_order_by_and_limit(warehouse):
    # GIVEN three groups of rows
    warehouse.execute("CREATE TABLE scores (grp VARCHAR(1), score INTEGER)")
    warehouse.execute("INSERT INTO scores VALUES ('a', 9), ('a', 8), ('b', 5), ('b', 2), ('c', 7)")
    # WHEN the best row of each group is kept, the two best of those ordered and limited
    result = warehouse.execute(
        "SELECT grp, score FROM scores QUALIFY ROW_NUMBER() OVER (PARTITION BY grp ORDER BY score DESC) = 1 "
        "ORDER BY score DESC LIMIT 2"
    )
    # THEN QUALIFY applied first (PostgreSQL has no QUALIFY; a rewrite limiting first gives only ('a', 9))
    assert result.rows == [("a", 9), ("c", 7)]


def test_physical_attributes_are_accepted_in_every_redshift_form(warehouse):
    # WHEN tables are created with Redshift's storage attributes, table- and column-level
    warehouse.execute("CREATE TABLE attrs_a (k VARCHAR(10) NOT NULL ENCODE zstd, n INTEGER ENCODE az64, "
                      "PRIMARY KEY (k)) DISTSTYLE KEY DISTKEY (k) COMPOUND SORTKEY (k, n)")
    warehouse.execute("CREATE TABLE attrs_b (k INTEGER DISTKEY SORTKEY ENCODE raw) BACKUP NO DISTSTYLE AUTO "
                      "SORTKEY AUTO ENCODE AUTO")
    warehouse.execute("CREATE TABLE attrs_c (k INTEGER) INTERLEAVED SORTKEY (k)")
    warehouse.execute("CREATE TABLE attrs_d DISTSTYLE ALL AS SELECT 1 AS one")
    # THEN they are ordinary tables locally
    warehouse.execute("INSERT INTO attrs_a VALUES ('x', 1)")
    warehouse.execute("INSERT INTO attrs_b VALUES (2)")
    warehouse.execute("INSERT INTO attrs_c VALUES (3)")
    assert one(warehouse, "SELECT (SELECT COUNT(*) FROM attrs_a) + (SELECT COUNT(*) FROM attrs_b) "
                          "+ (SELECT COUNT(*) FROM attrs_c) + (SELECT one FROM attrs_d)") == 4


def test_a_materialized_view_changes_only_when_refreshed(warehouse):
    # GIVEN a materialized view over a table
    warehouse.execute("CREATE TABLE base (n INTEGER)")
    warehouse.execute("INSERT INTO base VALUES (1), (2)")
    warehouse.execute("CREATE MATERIALIZED VIEW base_total BACKUP NO SORTKEY (total) AUTO REFRESH NO "
                      "AS SELECT SUM(n) AS total, COUNT(*) AS rows_counted FROM base")
    # WHEN the base changes
    warehouse.execute("INSERT INTO base VALUES (10)")
    # THEN the view still holds what it materialized (a plain view would say 13) ...
    assert warehouse.execute("SELECT total, rows_counted FROM base_total").rows == [(3, 2)]
    # ... until it is refreshed
    warehouse.execute("REFRESH MATERIALIZED VIEW base_total")
    assert warehouse.execute("SELECT total, rows_counted FROM base_total").rows == [(13, 3)]
    # AND it is dropped as a materialized view
    warehouse.execute("DROP MATERIALIZED VIEW base_total")
    assert "base_total" not in warehouse.catalog()
    with pytest.raises(WarehouseError, match="base_total"):
        warehouse.execute("REFRESH MATERIALIZED VIEW base_total")


def test_identity_columns_number_rows_on_postgresql_and_are_refused_on_duckdb(warehouse):
    statement = "CREATE TABLE numbered (id BIGINT IDENTITY(1, 1), name VARCHAR(10))"
    if warehouse.backend == "duckdb":
        with pytest.raises(WarehouseError, match="IDENTITY"):
            warehouse.execute(statement)
        return
    warehouse.execute(statement)
    warehouse.execute("INSERT INTO numbered (name) VALUES ('a'), ('b')")
    assert warehouse.execute("SELECT id, name FROM numbered ORDER BY id").rows == [(1, "a"), (2, "b")]


def test_date_parts_used_by_dim_date_match_python(warehouse):
    # GIVEN dates around a year boundary (ISO weeks 52, 53, 1)
    days = [dt.date(2010, 12, 26) + dt.timedelta(days=i) for i in range(10)] + [dt.date(2011, 12, 9)]
    values = ", ".join(f"(CAST('{d}' AS DATE))" for d in days)
    warehouse.execute("CREATE TABLE some_days (d DATE)")
    warehouse.execute(f"INSERT INTO some_days VALUES {values}")
    # WHEN the expressions of the dim_date load read them
    rows = warehouse.execute(
        "SELECT d, CAST(EXTRACT(WEEK FROM d) AS SMALLINT), CAST(DATE_PART(dow, d) AS SMALLINT), "
        "CAST(EXTRACT(QUARTER FROM d) AS SMALLINT) FROM some_days ORDER BY d"
    ).rows
    # THEN the ISO week, the day of week (0 = Sunday) and the quarter are Python's
    assert rows == [(d, d.isocalendar()[1], d.isoweekday() % 7, (d.month - 1) // 3 + 1) for d in days]


def test_money_stays_exact_through_sums_and_casts(warehouse):
    warehouse.execute("CREATE TABLE money (amount DECIMAL(24,6))")
    warehouse.execute("INSERT INTO money VALUES (0.1), (0.2), (-0.3), (1234567890.123456)")
    result = warehouse.execute("SELECT SUM(amount) AS total FROM money")
    assert result.scalar() == Decimal("1234567890.123456") and isinstance(result.scalar(), Decimal)
    assert result.columns[0].type_name == "numeric"
