"""The merge's exactly-once effect under at-least-once delivery, on each local warehouse:
duplicates, replays, changed invoices, late older deliveries, an empty staging table and
COPYs that land while a merge runs.

"Changes no fact row" is proved on PostgreSQL by ``xmin`` (the transaction that wrote a row
version): a rewrite with identical values would still change it. DuckDB has no such
marker; there the contents are compared, ``merged_at`` included.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from devstack.warehouse import LocalWarehouse, WarehouseError
from pipeline.kaggle import read_invoices
from tests.conftest import SAMPLE
from tests.factories import copy_statement, event, line, staging_ndjson
from warehouse.loader import WarehouseLoader
from warehouse.schema import source_sequence

FIRST = 10**20  # the first Kinesis sequence number used here


def stage(warehouse, bucket, *parts: bytes) -> int:
    return warehouse.execute(copy_statement(bucket.stage(*parts))).rowcount


def fact(warehouse) -> list[tuple]:
    return warehouse.execute("SELECT * FROM fact_invoice_lines ORDER BY invoice_no, line_no").rows


def row_versions(warehouse, table: str, key: str) -> dict:
    """PostgreSQL: each row's xmin, by key (None elsewhere)."""
    if warehouse.backend != "postgresql":
        return {}
    return dict(warehouse.execute(f"SELECT {key}, CAST(xmin AS VARCHAR) FROM {table}").rows)


def versions(warehouse) -> dict:
    return {
        "fact": row_versions(warehouse, "fact_invoice_lines", "invoice_no || '/' || CAST(line_no AS VARCHAR)"),
        "products": row_versions(warehouse, "dim_products", "stock_code"),
        "customers": row_versions(warehouse, "dim_customers", "customer_id"),
        "dates": row_versions(warehouse, "dim_date", "calendar_date"),
    }


def staged(warehouse) -> int:
    return warehouse.execute("SELECT COUNT(*) FROM stg_invoice_lines").scalar()


@pytest.fixture
def loader(warehouse) -> WarehouseLoader:
    loader = WarehouseLoader(warehouse)
    loader.ensure_schema()
    return loader


def test_duplicates_and_replays_change_no_fact_row(warehouse, bucket, loader):
    # GIVEN the sample merged once
    events = list(read_invoices(str(SAMPLE)))
    manifest = bucket.stage(staging_ndjson(events[:200], first_sequence=FIRST),
                            staging_ndjson(events[200:], first_sequence=FIRST + 200))
    warehouse.execute(copy_statement(manifest))
    loader.run()
    before, before_versions = fact(warehouse), versions(warehouse)
    dims_before = [warehouse.execute(f"SELECT * FROM {t} ORDER BY 1").rows for t in ("dim_products", "dim_customers")]
    # WHEN the same file is COPYed twice more (a Firehose retry) and the sample is replayed
    # (same content, same event ids, later sequence numbers), then merged
    warehouse.execute(copy_statement(manifest))
    warehouse.execute(copy_statement(manifest))
    stage(warehouse, bucket, staging_ndjson(events, first_sequence=FIRST + 10**6))
    result = loader.run().merge
    # THEN every staged row was seen and skipped, and staging is empty
    assert (result.staged_rows, result.staged_invoices, result.invoices_skipped) == (3 * 7419, 418, 418)
    assert (result.invoices_inserted, result.invoices_replaced, result.lines_inserted, result.lines_updated,
            result.lines_deleted) == (0, 0, 0, 0, 0)
    assert staged(warehouse) == 0
    # AND there is still exactly one row per line, with not one row written again
    after = fact(warehouse)
    assert len(after) == 7419 and after == before
    assert versions(warehouse) == before_versions
    assert [warehouse.execute(f"SELECT * FROM {t} ORDER BY 1").rows
            for t in ("dim_products", "dim_customers")] == dims_before
    if warehouse.backend == "postgresql":
        assert len(before_versions["fact"]) == 7419 and len(before_versions["products"]) > 1000


def _invoice(version: int):
    """Invoice 900001 in two versions: the second has fewer lines, another customer and day."""
    if version == 1:
        return event("900001", invoice_date="2010-12-02T10:00:00", customer_id="11111", country="France",
                     lines=[line(1, "85123A", quantity=6, unit_price="2.55"), line(2, "71053", "LANTERN", 8, "3.39"),
                            line(3, "ONLY-HERE", "GONE SOON", 2, "1.00")])
    return event("900001", invoice_date="2010-12-03T11:00:00", customer_id="22222", country="France",
                 lines=[line(1, "85123A", quantity=12, unit_price="2.55"), line(2, "71053", "LANTERN", 8, "3.39")])


