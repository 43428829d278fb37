"""The owners table adapter (ingest/ownership.py): the first producer to send an invoice owns it,
decided by one conditional PutItem per new invoice; owners already recorded are read in batches."""
from __future__ import annotations

from collections import Counter

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ingest.ownership import READ_BATCH, DynamoOwnership
from pipeline.errors import ConfigurationError, TransientError

TABLE = "owners"


@pytest.fixture
def client():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "invoice_no", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "invoice_no", "AttributeType": "S"}])
        yield client


def count_calls(client) -> Counter:
    """How often each DynamoDB operation is called from now on (keys read by BatchGetItem too)."""
    calls: Counter = Counter()

    def seen(model, params, **_):
        calls[model.name] += 1
        if model.name == "BatchGetItem":
            calls["keys read"] += sum(len(r["Keys"]) for r in params["RequestItems"].values())

    client.meta.events.register("provide-client-params.dynamodb.*", seen)
    return calls


def stored(client) -> dict[str, str]:
    return {i["invoice_no"]["S"]: i["producer"]["S"] for i in client.scan(TableName=TABLE)["Items"]}


def own(client, producer: str, *invoice_nos: str) -> None:
    for n in invoice_nos:
        client.put_item(TableName=TABLE, Item={"invoice_no": {"S": n}, "producer": {"S": producer}})


class Proxy:
    """The real client, with BatchGetItem's answer changed by ``reads`` (a race, unprocessed keys)."""

    def __init__(self, client, reads):
        self._client, self._reads = client, reads

    def __getattr__(self, name):
        return getattr(self._client, name)

    def batch_get_item(self, **kwargs):
        return self._reads(self._client, kwargs)


def test_new_invoices_are_each_claimed_with_one_conditional_write(client):
    # GIVEN an empty owners table
    owners, calls = DynamoOwnership(client, TABLE), count_calls(client)
    # WHEN a producer sends three new invoices
    refused = owners.claim("shop-a", ["1", "2", "3", "2"])
    # THEN all are granted and recorded, each by one PutItem after one read of the three
    assert refused == set()
    assert stored(client) == {"1": "shop-a", "2": "shop-a", "3": "shop-a"}
    assert calls["PutItem"] == 3 and calls["BatchGetItem"] == 1 and calls["keys read"] == 3


def test_a_producers_own_invoices_again_are_confirmed_by_the_read_without_a_write(client):
    # GIVEN invoices shop-a owns
    own(client, "shop-a", *[str(n) for n in range(250)])
    owners, calls = DynamoOwnership(client, TABLE), count_calls(client)
    # WHEN shop-a sends them again
    refused = owners.claim("shop-a", [str(n) for n in range(250)])
    # THEN they are granted with three reads of at most 100 keys and no write
    assert refused == set()
    assert calls["PutItem"] == 0 and calls["BatchGetItem"] == 3 and calls["keys read"] == 250


def test_another_producers_invoices_are_refused_and_left_as_they_are(client):
    # GIVEN shop-a owns 1 and 2
    own(client, "shop-a", "1", "2")
    owners, calls = DynamoOwnership(client, TABLE), count_calls(client)
    # WHEN shop-b sends 1, 2 and a new 3
    refused = owners.claim("shop-b", ["1", "2", "3"])
    # THEN 1 and 2 are refused (read, no write), 3 is shop-b's by its one write
    assert refused == {"1", "2"}
    assert stored(client) == {"1": "shop-a", "2": "shop-a", "3": "shop-b"}
    assert calls["PutItem"] == 1


def test_the_first_producer_owns_it_in_every_order(client):
    # GIVEN the rule as it was with one write per invoice (tests/unit/test_api_authorization.py)
    owners = DynamoOwnership(client, TABLE)
    # WHEN producers claim overlapping sets, in requests of one and of many
    assert owners.claim("shop-a", ["1", "2", "3"]) == set()
    assert owners.claim("shop-a", ["1", "2"]) == set()
    assert owners.claim("shop-b", ["2", "3", "4"]) == {"2", "3"}
    assert owners.claim("shop-b", ["1"]) == {"1"}
    assert owners.claim("shop-a", ["4"]) == {"4"}
    assert owners.claim("shop-b", ["4"]) == set()
    # THEN each invoice is its first producer's
    assert stored(client) == {"1": "shop-a", "2": "shop-a", "3": "shop-a", "4": "shop-b"}


