"""WarehouseLoader against an in-memory executor: what it sends, in which order, as which
transactions, and what it makes of the answers."""
from __future__ import annotations

import re

import pytest

from warehouse import statements
from warehouse.loader import MigrationError, WarehouseLoader
from warehouse.results import Column, Result

RUN_ID = "feedfacefeedfacefeedfacefeedface"
COUNTS = ("staged_rows", "staged_invoices", "invoices_inserted", "invoices_replaced", "lines_inserted",
          "lines_updated", "lines_deleted")


class FakeWarehouse:
    """Answers the loader's statements from a little state, and logs every call."""

    def __init__(self, applied=(), staged=0, merge_counts=(10, 3, 1, 1, 4, 2, 1), changing=0, refreshed=0):
        self.applied = set(applied)
        self.staged = staged
        self.merge_counts = merge_counts
        self.changing, self.refreshed = changing, refreshed
        self.runs: set[str] = set()
        self.calls: list[tuple[str, object]] = []
        self.fail_batch = False

    def execute(self, sql: str) -> Result:
        self.calls.append(("execute", sql))
        if sql.startswith("SELECT version FROM shopstream_migrations"):
            return Result([Column("version", "int4")], [(v,) for v in sorted(self.applied)], len(self.applied))
        if sql.startswith("SELECT COUNT(*) AS staged_rows"):
            return Result([Column("staged_rows", "int8")], [(self.staged,)], 1)
        if "AS changing_merges" in sql:
            return Result([Column("changing_merges", "int8"), Column("refreshed_merges", "int8")],
                          [(self.changing, self.refreshed)], 1)
        recorded = re.search(r"INSERT INTO shopstream_view_refreshes .* VALUES \(GETDATE\(\), (\d+)\)", sql)
        if recorded:
            self.refreshed = int(recorded.group(1))
        if sql.startswith("SELECT staged_rows"):
            run_id = re.search(r"run_id = '([0-9a-f]{32})'", sql).group(1)
            rows = [self.merge_counts] if run_id in self.runs else []
            return Result([Column(name, "int8") for name in COUNTS], rows, len(rows))
        return Result()

    def execute_batch(self, sqls: list[str]) -> None:
        self.calls.append(("batch", list(sqls)))
        if self.fail_batch:
            raise RuntimeError("the warehouse is down")
        for sql in sqls:
            recorded = re.match(r"INSERT INTO shopstream_migrations .* VALUES \((\d+),", sql)
            if recorded:
                self.applied.add(int(recorded.group(1)))
            run = re.search(r"SELECT '([0-9a-f]{32})', GETDATE\(\)", sql)
            if run:
                self.runs.add(run.group(1))
                self.changing += 1

    def batches(self) -> list[list[str]]:
        return [arg for kind, arg in self.calls if kind == "batch"]


def loader(fake: FakeWarehouse) -> WarehouseLoader:
    return WarehouseLoader(fake, run_ids=lambda: RUN_ID)


VERSIONS = [m.version for m in statements.migrations()]


def test_ensure_schema_applies_each_migration_once_in_its_own_recorded_transaction():
    # GIVEN an empty warehouse
    fake = FakeWarehouse()
    # WHEN the schema is ensured twice
    first = loader(fake).ensure_schema()
    second = loader(fake).ensure_schema()
    # THEN the migrations ran once, in order, each batch ending with the row recording it
    assert first == VERSIONS and len(VERSIONS) >= 5 and second == []
    assert fake.calls[0] == ("execute", statements.bootstrap_statement())
    batches = fake.batches()
    assert len(batches) == len(VERSIONS)
    for migration, batch in zip(statements.migrations(), batches):
        assert batch[:-1] == list(migration.statements)
        assert batch[-1] == statements.record_migration_statement(migration)


def test_ensure_schema_applies_only_what_is_missing():
    fake = FakeWarehouse(applied={1})
    assert loader(fake).ensure_schema() == VERSIONS[1:]
    assert [b[-1] for b in fake.batches()] == [statements.record_migration_statement(m)
                                               for m in statements.migrations()[1:]]


