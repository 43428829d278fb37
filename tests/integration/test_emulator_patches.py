"""The emulator's start-up patches to moto keep moto's behaviour (devstack/emulator/patches.py).

Everything but the last section talks to a patched emulator through boto3, as the
pipeline does; the last section checks that ``apply()`` refuses a moto it does not fit.
Speed is measured in bench/emulator_patches.py, not here.
"""
from __future__ import annotations

import io
import itertools
import json
import re
import threading
import zipfile
from decimal import Decimal

import boto3
import pytest
from botocore.config import Config

from tests.conftest import ROOT
from tests.fixtures.aws import unique

pytestmark = pytest.mark.emulator


def _client(emulator, service: str):
    return boto3.client(
        service,
        endpoint_url=emulator.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=20),
    )


@pytest.fixture
def kinesis(emulator):
    return _client(emulator, "kinesis")


@pytest.fixture
def dynamodb(emulator):
    return _client(emulator, "dynamodb")


# ── Kinesis ────────────────────────────────────────────────────────────────────


@pytest.fixture
def stream(kinesis):
    """A 2-shard stream and two partition keys, one landing on each shard."""
    name = unique("patches")
    kinesis.create_stream(StreamName=name, ShardCount=2)
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=name)["Shards"]]
    assert len(shards) == 2
    keys: dict[str, str] = {}
    for candidate in (f"pk-{i}" for i in itertools.count()):
        shard = kinesis.put_record(StreamName=name, Data=b"probe", PartitionKey=candidate)["ShardId"]
        keys.setdefault(shard, candidate)
        if len(keys) == 2:
            break
    # start from a clean state: a fresh stream with the same shard layout
    kinesis.delete_stream(StreamName=name)
    kinesis.create_stream(StreamName=name, ShardCount=2)
    return name, keys


def _put_many(kinesis, stream_name: str, keys: dict[str, str], count: int) -> dict[str, list[tuple[str, bytes]]]:
    """Put ``count`` records alternating over both shards; per shard, (sequence, data) in put order."""
    put: dict[str, list[tuple[str, bytes]]] = {shard: [] for shard in keys}
    shard_of_key = {key: shard for shard, key in keys.items()}
    entries = [(f"record-{i}".encode(), list(keys.values())[i % 2]) for i in range(count)]
    for start in range(0, count, 500):
        batch = entries[start:start + 500]
        response = kinesis.put_records(
            StreamName=stream_name, Records=[{"Data": data, "PartitionKey": key} for data, key in batch]
        )
        assert response["FailedRecordCount"] == 0
        for (data, key), result in zip(batch, response["Records"]):
            assert result["ShardId"] == shard_of_key[key]
            put[result["ShardId"]].append((result["SequenceNumber"], data))
    return put


def _read_all(kinesis, stream_name: str, shard: str, *, limit: int, **iterator_args) -> list[dict]:
    iterator = kinesis.get_shard_iterator(StreamName=stream_name, ShardId=shard, **iterator_args)["ShardIterator"]
    records: list[dict] = []
    while True:
        page = kinesis.get_records(ShardIterator=iterator, Limit=limit)
        assert len(page["Records"]) <= limit
        records.extend(page["Records"])
        iterator = page["NextShardIterator"]
        if not page["Records"]:
            assert page["MillisBehindLatest"] == 0
            return records


def test_each_shard_numbers_records_in_put_order_and_paged_reads_return_each_once(kinesis, stream):
    # GIVEN 1,203 records put over two shards
    name, keys = stream
    put = _put_many(kinesis, name, keys, 1203)

    for shard, expected in put.items():
        # THEN sequence numbers rise strictly in put order within the shard
        sequences = [int(s) for s, _ in expected]
        assert sequences == sorted(set(sequences))
        # WHEN the shard is read from TRIM_HORIZON in pages of 37
        records = _read_all(kinesis, name, shard, limit=37, ShardIteratorType="TRIM_HORIZON")
        # THEN every record comes back once, in order, with its own data
        assert [(r["SequenceNumber"], r["Data"]) for r in records] == expected


