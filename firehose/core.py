"""What the Firehose transformation does with each record (pure: no Lambda, no AWS).

Firehose reads the events stream, de-aggregates the KPL records (one Firehose record per
invoice event) and calls the transformation Lambda with batches of them. Each record is
turned into the invoice's staging rows: one JSON array per line, its elements the values
of ``warehouse.schema.STAGING_COLUMN_NAMES`` in that order (the COPY's JSONPaths file
maps ``$[i]`` to column i), each array terminated by a newline (Firehose concatenates the
records' outputs without delimiters before the COPY).

Size: an invoice event's lines come back ~2.2× larger as staging rows (measured over the
full dataset: 2,647 bytes of event per invoice on average → ~5.9 KB of rows; the worst
invoice ~2.5×), ~3× once base64-encoded, so a 1 MB call (Firehose's default processor
buffer) answers with ~3 MB, well under the 6 MB response cap. As keyed objects the rows
were ~4.5× (the column names repeated on every row) and a 1 MB call failed the cap.

Per record, one of Firehose's three results:

* ``Ok`` — a valid invoice event; its data is the NDJSON of its lines;
* ``Dropped`` — a well-formed event of another ``event_type`` than ``invoice``: the
  stream may carry event types the warehouse does not model, and they are not facts of
  this table (counted and logged, never silently);
* ``ProcessingFailed`` — anything the contract rejects (not JSON, schema violations,
  binary floats for money, …). Firehose writes such records, unchanged, under the error
  prefix's ``processing-failed/`` folder; the reason is logged with the record id and can
  always be recomputed from the record by the same contract (``shopstream reconcile``
  does, to name it).

Values are written so every COPY loads them exactly: money as JSON strings of its plain
decimal text (``"2.55"``: Redshift's COPY reads a quoted number into DECIMAL as the text
it is, and no JSON reader can take it through a binary float on the way), integers as
JSON numbers, timestamps as ``YYYY-MM-DD HH:MM:SS`` strings (``TIMEFORMAT 'auto'``),
booleans as JSON booleans, a missing customer or description as ``null``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from json.encoder import encode_basestring as _json_str

from pipeline.errors import InvalidEvent
from pipeline.events import EVENT_TYPE, InvalidJson, InvoiceEvent, load_json, money_str, shown
from warehouse.schema import SIZE_CLASSES, source_sequence

OK, DROPPED, PROCESSING_FAILED = "Ok", "Dropped", "ProcessingFailed"
DEFAULT_MEDIUM_FROM = Decimal("10")
DEFAULT_LARGE_FROM = Decimal("100")


@dataclass(frozen=True, slots=True)
class SizeClasses:
    """A line's size class by the absolute value of its amount (a cancellation line is
    as large as the sale it cancels): below ``medium_from`` Small, below ``large_from``
    Medium, else Large."""

    medium_from: Decimal = DEFAULT_MEDIUM_FROM
    large_from: Decimal = DEFAULT_LARGE_FROM

    def __post_init__(self) -> None:
        if not (Decimal(0) < self.medium_from < self.large_from):
            raise ValueError(f"size class thresholds must satisfy 0 < medium ({self.medium_from}) "
                             f"< large ({self.large_from})")

    def classify(self, amount: Decimal) -> str:
        size = abs(amount)
        if size < self.medium_from:
            return SIZE_CLASSES[0]
        if size < self.large_from:
            return SIZE_CLASSES[1]
        return SIZE_CLASSES[2]


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One Firehose record: the invoice event's bytes and where it was read."""

    record_id: str
    data: bytes
    sequence_number: str | None = None
    subsequence_number: int = 0
    arrival_ms: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    record_id: str
    result: str           # Ok | Dropped | ProcessingFailed
    data: bytes = b""     # the NDJSON rows for Ok; empty otherwise
    reason: str = ""      # why Dropped or ProcessingFailed
    invoice_no: str | None = None
    lines: int = 0


def _timestamp(iso: str) -> str:
    return iso.replace("T", " ", 1)


def _arrival(ms: int) -> str:
    from datetime import datetime

    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def staging_rows(event: InvoiceEvent, *, sequence: str, arrived_at: str, sizes: SizeClasses) -> bytes:
    """The NDJSON staging rows of one invoice event: one array per line, in STAGING_COLUMN_NAMES order."""
    head = f'["{event.event_id}",{_json_str(event.invoice_no)},'
    invoice_date = _timestamp(event.invoice_date)
    customer = "null" if event.customer_id is None else _json_str(event.customer_id)
    middle = f',"{invoice_date}",{customer},{_json_str(event.country)},'
    flags = f'{"true" if event.is_cancellation else "false"},{"true" if event.is_adjustment else "false"},'
    status = "null" if event.status is None else f'"{event.status}"'
    tail = f',"{sequence}","{arrived_at}",{status},"{event.version}"]\n'
    out: list[str] = []
    for line in event.lines:
        amount = line.amount
        description = "null" if line.description is None else _json_str(line.description)
        out.append(
            f'{head}{line.line_no}{middle}{_json_str(line.stock_code)},{description},{line.quantity},'
            f'"{money_str(line.unit_price)}","{money_str(amount)}","{sizes.classify(amount)}",{flags}'
            f'{"true" if line.is_product else "false"}{tail}'
        )
    return "".join(out).encode("utf-8")


def _other_event_type(data: bytes) -> str | None:
    """The event_type of a well-formed event that is not an invoice event, else None."""
    try:
        decoded = load_json(data)
    except InvalidJson:
        return None
    if isinstance(decoded, dict) and isinstance(decoded.get("event_type"), str) and decoded["event_type"] != EVENT_TYPE:
        return decoded["event_type"]
    return None


class Transformer:
    def __init__(self, sizes: SizeClasses = SizeClasses()):
        self.sizes = sizes

    def transform(self, records: Iterable[SourceRecord]) -> list[Outcome]:
        return [self.transform_one(record) for record in records]

    def transform_one(self, record: SourceRecord) -> Outcome:
        try:
            event = InvoiceEvent.from_json(record.data)
        except InvalidEvent as exc:
            other = _other_event_type(record.data)
            if other is not None:
                return Outcome(record.record_id, DROPPED, reason=f"event_type {shown(other)} is not loaded into the warehouse")
            return Outcome(record.record_id, PROCESSING_FAILED, reason=f"invalid invoice event: {exc}")
        except Exception as exc:  # noqa: BLE001 - pure decoding: it would fail the same on every retry
            return Outcome(record.record_id, PROCESSING_FAILED,
                           reason=f"event could not be decoded: {type(exc).__name__}: {exc}"[:500])
        try:
            if record.sequence_number is not None:
                sequence = source_sequence(record.sequence_number, record.subsequence_number)
            else:  # not from a Kinesis source: order by arrival time
                sequence = source_sequence(str(record.arrival_ms), 0)
        except ValueError as exc:
            return Outcome(record.record_id, PROCESSING_FAILED, reason=str(exc), invoice_no=event.invoice_no)
        rows = staging_rows(event, sequence=sequence, arrived_at=_arrival(record.arrival_ms), sizes=self.sizes)
        return Outcome(record.record_id, OK, rows, invoice_no=event.invoice_no, lines=len(event.lines))
