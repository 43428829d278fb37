"""scripts/redrive.py: a failure record's range read again from the stream, its events put
back, the record deleted; what cannot be redriven is kept and said (moto in-process)."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from pipeline.codec import aggregate
from pipeline.partitioning import ShardMap
from scripts.redrive import format_summary, redrive
from tests.factories import event


class Producer:
    def __init__(self):
        self.sent = []

    def send(self, events):
        self.sent.extend(events)


@pytest.fixture
def aws():
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="eu-west-1")
        sqs = boto3.client("sqs", region_name="eu-west-1")
        kinesis.create_stream(StreamName="events", ShardCount=1)
        queue = sqs.create_queue(QueueName="failures")["QueueUrl"]
        yield kinesis, sqs, queue


def put(kinesis, events):
    shards = ShardMap.from_list_shards(kinesis.list_shards(StreamName="events")["Shards"])
    sequences = []
    for record in aggregate([(e.partition_key, e.to_json()) for e in events], shards):
        sequences.append(kinesis.put_record(StreamName="events", Data=record.data, PartitionKey=record.partition_key,
                                            ExplicitHashKey=record.explicit_hash_key)["SequenceNumber"])
    return sequences


def failure(sqs, queue, first, last, shard="shardId-000000000000"):
    arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/events"
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
        "requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0",
        "KinesisBatchInfo": {"shardId": shard, "startSequenceNumber": first, "endSequenceNumber": last,
                             "batchSize": 1, "streamArn": arn}}))


def depth(sqs, queue):
    return int(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])


def test_the_range_is_read_again_its_events_sent_with_their_ids_and_the_record_deleted(aws):
    kinesis, sqs, queue = aws
    before = put(kinesis, [event("536365")])
    stuck = put(kinesis, [event("536366"), event("536367")])  # one aggregate of two events
    put(kinesis, [event("536368")])
    failure(sqs, queue, stuck[0], stuck[-1])
    producer = Producer()
    stats = redrive(sqs=sqs, kinesis=kinesis, queue_url=queue, producer=producer)
    assert stats.ok and (stats.messages, stats.redriven_messages, stats.records, stats.events) == (1, 1, 1, 2)
    assert [e.invoice_no for e in producer.sent] == ["536366", "536367"]
    assert [e.event_id for e in producer.sent] == [event("536366").event_id, event("536367").event_id]
    assert depth(sqs, queue) == 0 and before


def test_a_dry_run_sends_nothing_and_keeps_the_record(aws):
    kinesis, sqs, queue = aws
    stuck = put(kinesis, [event("536366")])
    failure(sqs, queue, stuck[0], stuck[0])
    producer = Producer()
    stats = redrive(sqs=sqs, kinesis=kinesis, queue_url=queue, producer=producer, dry_run=True)
    assert (stats.events, stats.kept, producer.sent) == (1, 1, [])
    assert depth(sqs, queue) == 1  # visible again at once
    assert "dry run" in format_summary(stats, dry_run=True)


def test_what_cannot_be_read_again_is_kept_and_said(aws):
    kinesis, sqs, queue = aws
    put(kinesis, [event("536366")])
    failure(sqs, queue, "1" * 40, "1" * 40 + "9")          # beyond what the stream holds
    failure(sqs, queue, "1", "2", shard="shardId-000000000009")  # a shard the stream never had
    sqs.send_message(QueueUrl=queue, MessageBody="not a failure record")
    producer = Producer()
    stats = redrive(sqs=sqs, kinesis=kinesis, queue_url=queue, producer=producer)
    assert not stats.ok and (stats.messages, stats.kept, stats.redriven_messages) == (3, 3, 0)
    assert producer.sent == [] and depth(sqs, queue) == 3
    text = "\n".join(stats.problems)
    assert "cannot be read again" in text and "not a Kinesis failure record" in text