def test_iterators_start_where_asked(kinesis, stream):
    # GIVEN 300 records on each shard
    name, keys = stream
    put = _put_many(kinesis, name, keys, 600)
    shard = sorted(put)[1]
    sequences = [s for s, _ in put[shard]]
    middle = sequences[150]

    # WHEN / THEN AT_SEQUENCE_NUMBER starts with that record, AFTER_ with the next one
    at = _read_all(kinesis, name, shard, limit=100, ShardIteratorType="AT_SEQUENCE_NUMBER",
                   StartingSequenceNumber=middle)
    assert [r["SequenceNumber"] for r in at] == sequences[150:]
    after = _read_all(kinesis, name, shard, limit=100, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                      StartingSequenceNumber=middle)
    assert [r["SequenceNumber"] for r in after] == sequences[151:]

    # LATEST sees nothing already there, then only what comes after it
    latest = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    empty = kinesis.get_records(ShardIterator=latest, Limit=10)
    assert empty["Records"] == [] and empty["MillisBehindLatest"] == 0
    new = kinesis.put_record(StreamName=name, Data=b"after-latest", PartitionKey=keys[shard])
    assert int(new["SequenceNumber"]) == int(sequences[-1]) + 1
    page = kinesis.get_records(ShardIterator=empty["NextShardIterator"], Limit=10)
    assert [(r["SequenceNumber"], r["Data"]) for r in page["Records"]] == [(new["SequenceNumber"], b"after-latest")]


def test_limit_caps_a_page_and_the_next_iterator_continues_after_it(kinesis, stream):
    # GIVEN 50 records on each shard
    name, keys = stream
    put = _put_many(kinesis, name, keys, 100)
    shard = sorted(put)[0]
    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]

    # WHEN a page of 1, then a page larger than what is left
    first = kinesis.get_records(ShardIterator=iterator, Limit=1)
    rest = kinesis.get_records(ShardIterator=first["NextShardIterator"], Limit=10000)
    again = kinesis.get_records(ShardIterator=rest["NextShardIterator"], Limit=5)

    # THEN 1 record, then the other 49, then nothing; only the last page is fully caught up
    assert [r["SequenceNumber"] for r in first["Records"]] == [put[shard][0][0]]
    assert first["MillisBehindLatest"] >= 0
    assert [r["SequenceNumber"] for r in rest["Records"]] == [s for s, _ in put[shard][1:]]
    assert rest["MillisBehindLatest"] == 0
    assert again["Records"] == [] and again["MillisBehindLatest"] == 0


def test_shard_sequence_range_starts_at_the_first_record(kinesis, stream):
    name, keys = stream
    put = _put_many(kinesis, name, keys, 40)
    described = {s["ShardId"]: s for s in kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]}
    for shard, records in put.items():
        assert described[shard]["SequenceNumberRange"]["StartingSequenceNumber"] == records[0][0]
        assert "EndingSequenceNumber" not in described[shard]["SequenceNumberRange"]  # still open


