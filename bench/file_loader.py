"""What loading one dropped file costs the file loader (batch/), against the emulator, in one run.

The whole dataset as ONE file (the 305 daily files concatenated under one header: 541,909
rows, about 45 MB) is put in a drop bucket on the patched emulator, then loaded by
:class:`batch.core.FileLoader` with its real adapters (S3 ranged GETs, the ingest
function's Kinesis producer onto a 4-shard stream, the DynamoDB ledger, SNS, SQS), as
the batch function runs it, minus the Lambda service:

* ``read only``: the Kaggle reader over the same file from disk (``read_invoices``), the
  baseline measured in the same run;
* ``one invocation``: the load in one pass;
* ``paused every N rows``: the same load forced to pause and continue from its markers
  (as when an invocation's time runs low), to show what a continuation costs.

    python -m bench.file_loader [DATA_DIR] [--pause-rows 100000]

Prints each way's wall seconds, rows/s, its ratio to the baseline and the peak RSS of
this process, and the headroom against the Lambda's 15-minute limit. The figures are
in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from batch.core import CONTINUATIONS_PREFIX, DroppedFile, FileLoader
from batch.store import DynamoFileLedger, S3Files
from bench.emulator_patches import _clients
from consumers.notifications.store import SnsPublisher
from consumers.quarantine import SqsQuarantine
from devstack.emulator import Emulator, free_port
from ingest.producer import KinesisProducer
from pipeline.kaggle import read_invoices, resolve_sources

LAMBDA_LIMIT_SECONDS = 900
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online-retail" / "by-day"
STREAM, DROP, ARCHIVE, LEDGER = "bench-events", "bench-drops", "bench-drop-archive", "bench-files"


def one_file(data: str, out: Path) -> Path:
    """The daily files as one CSV, one header."""
    with out.open("wb") as target:
        for n, file in enumerate(resolve_sources(data)):
            with open(file, "rb") as fh:
                header = fh.readline()
                if n == 0:
                    target.write(header)
                while chunk := fh.read(1 << 20):
                    target.write(chunk)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA), help="the daily files (default ../shared/…/by-day)")
    parser.add_argument("--pause-rows", type=int, default=100_000, help="rows per part of the paused load")
    args = parser.parse_args(argv)
    if not os.path.exists(args.data):
        print(f"file_loader: {args.data} not found (the full dataset lives in ../shared)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        path = one_file(args.data, Path(tmp) / "online-retail.csv")
        size = path.stat().st_size
        started = time.perf_counter()
        rows = sum(len(e.lines) for e in read_invoices(str(path)))
        baseline = time.perf_counter() - started
        emulator = Emulator.start(free_port())
        try:
            make = _clients(emulator.endpoint_url)
            s3, ddb, kinesis, sns, sqs = (make(s) for s in ("s3", "dynamodb", "kinesis", "sns", "sqs"))
            for bucket in (DROP, ARCHIVE):
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            kinesis.create_stream(StreamName=STREAM, ShardCount=4)
            ddb.create_table(TableName=LEDGER, BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "file_sha256", "AttributeType": "S"}],
                             KeySchema=[{"AttributeName": "file_sha256", "KeyType": "HASH"}])
            topic = sns.create_topic(Name="bench-file-outcomes")["TopicArn"]
            queue = sqs.create_queue(QueueName="bench-quarantine")["QueueUrl"]
            figures = []
            for way, pause_rows in (("one invocation", None), (f"paused every {args.pause_rows:,} rows", args.pause_rows)):
                key = f"transactions/from=2010-12-01/to=2011-12-09/{way.split()[0]}.csv"
                # a distinct content per way, so the ledger does not take the second for a re-drop
                s3.put_object(Bucket=DROP, Key=key, Body=path.read_bytes() + b"\n" * (len(figures) + 1))
                loader = FileLoader(S3Files(s3), DynamoFileLedger(ddb, LEDGER), SnsPublisher(sns, topic),
                                    KinesisProducer(kinesis, STREAM), SqsQuarantine(sqs, queue),
                                    drop_bucket=DROP, archive_bucket=ARCHIVE)
                count = {"n": 0}

                def should_pause(limit=pause_rows, count=count) -> bool:
                    count["n"] += 1
                    # asked at each invoice boundary; the real data averages 21 rows an invoice
                    return limit is not None and count["n"] % max(1, limit // 21) == 0

                started = time.perf_counter()
                outcome = loader.handle(DroppedFile(DROP, key), should_pause=should_pause)
                parts = 1
                while outcome.status == "paused":
                    marker = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=DROP, Prefix=CONTINUATIONS_PREFIX)
                                    .get("Contents", []))[0]
                    outcome = loader.handle(DroppedFile(DROP, marker), should_pause=should_pause)
                    parts += 1
                seconds = time.perf_counter() - started
                assert outcome.status == "loaded", outcome
                assert outcome.counts.lines == rows and outcome.counts.rejected == 0, outcome.counts
                figures.append((way, seconds, parts))
        finally:
            emulator.stop()
    print(f"one file of {rows:,} rows, {size / 1e6:.1f} MB; read only (the baseline): {baseline:.1f} s")
    print(f"{'way':<32}{'parts':>6}{'seconds':>9}{'rows/s':>10}{'x read':>8}{'of 15 min':>11}")
    for way, seconds, parts in figures:
        print(f"{way:<32}{parts:>6}{seconds:>9.1f}{rows / seconds:>10,.0f}{seconds / baseline:>8.1f}"
              f"{seconds / LAMBDA_LIMIT_SECONDS:>10.0%}")
    print(f"peak RSS of this process (loader, reader and clients): {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
