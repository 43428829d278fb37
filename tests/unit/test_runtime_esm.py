"""The Kinesis event source mapping state machine (on the shard seam), against an in-memory
stream and invoker."""
from __future__ import annotations

import base64
import json
import threading

import pytest

from devstack.runtime.checkpoints import Checkpoint, CheckpointStore
from devstack.runtime.esm import EsmShardProcessor
from devstack.runtime.model import INVOKE_PAYLOAD_LIMIT, EsmSpec
from devstack.runtime.shards import FINISHED, IDLE, INVOKED, STOPPED, WAITING, PollerSettings, RecordsPage, StreamRecord
from devstack.runtime.workers import InvokeResult, function_error, service_error

STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:consumer"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:on-failure"
ROLE_ARN = "arn:aws:iam::123456789012:role/consumer"
SHARD = "shardId-000000000000"
NOW = 1_700_000_000.0
FAST = PollerSettings(idle_delay=0, retry_base_delay=0, retry_max_delay=0, error_base_delay=0, error_max_delay=0)


def records(n: int, *, start: int = 1, arrival: float = NOW - 5, size: int | None = None) -> list[StreamRecord]:
    return [StreamRecord(str(i), f"pk{i}", (f"r{i}".encode() if size is None else bytes(size)), arrival + i / 1000)
            for i in range(start, start + n)]


class FakeReader:
    """A shard as a list; iterators are positions."""

    def __init__(self, shard_records: list[StreamRecord], closed: bool = False) -> None:
        self.records = shard_records
        self.closed = closed
        self.iterator_requests: list[tuple[str, object]] = []

    def get_shard_iterator(self, shard_id, iterator_type, value=None):
        self.iterator_requests.append((iterator_type, value))
        if iterator_type == "TRIM_HORIZON":
            index = 0
        elif iterator_type == "AFTER_SEQUENCE_NUMBER":
            index = next((i for i, r in enumerate(self.records) if int(r.sequence_number) > int(value)), len(self.records))
        elif iterator_type == "AT_TIMESTAMP":
            index = next((i for i, r in enumerate(self.records) if r.arrival >= value), len(self.records))
        else:
            raise AssertionError(iterator_type)
        return str(index)

    def get_records(self, iterator, limit):
        index = int(iterator)
        page = [StreamRecord(r.sequence_number, r.partition_key, r.data, r.arrival)
                for r in self.records[index:index + limit]]
        end = index + len(page)
        next_iterator = None if self.closed and end >= len(self.records) and not page else str(end)
        return RecordsPage(page, next_iterator, 0)


class FakeInvoker:
    """Calls ``behaviour(data_list, event)``; its return is the handler's result (or an InvokeResult)."""

    def __init__(self, behaviour=lambda data, event: None) -> None:
        self.behaviour = behaviour
        self.calls: list[list[str]] = []
        self.events: list[dict] = []
        self.payload_sizes: list[int] = []

    def invoke(self, function, payload, *, request_id=None):
        assert function == FUNCTION_ARN
        event = json.loads(payload)
        self.payload_sizes.append(len(payload))
        self.events.append(event)
        data = [base64.b64decode(r["kinesis"]["data"]).decode(errors="replace") for r in event["Records"]]
        self.calls.append(data)
        out = self.behaviour(data, event)
        if isinstance(out, InvokeResult):
            return out
        return InvokeResult(request_id="req", payload=json.dumps(out).encode())


class FakeSender:
    def __init__(self, failures_before_success: int = 0) -> None:
        self.messages: list[tuple[str, dict]] = []
        self.failures = failures_before_success

    def send(self, destination_arn, message):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("queue unavailable")
        self.messages.append((destination_arn, message))


class RecordingStore(CheckpointStore):
    def __init__(self, path) -> None:
        super().__init__(path)
        self.history: list[str] = []

    def put(self, esm_uuid, shard_id, checkpoint):
        self.history.append(checkpoint.value if checkpoint.kind == "AFTER_SEQUENCE_NUMBER" else checkpoint.kind)
        super().put(esm_uuid, shard_id, checkpoint)


def esm(**overrides) -> EsmSpec:
    values = dict(uuid="esm-1", function_arn=FUNCTION_ARN, event_source_arn=STREAM_ARN, batch_size=10,
                  on_failure_destination=QUEUE_ARN, maximum_retry_attempts=2)
    values.update(overrides)
    return EsmSpec(**values)


