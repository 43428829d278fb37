#!/usr/bin/env python3
"""Re-inject archived invoice events into the stream: a date range of the S3 archive back
onto Kinesis as the original events, with their original ``event_id``s.

    python scripts/backfill_archive.py --bucket shopstream-archive-… --stream shopstream-events \\
        --from 2011-01-01 --to 2011-01-31
    shopstream backfill --from 2011-01-01 --to 2011-01-31        # the local stack (names from its outputs)

Every object of the day partitions in the range is read (the archive writer's Parquet,
``consumers/archive/format.py``); each event is rebuilt from its rows and checked against
its ``event_id`` (a row that does not rebuild stops the backfill before anything is sent:
nothing half-written). Deliveries of the same event (at-least-once) are sent once; the
versions of an invoice are sent in their original stream order, so the latest still wins.
Downstream writes are idempotent, so a backfill of data already stored changes nothing
— with one limit: a backfill is a new, later delivery, so if an invoice's newer version
is archived under another day (its invoice date changed) and only the older one is in
the range, the older one becomes the latest delivery again. Backfill whole ranges that
cover every version of the invoices concerned.
Events go through the same producer as the ingest function (KPL-aggregated). The exit
status is non-zero if an object could not be read or an event not delivered.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from pipeline.errors import ShopstreamError  # noqa: E402
from pipeline.events import InvoiceEvent, money_display, money_str  # noqa: E402

SEND_BATCH = 500  # events per producer call


@dataclass
class BackfillStats:
    date_from: str = ""
    date_to: str = ""
    objects: int = 0
    rows: int = 0
    deliveries: int = 0
    events: int = 0
    lines: int = 0
    total: str = "0.00"
    events_sent: int = 0
    kinesis_records: int = 0
    failed_events: int = 0
    elapsed_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.failed_events

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), ok=self.ok)


def load_events(store, prefix: str, date_from: str, date_to: str, stats: BackfillStats,
                progress: Callable[[int, int], None] | None = None) -> list[InvoiceEvent]:
    """The distinct archived events of the range, in stream order."""
    from consumers.archive.format import day_prefixes, events_from_table, read_parquet

    keys = [key for day in day_prefixes(prefix, date_from, date_to) for key in store.keys(day)]
    seen: dict[str, tuple] = {}
    events: dict[str, InvoiceEvent] = {}
    for n, key in enumerate(keys, start=1):
        table = read_parquet(store.get(key))
        stats.objects += 1
        stats.rows += table.num_rows
        for archived in events_from_table(table):
            stats.deliveries += 1
            event_id = archived.event.event_id
            if event_id not in seen or archived.position < seen[event_id]:
                seen[event_id] = archived.position
                events[event_id] = archived.event
        if progress is not None:
            progress(n, len(keys))
    ordered = sorted(events, key=lambda event_id: seen[event_id])
    stats.events = len(ordered)
    stats.lines = sum(len(events[e].lines) for e in ordered)
    stats.total = money_str(sum((events[e].total for e in ordered), Decimal(0)))
    return [events[e] for e in ordered]


def backfill(*, store, producer, prefix: str, date_from: str, date_to: str, dry_run: bool = False,
             progress: bool = True) -> BackfillStats:
    from consumers.archive.format import CorruptArchive

    stats = BackfillStats(date_from=date_from, date_to=date_to)
    started = time.monotonic()
    bar = _bar(progress, "read archive", " objects")

    def read_progress(n: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(n - bar.n)

    try:
        events = load_events(store, prefix, date_from, date_to, stats, read_progress)
    except (CorruptArchive, ShopstreamError, ClientError, BotoCoreError) as exc:
        stats.problems.append(f"reading the archive: {exc}")
        events = []
    finally:
        if bar is not None:
            bar.close()
    if events and not dry_run:
        bar = _bar(progress, "re-inject", " events", total=len(events))
        for start in range(0, len(events), SEND_BATCH):
            chunk = events[start:start + SEND_BATCH]
            try:
                result = producer.send(chunk)
            except (ShopstreamError, ClientError, BotoCoreError) as exc:
                stats.failed_events += len(chunk)
                stats.problems.append(f"{len(chunk)} events not delivered: {exc}")
                continue
            stats.events_sent += len(chunk)
            stats.kinesis_records += result.records
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
    stats.elapsed_s = round(time.monotonic() - started, 2)
    return stats


def _bar(enabled: bool, desc: str, unit: str, total: int | None = None):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5, file=sys.stderr)


def format_summary(stats: BackfillStats, *, dry_run: bool = False) -> str:
    lines = [
        f"backfill of {stats.date_from} … {stats.date_to}",
        f"  archive    {stats.objects:,} objects · {stats.rows:,} rows · {stats.deliveries:,} deliveries",
        f"  events     {stats.events:,} distinct invoices · {stats.lines:,} lines · total £{money_display(stats.total)}",
        "  sent       nothing (--dry-run)" if dry_run else
        f"  sent       {stats.events_sent:,} events in {stats.kinesis_records:,} Kinesis records ({stats.elapsed_s:.1f}s)",
    ]
    if stats.ok:
        lines.append("  result     OK" if stats.events else "  result     nothing archived in that range")
    else:
        lines.append(f"  PROBLEMS   {stats.failed_events:,} events not delivered")
        lines += [f"    - {p}" for p in stats.problems[:10]]
    return "\n".join(lines)


def build_parser(parser: argparse.ArgumentParser | None = None, *, local: bool = False) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="backfill_archive.py", description=__doc__.split("\n\n")[0])
    if not local:
        parser.add_argument("--bucket", required=True, help="the archive bucket")
        parser.add_argument("--stream", required=True, help="the Kinesis stream to re-inject into")
        parser.add_argument("--prefix", default="archive/", help="the archive's key prefix (default %(default)s)")
    parser.add_argument("--from", dest="date_from", required=True, help="first invoice date, e.g. 2011-01-01")
    parser.add_argument("--to", dest="date_to", required=True, help="last invoice date, inclusive")
    parser.add_argument("--dry-run", action="store_true", help="read and check the archive, send nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def check_range(date_from: str, date_to: str) -> str | None:
    from datetime import date

    try:
        first, last = date.fromisoformat(date_from), date.fromisoformat(date_to)
    except ValueError as exc:
        return f"--from/--to must be dates like 2011-01-31 ({exc})"
    if first > last:
        return f"--from {date_from} is after --to {date_to}"
    return None


def run(args: argparse.Namespace, *, bucket: str, stream: str, prefix: str, endpoint_url: str | None,
        region: str) -> int:
    from consumers.archive.store import S3ArchiveStore
    from ingest.producer import KinesisProducer
    from pipeline.clients import make_client
    from pipeline.settings import Settings

    problem = check_range(args.date_from, args.date_to)
    if problem:
        print(f"backfill: {problem}", file=sys.stderr)
        return 2
    settings = Settings(region=region, endpoint_url=endpoint_url)
    stats = backfill(store=S3ArchiveStore(make_client("s3", settings), bucket),
                     producer=KinesisProducer(make_client("kinesis", settings), stream),
                     prefix=prefix, date_from=args.date_from, date_to=args.date_to, dry_run=args.dry_run,
                     progress=not args.quiet)
    print(format_summary(stats, dry_run=args.dry_run))
    return 0 if stats.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
    return run(args, bucket=args.bucket, stream=args.stream, prefix=args.prefix,
               endpoint_url=os.environ.get("AWS_ENDPOINT_URL"), region=region)


if __name__ == "__main__":
    sys.exit(main())
