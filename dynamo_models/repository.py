"""InvoiceRepository: the DynamoDB adapter of the invoice path (writes and reads).

AWS errors are translated here, at the edge: throttling, timeouts and items DynamoDB
leaves unprocessed become :class:`TransientError` (the consumer reports them and the
event source mapping redelivers); a missing table is a :class:`ConfigurationError`.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import PynamoDBException

from dynamo_models.invoice import PART_BYTES, InvoiceItem, decode_lines, encode_lines
from pipeline.errors import BadRequest, ConfigurationError, RejectedWrite, TransientError
from pipeline.events import (
    _INVOICE_NO,
    SCHEMA_VERSION,
    InvoiceEvent,
    InvoiceLine,
    is_adjustment,
    is_cancellation,
    money_str,
)
from pipeline.retry import backoff_delay

log = logging.getLogger(__name__)

BATCH_WRITE_LIMIT = 25
_MISSING_TABLE = {"ResourceNotFoundException"}
# answers about the items themselves (too large, an invalid attribute): the same request fails every time
_REJECTED = {"ValidationException", "SerializationException"}
_CONDITION_FAILED = "ConditionalCheckFailedException"
_CURSOR_KEYS = {"invoice_no", "part", "customer_id", "invoice_sort"}
_PART = re.compile(r"[0-9]{1,4}")
_INVOICE_SORT = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})#(.+)")


def line_to_api(line: InvoiceLine) -> dict[str, Any]:
    """A stored line as the query API returns it: the event's line plus its amount and kind."""
    return {**line.to_dict(), "amount": money_str(line.amount), "is_product": line.is_product}


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    invoice_no: str
    invoice_date: str
    customer_id: str | None
    country: str
    line_count: int
    total: Decimal
    is_cancellation: bool
    is_adjustment: bool
    has_non_product_lines: bool
    event_id: str
    status: str | None = None

    def to_api(self) -> dict[str, Any]:
        out = {
            "invoice_no": self.invoice_no,
            "invoice_date": self.invoice_date,
            "customer_id": self.customer_id,
            "country": self.country,
            "line_count": self.line_count,
            "total": money_str(self.total),
            "is_cancellation": self.is_cancellation,
            "is_adjustment": self.is_adjustment,
            "has_non_product_lines": self.has_non_product_lines,
        }
        if self.status is not None:
            out["status"] = self.status
        return out


