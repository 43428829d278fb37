"""Who may read and write what, in the API functions (pipeline/auth.py, query_api, ingest)."""
from __future__ import annotations

import json

import pytest

from ingest.core import IngestService
from ingest.ownership import InMemoryOwnership
from pipeline.auth import Principal, principal_from_event
from pipeline.errors import Forbidden, Unauthenticated
from query_api.core import QueryService
from tests.factories import event as make_event
from tests.factories import http_event
from tests.unit.test_query_core import FakeReader

CUSTOMER = {"sub": "c", "customer_id": "17850", "scope": "shopstream/invoices.read.own"}
STAFF = {"sub": "staff", "scope": "shopstream/invoices.read"}


def caller(claims) -> Principal:
    return principal_from_event(http_event("GET", "/x", claims=claims), {})


class OneInvoice(FakeReader):
    def __init__(self, customer):
        super().__init__()
        self.customer = customer

    def get_invoice(self, invoice_no):
        customer = self.customer

        class Stored:
            def to_api(self):
                return {"invoice_no": invoice_no, "customer_id": customer}
        return Stored()


def test_without_verified_claims_the_caller_is_unauthenticated():
    with pytest.raises(Unauthenticated):
        principal_from_event(http_event("GET", "/x", claims=None), {})
    assert principal_from_event(http_event("GET", "/x", claims=None), {"SHOPSTREAM_API_AUTH": "none"}).anonymous


def test_a_customer_reads_only_their_own_invoice():
    assert QueryService(OneInvoice("17850")).invoice("536365", caller(CUSTOMER))["customer_id"] == "17850"
    with pytest.raises(Forbidden):
        QueryService(OneInvoice("13047")).invoice("536366", caller(CUSTOMER))
    with pytest.raises(Forbidden):  # an invoice without a customer is no customer's
        QueryService(OneInvoice(None)).invoice("536367", caller(CUSTOMER))
    assert QueryService(OneInvoice("13047")).invoice("536366", caller(STAFF))["customer_id"] == "13047"


def test_a_customer_reads_only_their_own_history_in_any_spelling():
    reader = FakeReader(exists=True)
    assert QueryService(reader).customer_invoices("017850.0", {}, caller(CUSTOMER))["customer_id"] == "17850"
    with pytest.raises(Forbidden):
        QueryService(FakeReader()).customer_invoices("13047", {}, caller(CUSTOMER))
    with pytest.raises(Forbidden):  # a customer token without the claim reads nothing
        QueryService(FakeReader()).customer_invoices("17850", {}, caller({"sub": "c", "scope": CUSTOMER["scope"]}))


def test_the_query_handler_answers_403_with_a_problem(monkeypatch):
    from query_api import handler

    monkeypatch.setattr(handler, "service", lambda: QueryService(OneInvoice("13047")))
    from tests.factories import FakeLambdaContext

    event = http_event("GET", "/invoices/536366", route_key="GET /invoices/{invoice_no}",
                       path_parameters={"invoice_no": "536366"}, claims=CUSTOMER)
    answer = handler.lambda_handler(event, FakeLambdaContext())
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 403 and body["problems"][0]["field"] == "invoice_no"
    answer = handler.lambda_handler({**event, "requestContext": {**event["requestContext"], "authorizer": None}},
                                    FakeLambdaContext())
    assert (answer["statusCode"], json.loads(answer["body"])) == (401, {"message": "Unauthorized"})


class Recorder:
    def __init__(self):
        self.sent = []

    def send(self, events):
        self.sent.extend(events)


def body(*events) -> str:
    return "[" + ",".join(e.to_json().decode() for e in events) + "]"


def test_a_producer_cannot_overwrite_another_producers_invoice():
    owners, stream = InMemoryOwnership(), Recorder()
    service = IngestService(stream, max_body_bytes=10**6, ownership=owners)
    mine, theirs = make_event("900001"), make_event("900002")
    assert service.ingest(body(mine), "shop-a").status == 202
    assert service.ingest(body(theirs), "shop-b").status == 202
    # shop-a may send its own invoice again (a correction), not shop-b's
    again = service.ingest(body(mine, theirs), "shop-a")
    assert again.status == 207 and again.body["accepted"]["indexes"] == [0]
    assert again.body["rejected"][0]["index"] == 1
    assert again.body["rejected"][0]["problems"][0]["field"] == "invoice_no"
    only_theirs = service.ingest(body(theirs), "shop-a")
    assert only_theirs.status == 403 and only_theirs.body["rejected_total"] == 1
    assert [e.invoice_no for e in stream.sent] == ["900001", "900002", "900001"]
    assert owners.owners == {"900001": "shop-a", "900002": "shop-b"}


def test_raw_rows_of_another_producers_invoice_are_all_rejected():
    owners, stream = InMemoryOwnership(), Recorder()
    service = IngestService(stream, max_body_bytes=10**6, ownership=owners)
    owners.owners["536365"] = "shop-b"
    rows = [{"InvoiceNo": "536365", "StockCode": s, "Description": "X", "Quantity": 1, "InvoiceDate": "12/1/2010 8:26",
             "UnitPrice": "2.55", "CustomerID": "17850", "Country": "United Kingdom"} for s in ("A", "B")]
    outcome = service.ingest(json.dumps(rows), "shop-a")
    assert outcome.status == 403 and [r["index"] for r in outcome.body["rejected"]] == [0, 1] and stream.sent == []


def test_the_ingest_handler_needs_the_producer_scope(monkeypatch):
    from ingest import handler
    from tests.factories import FakeLambdaContext

    monkeypatch.setattr(handler, "service", lambda: IngestService(Recorder(), max_body_bytes=10**6))
    answer = handler.lambda_handler(http_event("POST", "/events", body=body(make_event()), claims=STAFF),
                                    FakeLambdaContext())
    assert answer["statusCode"] == 403 and json.loads(answer["body"])["problems"][0]["field"] == "scope"
    answer = handler.lambda_handler(http_event("POST", "/events", body=body(make_event()), claims=None),
                                    FakeLambdaContext())
    assert answer["statusCode"] == 401


def test_the_owners_table_grants_an_invoice_to_its_first_producer_only():
    import boto3
    from moto import mock_aws

    from ingest.ownership import DynamoOwnership

    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(TableName="owners", BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "invoice_no", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "invoice_no", "AttributeType": "S"}])
        owners = DynamoOwnership(client, "owners")
        assert owners.claim("shop-a", ["1", "2", "3"]) == set()
        assert owners.claim("shop-a", ["1", "2"]) == set()  # its own again
        assert owners.claim("shop-b", ["2", "3", "4"]) == {"2", "3"}
        stored = {i["invoice_no"]["S"]: i["producer"]["S"] for i in client.scan(TableName="owners")["Items"]}
        assert stored == {"1": "shop-a", "2": "shop-a", "3": "shop-a", "4": "shop-b"}