def test_concurrent_puts_to_one_shard_get_distinct_sequence_numbers(emulator, kinesis, stream):
    # GIVEN 8 clients putting 60 records each to the same shard at the same time
    name, keys = stream
    shard, key = sorted(keys.items())[0]
    results: list[str] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        client = _client(emulator, "kinesis")
        try:
            for i in range(60):
                results.append(client.put_record(StreamName=name, Data=f"{n}-{i}".encode(), PartitionKey=key)["SequenceNumber"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # THEN no two puts share a sequence number and all 480 records are readable
    assert errors == []
    assert len(set(results)) == 480
    records = _read_all(kinesis, name, shard, limit=1000, ShardIteratorType="TRIM_HORIZON")
    assert [r["SequenceNumber"] for r in records] == sorted(results, key=int)
    assert len({r["Data"] for r in records}) == 480


def test_split_shard_renumbers_the_records_it_moves(kinesis, stream):
    # GIVEN records on a shard that is then split. moto empties the shard and puts its
    # records again through the stream; as its closed parent is still the first shard
    # covering their hash keys, they land back in it, numbered afresh from 1.
    name, keys = stream
    put = _put_many(kinesis, name, keys, 20)
    parent = sorted(put)[0]
    shard = next(s for s in kinesis.list_shards(StreamName=name)["Shards"] if s["ShardId"] == parent)
    low, high = int(shard["HashKeyRange"]["StartingHashKey"]), int(shard["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(StreamName=name, ShardToSplit=parent, NewStartingHashKey=str((low + high) // 2))

    # THEN the records read back in their order, numbered 1..n, and the closed shard's
    # sequence range ends at the last of them
    records = _read_all(kinesis, name, parent, limit=7, ShardIteratorType="TRIM_HORIZON")
    assert [r["Data"] for r in records] == [data for _, data in put[parent]]
    assert [int(r["SequenceNumber"]) for r in records] == list(range(1, len(records) + 1))
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=name)["Shards"]}
    assert shards[parent]["SequenceNumberRange"] == {"StartingSequenceNumber": "1",
                                                     "EndingSequenceNumber": str(len(records))}
    assert len([s for s in shards.values() if s.get("ParentShardId") == parent]) == 2


def test_create_stream_keeps_its_tags(kinesis):
    # the AWS provider tags a stream in CreateStream itself; moto dropped those tags
    name = unique("tagged")
    kinesis.create_stream(StreamName=name, ShardCount=1, Tags={"Project": "shopstream", "Owner": "data"})
    tags = kinesis.list_tags_for_stream(StreamName=name)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("Owner", "data"), ("Project", "shopstream")]
    untagged = unique("untagged")
    kinesis.create_stream(StreamName=untagged, ShardCount=1)
    assert kinesis.list_tags_for_stream(StreamName=untagged)["Tags"] == []


# ── event source mappings: moto delivers nothing, the local runtime does ────────


@pytest.fixture
def function(emulator):
    iam, lam = _client(emulator, "iam"), _client(emulator, "lambda")
    role = iam.create_role(
        RoleName=unique("role"),
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    name = unique("fn")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.lambda_handler",
                        Code={"ZipFile": code.getvalue()})
    return name


def _log_streams(logs, group: str) -> list[dict]:
    try:
        return logs.describe_log_streams(logGroupName=group)["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return []


def test_kinesis_mapping_is_kept_but_moto_does_not_invoke_the_function(emulator, kinesis, stream, function):
    # GIVEN a mapping from the stream to a function, with an on-failure queue
    name, keys = stream
    lam, sqs, logs = _client(emulator, "lambda"), _client(emulator, "sqs"), _client(emulator, "logs")
    queue = sqs.create_queue(QueueName=unique("failures"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stream_arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    mapping = lam.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function, StartingPosition="TRIM_HORIZON", BatchSize=50,
        FunctionResponseTypes=["ReportBatchItemFailures"], BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=5, DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )

    # WHEN records are put
    put = _put_many(kinesis, name, keys, 10)

    # THEN they are all on the stream, the mapping is listed as created, and moto has not
    # tried to run the function (its attempts leave a log stream per invocation)
    for shard, expected in put.items():
        records = _read_all(kinesis, name, shard, limit=100, ShardIteratorType="TRIM_HORIZON")
        assert [r["SequenceNumber"] for r in records] == [s for s, _ in expected]
    listed = lam.list_event_source_mappings(EventSourceArn=stream_arn)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [mapping["UUID"]]
    assert listed[0]["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}
    assert _log_streams(logs, f"/aws/lambda/{function}") == []
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []


def test_sqs_source_messages_stay_for_the_runtime(emulator, function):
    # GIVEN a queue that is the source of a mapping
    lam, sqs, logs = _client(emulator, "lambda"), _client(emulator, "sqs"), _client(emulator, "logs")
    queue = sqs.create_queue(QueueName=unique("source"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=function, BatchSize=10)

    # WHEN a message is sent
    sqs.send_message(QueueUrl=queue, MessageBody="hello")

    # THEN it has never been received before (moto would have received it for the function)
    messages = sqs.receive_message(QueueUrl=queue, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]
    assert messages[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert _log_streams(logs, f"/aws/lambda/{function}") == []


# ── DynamoDB queries ───────────────────────────────────────────────────────────

INDEX = "customer-invoices"


def _create_invoice_table(dynamodb) -> str:
    name = unique("invoices")
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "invoice_no", "AttributeType": "S"},
            {"AttributeName": "part", "AttributeType": "N"},
            {"AttributeName": "customer_id", "AttributeType": "S"},
            {"AttributeName": "invoice_sort", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "invoice_no", "KeyType": "HASH"}, {"AttributeName": "part", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": INDEX,
            "KeySchema": [{"AttributeName": "customer_id", "KeyType": "HASH"},
                          {"AttributeName": "invoice_sort", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["country", "total"]},
        }],
    )
    return name


def _invoice(no: int, part: int = 0, customer: str | None = None, day: int = 1) -> dict:
    item = {"invoice_no": {"S": f"{no:06d}"}, "part": {"N": str(part)}, "lines": {"B": b"\x00" * 8},
            "country": {"S": "United Kingdom"}, "total": {"N": f"{no}.50"}}
    if customer is not None and part == 0:
        item["customer_id"] = {"S": customer}
        item["invoice_sort"] = {"S": f"2010-12-{day:02d}T08:00:00#{no:06d}"}
    return item


@pytest.fixture(scope="module")
def invoices(emulator):
    """A table of 240 invoices: customers C0..C3, every fifth invoice without a customer,
    every seventh in three parts; written before any index query (the index is built
    from the table), and the tests below then change it (the index is kept current)."""
    dynamodb = _client(emulator, "dynamodb")
    name = _create_invoice_table(dynamodb)
    items = []
    for no in range(1, 241):
        customer = None if no % 5 == 0 else f"C{no % 4}"
        for part in range(3 if no % 7 == 0 else 1):
            items.append(_invoice(no, part, customer, day=1 + no % 9))
    for start in range(0, len(items), 25):
        dynamodb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]})
    return name


def _query_all(dynamodb, **kwargs) -> tuple[list[dict], int]:
    """Every item of a query, page by page; returns the items and the number of pages."""
    items, pages, start = [], 0, None
    while True:
        page = dynamodb.query(**kwargs, **({"ExclusiveStartKey": start} if start else {}))
        pages += 1
        items.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items, pages


def _scan_all(dynamodb, table: str) -> list[dict]:
    items, start = [], None
    while True:
        page = dynamodb.scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))
        items.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _expected_index(dynamodb, table: str, customer: str) -> list[str]:
    """invoice_sort of the customer's index entries, from a full scan (moto's own path)."""
    return sorted(i["invoice_sort"]["S"] for i in _scan_all(dynamodb, table)
                  if i.get("customer_id", {}).get("S") == customer and "invoice_sort" in i)