def _other():
    return event("900002", invoice_date="2010-12-01T09:00:00", customer_id="33333",
                 lines=[line(1, "85123A", quantity=1, unit_price="2.60")])


def test_a_changed_invoice_replaces_all_its_lines(warehouse, bucket, loader):
    # GIVEN version 1 of an invoice and another invoice merged
    stage(warehouse, bucket, staging_ndjson([_invoice(1)], first_sequence=FIRST + 10),
          staging_ndjson([_other()], first_sequence=FIRST + 11))
    loader.run()
    other_before = row_versions(warehouse, "fact_invoice_lines", "invoice_no || '/' || CAST(line_no AS VARCHAR)")
    # WHEN version 2 (new event id, later sequence, one line fewer), delivered twice, is merged
    # (its lines then match existing fact rows twice over: PostgreSQL, like Redshift, rejects
    # such a MERGE source, so this fails there unless the merge deduplicates it)
    v2 = _invoice(2)
    v2_manifest = bucket.stage(staging_ndjson([v2], first_sequence=FIRST + 20))
    warehouse.execute(copy_statement(v2_manifest))
    warehouse.execute(copy_statement(v2_manifest))
    result = loader.run().merge
    # THEN the invoice has exactly version 2's lines, and the other invoice was not touched
    lines = warehouse.execute("SELECT line_no, quantity, amount, customer_id, event_id, invoice_date "
                              "FROM fact_invoice_lines WHERE invoice_no = '900001' ORDER BY line_no").rows
    assert lines == [(1, 12, Decimal("30.60"), "22222", v2.event_id, dt.datetime(2010, 12, 3, 11)),
                     (2, 8, Decimal("27.12"), "22222", v2.event_id, dt.datetime(2010, 12, 3, 11))]
    assert (result.invoices_replaced, result.lines_updated, result.lines_deleted, result.lines_inserted) == (1, 2, 1, 0)
    if other_before:
        assert row_versions(warehouse, "fact_invoice_lines", "invoice_no || '/' || CAST(line_no AS VARCHAR)")[
            "900002/1"] == other_before["900002/1"]
    # AND the dimensions follow: the code only version 1 had, its customer and its day are gone
    assert [r[0] for r in warehouse.execute("SELECT stock_code FROM dim_products ORDER BY 1").rows] == ["71053", "85123A"]
    assert warehouse.execute("SELECT customer_id, country, first_order FROM dim_customers ORDER BY 1").rows == [
        ("22222", "France", dt.datetime(2010, 12, 3, 11)), ("33333", "United Kingdom", dt.datetime(2010, 12, 1, 9))]
    assert [r[0] for r in warehouse.execute("SELECT calendar_date FROM dim_date ORDER BY 1").rows] == [
        dt.date(2010, 12, 1), dt.date(2010, 12, 3)]
    # AND the latest price of 85123A is that of its latest sale line
    assert warehouse.execute("SELECT unit_price FROM dim_products WHERE stock_code = '85123A'").scalar() \
        == Decimal("2.55")
    assert warehouse.execute("SELECT net_sales FROM mv_customer_summary WHERE customer_id = '22222'").scalar() \
        == Decimal("57.72")


def test_a_file_copied_twice_before_its_first_merge_is_merged_once(warehouse, bucket, loader):
    # GIVEN the sample's staging file and a replay of it, each COPYed twice (Firehose retries), none merged yet
    events = list(read_invoices(str(SAMPLE)))
    for manifest in (bucket.stage(staging_ndjson(events, first_sequence=FIRST)),
                     bucket.stage(staging_ndjson(events, first_sequence=FIRST + 10**6))):
        warehouse.execute(copy_statement(manifest))
        warehouse.execute(copy_statement(manifest))
    # WHEN they are merged
    result = loader.merge()
    # THEN each line is in the fact once (unmatched duplicates of a MERGE source would be
    # inserted twice), from the latest delivery
    assert (result.staged_rows, result.invoices_inserted, result.lines_inserted) == (4 * 7419, 418, 7419)
    assert warehouse.execute("SELECT COUNT(*), COUNT(DISTINCT invoice_no || '/' || CAST(line_no AS VARCHAR)), "
                             "MIN(source_sequence) FROM fact_invoice_lines").rows == [
        (7419, 7419, source_sequence(str(FIRST + 10**6)))]
    assert warehouse.execute("SELECT SUM(amount) FROM fact_invoice_lines").scalar() == Decimal("150463.30")


