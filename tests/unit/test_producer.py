"""KinesisProducer: PutRecords within limits, retrying only failed entries (ingest/producer.py)."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ingest.producer import MAX_BYTES_PER_CALL, KinesisProducer, plan_calls
from pipeline.codec import PackedRecord
from pipeline.errors import ConfigurationError, TransientError
from pipeline.events import InvoiceEvent
from tests.factories import event

ALL = {"ShardId": "shardId-000000000000", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)},
       "SequenceNumberRange": {"StartingSequenceNumber": "1"}}


class FakeKinesis:
    """Records what was put; fails the entries its script says, call by call."""

    def __init__(self, failures: list[set[int]] | None = None, raises: list[Exception] | None = None):
        self.failures = failures or []
        self.raises = raises or []
        self.calls: list[list[dict]] = []
        self.stored: list[bytes] = []

    def list_shards(self, **kwargs):
        return {"Shards": [ALL]}

    def put_records(self, StreamName, Records):
        assert len(Records) <= 500
        assert sum(len(r["Data"]) + len(r["PartitionKey"]) for r in Records) <= MAX_BYTES_PER_CALL
        self.calls.append(Records)
        if self.raises:
            raise self.raises.pop(0)
        failing = self.failures.pop(0) if self.failures else set()
        out = []
        for i, record in enumerate(Records):
            if i in failing:
                out.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"})
            else:
                self.stored.append(record["Data"])
                out.append({"SequenceNumber": str(len(self.stored)), "ShardId": ALL["ShardId"]})
        return {"FailedRecordCount": len(failing), "Records": out}


def events(n: int) -> list[InvoiceEvent]:
    return [event(str(600000 + i)) for i in range(n)]


def producer(fake, **kw) -> KinesisProducer:
    return KinesisProducer(fake, "s", sleep=lambda s: None, aggregate_bytes=2_000, **kw)


def test_only_failed_entries_are_retried():
    fake = FakeKinesis(failures=[{0, 2}])
    result = producer(fake).send(events(40))
    assert len(fake.calls) == 2
    assert len(fake.calls[1]) == 2 and fake.calls[1][0] == fake.calls[0][0] and fake.calls[1][1] == fake.calls[0][2]
    assert result.retried_records == 2 and result.events == 40
    assert len(fake.stored) == len(fake.calls[0])  # each record stored exactly once


def test_gives_up_with_a_transient_error_after_bounded_attempts():
    fake = FakeKinesis(failures=[{0}] * 10)
    with pytest.raises(TransientError, match="still failing after 3 attempts"):
        producer(fake, max_attempts=3).send(events(3))
    assert len(fake.calls) == 3


def test_connection_errors_are_retried_then_transient():
    fake = FakeKinesis(raises=[EndpointConnectionError(endpoint_url="http://x")])
    assert producer(fake).send(events(2)).events == 2
    fake = FakeKinesis(raises=[EndpointConnectionError(endpoint_url="http://x")] * 5)
    with pytest.raises(TransientError):
        producer(fake, max_attempts=2).send(events(2))


def test_missing_stream_is_a_configuration_error():
    class Missing(FakeKinesis):
        def list_shards(self, **kwargs):
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "ListShards")

    with pytest.raises(ConfigurationError, match="does not exist"):
        producer(Missing()).send(events(1))


def test_calls_respect_record_count_and_byte_limits():
    small = [PackedRecord("k", "1", b"x" * 10, 1, "s")] * 1200
    assert [len(c) for c in plan_calls(small)] == [500, 500, 200]
    big = [PackedRecord("k", "1", b"x" * (1024 * 1024 - 300), 1, "s")] * 11
    assert [len(c) for c in plan_calls(big)] == [5, 5, 1]