def test_table_query_returns_the_parts_of_one_invoice_in_order(dynamodb, invoices):
    for forward, expected in ((True, ["0", "1", "2"]), (False, ["2", "1", "0"])):
        result = dynamodb.query(TableName=invoices, KeyConditionExpression="invoice_no = :n",
                                ExpressionAttributeValues={":n": {"S": "000014"}}, ScanIndexForward=forward)
        assert [i["part"]["N"] for i in result["Items"]] == expected
        assert {i["invoice_no"]["S"] for i in result["Items"]} == {"000014"}
    missing = dynamodb.query(TableName=invoices, KeyConditionExpression="invoice_no = :n",
                             ExpressionAttributeValues={":n": {"S": "999999"}})
    assert missing["Items"] == [] and missing["Count"] == 0


def test_table_query_pages_and_range_conditions(dynamodb, invoices):
    args = dict(TableName=invoices, ExpressionAttributeValues={":n": {"S": "000028"}})
    for forward in (True, False):
        items, pages = _query_all(dynamodb, KeyConditionExpression="invoice_no = :n", Limit=1,
                                  ScanIndexForward=forward, **args)
        assert [i["part"]["N"] for i in items] == (["0", "1", "2"] if forward else ["2", "1", "0"])
        assert pages >= 3
    between = dynamodb.query(TableName=invoices, KeyConditionExpression="invoice_no = :n AND part BETWEEN :a AND :b",
                             ExpressionAttributeValues={":n": {"S": "000028"}, ":a": {"N": "1"}, ":b": {"N": "2"}})
    assert [i["part"]["N"] for i in between["Items"]] == ["1", "2"]
    greater = dynamodb.query(TableName=invoices, KeyConditionExpression="invoice_no = :n AND part > :a",
                             ExpressionAttributeValues={":n": {"S": "000028"}, ":a": {"N": "0"}},
                             ScanIndexForward=False)
    assert [i["part"]["N"] for i in greater["Items"]] == ["2", "1"]