def test_an_older_delivery_after_a_newer_one_changes_nothing(warehouse, bucket, loader):
    # GIVEN version 2 merged
    stage(warehouse, bucket, staging_ndjson([_invoice(2)], first_sequence=FIRST + 20))
    loader.run()
    before, before_versions = fact(warehouse), versions(warehouse)
    # WHEN version 1, with an earlier sequence number, arrives late and is merged
    stage(warehouse, bucket, staging_ndjson([_invoice(1)], first_sequence=FIRST + 10))
    result = loader.run().merge
    # THEN nothing changed, and the late delivery left staging
    assert (result.staged_invoices, result.invoices_skipped, result.lines_inserted) == (1, 1, 0)
    assert fact(warehouse) == before and versions(warehouse) == before_versions
    assert staged(warehouse) == 0


def test_in_one_merge_the_latest_delivery_wins_whatever_the_staging_order(warehouse, bucket, loader):
    # GIVEN version 2, then version 1 twice (a duplicate record), then a replay of version 2, all staged
    v2 = _invoice(2)
    stage(warehouse, bucket, staging_ndjson([v2], first_sequence=FIRST + 20),
          staging_ndjson([_invoice(1)], first_sequence=FIRST + 10),
          staging_ndjson([_invoice(1)], first_sequence=FIRST + 10),
          staging_ndjson([v2], first_sequence=FIRST + 30))
    # WHEN they are merged together
    result = loader.merge()
    # THEN the fact has the latest delivery's lines once each
    assert warehouse.execute("SELECT line_no, quantity, event_id, source_sequence FROM fact_invoice_lines "
                             "ORDER BY line_no").rows == [
        (1, 12, v2.event_id, source_sequence(str(FIRST + 30))), (2, 8, v2.event_id, source_sequence(str(FIRST + 30)))]
    assert (result.staged_rows, result.invoices_inserted, result.lines_inserted) == (10, 1, 2)


def test_one_merge_at_a_time_ends_where_one_merge_of_everything_does(warehouse, bucket, loader):
    # GIVEN version 1 merged, then a replay of it (later sequence, same content) merged
    v1 = _invoice(1)
    stage(warehouse, bucket, staging_ndjson([v1], first_sequence=FIRST + 10))
    loader.run()
    stage(warehouse, bucket, staging_ndjson([v1], first_sequence=FIRST + 30))
    assert loader.run().merge.invoices_skipped == 1
    before, before_versions = fact(warehouse), versions(warehouse)
    # WHEN version 2, delivered between the two (sequence 20) but staged late, is merged
    stage(warehouse, bucket, staging_ndjson([_invoice(2)], first_sequence=FIRST + 20))
    result = loader.run().merge
    # THEN, as when all three are merged together, the latest delivery (the replay of
    # version 1) stands: version 2 is older than what was seen, and nothing was rewritten
    assert (result.invoices_skipped, result.invoices_replaced, result.lines_deleted) == (1, 0, 0)
    assert fact(warehouse) == before and versions(warehouse) == before_versions
    assert [r[0] for r in warehouse.execute("SELECT DISTINCT event_id FROM fact_invoice_lines").rows] == [v1.event_id]
    assert warehouse.execute("SELECT source_sequence, event_id FROM invoice_deliveries").rows == [
        (source_sequence(str(FIRST + 30)), v1.event_id)]


def test_merging_an_empty_staging_table_is_a_no_op(warehouse, bucket, loader):
    # GIVEN a merged invoice and nothing staged
    stage(warehouse, bucket, staging_ndjson([_other()], first_sequence=FIRST))
    loader.merge()
    before, before_versions = fact(warehouse), versions(warehouse)
    # WHEN the loader runs
    result = loader.run()
    # THEN no merge ran, no run was recorded, and no row changed
    assert not result.merge.ran and result.merge.staged_rows == 0
    assert warehouse.execute("SELECT COUNT(*) FROM shopstream_merge_runs").scalar() == 1
    assert fact(warehouse) == before and versions(warehouse) == before_versions


