"""The archive's Parquet format, both ways: invoice events → rows, and rows → the events.

One row per invoice line, carrying its invoice's fields, the ``event_id`` and where the
event was read in the stream (shard, sequence number, sub-sequence number in its KPL
aggregate, arrival time): the archive is the raw record of deliveries, and everything
needed to rebuild each event exactly — so that a backfill re-injects the original events
with their original ids (:func:`events_from_table` recomputes every ``event_id`` and
refuses rows that do not rebuild to it).

Objects are hive-partitioned by the invoice's date, ``<prefix>year=2011/month=01/day=05/``;
the partition values live in the path only. Money is exact: ``unit_price`` DECIMAL(15,6)
and ``amount`` DECIMAL(24,6) (``warehouse.schema`` explains the bounds). ``invoice_date``
is shop-local time without a zone, as in the event; ``line_invoice_date`` is set only for
the rare line whose own time differs from its invoice's. ``status`` is the event's status
(pipeline/events.py "Versions"), null for an event without one and in objects written
before the column existed (they read back with it null).
"""
from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.events import SCHEMA_VERSION, InvoiceEvent, InvoiceLine, is_product

DEFAULT_PREFIX = "archive/"
COMPRESSION = "zstd"

SCHEMA = pa.schema([
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("invoice_no", pa.string(), nullable=False),
    pa.field("invoice_date", pa.timestamp("s"), nullable=False),
    pa.field("customer_id", pa.string()),
    pa.field("country", pa.string(), nullable=False),
    pa.field("line_no", pa.int32(), nullable=False),
    pa.field("stock_code", pa.string(), nullable=False),
    pa.field("description", pa.string()),
    pa.field("quantity", pa.int32(), nullable=False),
    pa.field("unit_price", pa.decimal128(15, 6), nullable=False),
    pa.field("amount", pa.decimal128(24, 6), nullable=False),
    pa.field("line_invoice_date", pa.timestamp("s")),
    pa.field("is_cancellation", pa.bool_(), nullable=False),
    pa.field("is_adjustment", pa.bool_(), nullable=False),
    pa.field("is_product", pa.bool_(), nullable=False),
    pa.field("schema_version", pa.int16(), nullable=False),
    pa.field("shard_id", pa.string(), nullable=False),
    pa.field("sequence_number", pa.string(), nullable=False),
    pa.field("sub_sequence_number", pa.int32(), nullable=False),
    pa.field("arrived_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("status", pa.string()),  # only for events with a status; objects written before it read as null
])


@dataclass(frozen=True, slots=True)
class Delivered:
    """An invoice event and where the consumer read it."""

    event: InvoiceEvent
    shard_id: str
    sequence_number: str
    sub_sequence_number: int
    arrival: float  # epoch seconds


def partition(invoice_date: str) -> str:
    """``2011-01-05T10:00:00`` → ``year=2011/month=01/day=05``."""
    return f"year={invoice_date[0:4]}/month={invoice_date[5:7]}/day={invoice_date[8:10]}"


def day_prefixes(prefix: str, first_day: str, last_day: str) -> list[str]:
    """The partition prefixes of every day from ``first_day`` to ``last_day`` (ISO dates), inclusive."""
    from datetime import date, timedelta

    day, end = date.fromisoformat(first_day), date.fromisoformat(last_day)
    out = []
    while day <= end:
        out.append(f"{prefix}{partition(day.isoformat())}/")
        day += timedelta(days=1)
    return out


def object_key(prefix: str, day_partition: str, shard_id: str, first_sequence: str, last_sequence: str) -> str:
    """The key of a batch's object for one day: the same batch always gets the same key."""
    return f"{prefix}{day_partition}/{shard_id}-{first_sequence}-{last_sequence}.parquet"


def tables_by_day(delivered: Iterable[Delivered]) -> dict[str, pa.Table]:
    """The rows of the delivered events, one table per day partition. (Built column by
    column, each invoice's own fields repeated once per line: a half-million-line replay
    spends its time here otherwise.)"""
    columns: dict[str, dict[str, list]] = defaultdict(lambda: {name: [] for name in SCHEMA.names})
    parse_time = datetime.fromisoformat
    for item in delivered:
        event = item.event
        cols = columns[partition(event.invoice_date)]
        lines = event.lines
        n = len(lines)
        line_nos, codes, descriptions, quantities, prices, line_dates = zip(*lines)
        cols["event_id"] += [event.event_id] * n
        cols["invoice_no"] += [event.invoice_no] * n
        cols["invoice_date"] += [parse_time(event.invoice_date)] * n
        cols["customer_id"] += [event.customer_id] * n
        cols["country"] += [event.country] * n
        cols["line_no"] += line_nos
        cols["stock_code"] += codes
        cols["description"] += descriptions
        cols["quantity"] += quantities
        cols["unit_price"] += prices
        cols["amount"] += [line.amount for line in lines]
        cols["line_invoice_date"] += [None if d is None else parse_time(d) for d in line_dates]
        cols["is_cancellation"] += [event.is_cancellation] * n
        cols["is_adjustment"] += [event.is_adjustment] * n
        cols["is_product"] += [is_product(code) for code in codes]
        cols["schema_version"] += [SCHEMA_VERSION] * n
        cols["shard_id"] += [item.shard_id] * n
        cols["sequence_number"] += [item.sequence_number] * n
        cols["sub_sequence_number"] += [item.sub_sequence_number] * n
        cols["arrived_at"] += [datetime.fromtimestamp(item.arrival, tz=UTC)] * n
        cols["status"] += [event.status] * n
    return {day: pa.table(cols, schema=SCHEMA) for day, cols in columns.items()}


def to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=COMPRESSION)
    return sink.getvalue()


def read_parquet(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data), schema=SCHEMA)


class CorruptArchive(ValueError):
    """Archived rows that do not rebuild to the event they claim to be."""


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    event: InvoiceEvent
    shard_id: str
    sequence_number: str
    sub_sequence_number: int

    @property
    def position(self) -> tuple[str, int, int]:
        """Stream order (a shard's sequence numbers only grow; an invoice stays on its shard)."""
        return (self.shard_id, int(self.sequence_number), self.sub_sequence_number)


def events_from_table(table: pa.Table) -> Iterator[ArchivedEvent]:
    """The events behind archived rows, one per (event_id, delivery); each rebuilt and
    checked against its ``event_id`` (raises :class:`CorruptArchive` naming the invoice)."""
    rows = table.to_pylist()
    groups: dict[tuple[str, str, str, int], list[dict]] = {}
    for row in rows:
        key = (row["event_id"], row["shard_id"], row["sequence_number"], row["sub_sequence_number"])
        groups.setdefault(key, []).append(row)
    for (event_id, shard_id, sequence_number, sub_sequence), lines in groups.items():
        first = lines[0]
        lines.sort(key=lambda r: r["line_no"])
        event = InvoiceEvent(
            invoice_no=first["invoice_no"],
            invoice_date=first["invoice_date"].isoformat(),
            customer_id=first["customer_id"],
            country=first["country"],
            lines=tuple(
                InvoiceLine(r["line_no"], r["stock_code"], r["description"], r["quantity"],
                            Decimal(r["unit_price"]),
                            None if r["line_invoice_date"] is None else r["line_invoice_date"].isoformat())
                for r in lines
            ),
            status=first.get("status"),
        )
        if event.event_id != event_id:
            raise CorruptArchive(f"archived invoice {first['invoice_no']} does not rebuild to event {event_id} "
                                 f"(got {event.event_id}): rows missing or altered")
        yield ArchivedEvent(event, shard_id, sequence_number, sub_sequence)