def test_one_invoice_is_claimed_with_the_write_alone(client):
    # GIVEN one invoice owned by shop-a
    own(client, "shop-a", "1")
    owners, calls = DynamoOwnership(client, TABLE), count_calls(client)
    # WHEN requests of a single invoice come
    assert owners.claim("shop-a", ["1"]) == set()
    assert owners.claim("shop-b", ["1"]) == {"1"}
    assert owners.claim("shop-b", ["2"]) == set()
    # THEN each is one conditional PutItem, no read
    assert calls["PutItem"] == 3 and calls["BatchGetItem"] == 0


def test_an_invoice_claimed_by_another_between_read_and_write_is_refused_by_the_write(client):
    # GIVEN shop-b's claim lands after shop-a read the table (the read finds nothing)
    def race(real, kwargs):
        answer = real.batch_get_item(**kwargs)
        own(real, "shop-b", "2")
        return answer

    owners = DynamoOwnership(Proxy(client, race), TABLE)
    # WHEN shop-a claims 1 and 2
    refused = owners.claim("shop-a", ["1", "2"])
    # THEN the conditional write refuses 2: shop-b was first
    assert refused == {"2"}
    assert stored(client) == {"1": "shop-a", "2": "shop-b"}


def test_keys_the_read_leaves_unprocessed_are_decided_by_the_write(client):
    # GIVEN shop-a owns 1 and 2, and the read answers only for 1 (2 and 3 unprocessed)
    own(client, "shop-a", "1", "2")

    def partial(real, kwargs):
        answer = real.batch_get_item(**kwargs)
        keys = kwargs["RequestItems"][TABLE]["Keys"]
        answer["Responses"][TABLE] = [i for i in answer["Responses"][TABLE] if i["invoice_no"]["S"] == "1"]
        answer["UnprocessedKeys"] = {TABLE: {"Keys": [k for k in keys if k["invoice_no"]["S"] != "1"]}}
        return answer

    owners = DynamoOwnership(Proxy(client, partial), TABLE)
    calls = count_calls(client)
    # WHEN shop-b claims 1, 2 and 3
    refused = owners.claim("shop-b", ["1", "2", "3"])
    # THEN 1 is refused by the read, 2 by its write, and 3 is shop-b's
    assert refused == {"1", "2"}
    assert stored(client) == {"1": "shop-a", "2": "shop-a", "3": "shop-b"}
    assert calls["PutItem"] == 2


def test_an_item_without_a_producer_is_not_taken_as_an_owner(client):
    # GIVEN an item of the owners table that names no producer (not one this code writes)
    client.put_item(TableName=TABLE, Item={"invoice_no": {"S": "1"}})
    owners = DynamoOwnership(client, TABLE)
    # WHEN shop-a claims it with another invoice
    # THEN the conditional write decides, as it always did: it refuses (the item exists, producer differs)
    assert owners.claim("shop-a", ["1", "2"]) == {"1"}


def test_a_read_batch_is_never_larger_than_dynamodb_takes(client):
    owners, calls = DynamoOwnership(client, TABLE), count_calls(client)
    owners.claim("shop-a", [str(n) for n in range(READ_BATCH * 2 + 1)])
    assert READ_BATCH == 100 and calls["BatchGetItem"] == 3 and calls["PutItem"] == READ_BATCH * 2 + 1


@pytest.mark.parametrize(("code", "error"), [("ProvisionedThroughputExceededException", TransientError),
                                             ("ResourceNotFoundException", ConfigurationError),
                                             ("AccessDeniedException", ConfigurationError)])
def test_a_failed_read_is_translated_like_a_failed_write(client, code, error):
    def failing(real, kwargs):
        raise ClientError({"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                          "BatchGetItem")

    owners = DynamoOwnership(Proxy(client, failing), TABLE)
    with pytest.raises(error, match="BatchGetItem on table owners"):
        owners.claim("shop-a", ["1", "2"])
    assert stored(client) == {}  # nothing claimed when the owners could not be read
