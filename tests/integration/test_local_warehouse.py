"""The local warehouse engine on DuckDB and PostgreSQL: results typed as the Data API
types them, batches as transactions, COPY as Firehose sends it, errors that name the
statement, reset, and many threads at once."""
from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from decimal import Decimal

import pytest

from devstack.warehouse import LocalWarehouse, WarehouseError
from tests.factories import copy_statement, event, keyed_rows, line, staging_ndjson
from warehouse import statements
from warehouse.loader import WarehouseLoader


def test_results_carry_redshift_type_names_and_python_values(warehouse):
    # GIVEN a table of the types the warehouse uses
    warehouse.execute("CREATE TABLE typed (s VARCHAR(10), i INTEGER, b BIGINT, m DECIMAL(15,6), f DOUBLE PRECISION, "
                      "t BOOLEAN, d DATE, ts TIMESTAMP, n SMALLINT)")
    inserted = warehouse.execute("INSERT INTO typed VALUES ('£5', 1, 2, 2.55, 0.5, true, '2010-12-01', "
                                 "'2010-12-01 08:26:00', 3), (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
    # WHEN it is queried, with aggregates
    result = warehouse.execute("SELECT s, i, b, m, f, t, d, ts, n, COUNT(*) OVER () AS c, SUM(i) OVER () AS total "
                               "FROM typed ORDER BY i")
    # THEN columns have Redshift's type names and values are exact Python values
    assert inserted.rowcount == 2 and result.rowcount == 2
    assert [(c.name, c.type_name) for c in result.columns] == [
        ("s", "varchar"), ("i", "int4"), ("b", "int8"), ("m", "numeric"), ("f", "float8"), ("t", "bool"),
        ("d", "date"), ("ts", "timestamp"), ("n", "int2"), ("c", "int8"), ("total", "int8")]
    assert result.rows[0] == ("£5", 1, 2, Decimal("2.550000"), 0.5, True, dt.date(2010, 12, 1),
                              dt.datetime(2010, 12, 1, 8, 26), 3, 2, 1)
    assert isinstance(result.rows[0][3], Decimal)
    assert result.rows[1][:9] == (None,) * 9


def test_dml_reports_the_rows_it_affected_and_ddl_none(warehouse):
    created = warehouse.execute("CREATE TABLE counted (n INTEGER)")
    warehouse.execute("INSERT INTO counted VALUES (1), (2), (3)")
    updated = warehouse.execute("UPDATE counted SET n = n + 1 WHERE n > 1")
    deleted = warehouse.execute("DELETE FROM counted WHERE n = 4")
    assert (created.rowcount, updated.rowcount, deleted.rowcount) == (0, 2, 1)
    assert created.columns == [] and updated.rows == []


def test_select_into_creates_a_table_shopstream_then_owns(warehouse):
    warehouse.execute("CREATE TABLE source_rows (n INTEGER)")
    warehouse.execute("INSERT INTO source_rows VALUES (1), (2)")
    warehouse.execute("SELECT n INTO copied_rows FROM source_rows")
    assert warehouse.execute("SELECT SUM(n) FROM copied_rows").scalar() == 3
    assert warehouse.catalog()["copied_rows"] == "table"


def test_execute_runs_exactly_one_statement(warehouse):
    with pytest.raises(WarehouseError, match="expected one statement, got 2"):
        warehouse.execute("SELECT 1; SELECT 2")


def test_an_error_names_the_backend_the_statement_and_the_backends_message(warehouse):
    with pytest.raises(WarehouseError) as caught:
        warehouse.execute("SELECT missing_column FROM no_such_table")
    error = caught.value
    assert error.statement == "SELECT missing_column FROM no_such_table"
    assert warehouse.backend in str(error) and "no_such_table" in error.reason
    assert "statement: SELECT missing_column FROM no_such_table" in str(error)


def test_a_batch_is_one_transaction_with_temporary_tables_visible_across_it(warehouse):
    # GIVEN a table
    warehouse.execute("CREATE TABLE ledger (n INTEGER)")
    # WHEN a batch fills it through a temporary table
    warehouse.execute_batch([
        "CREATE TEMP TABLE scratch AS SELECT 1 AS n UNION ALL SELECT 2",
        "INSERT INTO ledger SELECT n FROM scratch",
    ])
    # THEN the rows are there, and the temporary table ended with the batch's session
    assert warehouse.execute("SELECT COUNT(*) FROM ledger").scalar() == 2
    with pytest.raises(WarehouseError, match="scratch"):
        warehouse.execute("SELECT * FROM scratch")


def test_a_failing_batch_changes_nothing_and_says_which_statement_failed(warehouse):
    warehouse.execute("CREATE TABLE ledger (n INTEGER)")
    with pytest.raises(WarehouseError) as caught:
        warehouse.execute_batch(["INSERT INTO ledger VALUES (1)", "INSERT INTO ledger VALUES (2)",
                                 "INSERT INTO no_such_table VALUES (3)"])
    assert caught.value.index == 2 and "statement 3 of 3 in the batch" in str(caught.value)
    assert warehouse.execute("SELECT COUNT(*) FROM ledger").scalar() == 0


def test_a_statement_the_translator_refuses_fails_before_anything_runs(warehouse):
    warehouse.execute("CREATE TABLE ledger (n INTEGER)")
    with pytest.raises(WarehouseError, match="statement 2 of 2 in the batch"):
        warehouse.execute_batch(["INSERT INTO ledger VALUES (1)",
                                 "SELECT DATEDIFF(week, CAST('2010-01-01' AS DATE), CAST('2010-02-01' AS DATE))"])
    assert warehouse.execute("SELECT COUNT(*) FROM ledger").scalar() == 0


def _staging(warehouse):
    WarehouseLoader(warehouse).ensure_schema()


def test_copy_loads_what_firehose_sends_exactly(warehouse, bucket):
    # GIVEN the staging table and a manifest of two gzipped NDJSON objects
    _staging(warehouse)
    first = event("536365", lines=[line(1, quantity=6, unit_price="2.55"), line(2, "POST", "POSTAGE", 1, "18.00")])
    second = event("C536379", customer_id=None, lines=[line(1, "D", None, -1, "27.50"),
                                                       line(2, quantity=3, unit_price="0.001")])
    manifest = bucket.stage(staging_ndjson([first]), staging_ndjson([second], first_sequence=10**20 + 5))
    # WHEN Firehose's COPY runs
    result = warehouse.execute(copy_statement(manifest))
    # THEN every line is staged with exact money, flags and NULLs
    assert result.rowcount == 4
    rows = warehouse.execute("SELECT invoice_no, line_no, customer_id, description, quantity, unit_price, amount, "
                             "is_cancellation, is_product, invoice_date FROM stg_invoice_lines "
                             "ORDER BY invoice_no, line_no").rows
    assert rows == [
        ("536365", 1, "17850", "WHITE HANGING HEART T-LIGHT HOLDER", 6, Decimal("2.55"), Decimal("15.30"), False, True,
         dt.datetime(2010, 12, 1, 8, 26)),
        ("536365", 2, "17850", "POSTAGE", 1, Decimal("18.00"), Decimal("18.00"), False, False,
         dt.datetime(2010, 12, 1, 8, 26)),
        ("C536379", 1, None, None, -1, Decimal("27.50"), Decimal("-27.50"), True, False,
         dt.datetime(2010, 12, 1, 8, 26)),
        ("C536379", 2, None, "WHITE HANGING HEART T-LIGHT HOLDER", 3, Decimal("0.001"), Decimal("0.003"), True, True,
         dt.datetime(2010, 12, 1, 8, 26)),
    ]


@pytest.mark.parametrize("options, keyed", [
    ("json 's3://staging/jsonpaths/stg_invoice_lines.json' gzip timeformat 'auto'", False),
    ("GZIP TIMEFORMAT AS 'auto' FORMAT AS JSON 's3://staging/jsonpaths/stg_invoice_lines.json' REGION 'eu-west-1' "
     "COMPUPDATE OFF STATUPDATE OFF", False),
    ("json 'auto' gzip timeformat 'auto'", True),  # keyed objects, matched to the columns by name
])
def test_copy_takes_the_options_in_any_order_and_case(warehouse, bucket, options, keyed):
    _staging(warehouse)
    rows = staging_ndjson([event(n_lines=3)])
    manifest = bucket.stage(keyed_rows(rows) if keyed else rows)
    assert warehouse.execute(copy_statement(manifest, options)).rowcount == 3
    assert warehouse.execute("SELECT SUM(amount) FROM stg_invoice_lines").scalar() == event(n_lines=3).total


def test_a_jsonpaths_file_must_have_one_supported_expression_per_column(warehouse, bucket):
    _staging(warehouse)
    manifest = bucket.stage(staging_ndjson([event()]))
    bucket.put("short.json", b'{"jsonpaths": ["$[0]"]}')
    from warehouse.schema import STAGING_COLUMNS

    width = len(STAGING_COLUMNS)
    bucket.put("deep.json", json.dumps({"jsonpaths": ["$[0].a"] * width}).encode())
    for name, message in (("short.json", f"1 expressions for {width} columns"), ("deep.json", "not supported"),
                          ("absent.json", "does not exist")):
        with pytest.raises(WarehouseError, match=message):
            warehouse.execute(copy_statement(manifest, f"JSON 's3://staging/{name}' GZIP"))
    assert warehouse.execute("SELECT COUNT(*) FROM stg_invoice_lines").scalar() == 0


@pytest.mark.parametrize("options, named", [
    ("JSON 'auto' GZIP TIMEFORMAT 'auto' MAXERROR 10", "MAXERROR"),
    ("CSV GZIP", "CSV"),
    ("JSON 'auto ignorecase' GZIP", "ignorecase"),
    ("JSON 'auto' GZIP TIMEFORMAT 'epochmillisecs'", "TIMEFORMAT"),
])
def test_copy_refuses_options_it_would_not_honour_and_names_them(warehouse, bucket, options, named):
    _staging(warehouse)
    manifest = bucket.stage(staging_ndjson([event()]))
    with pytest.raises(WarehouseError, match=named):
        warehouse.execute(copy_statement(manifest, options))
    assert warehouse.execute("SELECT COUNT(*) FROM stg_invoice_lines").scalar() == 0


def test_copy_without_manifest_is_refused(warehouse, bucket):
    _staging(warehouse)
    url = bucket.put("plain.json.gz", b"")
    statement = copy_statement(url).replace(" MANIFEST ", " ")
    with pytest.raises(WarehouseError, match="without MANIFEST"):
        warehouse.execute(statement)


def test_a_missing_mandatory_object_fails_the_copy_and_loads_nothing(warehouse, bucket):
    # GIVEN a manifest of two objects, one of them gone
    _staging(warehouse)
    manifest = bucket.stage(staging_ndjson([event("1")]), staging_ndjson([event("2")]))
    del bucket.objects[(bucket.name, "batch-1/part-1.json.gz")]
    # WHEN it is COPYed THEN the COPY fails naming the object, and nothing is staged
    with pytest.raises(WarehouseError, match="part-1.json.gz"):
        warehouse.execute(copy_statement(manifest))
    assert warehouse.execute("SELECT COUNT(*) FROM stg_invoice_lines").scalar() == 0


def test_a_missing_optional_object_is_skipped(warehouse, bucket):
    _staging(warehouse)
    manifest = bucket.stage(staging_ndjson([event("1", n_lines=2)]), staging_ndjson([event("2")]), mandatory=False)
    del bucket.objects[(bucket.name, "batch-1/part-1.json.gz")]
    assert warehouse.execute(copy_statement(manifest)).rowcount == 2


def test_a_copy_of_rows_breaking_the_staging_contract_fails_whole(warehouse, bucket):
    # GIVEN one good row and one without its NOT NULL invoice number
    _staging(warehouse)
    good = staging_ndjson([event("1")])
    bad = good.replace(b'","1",', b'",null,', 1)
    assert bad != good
    manifest = bucket.stage(good, bad)
    # WHEN it is COPYed THEN it fails and nothing is staged
    with pytest.raises(WarehouseError):
        warehouse.execute(copy_statement(manifest))
    assert warehouse.execute("SELECT COUNT(*) FROM stg_invoice_lines").scalar() == 0


def test_copy_needs_an_object_reader_and_a_known_table(warehouse_url, bucket):
    with LocalWarehouse.open(warehouse_url) as blind:
        blind.reset()
        try:
            WarehouseLoader(blind).ensure_schema()
            with pytest.raises(WarehouseError, match="object_reader"):
                blind.execute(copy_statement(bucket.stage(b"")))
        finally:
            blind.reset()
    with LocalWarehouse.open(warehouse_url, object_reader=bucket.reader) as warehouse:
        with pytest.raises(WarehouseError, match="no such table"):
            warehouse.execute(copy_statement(bucket.stage(staging_ndjson([event()]))).replace(
                "COPY stg_invoice_lines", "COPY nowhere"))


def test_every_statement_of_warehouse_sql_runs(warehouse):
    # GIVEN every statement the project sends to Redshift, in the order the loader sends them
    ran = 0
    for source, group in itertools.groupby(statements.all_statements(), key=lambda s: s.source):
        sqls = [s.sql for s in group]
        # WHEN each runs, the merge as its one batch
        if source == "merge.sql":
            warehouse.execute_batch(sqls)
        else:
            for sql in sqls:
                warehouse.execute(sql)
        ran += len(sqls)
    # THEN none failed, and they did what they say
    assert ran == len(statements.all_statements())
    assert warehouse.execute("SELECT run_id FROM shopstream_merge_runs").rows == [(statements.EXAMPLE_RUN_ID,)]
    assert warehouse.execute("SELECT version FROM shopstream_migrations ORDER BY version").rows == [
        (m.version,) for m in statements.migrations()]
    assert set(warehouse.catalog()) >= {"stg_invoice_lines", "fact_invoice_lines", "dim_products", "dim_customers",
                                        "dim_date", *statements.materialized_views()}


def test_reset_drops_everything_shopstream_created_and_nothing_else(warehouse_url, bucket):
    # GIVEN a warehouse with the whole schema, and (on PostgreSQL) a table shopstream did not create
    foreign = None
    if warehouse_url.startswith("postgresql"):
        import psycopg

        foreign = psycopg.connect(warehouse_url, autocommit=True)
        foreign.execute("CREATE TABLE IF NOT EXISTS someone_elses (n INTEGER)")
    try:
        with LocalWarehouse.open(warehouse_url, object_reader=bucket.reader) as warehouse:
            WarehouseLoader(warehouse).ensure_schema()
            warehouse.execute("CREATE VIEW recent_lines AS SELECT * FROM fact_invoice_lines")
            created = [s for m in statements.migrations() for s in m.statements if s.lstrip().upper().startswith("CREATE")]
            assert len(warehouse.catalog()) == len(created) + 2  # + the migrations table, + recent_lines
            # WHEN it is reset
            warehouse.reset()
            # THEN what it created is gone, and a new schema can be applied from scratch
            assert warehouse.catalog() == {}
            for name in ("fact_invoice_lines", "mv_customer_summary", "recent_lines", "shopstream_migrations"):
                with pytest.raises(WarehouseError):
                    warehouse.execute(f"SELECT * FROM {name}")
            assert WarehouseLoader(warehouse).ensure_schema() == [m.version for m in statements.migrations()]
            warehouse.reset()
        if foreign is not None:
            assert foreign.execute("SELECT COUNT(*) FROM someone_elses").fetchone() == (0,)
    finally:
        if foreign is not None:
            foreign.execute("DROP TABLE IF EXISTS someone_elses")
            foreign.close()


def test_open_takes_a_duckdb_path_when_no_url_is_given(tmp_path):
    path = tmp_path / "nested" / "default.duckdb"
    with LocalWarehouse.open(None, duckdb_path=path) as warehouse:
        warehouse.execute("CREATE TABLE kept (n INTEGER)")
        warehouse.execute("INSERT INTO kept VALUES (7)")
    with LocalWarehouse.open(f"duckdb://{path}") as reopened:
        assert reopened.backend == "duckdb" and reopened.execute("SELECT n FROM kept").scalar() == 7
    with LocalWarehouse.open("duckdb:///:memory:") as scratch:
        assert scratch.execute("SELECT 40 + 2 AS answer").records() == [{"answer": 42}]
    with pytest.raises(ValueError, match="duckdb_path"):
        LocalWarehouse.open(None)
    with pytest.raises(ValueError, match="unsupported warehouse URL"):
        LocalWarehouse.open("mysql://localhost/db")


def test_many_threads_read_while_writers_are_serialised(warehouse):
    # GIVEN a table, four writer threads and four reader threads
    warehouse.execute("CREATE TABLE hits (writer INTEGER, n INTEGER)")
    writes_per_writer, errors = 25, []
    seen: dict[int, list[int]] = {}
    start = threading.Barrier(8)

    def writer(w: int) -> None:
        start.wait()
        try:
            for n in range(writes_per_writer):
                if n % 5 == 0:
                    warehouse.execute_batch([f"INSERT INTO hits VALUES ({w}, {n})",
                                             f"UPDATE hits SET n = n WHERE writer = {w}"])
                else:
                    warehouse.execute(f"INSERT INTO hits VALUES ({w}, {n})")
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    def reader(r: int) -> None:
        start.wait()
        counts = seen.setdefault(r, [])
        try:
            for _ in range(30):
                counts.append(warehouse.execute("SELECT COUNT(*) FROM hits").scalar())
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(4)]
    # WHEN they all run at once
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # THEN nothing failed, every write landed, and each reader saw the count only grow
    assert errors == []
    assert warehouse.execute("SELECT COUNT(*) FROM hits").scalar() == 4 * writes_per_writer
    assert all(counts == sorted(counts) for counts in seen.values())


def test_each_statement_is_a_session_of_its_own(warehouse):
    # WHEN a statement changes its session (a setting, a temporary table)
    warehouse.execute("CREATE TEMP TABLE t_scratch AS SELECT 1 AS n")
    if warehouse.backend == "postgresql":
        warehouse.execute("SET TIME ZONE 'Asia/Tokyo'")
    # THEN later statements, on whichever pooled connection, see none of it
    with pytest.raises(WarehouseError):
        warehouse.execute("SELECT n FROM t_scratch")
    if warehouse.backend == "postgresql":
        assert warehouse.execute("SHOW TIME ZONE").scalar() != "Asia/Tokyo"
        assert warehouse.execute("SHOW enable_nestloop").scalar() == "off"  # the connection's own defaults stay
