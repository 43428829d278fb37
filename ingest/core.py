"""What POST /events does, independent of Lambda and of Kinesis (the producer is a port).

The body is one JSON item or an array of items. An item is either an invoice event (the
contract in :mod:`pipeline.events`) or a raw row with the Kaggle CSV's column names; raw
rows of one invoice in one request are grouped into one event (a request must carry all
the rows of an invoice it mentions).

Valid items are accepted and invalid ones are listed with their index, field and reason,
and are not written. An invoice is never half-written: if any row of an invoice is
invalid, or its rows contradict each other, all of that invoice's rows are rejected; so
is an invoice too large for one Kinesis record (:data:`pipeline.events.MAX_EVENT_BYTES`).

Only a producer that owns an invoice may send it: the first producer to send an invoice
number owns it (:mod:`ingest.ownership`), and another producer's items for it are
rejected like invalid ones, with the field ``invoice_no`` and the reason.

The answer: 202 when every item was accepted; 207 when some were written and some
rejected (``accepted.indexes`` lists the items written, ``rejected`` the others with
their problems); 400 when none was accepted or the body as a whole is unusable; 403 when
none was accepted and every rejection is an invoice another producer owns; 413 for a
body over the size limit.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.errors import InvalidEvent, Problem, ShopstreamError
from pipeline.events import InvalidJson, InvoiceEvent, load_json, size_problem
from pipeline.kaggle import SourceLine, group_rows, parse_row

MAX_LISTED_REJECTIONS = 1000


class PayloadTooLarge(ShopstreamError):
    def __init__(self, size: int, limit: int):
        self.size, self.limit = size, limit
        super().__init__(f"request body is {size} bytes; the limit is {limit} bytes")


class InvalidRequest(ShopstreamError):
    """The body as a whole is unusable (not JSON, not an object or array, empty)."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(f"{problem.field}: {problem.reason}")


class Producer(Protocol):
    def send(self, events: Sequence[InvoiceEvent]) -> Any: ...


class Ownership(Protocol):
    def claim(self, producer: str, invoice_nos: Iterable[str]) -> set[str]: ...


@dataclass
class Rejection:
    index: int
    problems: list[Problem]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "problems": [p.to_dict() for p in self.problems]}


