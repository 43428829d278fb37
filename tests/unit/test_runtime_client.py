"""Which shards the drain check considers behind (pure logic of the admin client)."""
from __future__ import annotations

from devstack.runtime.client import describe_lagging, lagging_shards

SINCE = 1_000.0


def state(*shards, uuid="esm-1", kind="event-source-mapping"):
    return {"consumers": [{"kind": kind, "id": uuid, "name": "writer", "shards": list(shards)}]}


def shard(shard_id="shardId-000000000000", **fields):
    base = {"shard_id": shard_id, "in_flight": False, "pending_records": 0, "last_empty_poll_started_at": SINCE + 1,
            "finished": False, "checkpoint": "42", "records_processed": 42, "last_error": None}
    base.update(fields)
    return base


def test_a_shard_that_polled_empty_after_the_writes_is_drained():
    assert lagging_shards(state(shard()), SINCE) == []


def test_an_empty_poll_before_the_writes_finished_is_not_enough():
    [behind] = lagging_shards(state(shard(last_empty_poll_started_at=SINCE - 0.5)), SINCE)
    assert behind["shard_id"] == "shardId-000000000000" and "before the writes finished" in behind["reason"]


def test_work_in_flight_or_buffered_is_behind_whatever_the_last_empty_poll():
    behind = lagging_shards(state(shard(in_flight=True), shard("shardId-1", pending_records=3)), SINCE)
    assert [b["shard_id"] for b in behind] == ["shardId-000000000000", "shardId-1"]
    assert "batch in flight" in behind[0]["reason"] and "3 records buffered" in behind[1]["reason"]


def test_every_kind_of_stream_consumer_is_waited_for():
    # GIVEN a mapping that has drained and a Firehose delivery that still holds records
    both = {"consumers": state(shard())["consumers"]
            + state(shard(pending_records=7), uuid="firehose:d", kind="firehose")["consumers"]}
    # THEN only the delivery is behind, named by its kind
    [behind] = lagging_shards(both, SINCE)
    assert (behind["kind"], behind["consumer"]) == ("firehose", "firehose:d") and "7 records" in behind["reason"]


def test_finished_shards_are_drained_and_consumers_without_shards_are_not():
    assert lagging_shards(state(shard(finished=True, last_empty_poll_started_at=None)), SINCE) == []
    [behind] = lagging_shards(state(), SINCE)
    assert behind["reason"] == "no shards polled yet"


def test_the_description_names_kind_consumer_shard_and_checkpoint():
    text = describe_lagging(lagging_shards(state(shard(last_empty_poll_started_at=None, last_error="Throttled")), SINCE))
    assert "event-source-mapping writer (esm-1)" in text and "shard=shardId-000000000000" in text
    assert "checkpoint 42" in text and "Throttled" in text