def test_index_query_returns_a_customers_invoices_in_both_orders(dynamodb, invoices):
    for customer in ("C0", "C1", "C2", "C3"):
        expected = _expected_index(dynamodb, invoices, customer)
        assert len(expected) == 48  # 60 invoices per customer id, 12 of them without one
        for forward in (True, False):
            result = dynamodb.query(TableName=invoices, IndexName=INDEX, KeyConditionExpression="customer_id = :c",
                                    ExpressionAttributeValues={":c": {"S": customer}}, ScanIndexForward=forward)
            got = [i["invoice_sort"]["S"] for i in result["Items"]]
            assert got == (expected if forward else expected[::-1])


def test_index_query_pages_without_duplicates_or_gaps(dynamodb, invoices):
    expected = _expected_index(dynamodb, invoices, "C1")
    for forward in (True, False):
        items, pages = _query_all(dynamodb, TableName=invoices, IndexName=INDEX, Limit=5, ScanIndexForward=forward,
                                  KeyConditionExpression="customer_id = :c",
                                  ExpressionAttributeValues={":c": {"S": "C1"}})
        assert [i["invoice_sort"]["S"] for i in items] == (expected if forward else expected[::-1])
        assert pages == len(expected) // 5 + 1


def test_index_query_range_conditions(dynamodb, invoices):
    expected = _expected_index(dynamodb, invoices, "C2")
    low, high = "2010-12-03", "2010-12-06~"
    result = dynamodb.query(TableName=invoices, IndexName=INDEX,
                            KeyConditionExpression="customer_id = :c AND invoice_sort BETWEEN :a AND :b",
                            ExpressionAttributeValues={":c": {"S": "C2"}, ":a": {"S": low}, ":b": {"S": high}})
    assert [i["invoice_sort"]["S"] for i in result["Items"]] == [s for s in expected if low <= s <= high]
    assert 0 < result["Count"] < len(expected)
    day = dynamodb.query(TableName=invoices, IndexName=INDEX, ScanIndexForward=False,
                         KeyConditionExpression="customer_id = :c AND begins_with(invoice_sort, :d)",
                         ExpressionAttributeValues={":c": {"S": "C2"}, ":d": {"S": "2010-12-04"}})
    assert [i["invoice_sort"]["S"] for i in day["Items"]] == [s for s in expected if s.startswith("2010-12-04")][::-1]


def test_index_is_sparse_and_projects_only_its_attributes(dynamodb, invoices):
    # items without customer_id (every fifth invoice, and every part > 0) are in no index query
    indexed = set()
    for customer in ("C0", "C1", "C2", "C3"):
        items, _ = _query_all(dynamodb, TableName=invoices, IndexName=INDEX, KeyConditionExpression="customer_id = :c",
                              ExpressionAttributeValues={":c": {"S": customer}})
        for item in items:
            assert set(item) == {"invoice_no", "part", "customer_id", "invoice_sort", "country", "total"}
            assert item["part"] == {"N": "0"}
            indexed.add(item["invoice_no"]["S"])
    assert indexed == {f"{no:06d}" for no in range(1, 241) if no % 5}


