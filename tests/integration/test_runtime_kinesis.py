"""The runtime against the emulator: Kinesis event source mappings end to end."""
from __future__ import annotations

import time
from collections import defaultdict

import pytest

from devstack.runtime import client
from tests.fixtures.aws import read_jsonl, wait_for

pytestmark = pytest.mark.emulator


def test_records_on_two_shards_arrive_exactly_once_and_in_shard_order(aws, start_runtime, tmp_path):
    # GIVEN a 2-shard stream with 40 records and a mapping with batches of 7
    received = tmp_path / "received.jsonl"
    fn = aws.function("tests.fixtures.handlers.kinesis_recorder", env={"RECORD_FILE": str(received)})
    stream = aws.stream(shards=2)
    aws.mapping(fn["FunctionName"], stream, BatchSize=7)
    puts = aws.put(stream, [(f"customer-{i % 9}", f"record-{i}") for i in range(40)])
    expected = defaultdict(list)
    for i, put in enumerate(puts):
        expected[put["ShardId"]].append(f"record-{i}")
    assert len(expected) == 2, "the partition keys should spread over both shards"
    written = time.time()
    # WHEN the runtime runs until the consumers have drained
    runtime = start_runtime()
    final = client.wait_until_drained(runtime.admin_url, since=written, timeout=30)
    # THEN every record arrived once, in per-shard order, in batches of at most 7
    batches = read_jsonl(received)
    seen = defaultdict(list)
    for batch in batches:
        assert len(batch["data"]) <= 7
        seen[batch["shard"]].extend(batch["data"])
    assert dict(seen) == dict(expected)
    [mapping] = final["consumers"]
    assert sum(s["records_processed"] for s in mapping["shards"]) == 40
    assert {s["shard_id"] for s in mapping["shards"]} == set(expected)
    assert all(s["last_empty_poll_started_at"] > written for s in mapping["shards"])