def test_rows_copied_while_a_merge_runs_survive_it(warehouse_url, bucket):
    # GIVEN a warehouse whose merge batch lets a concurrent COPY commit right after the
    # merge captured staging (its first statement), through a second engine on the same database
    concurrent = LocalWarehouse.open(warehouse_url, object_reader=bucket.reader)
    late = event("900003", lines=[line(1), line(2)])
    late_manifest = bucket.stage(staging_ndjson([late], first_sequence=FIRST + 50))
    copied_during: list[int] = []

    def after_statement(index: int, sql: str) -> None:
        if index == 0 and sql.startswith("CREATE TEMP TABLE merge_snapshot") and not copied_during:
            copied_during.append(concurrent.execute(copy_statement(late_manifest)).rowcount)

    warehouse = LocalWarehouse.open(warehouse_url, object_reader=bucket.reader, batch_observer=after_statement)
    try:
        warehouse.reset()
        loader = WarehouseLoader(warehouse)
        loader.ensure_schema()
        stage(warehouse, bucket, staging_ndjson([_other()], first_sequence=FIRST))
        # WHEN the merge runs and the COPY lands in the middle of it
        result = loader.merge()
        # THEN the merge took only what it had captured, and the late rows wait in staging
        assert copied_during == [2] and result.staged_rows == 1
        assert [r[0] for r in warehouse.execute("SELECT DISTINCT invoice_no FROM fact_invoice_lines").rows] == ["900002"]
        assert warehouse.execute("SELECT invoice_no, COUNT(*) FROM stg_invoice_lines GROUP BY invoice_no").rows == [
            ("900003", 2)]
        # AND the next merge takes them
        assert loader.merge().lines_inserted == 2 and staged(warehouse) == 0
    finally:
        warehouse.reset()
        warehouse.close()
        concurrent.close()


def test_postgresql_rejects_a_merge_source_with_duplicates_and_duckdb_does_not(warehouse, bucket, loader):
    """Why the merge's deduplication is tested on PostgreSQL: like Redshift it refuses several
    source rows for one target row, where DuckDB silently applies them all."""
    # GIVEN a merged invoice and its file staged twice more
    manifest = bucket.stage(staging_ndjson([_other()], first_sequence=FIRST))
    warehouse.execute(copy_statement(manifest))
    loader.merge()
    warehouse.execute(copy_statement(manifest))
    warehouse.execute(copy_statement(manifest))
    naive = ("MERGE INTO fact_invoice_lines USING stg_invoice_lines ON fact_invoice_lines.invoice_no = "
             "stg_invoice_lines.invoice_no AND fact_invoice_lines.line_no = stg_invoice_lines.line_no "
             "WHEN MATCHED THEN UPDATE SET quantity = stg_invoice_lines.quantity "
             "WHEN NOT MATCHED THEN INSERT (invoice_no, line_no) VALUES (stg_invoice_lines.invoice_no, "
             "stg_invoice_lines.line_no)")
    # WHEN a MERGE straight from staging runs
    if warehouse.backend == "postgresql":
        # THEN PostgreSQL refuses it, as Redshift would
        with pytest.raises(WarehouseError, match="more than once|second time"):
            warehouse.execute(naive)
    else:
        # THEN DuckDB takes it without a word
        assert warehouse.execute(naive).rowcount == 2
    # AND the real merge handles the same staging
    assert loader.merge().invoices_skipped == 1 and len(fact(warehouse)) == 1


def test_a_failed_merge_leaves_staging_and_fact_as_they_were(warehouse_url, bucket):
    # GIVEN staged rows and a merge that fails half-way through its batch
    def fail_midway(index: int, sql: str) -> None:
        if sql.startswith("MERGE INTO fact_invoice_lines"):
            raise RuntimeError("simulated crash after the fact MERGE")

    warehouse = LocalWarehouse.open(warehouse_url, object_reader=bucket.reader, batch_observer=fail_midway)
    try:
        warehouse.reset()
        loader = WarehouseLoader(warehouse)
        loader.ensure_schema()
        stage(warehouse, bucket, staging_ndjson([_other()], first_sequence=FIRST))
        # WHEN the merge runs THEN it fails, and nothing of it remains
        with pytest.raises(RuntimeError, match="simulated crash"):
            loader.merge()
        assert fact(warehouse) == [] and staged(warehouse) == 1
        assert warehouse.execute("SELECT COUNT(*) FROM shopstream_merge_runs").scalar() == 0
    finally:
        warehouse.reset()
        warehouse.close()


def test_a_customer_seen_under_a_new_country_moves_there(warehouse, bucket, loader):
    stage(warehouse, bucket, staging_ndjson([event("900010", customer_id="44444", country="France")],
                                            first_sequence=FIRST))
    loader.run()
    stage(warehouse, bucket, staging_ndjson([event("900011", invoice_date="2010-12-05T10:00:00", customer_id="44444",
                                                   country="Germany")], first_sequence=FIRST + 1))
    loader.run()
    assert warehouse.execute("SELECT country, first_order, last_order FROM dim_customers").rows == [
        ("Germany", dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2010, 12, 5, 10))]
    assert warehouse.execute("SELECT country, invoices, active_days FROM mv_customer_summary").rows == [
        ("Germany", 2, 4)]



# ---- versions: sources that carry a status (pipeline/events.py "Versions") ---------------


