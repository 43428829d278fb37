"""The local Firehose delivery (devstack/runtime/firehose.py) against an in-memory stream,
transformation, bucket and warehouse: de-aggregation, the transformation contract,
buffering, the staging object, manifest and COPY, retries and the error prefix."""
from __future__ import annotations

import base64
import gzip
import json

import pytest

from devstack.runtime.checkpoints import CheckpointStore
from devstack.runtime.firehose import FirehoseShardProcessor
from devstack.runtime.model import DeliveryStreamSpec
from devstack.runtime.shards import IDLE, INVOKED, WAITING, PollerSettings, StreamRecord
from devstack.runtime.workers import InvokeResult, function_error
from pipeline.codec import aggregate
from pipeline.partitioning import ShardMap, ShardRange
from tests.unit.test_runtime_esm import FakeReader

NOW = 1_700_000_000.0
SHARD = "shardId-000000000000"
ONE_SHARD = ShardMap([ShardRange(SHARD, 0, 2**128 - 1)])
FAST = PollerSettings(idle_delay=0, retry_base_delay=0, retry_max_delay=0, error_base_delay=0, error_max_delay=0)
TRANSFORM = "arn:aws:lambda:eu-west-1:123456789012:function:transform"


def spec(**overrides) -> DeliveryStreamSpec:
    values = dict(name="warehouse", arn="arn:aws:firehose:eu-west-1:123456789012:deliverystream/warehouse",
                  source_stream_arn="arn:aws:kinesis:eu-west-1:123456789012:stream/events",
                  role_arn="arn:aws:iam::123456789012:role/firehose", created_at=NOW - 100,
                  jdbc_url="jdbc:redshift://wh.abc.eu-west-1.redshift.amazonaws.com:5439/shop", table="stg",
                  columns="a,b", copy_options="JSON 'auto' GZIP", retry_seconds=0, bucket="delivery",
                  prefix="staging/", error_prefix="errors/", buffer_bytes=10**9, buffer_seconds=0,
                  processor_arn=TRANSFORM, processor_buffer_bytes=10**9, processor_buffer_seconds=0,
                  backup_bucket="delivery", backup_prefix="backup/", compression="GZIP")
    values.update(overrides)
    return DeliveryStreamSpec(**values)


def kpl_records(*groups: list[bytes], start: int = 1) -> list[StreamRecord]:
    out = []
    for n, group in enumerate(groups, start=start):
        (packed,) = aggregate([(f"pk{n}-{i}", data) for i, data in enumerate(group)], ONE_SHARD)
        out.append(StreamRecord(str(n), f"pk{n}", packed.data, NOW - 10 + n))
    return out


class Transform:
    """Upper-cases each record; answers per ``rule(data)``: 'Ok', 'Dropped', 'ProcessingFailed'."""

    def __init__(self, rule=lambda data: "Ok", failures: int = 0, answer=None):
        self.rule, self.failures, self.answer = rule, failures, answer
        self.events: list[dict] = []

    def invoke(self, function, payload, *, request_id=None):
        assert function == TRANSFORM
        event = json.loads(payload)
        self.events.append(event)
        if self.failures:
            self.failures -= 1
            return function_error("RuntimeError", "boom", "r")
        if self.answer is not None:
            return InvokeResult("r", json.dumps(self.answer(event)).encode())
        records = []
        for r in event["records"]:
            data = base64.b64decode(r["data"])
            result = self.rule(data)
            records.append({"recordId": r["recordId"], "result": result,
                            "data": base64.b64encode(data.upper() + b"\n").decode() if result == "Ok" else ""})
        return InvokeResult("r", json.dumps({"records": records}).encode())


class Bucket:
    def __init__(self, failures: int = 0):
        self.objects: dict[tuple[str, str], bytes] = {}
        self.failures = failures

    def put(self, bucket, key, body, content_type):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("s3 unavailable")
        self.objects[(bucket, key)] = body

    def under(self, prefix: str) -> dict[str, bytes]:
        return {k: v for (_, k), v in self.objects.items() if k.startswith(prefix)}


class Warehouse:
    def __init__(self, bucket: Bucket, failures: int = 0, always_fail: bool = False):
        self.bucket, self.failures, self.always_fail = bucket, failures, always_fail
        self.loaded: list[bytes] = []
        self.copies: list[str] = []

    def copy(self, spec, sql):
        self.copies.append(sql)
        if self.always_fail or self.failures:
            self.failures -= 1
            raise RuntimeError('relation "stg" does not exist')
        manifest_key = sql.split("FROM 's3://delivery/", 1)[1].split("'", 1)[0]
        entries = json.loads(self.bucket.objects[("delivery", manifest_key)])["entries"]
        for entry in entries:
            key = entry["url"].removeprefix("s3://delivery/")
            body = self.bucket.objects[("delivery", key)]
            self.loaded.append(gzip.decompress(body) if key.endswith(".gz") else body)
        return sum(chunk.count(b"\n") for chunk in self.loaded[-len(entries):])