def failing(data_values):
    def behaviour(data, event):
        if set(data) & set(data_values):
            return function_error("ValueError", "poison", "req")
        return None
    return behaviour


@pytest.fixture
def store(tmp_path):
    s = RecordingStore(tmp_path / "checkpoints.sqlite")
    yield s
    s.close()


def consumer_for(spec, reader, invoker, store, sender=None, **kw) -> EsmShardProcessor:
    kw.setdefault("settings", FAST)
    kw.setdefault("clock", lambda: NOW)
    return EsmShardProcessor(spec, SHARD, reader=reader, invoker=invoker, sender=sender or FakeSender(), store=store,
                         role_arn=ROLE_ARN, **kw)


def run_until_idle(consumer: EsmShardProcessor, max_steps: int = 100) -> None:
    for _ in range(max_steps):
        outcome = consumer.step()
        if outcome in (IDLE, FINISHED, STOPPED) and not consumer.tail.buffer:
            return
    raise AssertionError("the consumer did not become idle")


# -- success and event shape ----------------------------------------------------------------
def test_a_successful_batch_is_checkpointed_after_its_last_record_with_lambdas_event_shape(store):
    # GIVEN five records on a shard and a handler that succeeds
    reader, invoker = FakeReader(records(5)), FakeInvoker()
    consumer = consumer_for(esm(), reader, invoker, store)
    # WHEN the consumer runs
    run_until_idle(consumer)
    # THEN one invocation carried all five, in order, and the checkpoint is after the last
    assert invoker.calls == [["r1", "r2", "r3", "r4", "r5"]]
    assert store.get("esm-1", SHARD) == Checkpoint.after("5")
    assert consumer.stats.records_processed == 5 and consumer.stats.batches_invoked == 1
    record = invoker.events[0]["Records"][0]
    assert record == {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "pk1", "sequenceNumber": "1",
                    "data": base64.b64encode(b"r1").decode(), "approximateArrivalTimestamp": NOW - 5 + 0.001},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{SHARD}:1",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": ROLE_ARN, "awsRegion": "eu-west-1",
        "eventSourceARN": STREAM_ARN,
    }


def test_batches_hold_at_most_batch_size_records_in_shard_order(store):
    reader, invoker = FakeReader(records(7)), FakeInvoker()
    run_until_idle(consumer_for(esm(batch_size=3), reader, invoker, store))
    assert invoker.calls == [["r1", "r2", "r3"], ["r4", "r5", "r6"], ["r7"]]
    assert store.history == ["3", "6", "7"]


def test_an_empty_poll_with_nothing_pending_marks_the_shard_drained(store):
    clock = {"now": NOW}
    reader, invoker = FakeReader(records(2)), FakeInvoker()
    consumer = consumer_for(esm(), reader, invoker, store, clock=lambda: clock["now"])
    assert consumer.step() == INVOKED
    assert consumer.tail.stats.last_empty_poll_started_at is None  # that poll returned records
    clock["now"] = NOW + 1
    assert consumer.step() == IDLE
    assert consumer.tail.stats.last_empty_poll_started_at == NOW + 1


# -- partial batch responses ------------------------------------------------------------------
def test_record_3_of_5_reported_failed_checkpoints_records_1_2_and_retries_from_3(store):
    # GIVEN a handler that reports record 3 failed the first time only
    seen = {"n": 0}

    def behaviour(data, event):
        seen["n"] += 1
        if seen["n"] == 1:
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["kinesis"]["sequenceNumber"]}]}
        return {"batchItemFailures": []}

    reader, invoker = FakeReader(records(5)), FakeInvoker(behaviour)
    consumer = consumer_for(esm(report_batch_item_failures=True), reader, invoker, store)
    # WHEN it runs
    run_until_idle(consumer)
    # THEN 1-2 were checkpointed, and the retry started at 3
    assert invoker.calls == [["r1", "r2", "r3", "r4", "r5"], ["r3", "r4", "r5"]]
    assert store.history == ["2", "5"]
    assert consumer.stats.records_processed == 5 and consumer.stats.batch_failures == 1


