#!/usr/bin/env python3
"""Redrive the dead letters: each failure record of a consumer's on-failure queue names a
shard and a sequence range of the stream; those records are read again from the stream
and their events put back onto it, with their original ``event_id``s, then the failure
record is deleted.

    python scripts/redrive.py --queue-url https://sqs.…/shopstream-invoice-writer-failures
    shopstream redrive                          # the local stack: every consumer's queue
    shopstream redrive --consumer invoice-writer --dry-run

Run it once the cause is fixed (a throttled table given capacity, a bug deployed away):
the events go back on the stream, so every consumer sees them again, and every write
downstream is idempotent, so a consumer that had stored them changes nothing and the one
that failed stores them once. A range the stream no longer holds (older than its
retention) cannot be read again: it is reported, with its dates, and its failure record
is kept. So is a record whose range could not be read whole. The exit status is
non-zero if anything was left.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from botocore.exceptions import ClientError  # noqa: E402

from pipeline.codec import deaggregate  # noqa: E402
from pipeline.errors import CorruptRecord, InvalidEvent  # noqa: E402
from pipeline.events import InvoiceEvent  # noqa: E402

VISIBILITY_SECONDS = 300  # a failure record being redriven is hidden from other readers this long
GET_RECORDS_LIMIT = 1000


@dataclass
class RedriveStats:
    queue: str = ""
    messages: int = 0
    records: int = 0            # stream records read back
    events: int = 0             # events in them, put back on the stream
    lines: int = 0
    undecodable: int = 0        # events the consumers quarantine anyway (not put back)
    redriven_messages: int = 0  # failure records deleted after their events were sent
    kept: int = 0               # failure records left in the queue (expired, unreadable, dry run)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class RangeUnavailable(Exception):
    """The range cannot be read again (expired, or the stream is gone)."""


def stream_name(arn: str) -> str:
    return arn.split(":stream/", 1)[1] if ":stream/" in arn else arn


def read_range(kinesis: Any, stream: str, shard: str, first: str, last: str) -> list[dict]:
    """The records ``first`` … ``last`` (inclusive) of a shard, read again."""
    try:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                              StartingSequenceNumber=first)["ShardIterator"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        raise RangeUnavailable(f"{stream}/{shard} from {first}: {code}: {exc.response.get('Error', {}).get('Message')}"
                               " (past the stream's retention, or the stream is gone)") from exc
    out: list[dict] = []
    low, high = int(first), int(last)
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
        for record in page["Records"]:
            sequence = int(record["SequenceNumber"])
            if sequence > high:
                return out
            if sequence >= low:
                out.append(record)
        if not page["Records"] and not page.get("MillisBehindLatest"):
            break  # at the tip, and the range's end not reached
        iterator = page.get("NextShardIterator")
    if not out or int(out[-1]["SequenceNumber"]) != high:
        raise RangeUnavailable(f"{stream}/{shard}: only {len(out)} records of {first} … {last} are in the stream")
    return out


def events_of(records: list[dict], stats: RedriveStats) -> list[InvoiceEvent]:
    events = []
    for record in records:
        try:
            user_records = deaggregate(record["Data"])
        except CorruptRecord:
            stats.undecodable += 1
            continue
        for user_record in user_records:
            try:
                events.append(InvoiceEvent.from_json(user_record.data))
            except (InvalidEvent, ValueError):
                stats.undecodable += 1
    return events


def redrive(*, sqs: Any, kinesis: Any, queue_url: str, producer: Any, dry_run: bool = False,
            say: Callable[[str], None] = lambda line: None) -> RedriveStats:
    stats = RedriveStats(queue=queue_url.rsplit("/", 1)[-1])
    seen: set[str] = set()
    kept: list[str] = []
    try:
        while True:
            page = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=VISIBILITY_SECONDS)
            messages = [m for m in page.get("Messages", []) if m["MessageId"] not in seen]
            if not messages:
                break
            for message in messages:
                seen.add(message["MessageId"])
                stats.messages += 1
                if _redrive_one(message, kinesis=kinesis, producer=producer, dry_run=dry_run, stats=stats, say=say):
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    stats.redriven_messages += 1
                else:
                    stats.kept += 1
                    kept.append(message["ReceiptHandle"])
    finally:
        for start in range(0, len(kept), 10):  # what was kept is visible again at once
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(kept[start:start + 10])])
    return stats


def _redrive_one(message: dict, *, kinesis: Any, producer: Any, dry_run: bool, stats: RedriveStats,
                 say: Callable[[str], None]) -> bool:
    try:
        body = json.loads(message["Body"])
        info = body["KinesisBatchInfo"]
        stream, shard = stream_name(info["streamArn"]), info["shardId"]
        first, last = info["startSequenceNumber"], info["endSequenceNumber"]
    except (ValueError, KeyError, TypeError) as exc:
        stats.problems.append(f"message {message['MessageId']}: not a Kinesis failure record ({exc!r}); kept")
        return False
    where = f"{shard} {first} … {last} (first arrival {info.get('approximateArrivalOfFirstRecord', '?')})"
    try:
        records = read_range(kinesis, stream, shard, first, last)
    except RangeUnavailable as exc:
        stats.problems.append(f"{where}: cannot be read again: {exc}; kept")
        return False
    events = events_of(records, stats)
    stats.records += len(records)
    stats.events += len(events)
    stats.lines += sum(len(e.lines) for e in events)
    condition = body.get("requestContext", {}).get("condition", "?")
    say(f"  {where}: {len(records)} records, {len(events)} events ({condition})")
    if dry_run:
        return False
    if events:
        producer.send(events)
    return True


def format_summary(stats: RedriveStats, *, dry_run: bool = False) -> str:
    lines = [f"redrive of {stats.queue}{' (dry run: nothing sent, nothing deleted)' if dry_run else ''}",
             f"  failure records {stats.messages:,}: {stats.redriven_messages:,} redriven and deleted, {stats.kept:,} kept",
             f"  stream records  {stats.records:,} read again, {stats.events:,} events ({stats.lines:,} lines) "
             f"{'to send' if dry_run else 'put back on the stream'}"]
    if stats.undecodable:
        lines.append(f"  undecodable     {stats.undecodable:,} (the consumers quarantine them; not sent)")
    lines += [f"  PROBLEM  {p}" for p in stats.problems[:20]]
    lines.append("  result   " + ("nothing left to redrive" if stats.ok and not stats.kept else
                                  "see the problems above" if not stats.ok else "dry run"))
    return "\n".join(lines)


def build_parser(parser: argparse.ArgumentParser | None = None, *, local: bool = False) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="redrive.py", description=__doc__.split("\n\n")[0])
    if local:
        parser.add_argument("--consumer", help="only this consumer's queue (e.g. invoice-writer; default: every one)")
    else:
        parser.add_argument("--queue-url", required=True, help="the consumer's on-failure SQS queue")
        parser.add_argument("--stream", help="the stream to put the events back on (default: the one the record names)")
    parser.add_argument("--dry-run", action="store_true", help="read the failure records and the stream, send nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def run(queues: dict[str, str], *, stream: str | None, endpoint_url: str | None, region: str, dry_run: bool,
        as_json: bool = False) -> int:
    from ingest.producer import KinesisProducer
    from pipeline.clients import make_client
    from pipeline.settings import Settings

    settings = Settings(region=region, endpoint_url=endpoint_url)
    sqs, kinesis = make_client("sqs", settings), make_client("kinesis", settings)
    results = {}
    for name, url in queues.items():
        target = stream or _stream_of_queue(sqs, url)
        producer = KinesisProducer(kinesis, target) if target else None
        if producer is None:
            results[name] = RedriveStats(queue=url.rsplit("/", 1)[-1])
            continue
        say = (lambda line: None) if as_json else print
        results[name] = redrive(sqs=sqs, kinesis=kinesis, queue_url=url, producer=producer, dry_run=dry_run, say=say)
        if not as_json:
            print(format_summary(results[name], dry_run=dry_run))
    if as_json:
        print(json.dumps({name: r.to_dict() for name, r in results.items()}, indent=2))
    return 0 if all(r.ok for r in results.values()) else 1


def _stream_of_queue(sqs: Any, url: str) -> str | None:
    """The stream named by the first failure record (``None`` if the queue is empty)."""
    page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0, VisibilityTimeout=0)
    for message in page.get("Messages", []):
        try:
            return stream_name(json.loads(message["Body"])["KinesisBatchInfo"]["streamArn"])
        except (ValueError, KeyError, TypeError):
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
    return run({"queue": args.queue_url}, stream=args.stream, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
               region=region, dry_run=args.dry_run, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