def test_updated_item_moves_between_customers_and_leaves_with_its_key(dynamodb, invoices):
    key = {"invoice_no": {"S": "000009"}, "part": {"N": "0"}}
    before = _expected_index(dynamodb, invoices, "C1")
    assert any(s.endswith("#000009") for s in before)

    # WHEN UpdateItem changes the customer (and a projected attribute)
    dynamodb.update_item(TableName=invoices, Key=key, UpdateExpression="SET customer_id = :c, #t = :t",
                         ExpressionAttributeNames={"#t": "total"}, ExpressionAttributeValues={":c": {"S": "C9"}, ":t": {"N": "1.25"}})

    # THEN the old customer's index no longer has it, the new one has it as updated
    def index_items(customer: str) -> list[dict]:
        return _query_all(dynamodb, TableName=invoices, IndexName=INDEX, KeyConditionExpression="customer_id = :c",
                          ExpressionAttributeValues={":c": {"S": customer}})[0]

    assert [i["invoice_no"]["S"] for i in index_items("C1")] == [s.split("#")[1] for s in before if not s.endswith("#000009")]
    moved = index_items("C9")
    assert [(i["invoice_no"]["S"], Decimal(i["total"]["N"])) for i in moved] == [("000009", Decimal("1.25"))]

    # WHEN the key attribute is removed, THEN the item is in no customer's index
    dynamodb.update_item(TableName=invoices, Key=key, UpdateExpression="REMOVE customer_id")
    assert index_items("C9") == []
    assert all(i["invoice_no"]["S"] != "000009" for i in index_items("C1"))

    # WHEN an update that fails its condition, THEN nothing moves
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.update_item(TableName=invoices, Key={"invoice_no": {"S": "000013"}, "part": {"N": "0"}},
                             UpdateExpression="SET customer_id = :c", ConditionExpression="attribute_not_exists(invoice_no)",
                             ExpressionAttributeValues={":c": {"S": "C9"}})
    assert index_items("C9") == []
    assert any(i["invoice_no"]["S"] == "000013" for i in index_items("C1"))


def test_overwritten_and_deleted_items_leave_the_queries(dynamodb, invoices):
    def customers_of(no: str) -> list[str]:
        found = []
        for customer in ("C0", "C1", "C2", "C3", "C7"):
            items, _ = _query_all(dynamodb, TableName=invoices, IndexName=INDEX, KeyConditionExpression="customer_id = :c",
                                  ExpressionAttributeValues={":c": {"S": customer}})
            found += [customer for i in items if i["invoice_no"]["S"] == no]
        return found

    # PutItem over an existing item with another customer
    assert customers_of("000002") == ["C2"]
    dynamodb.put_item(TableName=invoices, Item=_invoice(2, 0, "C7"))
    assert customers_of("000002") == ["C7"]

    # DeleteItem removes it from the index and the table
    dynamodb.delete_item(TableName=invoices, Key={"invoice_no": {"S": "000002"}, "part": {"N": "0"}})
    assert customers_of("000002") == []
    assert dynamodb.query(TableName=invoices, KeyConditionExpression="invoice_no = :n",
                          ExpressionAttributeValues={":n": {"S": "000002"}})["Items"] == []

    # BatchWriteItem deletes the parts of a multi-part invoice
    dynamodb.batch_write_item(RequestItems={invoices: [
        {"DeleteRequest": {"Key": {"invoice_no": {"S": "000021"}, "part": {"N": str(p)}}}} for p in range(3)]})
    assert customers_of("000021") == []
    assert dynamodb.query(TableName=invoices, KeyConditionExpression="invoice_no = :n",
                          ExpressionAttributeValues={":n": {"S": "000021"}})["Count"] == 0

    # a re-put item comes back
    dynamodb.put_item(TableName=invoices, Item=_invoice(2, 0, "C2", day=3))
    assert customers_of("000002") == ["C2"]


def test_transactions_keep_the_index_in_step(dynamodb, invoices):
    def index_numbers(customer: str) -> set[str]:
        items, _ = _query_all(dynamodb, TableName=invoices, IndexName=INDEX, KeyConditionExpression="customer_id = :c",
                              ExpressionAttributeValues={":c": {"S": customer}})
        return {i["invoice_no"]["S"] for i in items}

    # a transaction that fails is rolled back (moto restores a copy of the table)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": invoices, "Item": _invoice(1001, 0, "C8")}},
            {"Update": {"TableName": invoices, "Key": {"invoice_no": {"S": "000003"}, "part": {"N": "0"}},
                        "UpdateExpression": "SET customer_id = :c", "ExpressionAttributeValues": {":c": {"S": "C8"}},
                        "ConditionExpression": "attribute_not_exists(invoice_no)"}},
        ])
    assert index_numbers("C8") == set()
    assert "000003" in index_numbers("C3")

    # a transaction that succeeds is seen by the index
    dynamodb.transact_write_items(TransactItems=[
        {"Put": {"TableName": invoices, "Item": _invoice(1001, 0, "C8")}},
        {"Update": {"TableName": invoices, "Key": {"invoice_no": {"S": "000003"}, "part": {"N": "0"}},
                    "UpdateExpression": "SET customer_id = :c", "ExpressionAttributeValues": {":c": {"S": "C8"}}}},
    ])
    assert index_numbers("C8") == {"001001", "000003"}
    assert "000003" not in index_numbers("C3")
    # and writes after the rollback still reach the index
    dynamodb.put_item(TableName=invoices, Item=_invoice(1002, 0, "C8"))
    assert index_numbers("C8") == {"001001", "000003", "001002"}


