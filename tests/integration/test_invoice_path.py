"""The invoice path through the real handlers against the emulator: POST /events →
Kinesis → invoice writer → DynamoDB → query API. The Lambda event source mapping is
played by the test itself (read the shards, build the Lambda Kinesis event)."""
from __future__ import annotations

import base64
import json
import os
import uuid
from decimal import Decimal

import boto3
import pytest

from tests.conftest import SAMPLE
from tests.factories import FakeLambdaContext, http_event

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def stack(emulator):
    """A stream, the invoices table and a quarantine queue, and the handlers' environment."""
    suffix = uuid.uuid4().hex[:8]
    names = {"stream": f"events-{suffix}", "table": f"invoices-{suffix}", "queue": f"quarantine-{suffix}"}
    session = boto3.session.Session(region_name="eu-west-1")
    kinesis = session.client("kinesis", endpoint_url=emulator.endpoint_url)
    sqs = session.client("sqs", endpoint_url=emulator.endpoint_url)
    kinesis.create_stream(StreamName=names["stream"], ShardCount=2)
    queue_url = sqs.create_queue(QueueName=names["queue"])["QueueUrl"]

    from dynamo_models.invoice import InvoiceItem, bind_models

    bound = (InvoiceItem.Meta.table_name, InvoiceItem.Meta.region, getattr(InvoiceItem.Meta, "host", None))
    bind_models(names["table"], "eu-west-1", emulator.endpoint_url)
    InvoiceItem.create_table(billing_mode="PAY_PER_REQUEST", wait=True)

    env = {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_REGION": "eu-west-1",
        "SHOPSTREAM_STREAM_NAME": names["stream"],
        "SHOPSTREAM_INVOICES_TABLE": names["table"],
        "SHOPSTREAM_QUARANTINE_QUEUE_URL": queue_url,
        "POWERTOOLS_METRICS_NAMESPACE": "shopstream-test",
        "POWERTOOLS_SERVICE_NAME": "test",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import importlib

    from consumers.invoices import handler as writer_handler
    from ingest import handler as ingest_handler
    from query_api import handler as query_handler

    # As on Lambda, the environment exists before the handler modules are loaded (their
    # Logger/Metrics read it at import): load them afresh if another test imported them.
    writer_handler, ingest_handler, query_handler = (
        importlib.reload(m) for m in (writer_handler, ingest_handler, query_handler))
    yield {"kinesis": kinesis, "sqs": sqs, "queue_url": queue_url, **names,
           "ingest": ingest_handler, "writer": writer_handler, "query": query_handler, "model": InvoiceItem}
    bind_models(*bound)  # the model is module state: leave it as it was found
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class StreamReader:
    """Plays the event source mapping: new records of every shard since the last call."""

    def __init__(self, kinesis, stream):
        self.kinesis, self.stream = kinesis, stream
        self.iterators = {}
        description = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
        self.arn = description["StreamARN"]
        for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
            self.iterators[shard["ShardId"]] = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]

    def batches(self, size=50):
        for shard_id in self.iterators:
            response = self.kinesis.get_records(ShardIterator=self.iterators[shard_id], Limit=size)
            self.iterators[shard_id] = response["NextShardIterator"]
            if response["Records"]:
                yield [self._lambda_record(shard_id, r) for r in response["Records"]]

    def _lambda_record(self, shard_id, r):
        return {
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"], "sequenceNumber": r["SequenceNumber"],
                        "data": base64.b64encode(r["Data"]).decode(),
                        "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp()},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{shard_id}:{r['SequenceNumber']}",
            "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/test",
            "awsRegion": "eu-west-1", "eventSourceARN": self.arn,
        }


def drain(stack, reader) -> list[dict]:
    responses = []
    while True:
        batches = list(reader.batches())
        if not batches:
            return responses
        for batch in batches:
            responses.append(stack["writer"].lambda_handler({"Records": batch}, FakeLambdaContext()))


