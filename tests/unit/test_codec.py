"""KPL aggregation and strict deaggregation (pipeline/codec.py)."""
from __future__ import annotations

import base64
import os

import pytest
from aws_kinesis_agg.deaggregator import deaggregate_records

from pipeline.codec import MAX_RECORD_BYTES, aggregate, deaggregate
from pipeline.errors import CorruptRecord
from pipeline.partitioning import ShardMap, ShardRange, hash_key

HALF = 2**127
TWO_SHARDS = ShardMap([ShardRange("shardId-000000000000", 0, HALF - 1), ShardRange("shardId-000000000001", HALF, 2**128 - 1)])


def records(n: int, size: int = 100) -> list[tuple[str, bytes]]:
    return [(f"{536365 + i}", f"{i:08d}".encode() * (size // 8)) for i in range(n)]


def test_round_trip_routes_every_user_record_to_its_own_shard():
    # GIVEN 1,000 user records spread over two shards
    sent = records(1000)
    # WHEN they are packed
    packed = aggregate(sent, TWO_SHARDS, max_bytes=10_000)
    # THEN each aggregate is bound for one shard, and every record inside it hashes there
    received = []
    for record in packed:
        shard = next(s for s in TWO_SHARDS.shards if s.shard_id == record.shard_id)
        assert shard.starting_hash_key <= int(record.explicit_hash_key) <= shard.ending_hash_key
        for user in deaggregate(record.data):
            assert shard.starting_hash_key <= hash_key(user.partition_key) <= shard.ending_hash_key
            received.append((user.partition_key, user.data))
    assert sorted(received) == sorted(sent)
    assert sum(r.user_records for r in packed) == 1000
    assert all(r.size <= 10_000 for r in packed)
    # AND order is kept within each shard
    for shard in TWO_SHARDS.shards:
        expected = [pk for pk, _ in sent if TWO_SHARDS.shard_for(hash_key(pk)).shard_id == shard.shard_id]
        got = [u.partition_key for r in packed if r.shard_id == shard.shard_id for u in deaggregate(r.data)]
        assert got == expected


def test_a_record_too_big_to_share_travels_alone_in_order():
    sent = [("a", b"x" * 100), ("a", b"y" * 200_000), ("a", b"z" * 100)]
    packed = aggregate(sent, ShardMap([ShardRange("s", 0, 2**128 - 1)]), max_bytes=50_000)
    assert [r.user_records for r in packed] == [1, 1, 1]
    assert [deaggregate(r.data)[0].data[:1] for r in packed] == [b"x", b"y", b"z"]


def test_a_record_over_the_kinesis_limit_is_refused():
    with pytest.raises(ValueError, match="at most"):
        aggregate([("a", b"x" * MAX_RECORD_BYTES)], TWO_SHARDS)


def test_the_library_reads_our_aggregates_too():
    packed = aggregate(records(50), TWO_SHARDS)
    lambda_records = [
        {"kinesis": {"kinesisSchemaVersion": "1.0", "sequenceNumber": str(i), "partitionKey": r.partition_key,
                     "approximateArrivalTimestamp": 1.0, "data": base64.b64encode(r.data).decode()}}
        for i, r in enumerate(packed)
    ]
    assert len(deaggregate_records(lambda_records)) == 50


def test_where_the_library_drops_records_silently_we_do_not():
    # The library needs approximateArrivalTimestamp; without it, it prints an error and
    # yields nothing for the aggregate. Our decoder only needs the data.
    (record,) = aggregate(records(5), ShardMap([ShardRange("s", 0, 2**128 - 1)]))
    raw = {"kinesis": {"kinesisSchemaVersion": "1.0", "sequenceNumber": "1", "partitionKey": "p",
                       "data": base64.b64encode(record.data).decode()}}
    assert deaggregate_records([raw]) == []
    assert len(deaggregate(record.data)) == 5


def test_plain_records_pass_through():
    assert [u.data for u in deaggregate(b'{"a":1}')] == [b'{"a":1}']


@pytest.mark.parametrize("damage", [lambda d: d[:-3], lambda d: d[:20] + bytes([d[20] ^ 0xFF]) + d[21:], lambda d: d[:4] + os.urandom(40)])
def test_damaged_aggregates_raise(damage):
    (record,) = aggregate(records(3), ShardMap([ShardRange("s", 0, 2**128 - 1)]))
    with pytest.raises(CorruptRecord):
        deaggregate(damage(record.data))


def test_shard_map_ignores_closed_shards():
    shards = [
        {"ShardId": "old", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)},
         "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "9"}},
        {"ShardId": "new", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)},
         "SequenceNumberRange": {"StartingSequenceNumber": "10"}},
    ]
    assert ShardMap.from_list_shards(shards).shard_for(12345).shard_id == "new"