def test_index_queries_agree_with_a_scan_after_all_changes(dynamodb, invoices):
    # runs last in this module: every change above must be reflected
    scanned = _scan_all(dynamodb, invoices)
    customers = sorted({i["customer_id"]["S"] for i in scanned if "customer_id" in i})
    for customer in customers:
        items, _ = _query_all(dynamodb, TableName=invoices, IndexName=INDEX, Limit=7,
                              KeyConditionExpression="customer_id = :c", ExpressionAttributeValues={":c": {"S": customer}})
        assert [i["invoice_sort"]["S"] for i in items] == _expected_index(dynamodb, invoices, customer)


def test_a_table_without_range_key_and_an_index_without_one(dynamodb):
    name = unique("plain")
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                              {"AttributeName": "group", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-group", "KeySchema": [{"AttributeName": "group", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
    )
    for i in range(30):
        item = {"id": {"S": f"id-{i:02d}"}}
        if i % 3:
            item["group"] = {"N": str(i % 2)}
        dynamodb.put_item(TableName=name, Item=item)
    one = dynamodb.query(TableName=name, KeyConditionExpression="id = :i", ExpressionAttributeValues={":i": {"S": "id-04"}})
    assert one["Items"] == [{"id": {"S": "id-04"}, "group": {"N": "0"}}]
    for group in (0, 1):
        expected = [f"id-{i:02d}" for i in range(30) if i % 3 and i % 2 == group]
        for forward in (True, False):
            items, _ = _query_all(dynamodb, TableName=name, IndexName="by-group", Limit=4, ScanIndexForward=forward,
                                  KeyConditionExpression="#g = :g", ExpressionAttributeNames={"#g": "group"},
                                  ExpressionAttributeValues={":g": {"N": str(group)}})
            assert [i["id"]["S"] for i in items] == (expected if forward else expected[::-1])


# ── apply() refuses a moto it does not fit ─────────────────────────────────────
# These run in the test process without patching it: apply() checks every patch before
# it changes anything, and each case below makes one check fail.


def test_patches_target_the_pinned_moto():
    from devstack.emulator import patches

    pinned = re.search(r"^moto\[server\]==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and pinned.group(1) == patches.MOTO_VERSION


def test_apply_refuses_when_a_patched_symbol_is_missing(monkeypatch):
    from moto import backends
    from moto.kinesis.models import Shard

    from devstack.emulator import patches

    original_lookup = backends.list_of_moto_modules
    monkeypatch.delattr(Shard, "get_max_sequence_number")
    with pytest.raises(patches.PatchError, match=r"moto\.kinesis\.models\.Shard\.get_max_sequence_number no longer exists"):
        patches.apply()
    assert backends.list_of_moto_modules is original_lookup  # nothing was patched


def test_apply_refuses_a_changed_signature_or_body(monkeypatch):
    from moto.dynamodb.models.table import Table
    from moto.kinesis.models import Shard

    from devstack.emulator import patches

    monkeypatch.setattr(Shard, "get_records", lambda self, iterator, limit, extra=None: None)
    with pytest.raises(patches.PatchError, match=r"Shard\.get_records takes"):
        patches.apply()
    monkeypatch.undo()

    def query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
              projection_expressions, index_name=None, consistent_read=False, filter_expression=None,
              hash_key_conditions=None, range_key_conditions=None, **filter_kwargs):
        return self.items_by_key(hash_key)

    monkeypatch.setattr(Table, "query", query)
    with pytest.raises(patches.PatchError, match=r"Table\.query no longer contains"):
        patches.apply()


def test_apply_refuses_another_moto_version(monkeypatch):
    import moto

    from devstack.emulator import patches

    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.raises(patches.PatchError, match=r"moto 9\.9\.9 is installed .* target moto 5\.2\.5"):
        patches.apply()
