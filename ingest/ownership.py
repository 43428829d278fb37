"""Who produced each invoice: the first producer to send an invoice owns it.

The owners table holds one item per invoice number, ``{invoice_no, producer}``. Before
the events of a request go onto the stream, the ingest function claims each of its
invoices for the calling producer with one conditional write,
``attribute_not_exists(invoice_no) OR producer = :producer``: it succeeds for an invoice
no one owns (and records the owner) and for one the caller already owns, and fails for
one another producer owns, whose events are then refused. The check and the record are
one atomic write, so two producers racing for a new invoice cannot both win.

An owner, once recorded, never changes: the only write to the table is that conditional
one, which either creates the item or rewrites the same producer into it, and nothing
deletes items. So an owner read from the table is final, and a request of several
invoices first reads the recorded owners (``BatchGetItem``, 100 keys a call, strongly
consistent): an invoice the caller is recorded to own needs no write, one recorded for
another producer is refused, and only the invoices with no recorded owner (or whose read
came back unprocessed) are claimed with the conditional write, which alone decides a new
invoice. A resend costs a hundredth of a call per invoice instead of one write each (on
the local emulator a write costs ~2.5 ms of CPU between client and server, a read of 100
about 10 ms in all). A single invoice is claimed with the write alone: one call either way.

What this does not cover, by design: writers that bypass the HTTP API (the archive
backfill and the dead-letter redrive put events straight onto the stream with the
operator's IAM rights) are not checked; an invoice claimed by a request whose stream
write then fails stays claimed by that producer (its retry succeeds, no one else's
does); and a producer's own versions of an invoice still race each other as before (the
one delivered last is stored). An operator who edits or deletes an owner's item by hand
changes what later claims find, read or written; nothing is cached between requests.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import error_code, translate

CLAIM_CONDITION = "attribute_not_exists(invoice_no) OR producer = :producer"
READ_BATCH = 100  # the most keys one BatchGetItem takes


class DynamoOwnership:
    """Claims invoices in the owners table (``dynamodb:PutItem`` and ``dynamodb:BatchGetItem``)."""

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

    def _read_owners(self, invoice_nos: Sequence[str]) -> dict[str, str]:
        """The recorded owner of each of ``invoice_nos`` that has one and was read (at most 100).
        Keys DynamoDB leaves unprocessed are left out: they are claimed by the write."""
        try:
            answer = self._client.batch_get_item(RequestItems={self._table: {
                "Keys": [{"invoice_no": {"S": n}} for n in invoice_nos],
                "ConsistentRead": True,
                "ProjectionExpression": "invoice_no, producer",
            }})
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"BatchGetItem on table {self._table}") from exc
        owners = {}
        for item in answer.get("Responses", {}).get(self._table, []):
            invoice_no, producer = item.get("invoice_no", {}).get("S"), item.get("producer", {}).get("S")
            if invoice_no is not None and producer is not None:
                owners[invoice_no] = producer
        return owners

    def claim(self, producer: str, invoice_nos: Iterable[str]) -> set[str]:
        """Claims every invoice for ``producer``; returns those another producer owns."""
        wanted = sorted(set(invoice_nos))
        if len(wanted) <= 1:
            return {n for n in wanted if not self._claim_one(producer, n)}
        chunks = [wanted[i:i + READ_BATCH] for i in range(0, len(wanted), READ_BATCH)]
        recorded: dict[str, str] = {}
        for owners in (self._pool.map(self._read_owners, chunks) if len(chunks) > 1 else map(self._read_owners, chunks)):
            recorded.update(owners)
        refused = {n for n, owner in recorded.items() if owner != producer}
        unrecorded = [n for n in wanted if n not in recorded]
        if len(unrecorded) <= 1:
            granted = [self._claim_one(producer, n) for n in unrecorded]
        else:
            granted = list(self._pool.map(lambda n: self._claim_one(producer, n), unrecorded))
        return refused | {n for n, ok in zip(unrecorded, granted) if not ok}


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
