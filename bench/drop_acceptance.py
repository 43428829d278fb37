"""Issue 8's acceptance on the full dataset, through the drop bucket: ``python -m bench.drop_acceptance DATA``.

On a fresh local stack:

1. the whole dataset dropped as ONE file (the daily files under one header, 48 MB):
   every sink reconciled with the source, to the penny; one outcome message; the file
   in the drop-archive bucket, the drop bucket empty;
2. the 305 daily files dropped: 305 more messages, every file archived, and not one
   fact row changed (the merge log shows every line staged again and skipped); every
   sink still reconciles;
3. all 306 files dropped again: no message, nothing put on the stream (nothing staged),
   the ledger unchanged.

Not a test (minutes on the full data). Prints each step's wall time and exits non-zero
on any failure.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from batch.store import DynamoFileLedger
from bench.acceptance import FACT_DIGEST, check_reconciled, drained_and_merged
from bench.file_loader import DEFAULT_DATA, one_file
from devstack import drops, stack
from devstack.emulator import free_port
from devstack.notifications import fetch


def drop_and_wait(config, info, files: list[str]) -> tuple[list[drops.Dropped], float]:
    clients = stack.clients(config)
    started = time.perf_counter()
    dropped = drops.upload(clients("s3"), info.outputs["drop_bucket_name"], files)
    drops.wait_for_outcomes(DynamoFileLedger(clients("dynamodb"), info.outputs["dropped_files_table_name"]),
                            dropped, timeout=1800,
                            still_dropped=drops.in_bucket(clients("s3"), info.outputs["drop_bucket_name"]))
    return dropped, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drop_acceptance", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", default=str(DEFAULT_DATA), help="the directory of the 305 daily files")
    args = parser.parse_args(argv)
    daily = drops.csv_files([args.source])
    work = Path(tempfile.mkdtemp(prefix="shopstream-drop-acceptance-"))
    whole = str(one_file(args.source, work / "online-retail.csv"))
    config = stack.StackConfig(state_dir=work / "stack", emulator_port=free_port(), gateway_port=free_port(),
                               admin_port=free_port())
    info = stack.up(config)
    ok = True
    try:
        clients = stack.clients(config)
        s3, executor = clients("s3"), stack.warehouse_executor(config, info)
        topic = info.outputs["file_outcomes_topic_arn"]
        archive, drop = info.outputs["drop_archive_bucket_name"], info.outputs["drop_bucket_name"]

        def archived() -> int:
            return sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=archive, Prefix="transactions/"))

        def waiting() -> int:
            return sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=drop))

        print(f"• the whole dataset as one file ({Path(whole).stat().st_size / 1e6:.0f} MB)")
        [one], seconds = drop_and_wait(config, info, [whole])
        print(f"  loaded in {seconds:.1f} s: {json.dumps(one.outcome['counts'])}")
        ok &= one.outcome["status"] == "loaded" and one.outcome["counts"]["rejected"] == 0
        drained_and_merged(config, info)
        ok &= check_reconciled(config, info, args.source, "after the one file")
        messages = fetch(config.emulator_url, topic)
        ok &= len(messages) == 1 and archived() == 1 and waiting() == 0
        print(f"  {len(messages)} message, {archived()} file archived, {waiting()} left in the drop bucket")
        digest = executor.execute(FACT_DIGEST).rows
        runs = {row[0] for row in executor.execute("SELECT run_id FROM shopstream_merge_runs").rows}

        print(f"• the {len(daily)} daily files")
        dropped, seconds = drop_and_wait(config, info, daily)
        rows = sum(d.outcome["counts"]["lines"] for d in dropped)
        print(f"  loaded in {seconds:.1f} s: {rows:,} lines")
        ok &= all(d.outcome["status"] == "loaded" for d in dropped) and rows == one.outcome["counts"]["lines"]
        drained_and_merged(config, info)
        excluded = ", ".join(f"'{r}'" for r in sorted(runs)) or "''"
        staged, changed = executor.execute(
            "SELECT COALESCE(SUM(staged_rows), 0), COALESCE(SUM(invoices_inserted + invoices_replaced + "
            f"lines_inserted + lines_updated + lines_deleted), 0) FROM shopstream_merge_runs WHERE run_id NOT IN "
            f"({excluded})").rows[0]
        unchanged = executor.execute(FACT_DIGEST).rows == digest
        print(f"  {int(staged):,} rows staged again, {int(changed)} changes; fact digest "
              f"{'unchanged' if unchanged else 'CHANGED'}")
        ok &= unchanged and int(changed) == 0 and int(staged) >= rows
        ok &= check_reconciled(config, info, args.source, "after the daily files")
        messages = fetch(config.emulator_url, topic)
        print(f"  {len(messages)} messages, {archived()} files archived, {waiting()} left in the drop bucket")
        ok &= len(messages) == 1 + len(daily) and archived() == 1 + len(daily) and waiting() == 0

        print(f"• all {1 + len(daily)} files again")
        ledger = sorted(json.dumps(i, sort_keys=True) for i in clients("dynamodb").scan(
            TableName=info.outputs["dropped_files_table_name"])["Items"])
        staged_sql = "SELECT COALESCE(SUM(staged_rows), 0) FROM shopstream_merge_runs"
        staged_before = int(executor.execute(staged_sql).scalar())
        again, seconds = drop_and_wait(config, info, [whole, *daily])
        drained_and_merged(config, info)
        staged_again = int(executor.execute(staged_sql).scalar()) - staged_before
        ledger_after = sorted(json.dumps(i, sort_keys=True) for i in clients("dynamodb").scan(
            TableName=info.outputs["dropped_files_table_name"])["Items"])
        messages = fetch(config.emulator_url, topic)
        print(f"  done in {seconds:.1f} s: {len(messages)} messages (no new one: "
              f"{len(messages) == 1 + len(daily)}), ledger unchanged: {ledger_after == ledger}, "
              f"rows staged since: {staged_again}")
        ok &= len(messages) == 1 + len(daily) and ledger_after == ledger and waiting() == 0 and staged_again == 0
        ok &= executor.execute(FACT_DIGEST).rows == digest
        ok &= check_reconciled(config, info, args.source, "after the re-drop")
    finally:
        stack.down(config, quiet=True)
    print(f"drop acceptance: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
