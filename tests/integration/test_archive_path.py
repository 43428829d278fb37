"""The archive path through the real handler against the emulator: the bundled sample on a
stream → archive writer → Parquet in S3 (by invoice date), then `backfill` reads a day of
the archive back onto a stream as the original events. The event source mapping is played
by the test (tests/integration/test_invoice_path.py's reader)."""
from __future__ import annotations

import importlib
import os
import uuid
from decimal import Decimal

import boto3
import pytest

from consumers.archive.format import events_from_table, read_parquet
from consumers.archive.store import S3ArchiveStore
from ingest.producer import KinesisProducer
from pipeline.codec import deaggregate
from pipeline.events import InvoiceEvent
from pipeline.kaggle import read_invoices
from scripts.backfill_archive import backfill
from tests.conftest import SAMPLE
from tests.factories import FakeLambdaContext
from tests.integration.test_invoice_path import StreamReader

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def archive(emulator):
    suffix = uuid.uuid4().hex[:8]
    session = boto3.session.Session(region_name="eu-west-1")
    clients = {name: session.client(name, endpoint_url=emulator.endpoint_url) for name in ("kinesis", "s3", "sqs")}
    names = {"stream": f"events-{suffix}", "again": f"backfilled-{suffix}", "bucket": f"archive-{suffix}"}
    clients["kinesis"].create_stream(StreamName=names["stream"], ShardCount=2)
    clients["kinesis"].create_stream(StreamName=names["again"], ShardCount=1)
    clients["s3"].create_bucket(Bucket=names["bucket"], CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    queue_url = clients["sqs"].create_queue(QueueName=f"quarantine-{suffix}")["QueueUrl"]
    env = {"AWS_ENDPOINT_URL": emulator.endpoint_url, "AWS_REGION": "eu-west-1",
           "SHOPSTREAM_ARCHIVE_BUCKET": names["bucket"], "SHOPSTREAM_ARCHIVE_PREFIX": "archive/",
           "SHOPSTREAM_QUARANTINE_QUEUE_URL": queue_url, "POWERTOOLS_METRICS_NAMESPACE": "shopstream-test"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from consumers.archive import handler

    handler = importlib.reload(handler)
    source = list(read_invoices(str(SAMPLE)))
    KinesisProducer(clients["kinesis"], names["stream"]).send(source)
    yield {**clients, **names, "handler": handler, "source": source, "queue_url": queue_url}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def archive_all(archive) -> list[dict]:
    reader = StreamReader(archive["kinesis"], archive["stream"])
    responses = []
    while batches := list(reader.batches(size=500)):
        responses += [archive["handler"].lambda_handler({"Records": b}, FakeLambdaContext()) for b in batches]
    return responses


def archived_objects(archive) -> dict[str, bytes]:
    store = S3ArchiveStore(archive["s3"], archive["bucket"])
    return {key: store.get(key) for key in store.keys("archive/")}


def test_every_event_lands_once_in_its_day_partition_and_a_redelivery_overwrites(archive):
    # WHEN the stream is consumed by the archive writer
    responses = archive_all(archive)
    assert all(r == {"batchItemFailures": []} for r in responses)
    objects = archived_objects(archive)
    # THEN objects sit in the hive partitions of the three days, a few per day, not one per event
    days = {"/".join(key.split("/")[1:4]) for key in objects}
    assert days == {f"year=2010/month=12/day={d:02d}" for d in (1, 2, 3)}
    assert len(objects) <= 2 * 3 * 2  # ≤ two shards × three days × the batches a shard needed
    rebuilt = [a.event for body in objects.values() for a in events_from_table(read_parquet(body))]
    source = archive["source"]
    assert sorted(e.event_id for e in rebuilt) == sorted(e.event_id for e in source)
    assert sum(len(e.lines) for e in rebuilt) == 7419
    assert sum((e.total for e in rebuilt), Decimal(0)) == Decimal("150463.30")
    for key, body in objects.items():  # each event is in the partition of its own date
        day = "-".join(part.split("=")[1] for part in key.split("/")[1:4])
        assert all(a.event.invoice_date.startswith(day) for a in events_from_table(read_parquet(body)))
    # AND the same batches delivered again rewrite the same keys with the same bytes
    archive_all(archive)
    assert archived_objects(archive) == objects


def test_backfill_re_injects_a_day_as_the_original_events(archive):
    archive_all(archive)
    store = S3ArchiveStore(archive["s3"], archive["bucket"])
    # WHEN the second day is backfilled onto another stream
    stats = backfill(store=store, producer=KinesisProducer(archive["kinesis"], archive["again"]), prefix="archive/",
                     date_from="2010-12-02", date_to="2010-12-02", progress=False)
    # THEN exactly that day's events arrive, with their original ids
    expected = {e.event_id for e in archive["source"] if e.invoice_date.startswith("2010-12-02")}
    assert stats.ok and stats.events == stats.events_sent == len(expected) > 0
    kinesis = archive["kinesis"]
    [shard] = kinesis.list_shards(StreamName=archive["again"])["Shards"]
    iterator = kinesis.get_shard_iterator(StreamName=archive["again"], ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    arrived = []
    while True:
        page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        arrived += [InvoiceEvent.from_json(u.data).event_id for r in page["Records"] for u in deaggregate(r["Data"])]
        if not page["Records"]:
            break
        iterator = page["NextShardIterator"]
    assert sorted(arrived) == sorted(expected)


def test_a_range_without_archive_sends_nothing_and_says_so(archive):
    from scripts.backfill_archive import format_summary

    stats = backfill(store=S3ArchiveStore(archive["s3"], archive["bucket"]), producer=None, prefix="archive/",
                     date_from="2011-06-01", date_to="2011-06-30", progress=False)
    assert stats.ok and stats.events == 0 and "nothing archived in that range" in format_summary(stats)
