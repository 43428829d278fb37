"""The dynamodb-item-size and dynamodb-serialize patches change nothing a client sees:
a patched and an unpatched emulator answer the same requests with the same JSON."""
from __future__ import annotations

import base64
import json

import pytest
import requests

from devstack.emulator import Emulator, free_port

pytestmark = pytest.mark.emulator

TABLE = "equivalence"
ITEMS = [
    {
        "pk": {"S": "a"}, "sk": {"N": "1"},
        "s": {"S": "£ and \"quotes\""}, "n": {"N": "-11062.060"}, "b": {"B": base64.b64encode(b"\x00\xffbinary").decode()},
        "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [base64.b64encode(b"\x01").decode()]},
        "bool": {"BOOL": False}, "null": {"NULL": True},
        "m": {"M": {"inner": {"L": [{"S": "deep"}, {"N": "3"}, {"B": base64.b64encode(b"\x02").decode()}, {"M": {}}]}}},
        "l": {"L": []},
    },
    {"pk": {"S": "a"}, "sk": {"N": "2"}, "s": {"S": ""}, "gsi": {"S": "g1"}},
    {"pk": {"S": "b"}, "sk": {"N": "1"}, "gsi": {"S": "g1"}, "m": {"M": {"n": {"NULL": True}}}},
]


def call(endpoint: str, action: str, body: dict) -> tuple[int, dict]:
    response = requests.post(endpoint, data=json.dumps(body), timeout=10, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{action}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x",
    })
    return response.status_code, response.json()


@pytest.fixture(scope="module")
def pair():
    emulators = [Emulator.start(free_port()), Emulator.start(free_port(), patched=False)]
    for emulator in emulators:
        status, body = call(emulator.endpoint_url, "CreateTable", {
            "TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in (("pk", "S"), ("sk", "N"), ("gsi", "S"))],
            "GlobalSecondaryIndexes": [{"IndexName": "by-gsi", "KeySchema": [{"AttributeName": "gsi", "KeyType": "HASH"}],
                                        "Projection": {"ProjectionType": "ALL"}}],
        })
        assert status == 200, body
        for item in ITEMS:
            assert call(emulator.endpoint_url, "PutItem", {"TableName": TABLE, "Item": item})[0] == 200
    yield [e.endpoint_url for e in emulators]
    for emulator in emulators:
        emulator.stop()


@pytest.mark.parametrize("action, body", [
    ("GetItem", {"TableName": TABLE, "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}}),
    ("Query", {"TableName": TABLE, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}}),
    ("Query", {"TableName": TABLE, "IndexName": "by-gsi", "KeyConditionExpression": "gsi = :g",
               "ExpressionAttributeValues": {":g": {"S": "g1"}}}),
    ("Scan", {"TableName": TABLE, "Limit": 2}),
    ("BatchGetItem", {"RequestItems": {TABLE: {"Keys": [{"pk": {"S": "a"}, "sk": {"N": "1"}}, {"pk": {"S": "b"}, "sk": {"N": "1"}}]}}}),
    ("UpdateItem", {"TableName": TABLE, "Key": {"pk": {"S": "b"}, "sk": {"N": "1"}}, "UpdateExpression": "SET extra = :e",
                    "ExpressionAttributeValues": {":e": {"L": [{"B": base64.b64encode(b"\x03").decode()}]}}, "ReturnValues": "ALL_NEW"}),
])
def test_responses_are_identical(pair, action, body):
    patched, unpatched = (call(endpoint, action, body) for endpoint in pair)
    assert patched == unpatched
    assert patched[0] == 200


@pytest.mark.parametrize("size", [404_000, 406_000])
def test_the_item_size_limit_is_where_it_was(pair, size):
    item = {"pk": {"S": "big"}, "sk": {"N": "1"}, "blob": {"S": "x" * size}}
    patched, unpatched = (call(endpoint, "PutItem", {"TableName": TABLE, "Item": item}) for endpoint in pair)
    assert patched == unpatched
    assert patched[0] == (200 if size < 405_000 else 400)


def test_xml_responses_still_carry_the_request_id_of_their_header(pair):
    # response-overhead: the <RequestId> rewrite now runs only where there is one
    for endpoint in pair:
        response = requests.post(endpoint, data="Action=GetCallerIdentity&Version=2011-06-15", timeout=10, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=x",
        })
        assert response.status_code == 200
        request_id = response.headers["x-amzn-requestid"]
        assert f"<RequestId>{request_id}</RequestId>" in response.text


def test_json_responses_still_get_a_request_id(pair):
    for endpoint in pair:
        response = requests.post(endpoint, data="{}", timeout=10, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x",
        })
        assert response.status_code == 200 and len(response.headers["x-amzn-requestid"]) == 52


def test_paged_scans_follow_every_change(pair):
    # dynamodb-scan: the sorted item list is kept between writes; every write must show
    def scan_all(endpoint):
        pages, body = [], {"TableName": TABLE, "Limit": 2}
        while True:
            status, page = call(endpoint, "Scan", body)
            assert status == 200, page
            pages.append(page)
            if "LastEvaluatedKey" not in page:
                return pages
            body = {**body, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    steps = [
        ("PutItem", {"TableName": TABLE, "Item": {"pk": {"S": "c"}, "sk": {"N": "0"}, "v": {"S": "new"}}}),
        ("PutItem", {"TableName": TABLE, "Item": {"pk": {"S": "a"}, "sk": {"N": "2"}, "v": {"S": "replaced"}}}),
        ("UpdateItem", {"TableName": TABLE, "Key": {"pk": {"S": "c"}, "sk": {"N": "0"}}, "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "updated in place"}}}),
        ("DeleteItem", {"TableName": TABLE, "Key": {"pk": {"S": "b"}, "sk": {"N": "1"}}}),
        ("BatchWriteItem", {"RequestItems": {TABLE: [{"PutRequest": {"Item": {"pk": {"S": "0"}, "sk": {"N": "9"}}}},
                                                     {"DeleteRequest": {"Key": {"pk": {"S": "c"}, "sk": {"N": "0"}}}}]}}),
    ]
    seen = []
    for action, body in steps:
        results = []
        for endpoint in pair:
            assert call(endpoint, action, body)[0] == 200
            results.append(scan_all(endpoint))
        assert results[0] == results[1], action
        seen.append(results[0])
    assert seen[0] != seen[-1]