def post(stack, body) -> tuple[int, dict]:
    response = stack["ingest"].lambda_handler(http_event("POST", "/events", body=body), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def get(stack, path, route, params, query=None) -> tuple[int, dict]:
    response = stack["query"].lambda_handler(
        http_event("GET", path, route_key=f"GET {route}", path_parameters=params, query=query), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def table_snapshot(stack) -> list[dict]:
    return sorted((item.serialize() for item in stack["model"].scan()), key=lambda i: (i["invoice_no"]["S"], i["part"]["N"]))


def sample_events():
    from pipeline.kaggle import read_invoices

    return list(read_invoices(str(SAMPLE)))


def test_sample_through_the_handlers_then_replayed_changes_nothing(stack):
    events = sample_events()
    reader = StreamReader(stack["kinesis"], stack["stream"])
    # WHEN the sample is posted in batches and the consumer drains the stream
    for start in range(0, len(events), 100):
        status, body = post(stack, "[" + ",".join(e.to_json().decode() for e in events[start:start + 100]) + "]")
        assert status == 202, body
    responses = drain(stack, reader)
    # THEN no record failed and every invoice is stored with its exact total
    assert responses and all(r == {"batchItemFailures": []} for r in responses)
    snapshot = table_snapshot(stack)
    assert len(snapshot) == len(events) == 418
    for event in events[:: 25]:
        status, invoice = get(stack, f"/invoices/{event.invoice_no}", "/invoices/{invoice_no}", {"invoice_no": event.invoice_no})
        assert status == 200
        assert Decimal(invoice["total"]) == event.total
        assert sum(Decimal(line["amount"]) for line in invoice["lines"]) == event.total
        assert len(invoice["lines"]) == len(event.lines)
    # WHEN the same data is posted again and consumed again
    for start in range(0, len(events), 100):
        post(stack, "[" + ",".join(e.to_json().decode() for e in events[start:start + 100]) + "]")
    drain(stack, reader)
    # THEN the table is byte-for-byte what it was
    assert table_snapshot(stack) == snapshot


def test_customer_history_newest_first_paginated_and_ranged(stack):
    events = [e for e in sample_events() if e.customer_id == "17850"]
    assert len(events) > 5
    expected = sorted(events, key=lambda e: (e.invoice_date, e.invoice_no), reverse=True)
    route, params = "/customers/{customer_id}/invoices", {"customer_id": "17850"}
    seen, cursor = [], None
    while True:
        status, page = get(stack, "/customers/17850/invoices", route, params, {"limit": "4", **({"cursor": cursor} if cursor else {})})
        assert status == 200, page
        seen += [i["invoice_no"] for i in page["invoices"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [e.invoice_no for e in expected]
    day = expected[0].invoice_date[:10]
    status, page = get(stack, "/customers/17850/invoices", route, params, {"from": day, "to": day, "limit": "100"})
    assert [i["invoice_no"] for i in page["invoices"]] == [e.invoice_no for e in expected if e.invoice_date.startswith(day)]


def test_http_errors_name_the_problem(stack):
    status, body = get(stack, "/invoices/999999", "/invoices/{invoice_no}", {"invoice_no": "999999"})
    assert (status, body["message"]) == (404, "invoice 999999 not found")
    status, body = get(stack, "/customers/1/invoices", "/customers/{customer_id}/invoices", {"customer_id": "1"})
    assert status == 404
    status, body = get(stack, "/customers/17850/invoices", "/customers/{customer_id}/invoices", {"customer_id": "17850"},
                       {"cursor": "garbage"})
    assert status == 400 and body["problems"][0]["field"] == "cursor"
    # a well-formed cursor with a tampered key: DynamoDB would refuse it, which read as "retry" (503)
    status, page = get(stack, "/customers/17850/invoices", "/customers/{customer_id}/invoices", {"customer_id": "17850"}, {"limit": "1"})
    key = json.loads(base64.urlsafe_b64decode(page["next_cursor"] + "=" * (-len(page["next_cursor"]) % 4)))
    tampered = base64.urlsafe_b64encode(json.dumps({**key, "part": {"S": "zero"}}).encode()).decode()
    status, body = get(stack, "/customers/17850/invoices", "/customers/{customer_id}/invoices", {"customer_id": "17850"},
                       {"cursor": tampered})
    assert status == 400 and body["problems"][0]["field"] == "cursor"
    status, body = post(stack, '{"schema_version": 1, "invoice_no": "1"')
    assert status == 400 and "not valid JSON" in body["problems"][0]["reason"]
    status, body = post(stack, "[" + " " * (5 * 1024 * 1024) + "]")
    assert status == 413
    status, body = get(stack, "/openapi.json", "/openapi.json", None)
    assert status == 200 and set(body["paths"]) >= {"/events", "/invoices/{invoice_no}"}


def test_poison_on_the_stream_is_quarantined_and_does_not_block(stack):
    reader = StreamReader(stack["kinesis"], stack["stream"])
    drain(stack, reader)
    stack["kinesis"].put_record(StreamName=stack["stream"], PartitionKey="x", Data=b'{"schema_version": 1, "invoice_no": "X1"}')
    responses = drain(stack, reader)
    assert responses == [{"batchItemFailures": []}]
    messages = stack["sqs"].receive_message(QueueUrl=stack["queue_url"], MaxNumberOfMessages=10)["Messages"]
    problems = json.loads(messages[0]["Body"])["problems"]
    assert {"invoice_date", "country", "lines"} <= {p["field"] for p in problems}