def test_a_partial_batch_failure_retries_from_the_failed_record_then_reports_it_to_sqs(aws, start_runtime, tmp_path):
    # GIVEN a handler reporting record "bad" in batchItemFailures, with 1 retry and an SQS destination
    received = tmp_path / "received.jsonl"
    fn = aws.function("tests.fixtures.handlers.kinesis_partial", env={"RECORD_FILE": str(received), "FAIL_DATA": "bad"})
    stream = aws.stream(shards=1)
    queue_url, queue_arn = aws.queue()
    aws.mapping(fn["FunctionName"], stream, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"],
                MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    puts = aws.put(stream, [("k", d) for d in ["a", "b", "bad", "c", "d"]])
    written = time.time()
    # WHEN the runtime processes the stream
    runtime = start_runtime()
    final = client.wait_until_drained(runtime.admin_url, since=written, timeout=30)
    # THEN a and b were processed once, the retry started at "bad", and the rest was reported
    assert [b["data"] for b in read_jsonl(received)] == [["a", "b", "bad", "c", "d"], ["bad", "c", "d"]]
    [message] = aws.receive_all(queue_url, expected=1)
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 2
    assert message["requestContext"]["functionArn"] == fn["FunctionArn"]
    info = message["KinesisBatchInfo"]
    assert info["shardId"] == puts[0]["ShardId"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (puts[2]["SequenceNumber"], puts[4]["SequenceNumber"])
    assert info["batchSize"] == 3 and info["streamArn"] == stream
    [shard] = final["consumers"][0]["shards"]
    assert (shard["records_processed"], shard["records_sent_to_destination"]) == (2, 3)
    assert shard["checkpoint"] == puts[4]["SequenceNumber"]
    # and each record carried Lambda's Kinesis event fields
    record = read_jsonl(received)[0]["event"]["Records"][0]
    assert record["eventSource"] == "aws:kinesis" and record["eventSourceARN"] == stream
    assert record["invokeIdentityArn"] == fn["Role"]
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)


def test_bisect_isolates_a_poison_record_and_only_it_goes_to_the_destination(aws, start_runtime, tmp_path):
    received = tmp_path / "received.jsonl"
    fn = aws.function("tests.fixtures.handlers.kinesis_recorder", env={"RECORD_FILE": str(received), "FAIL_DATA": "bad"})
    stream = aws.stream(shards=1)
    queue_url, queue_arn = aws.queue()
    aws.mapping(fn["FunctionName"], stream, BatchSize=10, BisectBatchOnFunctionError=True, MaximumRetryAttempts=0,
                DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    puts = aws.put(stream, [("k", d) for d in ["a", "b", "bad", "c", "d"]])
    written = time.time()
    runtime = start_runtime()
    client.wait_until_drained(runtime.admin_url, since=written, timeout=30)
    [message] = aws.receive_all(queue_url, expected=1)
    info = message["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == \
        (puts[2]["SequenceNumber"], puts[2]["SequenceNumber"], 1)
    assert message["responseContext"]["functionError"] == "Unhandled"
    succeeded = [b["data"] for b in read_jsonl(received) if "bad" not in b["data"]]
    assert sorted(d for batch in succeeded for d in batch) == ["a", "b", "c", "d"]


def test_a_restarted_runtime_resumes_from_the_checkpoint(aws, start_runtime, tmp_path):
    # GIVEN a runtime that processed 10 records and was stopped
    received = tmp_path / "received.jsonl"
    fn = aws.function("tests.fixtures.handlers.kinesis_recorder", env={"RECORD_FILE": str(received)})
    stream = aws.stream(shards=1)
    aws.mapping(fn["FunctionName"], stream, BatchSize=4)
    aws.put(stream, [("k", f"first-{i}") for i in range(10)])
    written = time.time()
    first = start_runtime()
    client.wait_until_drained(first.admin_url, since=written, timeout=30)
    first.stop()
    # WHEN more records arrive while it is down, and a new runtime starts on the same state dir
    aws.put(stream, [("k", f"second-{i}") for i in range(10)])
    written = time.time()
    second = start_runtime()
    client.wait_until_drained(second.admin_url, since=written, timeout=30)
    # THEN every record was handled exactly once, in order
    data = [d for batch in read_jsonl(received) for d in batch["data"]]
    assert data == [f"first-{i}" for i in range(10)] + [f"second-{i}" for i in range(10)]


def test_wait_until_drained_names_the_shard_that_is_behind(aws, start_runtime, tmp_path):
    # GIVEN a slow consumer (2 s per batch)
    fn = aws.function("tests.fixtures.handlers.sleepy", env={"SLEEP_SECONDS": "2"})
    stream = aws.stream(shards=1)
    aws.mapping(fn["FunctionName"], stream, BatchSize=10)
    [put] = aws.put(stream, [("k", "slow")])
    written = time.time()
    runtime = start_runtime()
    wait_for(lambda: any(s["in_flight"] for m in runtime.status()["consumers"] for s in m["shards"]),
             message="the batch to be in flight")
    # WHEN a caller waits with a deadline shorter than the batch
    with pytest.raises(client.NotDrained) as caught:
        client.wait_until_drained(runtime.admin_url, since=written, timeout=0.3)
    # THEN the error names the shard, and a longer wait succeeds
    assert put["ShardId"] in str(caught.value) and "in flight" in str(caught.value)
    assert caught.value.lagging[0]["shard_id"] == put["ShardId"]
    client.wait_until_drained(runtime.admin_url, since=written, timeout=20)


def test_a_mapping_created_while_running_is_discovered_and_a_disabled_one_stops(aws, start_runtime, tmp_path):
    received = tmp_path / "received.jsonl"
    runtime = start_runtime()
    fn = aws.function("tests.fixtures.handlers.kinesis_recorder", env={"RECORD_FILE": str(received)})
    stream = aws.stream(shards=1)
    mapping = aws.mapping(fn["FunctionName"], stream, BatchSize=10)
    aws.put(stream, [("k", "x")])
    wait_for(lambda: read_jsonl(received), message="the record to be consumed")
    aws.lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    wait_for(lambda: not runtime.status()["consumers"], message="the mapping to stop")
    aws.put(stream, [("k", "y")])
    time.sleep(1.0)  # several poll intervals: a stopped mapping must not read "y"
    assert [b["data"] for b in read_jsonl(received)] == [["x"]]


def test_latest_starts_at_the_mappings_creation_even_when_the_runtime_starts_later(aws, start_runtime, tmp_path):
    # GIVEN records written before a LATEST mapping exists, and some after it, before the runtime runs
    received = tmp_path / "received.jsonl"
    fn = aws.function("tests.fixtures.handlers.kinesis_recorder", env={"RECORD_FILE": str(received)})
    stream = aws.stream(shards=1)
    aws.put(stream, [("k", "before-the-mapping")])
    time.sleep(1.1)  # the emulator keeps LastModified in whole seconds
    aws.mapping(fn["FunctionName"], stream, StartingPosition="LATEST", BatchSize=10)
    aws.put(stream, [("k", "after-the-mapping")])
    written = time.time()
    # WHEN the runtime starts
    runtime = start_runtime()
    client.wait_until_drained(runtime.admin_url, since=written, timeout=30)
    # THEN only what arrived after the mapping was created is processed
    assert [b["data"] for b in read_jsonl(received)] == [["after-the-mapping"]]


def test_after_resharding_the_parent_is_finished_then_the_children_are_read(aws, start_runtime, tmp_path):
    # GIVEN a consumed 1-shard stream that is then split in two
    received = tmp_path / "received.jsonl"
    fn = aws.function("tests.fixtures.handlers.kinesis_recorder", env={"RECORD_FILE": str(received)})
    stream = aws.stream(shards=1)
    aws.mapping(fn["FunctionName"], stream, BatchSize=10)
    aws.put(stream, [(f"k{i}", f"old-{i}") for i in range(5)])
    runtime = start_runtime()
    client.wait_until_drained(runtime.admin_url, since=time.time(), timeout=30)
    [parent] = aws.shard_ids(stream)
    aws.kinesis.update_shard_count(StreamName=stream.split("/", 1)[1], TargetShardCount=2,
                                   ScalingType="UNIFORM_SCALING")
    # WHEN records are written to the new shards
    aws.put(stream, [(f"k{i}", f"new-{i}") for i in range(20)])
    written = time.time()
    final = client.wait_until_drained(runtime.admin_url, since=written, timeout=30)
    # THEN every record was processed once and the parent shard is finished
    data = sorted(d for batch in read_jsonl(received) for d in batch["data"])
    assert data == sorted([f"old-{i}" for i in range(5)] + [f"new-{i}" for i in range(20)])
    shards = {s["shard_id"]: s for s in final["consumers"][0]["shards"]}
    assert shards[parent]["finished"] and len(shards) == 3
    assert all(s["parent_shard_id"] == parent for sid, s in shards.items() if sid != parent)