@dataclass
class ParsedBody:
    items: int
    events: list[InvoiceEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    accepted_indexes: list[int] = field(default_factory=list)
    indexes_of: dict[str, list[int]] = field(default_factory=dict)  # invoice number → its items

    @property
    def lines(self) -> int:
        return sum(len(e.lines) for e in self.events)


@dataclass
class IngestOutcome:
    status: int
    body: dict[str, Any]


def parse_body(body: str | bytes, *, max_bytes: int) -> ParsedBody:
    size = len(body.encode("utf-8", "surrogatepass")) if isinstance(body, str) else len(body)
    if size > max_bytes:
        raise PayloadTooLarge(size, max_bytes)
    if not body or not body.strip():
        raise InvalidRequest(Problem("body", "is empty; send a JSON object or array of invoice events or raw rows"))
    try:
        data = load_json(body)
    except InvalidJson as exc:
        raise InvalidRequest(Problem("body", str(exc))) from None
    items = data if isinstance(data, list) else [data]
    if not isinstance(data, (list, dict)):
        raise InvalidRequest(Problem("body", f"must be a JSON object or array, got {type(data).__name__}"))
    if not items:
        raise InvalidRequest(Problem("body", "is an empty array; send at least one item"))
    return parse_items(items)


def parse_items(items: list[Any]) -> ParsedBody:
    parsed = ParsedBody(items=len(items))
    rejected: dict[int, list[Problem]] = {}
    candidates: list[tuple[list[int], InvoiceEvent]] = []
    rows: list[tuple[int, SourceLine]] = []
    bad_row_invoices: dict[str, int] = {}

    for index, item in enumerate(items):
        if not isinstance(item, dict):
            rejected[index] = [Problem("$", f"must be a JSON object, got {type(item).__name__}")]
        elif "InvoiceNo" in item:
            row = parse_row(item)
            if isinstance(row, list):
                rejected[index] = row
                invoice_no = item.get("InvoiceNo")
                if isinstance(invoice_no, (str, int)) and not isinstance(invoice_no, bool):
                    bad_row_invoices.setdefault(str(invoice_no).strip(), index)
            else:
                rows.append((index, row))
        else:
            try:
                candidates.append(([index], InvoiceEvent.from_dict(item)))
            except InvalidEvent as exc:
                rejected[index] = exc.problems

    grouped, conflicts = group_rows([(i, row) for i, row in rows if row.invoice_no not in bad_row_invoices])
    for i, problem in conflicts:
        rejected[i] = [problem]
    conflicted = {row.invoice_no for i, row in rows if i in rejected}
    for i, row in rows:  # every other row of a rejected invoice goes with it
        if i in rejected:
            continue
        if row.invoice_no in bad_row_invoices:
            reason = f"rejected with its invoice: item {bad_row_invoices[row.invoice_no]} of invoice {row.invoice_no} is invalid"
            rejected[i] = [Problem("InvoiceNo", reason)]
        elif row.invoice_no in conflicted:
            rejected[i] = [Problem("InvoiceNo", f"rejected with its invoice: rows of invoice {row.invoice_no} contradict each other")]
    candidates.extend(grouped)  # group_rows leaves out invoices whose rows conflict

    # One invoice, one event per request: identical repeats are sent once, and a
    # second, different version of an invoice in the same request is rejected.
    chosen: dict[str, tuple[int, InvoiceEvent]] = {}
    for indexes, event in sorted(candidates, key=lambda c: c[0][0]):
        seen = chosen.get(event.invoice_no)
        if seen is None:
            chosen[event.invoice_no] = (indexes[0], event)
        elif seen[1].event_id != event.event_id:
            for i in indexes:
                rejected[i] = [Problem("invoice_no", f"invoice {event.invoice_no} already appears at item {seen[0]} "
                                                     "with different content")]
    # An event must fit one Kinesis record: a larger invoice is refused whole, every item of it.
    indexes_of: dict[str, list[int]] = {}
    for indexes, event in candidates:
        indexes_of.setdefault(event.invoice_no, []).extend(indexes)
    for invoice_no, (first, event) in list(chosen.items()):
        problem = size_problem(event, "lines" if "InvoiceNo" not in items[first] else "InvoiceNo")
        if problem is not None:
            del chosen[invoice_no]
            for i in indexes_of[invoice_no]:
                rejected.setdefault(i, [problem])
    parsed.events = [event for _, event in chosen.values()]
    parsed.indexes_of = {event.invoice_no: indexes_of[event.invoice_no] for event in parsed.events}
    parsed.rejections = [Rejection(i, rejected[i]) for i in sorted(rejected)]
    parsed.accepted_indexes = [i for i in range(len(items)) if i not in rejected]
    return parsed


FOREIGN = "was produced by another producer; only its producer may send it again"


def refuse_foreign(parsed: ParsedBody, refused: set[str]) -> None:
    """Moves the events of invoices another producer owns to the rejections."""
    if not refused:
        return
    rejected = {r.index: r for r in parsed.rejections}
    for invoice_no in refused:
        for i in parsed.indexes_of.pop(invoice_no, []):
            rejected.setdefault(i, Rejection(i, [Problem("invoice_no", f"invoice {invoice_no} {FOREIGN}")]))
    parsed.events = [e for e in parsed.events if e.invoice_no not in refused]
    parsed.rejections = [rejected[i] for i in sorted(rejected)]
    parsed.accepted_indexes = [i for i in parsed.accepted_indexes if i not in rejected]


def _only_foreign(rejections: list[Rejection]) -> bool:
    return all(p.field == "invoice_no" and p.reason.endswith(FOREIGN) for r in rejections for p in r.problems)


class IngestService:
    def __init__(self, producer: Producer, *, max_body_bytes: int, ownership: Ownership | None = None):
        self._producer = producer
        self._ownership = ownership
        self.max_body_bytes = max_body_bytes

    def ingest(self, body: str | bytes, producer_id: str | None = None) -> IngestOutcome:
        """``producer_id``: the verified producer (None: the API runs without authorization,
        and no ownership is checked or recorded)."""
        parsed = parse_body(body, max_bytes=self.max_body_bytes)
        if producer_id is not None and self._ownership is not None and parsed.events:
            refuse_foreign(parsed, self._ownership.claim(producer_id, [e.invoice_no for e in parsed.events]))
        sent = self._producer.send(parsed.events) if parsed.events else None
        accepted = {"items": parsed.items - len(parsed.rejections), "events": len(parsed.events), "lines": parsed.lines}
        if sent is not None and getattr(sent, "records", None) is not None:
            accepted["records"] = sent.records
        if not parsed.rejections:
            return IngestOutcome(202, {"accepted": accepted, "rejected": []})
        listed = parsed.rejections[:MAX_LISTED_REJECTIONS]
        if parsed.events:  # some written: 207, and which ones, so a client resends only the rest
            accepted["indexes"] = parsed.accepted_indexes
        status = 207 if parsed.events else 403 if _only_foreign(parsed.rejections) else 400
        return IngestOutcome(
            status,
            {
                "message": (
                    f"{len(parsed.rejections)} of {parsed.items} items rejected (not written); "
                    f"{accepted['items']} accepted" + (" and written" if parsed.events else "")
                ),
                "accepted": accepted,
                "rejected": [r.to_dict() for r in listed],
                "rejected_total": len(parsed.rejections),
            },
        )