@dataclass(frozen=True, slots=True)
class StoredInvoice:
    summary: InvoiceSummary
    lines: tuple[InvoiceLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    def to_api(self) -> dict[str, Any]:
        out = self.summary.to_api()
        out["total"] = money_str(self.total)  # the sum of the lines, by construction
        out["lines"] = [line_to_api(line) for line in self.lines]
        return out


@dataclass(frozen=True, slots=True)
class Page:
    invoices: list[InvoiceSummary]
    next_cursor: str | None


# ---- event → items ------------------------------------------------------------------


def invoice_items(event: InvoiceEvent) -> list[InvoiceItem]:
    """The items that store ``event``: part 0 (header, summary, first lines) and, for an
    invoice too big for one item, further parts of lines."""
    chunks = [encode_lines(event.lines_json())]
    parts = 1
    while any(len(chunk) > PART_BYTES for chunk in chunks):
        # aim below the limit from the compressed size seen, then check again
        parts = max(parts + 1, -(-sum(len(c) for c in chunks) * 5 // (PART_BYTES * 4)))
        size = -(-len(event.lines) // parts)
        chunks = [
            encode_lines("[" + ",".join(line.to_json_text() for line in event.lines[i : i + size]) + "]")
            for i in range(0, len(event.lines), size)
        ]
    event_id = event.event_id
    head = InvoiceItem(
        event.invoice_no,
        0,
        lines=chunks[0],
        schema_version=SCHEMA_VERSION,
        event_id=event_id,
        invoice_date=event.invoice_date,
        country=event.country,
        has_non_product_lines=event.has_non_product_lines,
        line_count=len(event.lines),
        total=event.total,
    )
    if len(chunks) > 1:
        head.parts = len(chunks)
    if event.status is not None:
        head.status = event.status
        head.version = event.version
    if event.customer_id is not None:
        head.customer_id = event.customer_id
        head.invoice_sort = f"{event.invoice_date}#{event.invoice_no}"
    rest = [InvoiceItem(event.invoice_no, i, lines=chunk, event_id=event_id) for i, chunk in enumerate(chunks[1:], 1)]
    return [head, *rest]


# ---- the adapter ----------------------------------------------------------------------


class InvoiceRepository:
    """Stores and reads invoices through the bound :class:`InvoiceItem` model."""

    def __init__(
        self,
        model: type[InvoiceItem] = InvoiceItem,
        *,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.model = model
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self.older_versions_skipped = 0  # versioned events not written: the table holds a newer version

    # -- writes --
    def put_invoices(self, events: Iterable[InvoiceEvent]) -> int:
        """Write every item of every event; returns the number of items written.

        Idempotent: keys and attributes are functions of the event, so a redelivered
        event rewrites identical items. Within one call the last event for an invoice
        wins (a BatchWriteItem request must not repeat a key) — for events with a status,
        the newest version (pipeline/events.py "Versions").

        An event with a status is written on its own, conditionally: only if the invoice
        is not stored, or its stored version is absent, smaller or equal (a redelivery).
        An older version is skipped: logged and counted in
        :attr:`older_versions_skipped`, not an error. Events without a status are written
        as before, unconditionally in batches.
        """
        latest: dict[str, InvoiceEvent] = {}
        for event in events:
            kept = latest.get(event.invoice_no)
            if kept is not None and kept.status is not None and event.status is not None and event.version < kept.version:
                self._skipped(event, kept.version)
                continue
            latest.pop(event.invoice_no, None)
            latest[event.invoice_no] = event
        plain = [event for event in latest.values() if event.status is None]
        written = self._write_all([item.serialize() for event in plain for item in invoice_items(event)])
        for event in latest.values():
            if event.status is not None:
                written += self._put_versioned(event)
        return written

    def _skipped(self, event: InvoiceEvent, newer: str | None) -> None:
        self.older_versions_skipped += 1
        log.info("skipped an older version of invoice %s", event.invoice_no,
                 extra={"invoice_no": event.invoice_no, "version": event.version, "stored_version": newer})

    def _put_versioned(self, event: InvoiceEvent) -> int:
        """Part 0 under the version condition, then the other parts; items written (0 if skipped)."""
        head, *rest = invoice_items(event)
        model = self.model
        condition = (model.invoice_no.does_not_exist() | model.version.does_not_exist()
                     | (model.version <= event.version))
        for attempt in range(1, self.max_attempts + 1):
            try:
                head.save(condition=condition)
                break
            except PynamoDBException as exc:
                code = getattr(exc, "cause_response_code", None)
                if code == _CONDITION_FAILED:
                    self._skipped(event, None)
                    return 0
                self._raise_for_write(exc, code, attempt, "PutItem")
                self._backoff(attempt)
        return 1 + self._write_all([item.serialize() for item in rest])

    def _write_all(self, requests: list[dict[str, Any]]) -> int:
        """Every item, in BatchWriteItem calls of at most BATCH_WRITE_LIMIT; how many."""
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            self._batch_write(requests[start : start + BATCH_WRITE_LIMIT])
        return len(requests)

    def _raise_for_write(self, exc: PynamoDBException, code: str | None, attempt: int, call: str) -> None:
        table = self.model.Meta.table_name
        if code in _MISSING_TABLE:
            raise ConfigurationError(f"DynamoDB table {table!r} does not exist") from exc
        if code in _REJECTED:
            raise RejectedWrite(f"DynamoDB refused {call} on {table}: {code}: "
                                f"{getattr(exc, 'cause_response_message', None) or exc}"[:500]) from exc
        if attempt == self.max_attempts:
            raise TransientError(f"{call} on {table} failed {attempt} times: {code or exc}") from exc

    def _batch_write(self, items: list[dict[str, Any]]) -> None:
        table = self.model.Meta.table_name
        pending = items
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.model._get_connection().batch_write_item(put_items=pending)
            except PynamoDBException as exc:
                code = getattr(exc, "cause_response_code", None)
                if code in _MISSING_TABLE:
                    raise ConfigurationError(f"DynamoDB table {table!r} does not exist") from exc
                if code in _REJECTED:
                    raise RejectedWrite(f"DynamoDB refused BatchWriteItem on {table}: {code}: "
                                        f"{getattr(exc, 'cause_response_message', None) or exc}"[:500]) from exc
                if attempt == self.max_attempts:
                    raise TransientError(f"BatchWriteItem on {table} failed {attempt} times: {code or exc}") from exc
                self._backoff(attempt)
                continue
            unprocessed = (response.get("UnprocessedItems") or {}).get(table) or []
            pending = [request["PutRequest"]["Item"] for request in unprocessed]
            if not pending:
                return
            if attempt == self.max_attempts:
                break
            log.info("retrying %d unprocessed items (attempt %d)", len(pending), attempt + 1)
            self._backoff(attempt)
        raise TransientError(f"{len(pending)} items still unprocessed by {table} after {self.max_attempts} attempts")

    def _backoff(self, attempt: int) -> None:
        self._sleep(backoff_delay(attempt, self.base_delay, self.max_delay))

    # -- reads --
    def get_invoice(self, invoice_no: str) -> StoredInvoice | None:
        for _ in range(3):
            items = self._read(lambda: list(self.model.query(invoice_no, consistent_read=True)))
            if not items:
                return None
            head = items[0]
            if head.part != 0 or head.schema_version is None:
                return None  # parts without a head: an invoice being written right now
            parts = int(head.parts or 1)
            wanted = [item for item in items if item.part < parts]
            if len(wanted) == parts and all(item.event_id == head.event_id for item in wanted):
                rows = [row for item in wanted for row in decode_lines(item.lines)]
                return StoredInvoice(_summary(head), tuple(_line(row) for row in rows))
            time.sleep(0.05)  # a newer version of a multi-part invoice is being written
        raise TransientError(f"invoice {invoice_no} is being rewritten; retry")

    def customer_invoices(
        self,
        customer_id: str,
        *,
        date_from: str | None,
        date_to: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """A page of a customer's invoices, newest first, within ``[date_from, date_to]``
        (ISO date-times; either may be None)."""
        low = date_from or "0000"
        high = f"{date_to}#~" if date_to else "9999"
        start_key = decode_cursor(cursor, customer_id, low, high) if cursor else None
        index = self.model.by_customer

        def run():
            result = index.query(
                customer_id,
                self.model.invoice_sort.between(low, high),
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start_key,
            )
            return list(result), result.last_evaluated_key

        items, last_key = self._read(run)
        return Page([_summary(item) for item in items], encode_cursor(last_key) if last_key else None)

    def customer_exists(self, customer_id: str) -> bool:
        return bool(self._read(lambda: list(self.model.by_customer.query(customer_id, limit=1, page_size=1))))

    def _read(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except PynamoDBException as exc:
            code = getattr(exc, "cause_response_code", None)
            if code in _MISSING_TABLE:
                raise ConfigurationError(f"DynamoDB table {self.model.Meta.table_name!r} does not exist") from exc
            raise TransientError(f"DynamoDB read failed: {code or exc}") from exc


def _summary(item: InvoiceItem) -> InvoiceSummary:
    return InvoiceSummary(
        invoice_no=item.invoice_no,
        invoice_date=item.invoice_date,
        customer_id=item.customer_id,
        country=item.country,
        line_count=int(item.line_count),
        total=item.total,
        is_cancellation=is_cancellation(item.invoice_no),
        is_adjustment=is_adjustment(item.invoice_no),
        has_non_product_lines=bool(item.has_non_product_lines),
        event_id=item.event_id,
        status=item.status,
    )


def _line(row: dict[str, Any]) -> InvoiceLine:
    return InvoiceLine(row["line_no"], row["stock_code"], row.get("description"), row["quantity"],
                       Decimal(row["unit_price"]), row.get("invoice_date"))


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":"), sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, customer_id: str, low: str = "0000", high: str = "9999") -> dict[str, Any]:
    """The DynamoDB start key inside a cursor this API issued for this customer's listing
    between ``low`` and ``high``, checked down to every attribute's type and form: a
    tampered cursor is a 400 here, never a request DynamoDB refuses (which would read as
    "retry")."""
    not_ours = BadRequest("cursor", "is not a cursor issued by this API")
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise not_ours from None
    if not isinstance(key, dict) or set(key) != _CURSOR_KEYS:
        raise not_ours
    invoice_no, part = key["invoice_no"], key["part"]
    sort, customer = key["invoice_sort"], key["customer_id"]
    if not (
        _attribute(invoice_no, "S") and _INVOICE_NO.fullmatch(invoice_no["S"])
        and _attribute(part, "N") and _PART.fullmatch(part["N"])
        and _attribute(customer, "S") and _attribute(sort, "S")
    ):
        raise not_ours
    match = _INVOICE_SORT.fullmatch(sort["S"])
    if match is None or match.group(2) != invoice_no["S"]:
        raise not_ours
    if customer["S"] != customer_id:
        raise BadRequest("cursor", "belongs to another customer's listing")
    if not low <= sort["S"] <= high:
        raise BadRequest("cursor", "belongs to a listing of other dates (keep from and to as they were)")
    return key


def _attribute(value: Any, kind: str) -> bool:
    """``{"S": "..."}``-shaped, one attribute value of this type and nothing else."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(kind), str)
