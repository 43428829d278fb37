"""The warehouse loader: schema migrations, the staging merge and the view refresh.

Pure: it only sends the statements of ``warehouse/sql`` (see :mod:`warehouse.statements`)
to a :class:`StatementExecutor` — the Redshift Data API on AWS, the local warehouse
engine (``devstack.warehouse.LocalWarehouse``) in local mode, an in-memory fake in unit
tests. A scheduled Lambda calls :meth:`WarehouseLoader.run`.

Each step is safe to repeat and to run after a failure of the previous attempt:

* :meth:`~WarehouseLoader.ensure_schema` applies the migrations not yet recorded, each
  in one transaction with the row that records it, so a migration is applied exactly
  once even though Redshift has no ``CREATE … IF NOT EXISTS`` for materialized views;
* :meth:`~WarehouseLoader.merge` is one transaction with an exactly-once effect however
  often a line was delivered (``merge.sql`` says how); it is skipped when nothing is
  staged, because an empty Redshift commit still queues behind every other commit;
* :meth:`~WarehouseLoader.refresh` refreshes each materialized view in a call of its own,
  since Redshift runs every REFRESH as its own transaction; :meth:`~WarehouseLoader.run`
  refreshes only when a merge changed the fact since the last refresh (a refresh
  recomputes each view in full), which also catches a run that merged and then died
  before its refresh.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from warehouse import statements
from warehouse.results import Result


class StatementExecutor(Protocol):
    """Runs Redshift SQL. ``execute`` runs one statement in a session of its own (like the
    Data API's ExecuteStatement); ``execute_batch`` runs the statements in order as ONE
    transaction in one session (BatchExecuteStatement): all or nothing, and temporary
    tables are visible from one statement to the next."""

    def execute(self, sql: str) -> Result: ...

    def execute_batch(self, sqls: list[str]) -> None: ...


class MigrationError(RuntimeError):
    """The warehouse's recorded migrations do not fit the code's (e.g. one is missing
    below the highest applied version)."""


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What one merge did, as counted inside its transaction.

    ``run_id`` is None when nothing was staged and no merge ran. ``staged_rows`` and
    ``staged_invoices`` are what the merge saw (duplicates included);
    ``invoices_skipped`` are staged invoices that changed nothing (replays of the
    content the fact holds, older deliveries); ``lines_deleted`` are lines a newer
    version of their invoice no longer has.
    """

    run_id: str | None
    staged_rows: int = 0
    staged_invoices: int = 0
    invoices_inserted: int = 0
    invoices_replaced: int = 0
    lines_inserted: int = 0
    lines_updated: int = 0
    lines_deleted: int = 0

    @property
    def ran(self) -> bool:
        return self.run_id is not None

    @property
    def invoices_skipped(self) -> int:
        return self.staged_invoices - self.invoices_inserted - self.invoices_replaced


@dataclass(frozen=True, slots=True)
class RunResult:
    migrations_applied: list[int]
    merge: MergeResult
    views_refreshed: list[str]


_MERGE_COUNTS = ("staged_rows", "staged_invoices", "invoices_inserted", "invoices_replaced",
                 "lines_inserted", "lines_updated", "lines_deleted")


def _new_run_id() -> str:
    return uuid.uuid4().hex


class WarehouseLoader:
    def __init__(self, executor: StatementExecutor, *, run_ids: Callable[[], str] = _new_run_id):
        self._executor = executor
        self._run_ids = run_ids

    def ensure_schema(self) -> list[int]:
        """Apply the migrations not yet recorded, in version order; the versions applied now."""
        self._executor.execute(statements.bootstrap_statement())
        applied = {int(row[0]) for row in self._executor.execute(statements.applied_migrations_query()).rows}
        known = statements.migrations()
        pending = [m for m in known if m.version not in applied]
        if pending and applied and min(m.version for m in pending) < max(applied):
            raise MigrationError(
                f"migration {pending[0].version} ({pending[0].name}) is not applied but later version "
                f"{max(applied)} is: the warehouse's migrations table does not match warehouse/sql/migrations"
            )
        done: list[int] = []
        for migration in pending:
            self._executor.execute_batch([*migration.statements, statements.record_migration_statement(migration)])
            done.append(migration.version)
        return done

    def merge(self) -> MergeResult:
        """Merge what is staged (see ``warehouse/sql/merge.sql``); skipped when nothing is."""
        staged = int(self._executor.execute(statements.staged_rows_query()).scalar())
        if staged == 0:
            return MergeResult(run_id=None)
        run_id = self._run_ids()
        self._executor.execute_batch(statements.merge_statements(run_id))
        result = self._executor.execute(statements.merge_run_query(run_id))
        if len(result.rows) != 1:
            raise RuntimeError(f"merge run {run_id} committed but its record has {len(result.rows)} rows, not 1")
        counts = dict(zip(result.column_names, result.rows[0]))
        return MergeResult(run_id, **{name: int(counts[name]) for name in _MERGE_COUNTS})

    def refresh(self) -> list[str]:
        """Refresh every materialized view, one statement (one transaction) each; their names."""
        for statement in statements.refresh_statements():
            self._executor.execute(statement)
        return statements.materialized_views()

    def refresh_due(self) -> int | None:
        """The count of changing merges to record after a refresh, or None when the views
        already reflect every merge that changed the fact."""
        changing, refreshed = self._executor.execute(statements.refresh_due_query()).rows[0]
        return int(changing) if int(changing) > int(refreshed) else None

    def run(self) -> RunResult:
        """ensure_schema, merge, and a refresh when a merge changed the fact since the last
        one — what the scheduled Lambda does."""
        applied = self.ensure_schema()
        merged = self.merge()
        due = self.refresh_due()
        if due is None:
            return RunResult(applied, merged, [])
        refreshed = self.refresh()
        self._executor.execute(statements.record_refresh_statement(due))
        return RunResult(applied, merged, refreshed)
