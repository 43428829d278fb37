"""Who produced each invoice: the first producer to send an invoice owns it.

The owners table holds one item per invoice number, ``{invoice_no, producer}``. Before
the events of a request go onto the stream, the ingest function claims each of its
invoices for the calling producer with one conditional write,
``attribute_not_exists(invoice_no) OR producer = :producer``: it succeeds for an invoice
no one owns (and records the owner) and for one the caller already owns, and fails for
one another producer owns, whose events are then refused. The check and the record are
one atomic write, so two producers racing for a new invoice cannot both win.

What this does not cover, by design: writers that bypass the HTTP API (the archive
backfill and the dead-letter redrive put events straight onto the stream with the
operator's IAM rights) are not checked; an invoice claimed by a request whose stream
write then fails stays claimed by that producer (its retry succeeds, no one else's
does); and a producer's own versions of an invoice still race each other as before (the
one delivered last is stored).
"""
from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import error_code, translate

CLAIM_CONDITION = "attribute_not_exists(invoice_no) OR producer = :producer"


class DynamoOwnership:
    """Claims invoices in the owners table (``dynamodb:PutItem`` only)."""

    def __init__(self, client: Any, table: str, *, parallel: int = 8):
        self._client, self._table = client, table
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="claim")  # one per warm function

    def _claim_one(self, producer: str, invoice_no: str) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"invoice_no": {"S": invoice_no}, "producer": {"S": producer}},
                ConditionExpression=CLAIM_CONDITION,
                ExpressionAttributeValues={":producer": {"S": producer}},
            )
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, f"PutItem on table {self._table}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"PutItem on table {self._table}") from exc

    def claim(self, producer: str, invoice_nos: Iterable[str]) -> set[str]:
        """Claims every invoice for ``producer``; returns those another producer owns."""
        wanted = sorted(set(invoice_nos))
        if len(wanted) <= 1:
            return {n for n in wanted if not self._claim_one(producer, n)}
        granted = list(self._pool.map(lambda n: self._claim_one(producer, n), wanted))
        return {n for n, ok in zip(wanted, granted) if not ok}


class InMemoryOwnership:
    """The same rule in a dict (tests, and the logic without DynamoDB)."""

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}

    def claim(self, producer: str, invoice_nos: Iterable[str]) -> set[str]:
        refused = set()
        for invoice_no in invoice_nos:
            owner = self.owners.setdefault(invoice_no, producer)
            if owner != producer:
                refused.add(invoice_no)
        return refused