def _transaction(status: str, invoice_date: str = "2023-03-15T10:00:00", quantity: int = 2):
    """Transaction T1001 in one version: a status on a date (a daily transaction file's row)."""
    return event("T1001", invoice_date=invoice_date, customer_id="44444", status=status,
                 lines=[line(1, "85123A", quantity=quantity, unit_price="2.55")])


def _held(warehouse) -> list[tuple]:
    return warehouse.execute("SELECT status, source_version, quantity, event_id FROM fact_invoice_lines "
                             "WHERE invoice_no = 'T1001'").rows


def test_a_later_version_merged_after_an_earlier_one_replaces_it(warehouse, bucket, loader):
    # GIVEN v1 (pending) merged
    v1 = _transaction("pending")
    v2 = _transaction("completed", "2023-03-16T09:00:00", quantity=3)
    stage(warehouse, bucket, staging_ndjson([v1], first_sequence=FIRST + 10))
    loader.run()
    assert _held(warehouse) == [("pending", v1.version, 2, v1.event_id)]
    # WHEN v2 (completed, a day later) is merged in another run
    stage(warehouse, bucket, staging_ndjson([v2], first_sequence=FIRST + 20))
    result = loader.run().merge
    # THEN the fact holds v2, and the deliveries record its version
    assert _held(warehouse) == [("completed", v2.version, 3, v2.event_id)]
    assert result.invoices_replaced == 1
    assert warehouse.execute("SELECT source_version, event_id FROM invoice_deliveries "
                             "WHERE invoice_no = 'T1001'").rows == [(v2.version, v2.event_id)]


def test_an_older_version_delivered_later_with_a_greater_sequence_changes_nothing(warehouse, bucket, loader):
    # GIVEN v2 (completed) merged
    v1 = _transaction("pending")
    v2 = _transaction("completed", "2023-03-16T09:00:00", quantity=3)
    stage(warehouse, bucket, staging_ndjson([v2], first_sequence=FIRST + 10))
    loader.run()
    before, before_versions = fact(warehouse), versions(warehouse)
    # WHEN v1 (pending, the day before) arrives afterwards on a later sequence number
    stage(warehouse, bucket, staging_ndjson([v1], first_sequence=FIRST + 50))
    result = loader.run().merge
    # THEN v2 stays, not one row was written, and staging is empty
    assert _held(warehouse) == [("completed", v2.version, 3, v2.event_id)]
    assert (result.invoices_skipped, result.lines_updated, result.lines_inserted) == (1, 0, 0)
    assert fact(warehouse) == before and versions(warehouse) == before_versions
    assert staged(warehouse) == 0
    # AND the latest seen delivery is still v2's
    assert warehouse.execute("SELECT source_version, event_id FROM invoice_deliveries "
                             "WHERE invoice_no = 'T1001'").rows == [(v2.version, v2.event_id)]


def test_in_one_merge_the_newest_version_wins_over_a_later_delivery(warehouse, bucket, loader):
    # GIVEN completed and pending of the same date, the pending delivered later, in one merge
    completed, pending = _transaction("completed", quantity=3), _transaction("pending")
    stage(warehouse, bucket, staging_ndjson([completed], first_sequence=FIRST + 10),
          staging_ndjson([pending], first_sequence=FIRST + 20))
    # WHEN they are merged
    loader.run()
    # THEN completed wins: same date, greater lifecycle rank
    assert _held(warehouse) == [("completed", completed.version, 3, completed.event_id)]


def test_same_date_completed_after_pending_replaces_it_across_merges(warehouse, bucket, loader):
    # GIVEN pending merged, then completed of the same date merged with an EARLIER sequence number
    pending, completed = _transaction("pending"), _transaction("completed", quantity=3)
    stage(warehouse, bucket, staging_ndjson([pending], first_sequence=FIRST + 20))
    loader.run()
    stage(warehouse, bucket, staging_ndjson([completed], first_sequence=FIRST + 10))
    # WHEN merged
    loader.run()
    # THEN completed wins by its version, whatever the sequence numbers say
    assert _held(warehouse) == [("completed", completed.version, 3, completed.event_id)]


def test_status_less_events_stage_an_empty_version_and_no_status(warehouse, bucket, loader):
    # GIVEN a status-less invoice merged
    stage(warehouse, bucket, staging_ndjson([_other()], first_sequence=FIRST))
    loader.run()
    # THEN its fact rows and its delivery carry '' as version and no status
    assert warehouse.execute("SELECT status, source_version FROM fact_invoice_lines").rows == [(None, "")]
    assert warehouse.execute("SELECT source_version FROM invoice_deliveries").rows == [("",)]