@pytest.fixture
def store(tmp_path):
    s = CheckpointStore(tmp_path / "c.sqlite")
    yield s
    s.close()


def processor(reader, store, transform, bucket, warehouse, **overrides):
    return FirehoseShardProcessor(spec(**overrides), SHARD, reader=reader, store=store, invoker=transform,
                                  objects=bucket, warehouse=warehouse, settings=FAST, clock=lambda: NOW)


def test_kpl_records_are_deaggregated_transformed_staged_copied_and_checkpointed(store):
    # GIVEN two KPL aggregates holding three events on the shard
    reader = FakeReader(kpl_records([b'{"e":1}', b'{"e":2}'], [b'{"e":3}']))
    transform, bucket = Transform(), Bucket()
    warehouse = Warehouse(bucket)
    p = processor(reader, store, transform, bucket, warehouse)
    # WHEN one step runs with the buffers due at once
    assert p.step() == INVOKED
    # THEN the transformation saw one record per event, in Firehose's event shape
    [event] = transform.events
    assert [base64.b64decode(r["data"]) for r in event["records"]] == [b'{"e":1}', b'{"e":2}', b'{"e":3}']
    meta = event["records"][1]["kinesisRecordMetadata"]
    assert (meta["sequenceNumber"], meta["subsequenceNumber"], meta["shardId"]) == ("1", 1, SHARD)
    assert event["records"][0]["approximateArrivalTimestamp"] == int((NOW - 9) * 1000)
    assert event["deliveryStreamArn"].endswith("/warehouse") and event["sourceKinesisStreamArn"].endswith("/events")
    # AND one gzip object of the concatenated rows was COPYed through its manifest, with Firehose's COPY
    assert warehouse.loaded == [b'{"E":1}\n{"E":2}\n{"E":3}\n']
    [copy] = warehouse.copies
    assert copy.startswith("COPY stg (a,b) FROM 's3://delivery/staging/manifests/")
    assert copy.endswith("CREDENTIALS 'aws_iam_role=arn:aws:iam::123456789012:role/firehose' MANIFEST JSON 'auto' GZIP;")
    [(key, body)] = [(k, v) for k, v in bucket.under("staging/").items() if "/manifests/" not in k]
    assert key.startswith("staging/2023/11/14/22/warehouse-1-2023-11-14-22-13-20-") and key.endswith(".gz")
    # AND the source records were backed up, and the checkpoint moved past both Kinesis records
    [backup] = bucket.under("backup/").values()
    assert gzip.decompress(backup) == b'{"e":1}{"e":2}{"e":3}'
    assert store.get("firehose:warehouse", SHARD).value == "2"
    assert p.stats.rows_loaded == 3 and p.step() == IDLE


def test_processing_failures_land_in_the_error_prefix_with_their_data_and_dropped_records_nowhere(store):
    rule = lambda data: {b"bad": "ProcessingFailed", b"skip": "Dropped"}.get(data, "Ok")  # noqa: E731
    bucket = Bucket()
    warehouse = Warehouse(bucket)
    p = processor(FakeReader(kpl_records([b"ok", b"bad", b"skip"])), store, Transform(rule), bucket, warehouse)
    assert p.step() == INVOKED
    assert warehouse.loaded == [b"OK\n"]
    [failed] = bucket.under("errors/processing-failed/").values()
    [line] = [json.loads(x) for x in failed.decode().splitlines()]
    assert base64.b64decode(line["rawData"]) == b"bad" and line["errorCode"] == "Lambda.ProcessingFailed"
    assert line["lambdaArn"] == TRANSFORM and line["attemptsMade"] == 1
    assert (p.stats.records_ok, p.stats.records_dropped, p.stats.records_processing_failed) == (1, 1, 1)


def test_a_failing_transformation_is_retried_then_its_records_are_processing_failed(store):
    bucket = Bucket()
    transform = Transform(failures=10)
    p = processor(FakeReader(kpl_records([b"a", b"b"])), store, transform, bucket, Warehouse(bucket), processor_retries=2)
    assert p.step() == INVOKED
    assert len(transform.events) == 3  # the first call and two retries
    [failed] = bucket.under("errors/processing-failed/").values()
    lines = [json.loads(x) for x in failed.decode().splitlines()]
    assert [line["errorCode"] for line in lines] == ["Lambda.FunctionError"] * 2 and lines[0]["attemptsMade"] == 3
    assert store.get("firehose:warehouse", SHARD).value == "1"  # nothing lost: everything is accounted for


