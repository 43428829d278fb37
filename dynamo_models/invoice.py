"""The invoices table (pynamodb), the single DynamoDB table of the invoice path.

Access patterns and how the keys serve them:

* **one invoice with all its lines, one read**: ``Query(invoice_no = :no)`` returns every
  item of the invoice. Almost always that is one item (``part`` 0): lines are stored as
  one zlib-compressed JSON attribute (the lines exactly as in the event's wire format), so the largest real invoice (1,114 lines) is ~25 KB.
  An invoice whose compressed lines would pass :data:`PART_BYTES` continues in parts
  1, 2, …, so no item approaches DynamoDB's 400 KB limit whatever an invoice holds.
* **a customer's invoices, newest first, paginated, within a date range**: the sparse
  global secondary index ``customer-invoices`` (hash ``customer_id``, range
  ``invoice_sort`` = ``<invoice_date>#<invoice_no>``). Only part 0 of an invoice that
  has a customer carries these attributes, so the index holds one summary per invoice
  and no item grows with a customer's history (the seed design's customer item did).

Why compressed lines rather than a list of maps: on the local emulator a 21-line invoice
as nested maps writes at ~400 items/s and as one binary attribute at ~4,600 items/s
(measured; bench/README); on AWS the same invoice is 3.1 KB as maps (4 write units) and
~0.2-1 KB compressed (1 unit). The lines are never queried inside DynamoDB: the query
API returns them whole, and analytics runs in the warehouse.

Attributes derivable from others are not stored (cancellation and adjustment come from
the invoice number, ``parts`` is absent for the usual single part): each attribute costs
on every write, in pynamodb, on the wire and in DynamoDB.

An event with a status also stores ``status`` and ``version`` on part 0; its write is
conditional (the repository): an older version arriving late never overwrites a newer one.

Every attribute is a pure function of the invoice event (no write time, no sequence
number), so writing the same event twice leaves the item byte-for-byte unchanged.
"""
from __future__ import annotations

import json
import zlib
from decimal import Decimal
from typing import Any

from pynamodb.attributes import Attribute, BinaryAttribute, BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.constants import NUMBER
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

TABLE_KEY = "invoices"  # Terraform: aws_dynamodb_table.invoices
CUSTOMER_INDEX = "customer-invoices"
PART_BYTES = 256 * 1024  # compressed lines per item; items stay far below 400 KB
SUMMARY_ATTRIBUTES = (
    "invoice_date",
    "country",
    "line_count",
    "total",
    "has_non_product_lines",
    "event_id",
)


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB number kept exact (pynamodb's NumberAttribute goes through float)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"DecimalAttribute takes a Decimal, got {type(value).__name__}")
        return format(value, "f")

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class CustomerInvoicesIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = CUSTOMER_INDEX
        projection = IncludeProjection(list(SUMMARY_ATTRIBUTES))

    customer_id = UnicodeAttribute(hash_key=True)
    invoice_sort = UnicodeAttribute(range_key=True)


class InvoiceItem(Model):
    """One part of one invoice. Part 0 holds the header, the summary and the first lines."""

    class Meta:
        table_name = "shopstream-invoices"  # replaced at start-up by bind_models()
        region = "eu-west-1"

    invoice_no = UnicodeAttribute(hash_key=True)
    part = NumberAttribute(range_key=True)
    lines = BinaryAttribute(legacy_encoding=False)  # zlib(JSON array of lines, wire format)
    # part 0 only (cancellation and adjustment are read off the invoice number):
    parts = NumberAttribute(null=True)  # only when an invoice is split; absent means 1
    schema_version = NumberAttribute(null=True)
    event_id = UnicodeAttribute(null=True)
    invoice_date = UnicodeAttribute(null=True)
    customer_id = UnicodeAttribute(null=True)
    invoice_sort = UnicodeAttribute(null=True)
    country = UnicodeAttribute(null=True)
    has_non_product_lines = BooleanAttribute(null=True)
    line_count = NumberAttribute(null=True)
    total = DecimalAttribute(null=True)
    # only for an event with a status (pipeline/events.py "Versions"): a versioned write is
    # conditional on the stored version being absent, smaller or equal
    status = UnicodeAttribute(null=True)
    version = UnicodeAttribute(null=True)

    by_customer = CustomerInvoicesIndex()


def bind_models(table_name: str, region: str, endpoint_url: str | None) -> None:
    """Point the models at the deployed table (called once per cold start)."""
    meta: Any = InvoiceItem.Meta
    meta.table_name = table_name
    meta.region = region
    meta.host = endpoint_url
    InvoiceItem._connection = None  # pynamodb caches a connection per model class


def encode_lines(lines_json: str) -> bytes:
    """Compress a JSON array of lines in the event's wire format."""
    return zlib.compress(lines_json.encode("utf-8"), 6)


def decode_lines(blob: bytes) -> list[dict[str, Any]]:
    return json.loads(zlib.decompress(blob))
