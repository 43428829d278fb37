"""The analytics path's acceptance run on the full dataset: ``python -m bench.acceptance DATA``.

1. the data through the stack (``shopstream demo``'s path): every sink reconciled with
   the source, to the penny;
2. the same data replayed a second time, then a month of the archive backfilled
   (``--backfill-from/--to``, January 2011 by default), each drained and merged;
3. checks that no fact row changed: the merge log (written by each merge inside its
   transaction) shows every later delivery staged and skipped — no invoice inserted or
   replaced, no line inserted, updated or deleted — and the fact's digest is unchanged;
   and every sink still reconciles.

Not a test (it takes minutes on the full data): a check to run after changing the
warehouse, the archive or Firehose. Exits non-zero on any failure.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from devstack import reconcile, stack
from devstack.emulator import free_port
from devstack.runtime.client import run_schedule, wait_for_schedule, wait_until_drained
from scripts.replay_kaggle import replay

FACT_DIGEST = ("SELECT COUNT(*) AS lines, SUM(amount) AS revenue, "
               "SUM(CAST(line_no AS BIGINT) * quantity) AS weighted, COUNT(DISTINCT event_id) AS events, "
               "MIN(source_sequence) AS first_seq, MAX(source_sequence) AS last_seq FROM fact_invoice_lines")


def drained_and_merged(config: stack.StackConfig, info: stack.StackInfo, timeout: float = 900.0) -> None:
    wait_until_drained(config.admin_url, since=time.time(), timeout=timeout)
    rule = info.outputs["warehouse"][stack.MERGE_RULE_OUTPUT]
    since = time.time()
    run_schedule(config.admin_url, rule)
    wait_for_schedule(config.admin_url, rule, since=since, timeout=timeout)


def check_reconciled(config: stack.StackConfig, info: stack.StackInfo, source: str, what: str) -> bool:
    figures, problems = reconcile.source_figures(source)
    result = reconcile.reconcile(figures, reconcile.sink_figures(
        clients=stack.clients(config), outputs=info.outputs, execute=stack.warehouse_executor(config, info).execute),
        problems)
    print(reconcile.format_report(result))
    print(f"• {what}: {'every sink reconciles' if result.ok else 'MISMATCH'}")
    return result.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.acceptance", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the full dataset (directory of daily files, or Kaggle's zip)")
    parser.add_argument("--backfill-from", default="2011-01-01")
    parser.add_argument("--backfill-to", default="2011-01-31")
    parser.add_argument("--warehouse", help="a PostgreSQL URL instead of the embedded DuckDB")
    args = parser.parse_args(argv)
    from consumers.archive.store import S3ArchiveStore
    from ingest.producer import KinesisProducer
    from scripts.backfill_archive import backfill

    config = stack.StackConfig(state_dir=Path(tempfile.mkdtemp(prefix="shopstream-acceptance-")),
                               emulator_port=free_port(), gateway_port=free_port(), admin_port=free_port(),
                               warehouse_url=args.warehouse)
    info = stack.up(config)
    ok = True
    try:
        executor = stack.warehouse_executor(config, info)
        print(f"• first delivery of {args.source}")
        stats = replay(args.source, endpoint=config.api_url)
        ok &= stats.ok
        drained_and_merged(config, info)
        ok &= check_reconciled(config, info, args.source, "after the first delivery")
        digest = executor.execute(FACT_DIGEST).rows
        first_runs = {row[0] for row in executor.execute("SELECT run_id FROM shopstream_merge_runs").rows}
        print("• the same data a second time")
        ok &= replay(args.source, endpoint=config.api_url).ok
        drained_and_merged(config, info)
        print(f"• backfill {args.backfill_from} … {args.backfill_to} from the archive")
        clients = stack.clients(config)
        filled = backfill(store=S3ArchiveStore(clients("s3"), info.outputs["archive_bucket_name"]),
                          producer=KinesisProducer(clients("kinesis"), info.outputs["stream_name"]),
                          prefix=info.outputs["archive_prefix"], date_from=args.backfill_from,
                          date_to=args.backfill_to)
        ok &= filled.ok and filled.events > 0
        drained_and_merged(config, info)
        excluded = ", ".join(f"'{run_id}'" for run_id in sorted(first_runs)) or "''"
        later_staged, changed_invoices, changed_lines = executor.execute(
            "SELECT COALESCE(SUM(staged_rows), 0), COALESCE(SUM(invoices_inserted + invoices_replaced), 0), "
            "COALESCE(SUM(lines_inserted + lines_updated + lines_deleted), 0) FROM shopstream_merge_runs "
            f"WHERE run_id NOT IN ({excluded})").rows[0]
        unchanged = executor.execute(FACT_DIGEST).rows == digest
        print(f"• second delivery + backfill: {int(later_staged):,} rows staged and merged again; "
              f"invoices inserted or replaced {changed_invoices}, lines changed {changed_lines}; "
              f"fact digest {'unchanged' if unchanged else 'CHANGED'}")
        ok &= unchanged and int(changed_invoices) == 0 and int(changed_lines) == 0
        ok &= int(later_staged) >= stats.lines_sent + filled.lines
        ok &= check_reconciled(config, info, args.source, "after the second delivery and the backfill")
    finally:
        stack.down(config, quiet=True)
    print(f"acceptance: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
