"""shopstream's real handlers through the runtime: POST /events on the gateway → ingest
worker → Kinesis (KPL aggregates) → the mapping → invoice-writer worker → DynamoDB →
GET /invoices/{no} on the gateway. Resources are created as infra/terraform creates
them (same handlers, environment keys and mapping settings)."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import requests

from devstack.auth import LocalIssuer
from devstack.runtime import client
from tests.conftest import SAMPLE
from tests.fixtures.aws import REGION, unique

pytestmark = pytest.mark.emulator


@pytest.fixture
def invoices_table(emulator):
    from dynamo_models.invoice import InvoiceItem, bind_models

    meta = InvoiceItem.Meta
    saved = (getattr(meta, "table_name", None), getattr(meta, "region", None), getattr(meta, "host", None))
    name = unique("invoices")
    bind_models(name, REGION, emulator.endpoint_url)
    try:
        InvoiceItem.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    finally:
        bind_models(saved[0], saved[1], saved[2])
    return name


def test_the_sample_flows_through_the_real_handlers(aws, start_runtime, invoices_table, tmp_path):
    # GIVEN the invoice path created as Terraform creates it
    stream = aws.stream(shards=2)
    quarantine_url, _ = aws.queue()
    failures_url, failures_arn = aws.queue()
    powertools = {"POWERTOOLS_SERVICE_NAME": "shopstream", "POWERTOOLS_METRICS_NAMESPACE": "shopstream-test",
                  "POWERTOOLS_LOG_LEVEL": "WARNING"}
    ingest = aws.function("ingest.handler.lambda_handler", timeout=30, memory=512, env={
        "SHOPSTREAM_STREAM_NAME": stream.split("/", 1)[1], "SHOPSTREAM_MAX_BODY_BYTES": "5242880", **powertools})
    writer = aws.function("consumers.invoices.handler.lambda_handler", timeout=60, memory=512, env={
        "SHOPSTREAM_INVOICES_TABLE": invoices_table, "SHOPSTREAM_QUARANTINE_QUEUE_URL": quarantine_url, **powertools})
    query = aws.function("query_api.handler.lambda_handler", timeout=10, env={
        "SHOPSTREAM_INVOICES_TABLE": invoices_table, **powertools})
    aws.mapping(writer["FunctionArn"], stream, StartingPosition="TRIM_HORIZON", BatchSize=25,
                MaximumBatchingWindowInSeconds=1, ParallelizationFactor=1,
                FunctionResponseTypes=["ReportBatchItemFailures"], BisectBatchOnFunctionError=True,
                MaximumRetryAttempts=5, DestinationConfig={"OnFailure": {"Destination": failures_arn}})
    issuer = LocalIssuer.ensure(tmp_path / "state", "http://issuer.shopstream.test")  # the runtime's state dir
    read = ["shopstream/invoices.read", "shopstream/invoices.read.own"]
    aws.http_api({"POST /events": ingest["FunctionArn"], "GET /invoices/{invoice_no}": query["FunctionArn"],
                  "GET /customers/{customer_id}/invoices": query["FunctionArn"]}, invoke_arn_form=True,
                 issuer=issuer.issuer, scopes={"POST /events": ["shopstream/events.write"],
                                               "GET /invoices/{invoice_no}": read,
                                               "GET /customers/{customer_id}/invoices": read})
    runtime = start_runtime()
    producer = {"Authorization": f"Bearer {issuer.token(producer='replay')}"}
    staff = {"Authorization": f"Bearer {issuer.token(staff=True)}"}

    from pipeline.kaggle import read_invoices

    events = list(read_invoices(str(SAMPLE)))
    assert events
    # WHEN the sample is posted through the gateway and the consumer drains
    with requests.Session() as http:
        for start in range(0, len(events), 100):
            body = "[" + ",".join(e.to_json().decode() for e in events[start:start + 100]) + "]"
            answer = http.post(f"{runtime.gateway_url}/events", data=body,
                               headers={"content-type": "application/json", **producer}, timeout=60)
            assert answer.status_code == 202, answer.text
        written = time.time()
        final = client.wait_until_drained(runtime.admin_url, since=written, timeout=120)
        # THEN every invoice reads back through the query API with its exact total
        for event in events[::40]:
            answer = http.get(f"{runtime.gateway_url}/invoices/{event.invoice_no}", timeout=30, headers=staff)
            assert answer.status_code == 200, answer.text
            assert Decimal(answer.json()["total"]) == event.total
        customer = next(e.customer_id for e in events if e.customer_id)
        history = http.get(f"{runtime.gateway_url}/customers/{customer}/invoices", timeout=30, headers=staff)
        assert history.status_code == 200 and history.json()["invoices"]
        missing = http.get(f"{runtime.gateway_url}/invoices/does-not-exist", timeout=30, headers=staff)
        assert missing.status_code == 404
        # AND the authorizer the emulator holds is the one the gateway applies
        assert http.get(f"{runtime.gateway_url}/invoices/{events[0].invoice_no}", timeout=30).status_code == 401
        own = {"Authorization": f"Bearer {issuer.token(customer=customer)}"}
        assert http.get(f"{runtime.gateway_url}/customers/{customer}/invoices", timeout=30, headers=own).status_code == 200
        other = next(e for e in events if e.customer_id and e.customer_id != customer)
        assert http.get(f"{runtime.gateway_url}/invoices/{other.invoice_no}", timeout=30, headers=own).status_code == 403
    [mapping] = final["consumers"]
    assert sum(s["records_processed"] for s in mapping["shards"]) > 0
    assert all(s["batch_failures"] == 0 and s["records_sent_to_destination"] == 0 for s in mapping["shards"])
    for url in (quarantine_url, failures_url):
        attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
    functions = {f["handler"]: f for f in final["functions"]}
    assert functions["consumers.invoices.handler.lambda_handler"]["errors"] == 0
    assert json.loads(json.dumps(final))  # the status is plain JSON