def test_a_gap_in_the_applied_migrations_is_an_error_not_a_guess():
    fake = FakeWarehouse(applied={1, 3})
    with pytest.raises(MigrationError, match="migration 2 .* is not applied but later version 3 is"):
        loader(fake).ensure_schema()
    assert fake.batches() == []


def test_nothing_staged_means_no_merge_transaction():
    fake = FakeWarehouse(staged=0)
    result = loader(fake).merge()
    assert not result.ran and result.run_id is None and result.staged_rows == 0
    assert fake.batches() == []


def test_a_merge_is_one_batch_and_its_counts_are_read_back_by_run_id():
    # GIVEN staged rows
    fake = FakeWarehouse(staged=10)
    # WHEN they are merged
    result = loader(fake).merge()
    # THEN the merge went as one batch carrying the run id, and its record was read back
    assert fake.batches() == [statements.merge_statements(RUN_ID)]
    assert fake.calls[-1] == ("execute", statements.merge_run_query(RUN_ID))
    assert result.ran and result.run_id == RUN_ID
    assert (result.staged_rows, result.staged_invoices, result.invoices_inserted, result.invoices_replaced,
            result.lines_inserted, result.lines_updated, result.lines_deleted) == (10, 3, 1, 1, 4, 2, 1)
    assert result.invoices_skipped == 1


def test_a_merge_without_its_record_is_reported():
    fake = FakeWarehouse(staged=5)
    fake.runs = set()
    fake.execute_batch = lambda sqls: fake.calls.append(("batch", sqls))  # commits but records no run
    with pytest.raises(RuntimeError, match=f"merge run {RUN_ID} committed but its record has 0 rows"):
        loader(fake).merge()


def test_a_failing_merge_batch_propagates_and_nothing_is_read_back():
    fake = FakeWarehouse(staged=5)
    fake.fail_batch = True
    with pytest.raises(RuntimeError, match="the warehouse is down"):
        loader(fake).merge()
    assert fake.calls[-1][0] == "batch"


def test_refresh_is_one_call_per_view_in_order():
    fake = FakeWarehouse()
    names = loader(fake).refresh()
    assert names == ["mv_sales_by_country_day", "mv_top_products_by_country", "mv_customer_summary",
                     "mv_customers_by_country"]
    assert fake.calls == [("execute", f"REFRESH MATERIALIZED VIEW {name}") for name in names]


def test_run_refreshes_after_a_merge_that_changed_the_fact_and_records_it():
    fake = FakeWarehouse(applied=set(VERSIONS), staged=10)
    result = loader(fake).run()
    assert result.merge.ran and result.views_refreshed == statements.materialized_views()
    sent = [arg for _, arg in fake.calls]
    refreshes = statements.refresh_statements()
    assert sent[-len(refreshes) - 1:-1] == refreshes and sent[-1] == statements.record_refresh_statement(1)
    assert fake.refreshed == 1


def test_run_skips_the_refresh_when_the_views_already_reflect_every_change():
    fake = FakeWarehouse(applied=set(VERSIONS), staged=0, changing=5, refreshed=5)
    result = loader(fake).run()
    assert result.migrations_applied == [] and not result.merge.ran and result.views_refreshed == []
    sent = [arg for _, arg in fake.calls]
    assert sent[0] == statements.bootstrap_statement()
    assert not any(isinstance(s, str) and s.startswith("REFRESH") for s in sent)


def test_a_merge_whose_refresh_never_ran_is_refreshed_by_the_next_run():
    # a previous run merged (5 changing merges) and died after 4 were refreshed
    fake = FakeWarehouse(applied=set(VERSIONS), staged=0, changing=5, refreshed=4)
    assert loader(fake).run().views_refreshed == statements.materialized_views() and fake.refreshed == 5


def test_the_warehouse_package_needs_no_database_driver_or_aws_sdk():
    # GIVEN a fresh interpreter WHEN the loader is imported THEN no driver or SDK comes with it
    import subprocess
    import sys

    probe = ("import sys, warehouse.loader, warehouse.statements, warehouse.results; "
             "print(sorted(m for m in ('duckdb', 'psycopg', 'boto3', 'botocore', 'sqlglot') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