def test_several_failed_items_retry_from_the_lowest_sequence_number(store):
    calls = {"n": 0}

    def behaviour(data, event):
        calls["n"] += 1
        seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        if calls["n"] == 1:
            return {"batchItemFailures": [{"itemIdentifier": seqs[3]}, {"itemIdentifier": seqs[1]}]}
        return None

    reader, invoker = FakeReader(records(5)), FakeInvoker(behaviour)
    run_until_idle(consumer_for(esm(report_batch_item_failures=True), reader, invoker, store))
    assert invoker.calls[1] == ["r2", "r3", "r4", "r5"]
    assert store.history == ["1", "5"]


@pytest.mark.parametrize("response", [
    {"batchItemFailures": [{"itemIdentifier": "999"}]},       # not in the batch
    {"batchItemFailures": [{"itemIdentifier": ""}]},          # empty identifier
    {"batchItemFailures": [{"itemIdentifier": None}]},        # null identifier
    {"batchItemFailures": [{"itemId": "1"}]},                 # wrong key name
    {"batchItemFailures": "3"},                               # not a list
    "not an object",
])
def test_a_malformed_partial_response_fails_the_whole_batch(store, response):
    calls = {"n": 0}

    def behaviour(data, event):
        calls["n"] += 1
        return response if calls["n"] == 1 else None

    reader, invoker = FakeReader(records(5)), FakeInvoker(behaviour)
    consumer = consumer_for(esm(report_batch_item_failures=True), reader, invoker, store)
    run_until_idle(consumer)
    assert invoker.calls == [["r1", "r2", "r3", "r4", "r5"]] * 2
    assert store.history == ["5"]
    assert consumer.stats.batch_failures == 1 and consumer.stats.retries == 1


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}])
def test_null_or_empty_partial_responses_are_complete_successes(store, response):
    reader, invoker = FakeReader(records(3)), FakeInvoker(lambda d, e: response)
    consumer = consumer_for(esm(report_batch_item_failures=True), reader, invoker, store)
    run_until_idle(consumer)
    assert len(invoker.calls) == 1 and consumer.stats.batch_failures == 0


def test_batch_item_failures_are_ignored_unless_the_mapping_enables_them(store):
    reader = FakeReader(records(3))
    invoker = FakeInvoker(lambda d, e: {"batchItemFailures": [{"itemIdentifier": "1"}]})
    run_until_idle(consumer_for(esm(report_batch_item_failures=False), reader, invoker, store))
    assert len(invoker.calls) == 1
    assert store.get("esm-1", SHARD) == Checkpoint.after("3")


def test_a_partial_failure_that_never_clears_sends_the_rest_of_the_batch_to_the_destination(store):
    # Records after the failed one go with it, as on AWS.
    def behaviour(data, event):
        return {"batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]}
                                      for r, d in zip(event["Records"], data) if d == "r3"]}

    reader, invoker, sender = FakeReader(records(5)), FakeInvoker(behaviour), FakeSender()
    consumer = consumer_for(esm(report_batch_item_failures=True, maximum_retry_attempts=1), reader, invoker,
                            store, sender)
    run_until_idle(consumer)
    # 1 invocation with progress (counts 1), then 1 retry from r3 (counts 2 > 1 retry) → destination
    assert invoker.calls == [["r1", "r2", "r3", "r4", "r5"], ["r3", "r4", "r5"]]
    [(_, message)] = sender.messages
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == "3"
    assert message["KinesisBatchInfo"]["endSequenceNumber"] == "5"
    assert message["requestContext"]["approximateInvokeCount"] == 2
    assert store.history == ["2", "5"]


