"""The order notifier's adapters: the ledger of announced invoices (DynamoDB) and the
large-orders topic (SNS). AWS errors are translated at this edge
(:mod:`pipeline.aws_errors`): throttling and outages raise ``TransientError``, so the
record is retried."""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import error_code, translate
from pipeline.events import money_str


class DynamoLedger:
    """One item per announced invoice: ``{invoice_no, event_id, total, message_id,
    announced_at}`` (``dynamodb:GetItem`` and ``dynamodb:PutItem`` only)."""

    def __init__(self, client: Any, table: str):
        self._client, self._table = client, table

    def announced(self, invoice_no: str) -> bool:
        try:
            item = self._client.get_item(TableName=self._table, Key={"invoice_no": {"S": invoice_no}},
                                         ConsistentRead=True, ProjectionExpression="invoice_no").get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"GetItem on table {self._table}") from exc
        return item is not None

    def record(self, invoice_no: str, *, event_id: str, total: Decimal, message_id: str) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"invoice_no": {"S": invoice_no}, "event_id": {"S": event_id},
                      "total": {"N": money_str(total)}, "message_id": {"S": message_id},
                      "announced_at": {"N": str(int(time.time()))}},
                ConditionExpression="attribute_not_exists(invoice_no)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, f"PutItem on table {self._table}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"PutItem on table {self._table}") from exc
        return True


class SnsPublisher:
    """Publishes to one topic (``sns:Publish``)."""

    def __init__(self, client: Any, topic_arn: str):
        self._client, self._topic = client, topic_arn

    def publish(self, *, subject: str, message: str, attributes: dict[str, str]) -> str:
        try:
            response = self._client.publish(
                TopicArn=self._topic, Subject=subject, Message=message,
                MessageAttributes={name: {"DataType": "String", "StringValue": value}
                                   for name, value in attributes.items()},
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"Publish to {self._topic}") from exc
        return response["MessageId"]


class InMemoryLedger:
    """The same ledger in a dict (tests, and the logic without DynamoDB)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def announced(self, invoice_no: str) -> bool:
        return invoice_no in self.items

    def record(self, invoice_no: str, *, event_id: str, total: Decimal, message_id: str) -> bool:
        if invoice_no in self.items:
            return False
        self.items[invoice_no] = {"event_id": event_id, "total": total, "message_id": message_id}
        return True
