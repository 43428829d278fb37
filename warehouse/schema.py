"""The warehouse contract: the staging table Firehose COPYs into, column by column.

One list, used everywhere the staging layout appears:

* the Firehose transformation Lambda (``firehose/core.py``) emits one JSON array per
  invoice line whose elements are the values of :data:`STAGING_COLUMNS`, in this order;
* the JSONPaths file the COPY reads them with (``$[0]``, ``$[1]``, … one per column:
  :func:`jsonpaths`), which Terraform writes to the delivery bucket;
* Terraform's ``data_table_columns`` of the delivery stream's Redshift destination (the
  column list of the COPY), checked by ``tests/contract/test_warehouse_terraform.py``;
* the staging DDL in ``warehouse/sql/``.

Why arrays and a JSONPaths file rather than objects and ``JSON 'auto'``: a row as an
object repeats its column names, ~220 bytes of a ~560-byte row (measured with 17 columns). The transformation's
response is capped at 6 MB (base64-encoded) and an invoice event's lines grow ~4.5× as
keyed rows — a 1 MB call (Firehose's default processor buffer) came back at ~6.7 MB and
failed. As arrays they grow ~2.2×, leaving room under the cap (measured on the full
dataset; ``firehose/core.py`` has the figures).

Types are Redshift's. Text lengths are bytes in Redshift: the event contract allows 500
characters, so 2,000 bytes hold any UTF-8 text it accepts. Money is exact: prices have at
most 6 decimals and stay below 10^9 (``pipeline.events``), so a price fits DECIMAL(15,6)
and a line amount (quantity below 10^9 times price) fits DECIMAL(24,6).

``source_sequence`` orders deliveries of the same invoice: the number of digits of the
Kinesis sequence number of the record that carried it (3 digits), the sequence number
itself, a colon, and its KPL sub-sequence number padded to 10 digits. Sequence numbers
have no leading zeros, so a longer one is a larger one and text order is stream order
(``056…`` for today's 56-digit numbers; the longest, 129 digits, fits). An invoice always
travels on the same shard (partition key = invoice number), so a later delivery always
has a greater ``source_sequence``.

``source_version`` is the event's version (:attr:`pipeline.events.InvoiceEvent.version`):
``''`` for an event without a status, else ``<invoice_date>/<status rank>``, text that
sorts in version order. The merge orders an invoice's deliveries by ``(source_version,
source_sequence)``: the newest version wins, and among equal versions (all status-less
events) the latest delivery, as before. ``status`` is the event's status, or null.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # Redshift type
    nullable: bool = False


STAGING_TABLE = "stg_invoice_lines"

STAGING_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "VARCHAR(32)"),
    Column("invoice_no", "VARCHAR(40)"),
    Column("line_no", "INTEGER"),
    Column("invoice_date", "TIMESTAMP"),
    Column("customer_id", "VARCHAR(20)", nullable=True),
    Column("country", "VARCHAR(2000)"),
    Column("stock_code", "VARCHAR(2000)"),
    Column("description", "VARCHAR(2000)", nullable=True),
    Column("quantity", "INTEGER"),
    Column("unit_price", "DECIMAL(15,6)"),
    Column("amount", "DECIMAL(24,6)"),
    Column("size_class", "VARCHAR(6)"),
    Column("is_cancellation", "BOOLEAN"),
    Column("is_adjustment", "BOOLEAN"),
    Column("is_product", "BOOLEAN"),
    Column("source_sequence", "VARCHAR(143)"),
    Column("arrived_at", "TIMESTAMP"),
    # added by migration 007 (so last: Redshift appends added columns)
    Column("status", "VARCHAR(16)", nullable=True),
    Column("source_version", "VARCHAR(32)"),  # DEFAULT '' in the DDL
)

STAGING_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in STAGING_COLUMNS)

SEQUENCE_DIGITS = 129      # Kinesis: SequenceNumber matches 0|([1-9]\d{0,128})
SUBSEQUENCE_DIGITS = 10

SIZE_CLASSES = ("Small", "Medium", "Large")


def source_sequence(sequence_number: str, subsequence_number: int = 0) -> str:
    """The sortable text of a delivery's place in the stream (see the module docstring)."""
    if (not sequence_number.isdigit() or len(sequence_number) > SEQUENCE_DIGITS
            or (len(sequence_number) > 1 and sequence_number[0] == "0")):
        raise ValueError(f"not a Kinesis sequence number: {sequence_number!r}")
    if subsequence_number < 0 or subsequence_number >= 10**SUBSEQUENCE_DIGITS:
        raise ValueError(f"sub-sequence number out of range: {subsequence_number!r}")
    return f"{len(sequence_number):03d}{sequence_number}:{subsequence_number:0{SUBSEQUENCE_DIGITS}d}"


def jsonpaths() -> dict[str, list[str]]:
    """The COPY's JSONPaths file: element i of each row's array is column i."""
    return {"jsonpaths": [f"$[{i}]" for i in range(len(STAGING_COLUMNS))]}
