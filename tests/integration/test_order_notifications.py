"""The order notifier's adapters against the emulator: the ledger in a real DynamoDB
table, the messages on a real SNS topic, read back through the emulator's record of what
it was sent (devstack/emulator/published.py, what `shopstream notifications` shows)."""
from __future__ import annotations

import json
import uuid
from decimal import Decimal

import boto3
import pytest

from consumers.notifications.core import OrderNotifier
from consumers.notifications.store import DynamoLedger, SnsPublisher
from devstack import notifications
from tests.factories import event, line
from tests.unit.test_order_notifier import MemoryQuarantine, record

pytestmark = pytest.mark.emulator


@pytest.fixture
def deployed(emulator):
    def client(service):
        return boto3.client(service, endpoint_url=emulator.endpoint_url, region_name="eu-west-1")

    name = f"notify-{uuid.uuid4().hex[:8]}"
    dynamodb, sns = client("dynamodb"), client("sns")
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "invoice_no", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "invoice_no", "AttributeType": "S"}])
    topic = sns.create_topic(Name=name)["TopicArn"]
    yield dynamodb, sns, name, topic
    dynamodb.delete_table(TableName=name)
    sns.delete_topic(TopicArn=topic)


def test_a_large_order_delivered_three_times_is_published_once_and_recorded(emulator, deployed):
    dynamodb, sns, table, topic = deployed
    notifier = OrderNotifier(DynamoLedger(dynamodb, table), SnsPublisher(sns, topic), MemoryQuarantine(),
                             threshold=Decimal("5000"))
    big = event("536365", lines=[line(1, quantity=100, unit_price="50.01")])
    small = event("536366")
    notifier.handle(record(big, small, big))
    notifier.handle(record(big))

    (message,) = notifications.fetch(emulator.endpoint_url, topic)
    body = json.loads(message["message"])
    assert (body["invoice_no"], body["total"]) == ("536365", "5001.00")
    assert message["subject"] == "Large order 536365: 5,001.00 (United Kingdom)"
    assert message["attributes"]["invoice_no"] == "536365" and message["attributes"]["total"] == "5001.00"
    item = dynamodb.get_item(TableName=table, Key={"invoice_no": {"S": "536365"}})["Item"]
    assert item["message_id"]["S"] == message["message_id"] and item["total"]["N"] == "5001.00"
    assert dynamodb.scan(TableName=table)["Count"] == 1


def test_the_record_of_a_topic_can_be_cleared_and_an_unknown_topic_is_named(emulator, deployed):
    _, sns, _, topic = deployed
    sns.publish(TopicArn=topic, Message="one")
    assert notifications.clear(emulator.endpoint_url, topic) == 1
    assert notifications.fetch(emulator.endpoint_url, topic) == []
    missing = topic + "-gone"
    with pytest.raises(notifications.NotificationsError, match="404.*-gone"):
        notifications.fetch(emulator.endpoint_url, missing)


def test_the_ledger_refuses_a_second_record_of_the_same_invoice(deployed):
    dynamodb, _, table, _ = deployed
    ledger = DynamoLedger(dynamodb, table)
    assert not ledger.announced("536365")
    assert ledger.record("536365", event_id="e", total=Decimal("5000"), message_id="m-1")
    assert ledger.announced("536365")
    assert not ledger.record("536365", event_id="e", total=Decimal("5000"), message_id="m-2")
    assert dynamodb.get_item(TableName=table, Key={"invoice_no": {"S": "536365"}})["Item"]["message_id"]["S"] == "m-1"