# -- function errors, bisect, retries, destinations ------------------------------------------
def test_an_always_failing_record_is_isolated_by_bisection_and_sent_to_the_destination(store):
    # GIVEN record 3 of 5 always fails the whole invocation, with bisect and 2 retries
    reader, invoker, sender = FakeReader(records(5)), FakeInvoker(failing({"r3"})), FakeSender()
    consumer = consumer_for(esm(bisect_on_error=True, maximum_retry_attempts=2), reader, invoker, store, sender)
    # WHEN it runs
    run_until_idle(consumer)
    # THEN halves were processed separately, r3 alone was retried twice, then sent on
    assert invoker.calls == [
        ["r1", "r2", "r3", "r4", "r5"],
        ["r1", "r2"],
        ["r3", "r4", "r5"],
        ["r3"], ["r3"], ["r3"],
        ["r4", "r5"],
    ]
    [(destination, message)] = sender.messages
    assert destination == QUEUE_ARN
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    info = message["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("3", "3", 1)
    assert consumer.stats.records_processed == 4 and consumer.stats.records_sent_to_destination == 1
    assert store.history == ["2", "3", "5"]


def test_without_bisect_the_whole_batch_is_retried_then_sent_in_the_aws_on_failure_format(store):
    reader, invoker, sender = FakeReader(records(3)), FakeInvoker(failing({"r2"})), FakeSender()
    consumer = consumer_for(esm(maximum_retry_attempts=1), reader, invoker, store, sender)
    run_until_idle(consumer)
    assert invoker.calls == [["r1", "r2", "r3"]] * 2
    [(_, message)] = sender.messages
    assert set(message) == {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"}
    assert message["version"] == "1.0"
    assert set(message["requestContext"]) == {"requestId", "functionArn", "condition", "approximateInvokeCount"}
    assert message["requestContext"]["functionArn"] == FUNCTION_ARN
    assert message["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert message["KinesisBatchInfo"] == {
        "shardId": SHARD, "startSequenceNumber": "1", "endSequenceNumber": "3",
        "approximateArrivalOfFirstRecord": "2023-11-14T22:13:15.001Z",
        "approximateArrivalOfLastRecord": "2023-11-14T22:13:15.003Z",
        "batchSize": 3, "streamArn": STREAM_ARN,
    }
    assert message["timestamp"].endswith("Z")
    assert store.get("esm-1", SHARD) == Checkpoint.after("3")


def test_zero_retries_sends_after_the_first_failure(store):
    reader, invoker, sender = FakeReader(records(2)), FakeInvoker(failing({"r1"})), FakeSender()
    run_until_idle(consumer_for(esm(maximum_retry_attempts=0, batch_size=1), reader, invoker, store, sender))
    assert invoker.calls == [["r1"], ["r2"]]
    assert [m["KinesisBatchInfo"]["startSequenceNumber"] for _, m in sender.messages] == ["1"]


def test_without_a_destination_exhausted_records_are_skipped_and_processing_goes_on(store):
    reader, invoker = FakeReader(records(3)), FakeInvoker(failing({"r1"}))
    consumer = consumer_for(esm(maximum_retry_attempts=0, batch_size=1, on_failure_destination=None),
                            reader, invoker, store)
    run_until_idle(consumer)
    assert invoker.calls == [["r1"], ["r2"], ["r3"]]
    assert consumer.stats.records_discarded == 1 and consumer.stats.records_processed == 2


def test_records_older_than_the_maximum_age_go_to_the_destination_without_an_invocation(store):
    # GIVEN two records that arrived 120 s ago and one fresh one, with a 60 s maximum age
    old = records(2, arrival=NOW - 120)
    fresh = records(1, start=3, arrival=NOW - 1)
    reader, invoker, sender = FakeReader(old + fresh), FakeInvoker(), FakeSender()
    consumer = consumer_for(esm(maximum_record_age=60), reader, invoker, store, sender)
    run_until_idle(consumer)
    # THEN the old ones are reported as RecordAgeExceeded and only the fresh one is invoked
    assert invoker.calls == [["r3"]]
    [(_, message)] = sender.messages
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["KinesisBatchInfo"]["batchSize"] == 2
    assert store.history == ["2", "3"]


def test_a_record_that_expires_while_being_retried_is_sent_as_record_age_exceeded(store):
    clock = {"now": NOW}

    def behaviour(data, event):
        clock["now"] += 40  # each failing attempt takes 40 s
        return function_error("ValueError", "poison", "req")

    reader, invoker, sender = FakeReader(records(1, arrival=NOW)), FakeInvoker(behaviour), FakeSender()
    consumer = consumer_for(esm(maximum_record_age=60, maximum_retry_attempts=-1), reader, invoker, store, sender,
                            clock=lambda: clock["now"])
    run_until_idle(consumer)
    assert len(invoker.calls) == 2  # at 0 s and 40 s; at 80 s the record is too old
    [(_, message)] = sender.messages
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["requestContext"]["approximateInvokeCount"] == 2


def test_throttling_is_retried_without_consuming_retries(store):
    results = iter([service_error("TooManyRequestsException", "Rate Exceeded."),
                    service_error("TooManyRequestsException", "Rate Exceeded."), None])
    reader, sender = FakeReader(records(2)), FakeSender()
    invoker = FakeInvoker(lambda d, e: next(results))
    consumer = consumer_for(esm(maximum_retry_attempts=0), reader, invoker, store, sender)
    run_until_idle(consumer)
    assert len(invoker.calls) == 3 and not sender.messages
    assert store.get("esm-1", SHARD) == Checkpoint.after("2")


def test_an_unavailable_destination_is_retried_before_the_checkpoint_moves(store):
    reader, invoker, sender = FakeReader(records(1)), FakeInvoker(failing({"r1"})), FakeSender(failures_before_success=2)
    consumer = consumer_for(esm(maximum_retry_attempts=0), reader, invoker, store, sender)
    run_until_idle(consumer)
    assert len(sender.messages) == 1
    assert store.history == ["1"]


def test_stopping_during_a_retry_leaves_the_checkpoint_before_the_failing_batch(store):
    stop = threading.Event()

    def behaviour(data, event):
        stop.set()  # the runtime is asked to stop while this batch fails
        return function_error("ValueError", "poison", "req")

    reader, invoker = FakeReader(records(3)), FakeInvoker(behaviour)
    consumer = consumer_for(esm(maximum_retry_attempts=-1), reader, invoker, store, stop_event=stop)
    assert consumer.step() == STOPPED
    assert store.get("esm-1", SHARD) is None and not consumer.tail.buffer and len(invoker.calls) == 1


# -- batching window and size ------------------------------------------------------------------
def test_the_batching_window_waits_for_more_records_until_it_elapses(store):
    clock = {"mono": 100.0}
    shard = records(2)
    reader, invoker = FakeReader(shard), FakeInvoker()
    consumer = consumer_for(esm(batch_size=5, maximum_batching_window=1.0), reader, invoker, store,
                            monotonic=lambda: clock["mono"])
    assert consumer.step() == WAITING and invoker.calls == []
    shard.extend(records(1, start=3))  # a third record arrives within the window
    clock["mono"] += 0.5
    assert consumer.step() == WAITING and invoker.calls == []
    clock["mono"] += 0.6
    assert consumer.step() == INVOKED
    assert invoker.calls == [["r1", "r2", "r3"]]


def test_a_full_batch_is_invoked_before_the_window_elapses(store):
    reader, invoker = FakeReader(records(5)), FakeInvoker()
    consumer = consumer_for(esm(batch_size=5, maximum_batching_window=300), reader, invoker, store,
                            monotonic=lambda: 0.0)
    assert consumer.step() == INVOKED and len(invoker.calls[0]) == 5


def test_batches_are_cut_short_to_stay_under_the_6_mb_payload(store):
    # GIVEN ten 1 MB records (about 1.33 MB each once base64-encoded) and a batch size of 10
    reader, invoker = FakeReader(records(10, size=1024 * 1024)), FakeInvoker()
    consumer = consumer_for(esm(batch_size=10), reader, invoker, store)
    run_until_idle(consumer)
    # THEN no event exceeds 6 MB, nothing is lost or reordered
    assert max(invoker.payload_sizes) <= INVOKE_PAYLOAD_LIMIT
    assert len(invoker.calls) >= 3
    assert [d for call in invoker.calls for d in call] == [bytes(1024 * 1024).decode()] * 10
    assert [e["Records"][0]["kinesis"]["sequenceNumber"] for e in invoker.events] == \
        [str(1 + sum(len(c) for c in invoker.calls[:i])) for i in range(len(invoker.calls))]
    assert store.get("esm-1", SHARD) == Checkpoint.after("10")


# -- positions and restarts --------------------------------------------------------------------
def test_a_restarted_consumer_resumes_from_the_persisted_checkpoint(tmp_path):
    # GIVEN a first runtime that processed one batch of three, then stopped
    path = tmp_path / "checkpoints.sqlite"
    shard = records(6)
    first = CheckpointStore(path)
    invoker1 = FakeInvoker()
    assert consumer_for(esm(batch_size=3), FakeReader(shard), invoker1, first).step() == INVOKED
    first.close()
    # WHEN a new runtime starts with the same state dir
    second = CheckpointStore(path)
    reader2, invoker2 = FakeReader(shard), FakeInvoker()
    run_until_idle(consumer_for(esm(batch_size=3), reader2, invoker2, second))
    # THEN it continues after record 3: nothing skipped, nothing reprocessed
    assert invoker1.calls == [["r1", "r2", "r3"]]
    assert invoker2.calls == [["r4", "r5", "r6"]]
    assert reader2.iterator_requests[0] == ("AFTER_SEQUENCE_NUMBER", "3")
    second.close()


def test_latest_reads_from_the_mappings_creation_and_persists_that_anchor(store):
    created = NOW - 10
    before = records(2, arrival=NOW - 20)
    after = records(1, start=3, arrival=NOW - 5)
    reader, invoker = FakeReader(before + after), FakeInvoker()
    consumer = consumer_for(esm(starting_position="LATEST", last_modified=created), reader, invoker, store)
    run_until_idle(consumer)
    assert reader.iterator_requests[0] == ("AT_TIMESTAMP", created)
    assert invoker.calls == [["r3"]]
    assert store.history[0] == "AT_TIMESTAMP"


def test_a_closed_shard_is_finished_once_read_to_its_end(store):
    reader, invoker = FakeReader(records(2), closed=True), FakeInvoker()
    consumer = consumer_for(esm(), reader, invoker, store)
    run_until_idle(consumer)
    assert consumer.tail.stats.finished
    assert store.get("esm-1", SHARD) == Checkpoint.shard_end()
    assert consumer.step() == FINISHED


def test_a_failure_after_the_last_page_of_a_closed_shard_reads_that_page_again(store):
    # AWS: the last page of a closed shard has records and no next iterator
    class LastPageEnds(FakeReader):
        def get_records(self, iterator, limit):
            page = super().get_records(iterator, limit)
            end = int(iterator) + len(page.records)
            return RecordsPage(page.records, None if end >= len(self.records) else page.next_iterator, 0)

    class FailsOnce(FakeInvoker):
        failed = False

        def invoke(self, function, payload, *, request_id=None):
            if not self.failed:
                self.failed = True
                raise_in_step["now"] = True
            return super().invoke(function, payload, request_id=request_id)

    raise_in_step = {"now": False}
    reader, invoker = LastPageEnds(records(2), closed=True), FailsOnce()
    consumer = consumer_for(esm(), reader, invoker, store)
    real_put = store.put

    def put(esm_uuid, shard_id, checkpoint):  # the first checkpoint write fails
        if raise_in_step["now"]:
            raise_in_step["now"] = False
            raise OSError("disk full")
        real_put(esm_uuid, shard_id, checkpoint)

    store.put = put
    with pytest.raises(OSError):
        consumer.step()
    assert not consumer.tail.stats.finished and store.get("esm-1", SHARD) is None
    run_until_idle(consumer)
    # the page was read again and delivered before the shard was finished
    assert invoker.calls == [["r1", "r2"], ["r1", "r2"]]
    assert consumer.tail.stats.finished and store.get("esm-1", SHARD) == Checkpoint.shard_end()


def test_a_shard_listed_as_closed_is_finished_after_its_last_record_even_if_reads_continue(store):
    # moto keeps returning an iterator at the end of a closed shard; ListShards gives its end
    reader, invoker = FakeReader(records(3), closed=False), FakeInvoker()
    consumer = consumer_for(esm(), reader, invoker, store)
    consumer.tail.ending_sequence_number = "3"
    run_until_idle(consumer)
    assert consumer.tail.stats.finished and invoker.calls == [["r1", "r2", "r3"]]
    assert store.get("esm-1", SHARD) == Checkpoint.shard_end()


def test_a_closed_shard_is_not_finished_before_its_last_record(store):
    reader, invoker = FakeReader(records(3), closed=False), FakeInvoker()
    consumer = consumer_for(esm(), reader, invoker, store)
    consumer.tail.ending_sequence_number = "5"  # records 4-5 not visible yet: keep polling
    run_until_idle(consumer)
    assert not consumer.tail.stats.finished


def test_a_shard_merged_from_two_parents_waits_for_both(store):
    from devstack.runtime.shards import StreamConsumer

    consumer = StreamConsumer("esm-1", STREAM_ARN, store=store)
    known = {"shardId-0", "shardId-1", "shardId-2"}
    ready = consumer._parents_done(("shardId-0", "shardId-1"), known)
    assert not ready()
    store.put("esm-1", "shardId-0", Checkpoint.shard_end())
    assert not ready()  # the adjacent parent still has records: keys merged from it keep their order
    store.put("esm-1", "shardId-1", Checkpoint.shard_end())
    assert ready()
    assert consumer._parents_done(("shardId-9", None), known)()  # a parent past retention is not waited for
