"""`replay --stream`: the sample straight onto a Kinesis stream of the emulator, through
the ingest function's producer; every event arrives once, KPL-aggregated, on its shard."""
from __future__ import annotations

import uuid

import boto3
import pytest

from pipeline.codec import deaggregate
from pipeline.events import InvoiceEvent
from pipeline.kaggle import read_invoices
from pipeline.partitioning import ShardMap, hash_key
from scripts.replay_kaggle import main
from tests.conftest import SAMPLE

pytestmark = pytest.mark.emulator


def test_replay_to_the_stream_delivers_every_event_once(emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint_url)
    kinesis = boto3.client("kinesis", endpoint_url=emulator.endpoint_url, region_name="eu-west-1")
    stream = f"replay-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    # WHEN the sample is replayed onto the stream
    assert main([str(SAMPLE), "--stream", stream, "--quiet", "--report", str(tmp_path / "r.json")]) == 0
    # THEN reading every shard gives back exactly the source's events, each on its own shard
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    shard_map = ShardMap.from_list_shards(shards)
    received = []
    for shard in shards:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
        assert records, "both shards get records"
        for record in records:
            for user in deaggregate(record["Data"]):
                event = InvoiceEvent.from_json(user.data)
                assert shard_map.shard_for(hash_key(event.partition_key)).shard_id == shard["ShardId"]
                received.append(event)
    expected = list(read_invoices(str(SAMPLE)))
    assert len(received) == len(expected) == 418
    assert sorted(e.event_id for e in received) == sorted(e.event_id for e in expected)