@pytest.mark.parametrize("answer, code", [
    (lambda e: {"records": e["records"][:1] and [{"recordId": e["records"][0]["recordId"], "result": "Ok", "data": ""}]},
     "Lambda.MissingRecordId"),
    (lambda e: {"records": [{"recordId": "nope", "result": "Ok", "data": ""}] * 2}, "Lambda.InvalidRecordId"),
    (lambda e: {"records": [{"recordId": [r["recordId"]], "result": "Ok", "data": ""} for r in e["records"]]},
     "Lambda.InvalidRecordId"),
    (lambda e: {"records": [{"recordId": r["recordId"], "result": "Fine", "data": ""} for r in e["records"]]},
     "Lambda.InvalidRecordResult"),
    (lambda e: {"nothing": True}, "Lambda.InvalidReturnedData"),
])
def test_a_response_that_breaks_the_contract_fails_the_invocation(store, answer, code):
    bucket = Bucket()
    p = processor(FakeReader(kpl_records([b"a", b"b"])), store, Transform(answer=answer), bucket, Warehouse(bucket),
                  processor_retries=0)
    assert p.step() == INVOKED
    [failed] = bucket.under("errors/processing-failed/").values()
    assert {json.loads(x)["errorCode"] for x in failed.decode().splitlines()} == {code}


def test_a_failed_copy_is_retried_until_it_succeeds_and_the_checkpoint_waits_for_it(store):
    bucket = Bucket()
    warehouse = Warehouse(bucket, failures=2)
    p = processor(FakeReader(kpl_records([b"a"])), store, Transform(), bucket, warehouse, retry_seconds=3600)
    assert p.step() == INVOKED
    assert len(warehouse.copies) == 3 and warehouse.loaded == [b"A\n"] and p.stats.copy_failures == 2
    assert store.get("firehose:warehouse", SHARD).value == "1"


def test_after_the_retry_duration_the_batch_is_skipped_with_its_manifest_under_the_error_prefix(store):
    bucket = Bucket()
    p = processor(FakeReader(kpl_records([b"a"])), store, Transform(), bucket, Warehouse(bucket, always_fail=True),
                  retry_seconds=0)
    assert p.step() == INVOKED
    [manifest] = bucket.under("errors/manifests/").values()
    [entry] = json.loads(manifest)["entries"]
    assert entry["url"].startswith("s3://delivery/staging/") and p.stats.batches_skipped == 1


def test_records_wait_for_the_buffering_interval_and_unavailable_s3_is_retried(store):
    bucket = Bucket(failures=2)
    clock = {"t": 100.0}
    p = FirehoseShardProcessor(spec(buffer_seconds=5, processor_buffer_seconds=5), SHARD,
                               reader=FakeReader(kpl_records([b"a"], [b"b"])), store=store, invoker=Transform(),
                               objects=bucket, warehouse=Warehouse(bucket), settings=FAST, clock=lambda: NOW,
                               monotonic=lambda: clock["t"])
    # WHEN the interval has not passed THEN nothing is delivered and the records stay buffered (not drained)
    assert p.step() == WAITING and p.tail.stats.pending_records == 2 and p.wait_hint() == 5
    clock["t"] += 5
    warehouse = p.warehouse
    assert p.step() == INVOKED and p.tail.stats.pending_records == 0
    assert store.get("firehose:warehouse", SHARD).value == "2"
    # the two failed PutObjects were retried: the object and its manifest are there and loaded
    assert bucket.failures == 0 and len(bucket.under("staging/manifests/")) == 1
    assert warehouse.loaded == [b"A\nB\n"]


def test_without_compression_or_a_column_list_the_copy_names_neither(store):
    bucket = Bucket()
    warehouse = Warehouse(bucket)
    p = processor(FakeReader(kpl_records([b"a"])), store, Transform(), bucket, warehouse, compression="UNCOMPRESSED",
                  columns="")
    assert p.step() == INVOKED
    [copy] = warehouse.copies
    assert copy.startswith("COPY stg FROM 's3://delivery/staging/manifests/") and warehouse.loaded == [b"A\n"]
    [key] = [k for k in bucket.under("staging/") if "/manifests/" not in k]
    assert not key.endswith(".gz")


def test_a_record_that_is_not_an_aggregate_passes_as_it_came(store):
    bucket = Bucket()
    warehouse = Warehouse(bucket)
    reader = FakeReader([StreamRecord("7", "pk", b"plain", NOW - 1)])
    p = processor(reader, store, Transform(), bucket, warehouse)
    assert p.step() == INVOKED and warehouse.loaded == [b"PLAIN\n"]


def test_the_jdbc_url_names_the_cluster_and_database():
    s = spec()
    assert (s.cluster_id, s.database) == ("wh", "shop")
