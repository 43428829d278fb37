"""The file loader: one dropped file → invoice events on the stream, one outcome per file.

A shop's order system drops a CSV under ``transactions/year=…/month=…/day=…/`` in the
drop bucket; the object-created notification invokes this function. The file takes
the road every POST takes: its rows are read with the project's Kaggle reader
(:mod:`pipeline.kaggle`: UTF-8 or ISO-8859-1 line by line, either timestamp style),
grouped into invoice events (:class:`~pipeline.kaggle.InvoiceGrouper`) and put on the
Kinesis stream with the ingest function's producer, so DynamoDB, the archive and the
warehouse get them through the consumers that already exist. Nothing is written to a
sink from here.

* **Streamed.** The object is read as a stream (never whole): a pass to hash it, a pass
  to load it. Memory is the grouping window plus one PutRecords call.
* **Rows that cannot be used** go to the quarantine queue, one message per row with its
  file, line and reason (``source.consumer`` = ``batch``, which ``reconcile`` counts);
  nothing is dropped silently.
* **Idempotent by content.** The ledger (a DynamoDB table keyed by the file's SHA-256)
  records each file's outcome. A file whose content was loaded before (re-dropped, or
  the notification delivered twice) is archived and removed from the drop bucket and
  changes nothing else: no event, no second message. Events themselves are idempotent
  downstream (``event_id`` is a content digest), so a load cut short and retried is
  harmless.
* **One message per file** on the file-outcomes topic: its rows, invoices, lines,
  exact total and the rejected rows by reason, or why the file could not be read. The
  message is published after the ledger records the outcome and its id recorded after,
  as the order notifier does (a crash between the two sends it twice, never zero times).
* **Archived.** A loaded file is copied to the drop-archive bucket under the same key,
  then deleted from the drop bucket. A file that cannot be read at all (not a CSV, a
  missing column) stays where it is, with its failure in the ledger and the message.
* **Too large for one invocation**, a load pauses at an invoice boundary when the
  invocation's remaining time runs low, writes a continuation marker
  (``continuations/<sha256>/<part>.json``: the byte offset to resume from, the header,
  the counts so far and the invoices already sent) to the drop bucket, whose
  notification invokes the function again; the next part reads the object from that
  byte offset (an S3 ranged GET).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any, Protocol
from urllib.parse import unquote_plus

from pipeline.errors import SourceError
from pipeline.events import InvoiceEvent, money_str, size_problem
from pipeline.kaggle import COLUMNS, InvoiceGrouper, decoded_lines, parse_text_row
from pipeline.transactions import COLUMNS as TRANSACTION_COLUMNS
from pipeline.transactions import TransactionGrouper
from pipeline.transactions import parse_row as parse_transaction_row

log = logging.getLogger(__name__)

TRANSACTIONS_PREFIX = "transactions/"
CONTINUATIONS_PREFIX = "continuations/"
SEND_EVENTS = 250  # invoice events per producer call (about 5,000 lines)
MAX_REASONS = 20  # distinct rejection reasons a message lists; the rest are counted together
CONSUMER = "batch"
_QUOTED = re.compile(r" '[^']*'")


# ---- ports ----------------------------------------------------------------------------


class Files(Protocol):
    def open(self, bucket: str, key: str, offset: int = 0) -> IO[bytes]: ...
    def put_json(self, bucket: str, key: str, body: dict[str, Any]) -> None: ...
    def get_json(self, bucket: str, key: str) -> dict[str, Any]: ...
    def exists(self, bucket: str, key: str) -> bool: ...
    def copy(self, bucket: str, key: str, to_bucket: str) -> None: ...
    def delete(self, bucket: str, key: str) -> None: ...


class Ledger(Protocol):
    def get(self, sha256: str) -> dict[str, Any] | None: ...
    def put(self, sha256: str, item: dict[str, Any]) -> None: ...


class Publisher(Protocol):
    def publish(self, *, subject: str, message: str, attributes: dict[str, str]) -> str: ...


class Producer(Protocol):
    def send(self, events: Sequence[InvoiceEvent]) -> Any: ...


class Quarantine(Protocol):
    def send(self, *, reason: str, problems: list[dict[str, str]], source: dict[str, Any], data: bytes) -> None: ...


# ---- what a load counts ---------------------------------------------------------------


@dataclass
class Counts:
    rows: int = 0
    invoices: int = 0
    lines: int = 0
    total: Decimal = Decimal(0)
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    parts: int = 1

    def to_dict(self) -> dict[str, Any]:
        reasons = dict(self.reasons.most_common(MAX_REASONS))
        rest = sum(self.reasons.values()) - sum(reasons.values())
        if rest:
            reasons["(other reasons)"] = rest
        return {"rows": self.rows, "invoices": self.invoices, "lines": self.lines, "total": money_str(self.total),
                "rejected": self.rejected, "rejected_by_reason": reasons, "parts": self.parts}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counts:
        return cls(rows=int(data["rows"]), invoices=int(data["invoices"]), lines=int(data["lines"]),
                   total=Decimal(data["total"]), rejected=int(data["rejected"]),
                   reasons=Counter({k: int(v) for k, v in data.get("rejected_by_reason", {}).items()}),
                   parts=int(data.get("parts", 1)))


def reason_class(reason: str) -> str:
    """What a message counts a rejected row under: the reason without its values
    (``Quantity: must be an integer, got 'x'`` → ``Quantity: must be an integer``)."""
    parts = []
    for part in reason.split("; "):
        part = _QUOTED.sub("", part.split(", got ", 1)[0])  # the values, which differ row by row
        if part.startswith("invoice ") and " was complete" in part:
            part = "invoice was complete: a late row outside the grouping window"
        elif part.startswith("invoice ") and " has customer " in part:
            part = "invoice's customer or country contradicts its first row"
        elif part.startswith("expected ") and " fields, found " in part:
            part = "wrong number of fields"
        parts.append(part)
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class DroppedFile:
    bucket: str
    key: str
    size: int | None = None


def files_of(event: dict[str, Any]) -> list[DroppedFile]:
    """The objects an S3 event notification names (keys URL-decoded, as S3 encodes them)."""
    out = []
    for record in event.get("Records") or []:
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        key = (s3.get("object") or {}).get("key")
        if not bucket or key is None or not str(record.get("eventName", "")).startswith("ObjectCreated"):
            log.warning("not an object-created record; ignored", extra={"record": str(record)[:500]})
            continue
        out.append(DroppedFile(bucket, unquote_plus(key), (s3.get("object") or {}).get("size")))
    return out


# ---- reading with byte offsets ----------------------------------------------------------


class _CountingLines:
    """The lines of a byte stream, decoded by the Kaggle reader's own decoder, counting the bytes
    consumed so a row's end is a byte offset to resume from (the decoder pulls one raw line per
    decoded line, so the count is exact at every row the CSV reader returns)."""

    def __init__(self, fh: IO[bytes], offset: int):
        self._fh = fh
        self.position = offset

    def _raw(self) -> Iterator[bytes]:
        for raw in self._fh:
            self.position += len(raw)
            yield raw

    def __iter__(self) -> Iterator[str]:
        return decoded_lines(self._raw(), None)


@dataclass
class Outcome:
    file: DroppedFile
    status: str  # loaded | already | failed | paused
    counts: Counts | None = None
    error: str | None = None
    message_id: str | None = None


class FileLoader:
    def __init__(self, files: Files, ledger: Ledger, publisher: Publisher, producer: Producer,
                 quarantine: Quarantine, *, drop_bucket: str, archive_bucket: str,
                 dimensions: Any = None, send_events: int = SEND_EVENTS):
        self.files, self.ledger, self.publisher = files, ledger, publisher
        self.producer, self.quarantine = producer, quarantine
        self.drop_bucket, self.archive_bucket = drop_bucket, archive_bucket
        self.send_events = send_events
        self.dimensions = dimensions  # pipeline.transactions.Dimensions, for the transaction layout

    # ---- entry points -------------------------------------------------------------

    def handle(self, file: DroppedFile, *, should_pause: Callable[[], bool] = lambda: False) -> Outcome:
        if file.key.startswith(CONTINUATIONS_PREFIX):
            return self._continue(file, should_pause)
        if not file.key.startswith(TRANSACTIONS_PREFIX):
            log.warning("object outside transactions/ ignored", extra={"bucket": file.bucket, "key": file.key})
            return Outcome(file, "ignored")
        sha256 = self._hash(file)
        done = self.ledger.get(sha256)
        if done is not None and done.get("status") in ("loaded", "failed"):
            return self._already(file, sha256, done)
        if done is not None and done.get("status") == "loading" and done.get("key") != file.key:
            log.info("the same content is being loaded under another key; loading this copy too (its events are "
                     "the same events)", extra={"key": file.key, "loading_key": done.get("key")})
        self.ledger.put(sha256, {"status": "loading", "bucket": file.bucket, "key": file.key})
        return self._load(file, sha256, offset=0, header=None, counts=Counts(), emitted={}, should_pause=should_pause)

    def _continue(self, marker: DroppedFile, should_pause: Callable[[], bool]) -> Outcome:
        state = self.files.get_json(marker.bucket, marker.key)
        file = DroppedFile(state["bucket"], state["key"])
        counts = Counts.from_dict(state["counts"])
        counts.parts += 1
        done = self.ledger.get(state["sha256"])
        if done is not None and done.get("status") in ("loaded", "failed"):
            self.files.delete(marker.bucket, marker.key)  # a marker delivered twice
            return Outcome(file, "already", Counts.from_dict(done["counts"]) if done.get("counts") else None)
        outcome = self._load(file, state["sha256"], offset=int(state["offset"]), header=state["header"],
                             counts=counts, emitted=dict(state["emitted"]), should_pause=should_pause,
                             line_base=int(state["line_base"]))
        self.files.delete(marker.bucket, marker.key)
        return outcome

    # ---- the load -----------------------------------------------------------------

    def _hash(self, file: DroppedFile) -> str:
        digest = hashlib.sha256()
        with self.files.open(file.bucket, file.key) as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def _load(self, file: DroppedFile, sha256: str, *, offset: int, header: list[str] | None, counts: Counts,
              emitted: dict[str, str], should_pause: Callable[[], bool], line_base: int = 0) -> Outcome:
        """Rows from byte ``offset`` on (physical line ``line_base`` of the file) onto the stream."""
        name = f"s3://{file.bucket}/{file.key}"
        pending: list[InvoiceEvent] = []
        with self.files.open(file.bucket, file.key, offset) as fh:
            lines = _CountingLines(fh, offset)
            reader = csv.reader(lines)
            try:
                if header is None:
                    header = self._header(reader, name)
                layout = self._layout(header, name, emitted)
            except SourceError as exc:
                return self._failed(file, sha256, counts, str(exc))
            width = len(header)
            row_start, row_line = lines.position, reader.line_num
            rows_before = counts.rows  # a part always makes progress before it may pause
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    counts.rows += 1
                    self._quarantine_row(counts, name, line_base + reader.line_num, f"malformed CSV: {exc}", b"")
                    row_start, row_line = lines.position, reader.line_num
                    continue
                line = line_base + row_line + 1  # the row's first physical line
                if not values:
                    row_start, row_line = lines.position, reader.line_num
                    continue
                parsed: Any = None
                if len(values) == width:
                    parsed = layout.parse(values)
                    if (not isinstance(parsed, list) and layout.starts_new(parsed) and counts.rows > rows_before
                            and should_pause()):
                        # an invoice boundary: what is open is complete as far as this part can tell
                        pending.extend(layout.flush())
                        self._send(pending, counts, force=True)
                        return self._pause(file, sha256, row_start, line_base + row_line, header, counts,
                                           layout.emitted)
                counts.rows += 1
                if parsed is None:
                    self._quarantine_row(counts, name, line, f"expected {width} fields, found {len(values)}",
                                         _row_bytes(values))
                elif isinstance(parsed, list):
                    self._quarantine_row(counts, name, line, "; ".join(f"{p.field}: {p.reason}" for p in parsed),
                                         _row_bytes(values))
                else:
                    events, refused = layout.add(name, line, parsed)
                    pending.extend(events)
                    if refused is not None:
                        self._quarantine_row(counts, name, line, refused, _row_bytes(values))
                    self._send(pending, counts)
                row_start, row_line = lines.position, reader.line_num
        pending.extend(layout.flush())
        self._send(pending, counts, force=True)
        return self._loaded(file, sha256, counts)

    def _layout(self, header: list[str], name: str, emitted: dict[str, str]):
        if all(c in header for c in COLUMNS):
            return _KaggleLayout(header, emitted)
        if all(c in header for c in TRANSACTION_COLUMNS):
            if self.dimensions is None:
                raise SourceError(f"{name}: the transaction layout needs the warehouse's dimensions, which this "
                                  "loader was not given")
            return _TransactionLayout(header, emitted, self.dimensions)
        missing = [c for c in COLUMNS if c not in header]
        raise SourceError(f"{name}:1: neither layout: missing column(s) {', '.join(missing)} of the Kaggle layout "
                          f"({', '.join(COLUMNS)}), or columns of the transaction layout "
                          f"({', '.join(TRANSACTION_COLUMNS)})")

    @staticmethod
    def _header(reader, name: str) -> list[str]:
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(f"{name}: the file is empty") from None
        except csv.Error as exc:
            raise SourceError(f"{name}:1: not a CSV file ({exc})") from exc
        return [h.strip() for h in header]

    def _send(self, pending: list[InvoiceEvent], counts: Counts, *, force: bool = False) -> None:
        if not pending or (len(pending) < self.send_events and not force):
            return
        events: list[InvoiceEvent] = []
        for event in pending:
            problem = size_problem(event)
            if problem is not None:  # refused as the API refuses it, with the reason
                counts.rejected += len(event.lines)
                counts.reasons["invoice too large for one event"] += len(event.lines)
                self.quarantine.send(reason=f"invoice {event.invoice_no}: {problem.reason}",
                                     problems=[{"field": problem.field, "reason": problem.reason}],
                                     source={"consumer": CONSUMER, "invoice_no": event.invoice_no},
                                     data=b"")
                continue
            events.append(event)
        if events:
            self.producer.send(events)
        counts.invoices += len(events)
        counts.lines += sum(len(e.lines) for e in events)
        counts.total += sum((e.total for e in events), Decimal(0))
        pending.clear()

    def _quarantine_row(self, counts: Counts, source: str, line: int, reason: str, data: bytes) -> None:
        counts.rejected += 1
        counts.reasons[reason_class(reason)] += 1
        self.quarantine.send(reason=f"{source}:{line}: {reason}", problems=[{"field": "row", "reason": reason}],
                             source={"consumer": CONSUMER, "file": source, "line": line}, data=data)

    # ---- endings ------------------------------------------------------------------

    def _pause(self, file: DroppedFile, sha256: str, offset: int, line_base: int, header: list[str],
               counts: Counts, emitted: dict[str, str]) -> Outcome:
        marker = f"{CONTINUATIONS_PREFIX}{sha256}/{counts.parts + 1:04d}.json"
        self.files.put_json(self.drop_bucket, marker, {
            "bucket": file.bucket, "key": file.key, "sha256": sha256, "offset": offset, "line_base": line_base,
            "header": header,
            "counts": counts.to_dict(), "emitted": emitted})
        log.info("load paused; continues from a marker", extra={"key": file.key, "offset": offset, "marker": marker})
        return Outcome(file, "paused", counts)

    def _loaded(self, file: DroppedFile, sha256: str, counts: Counts) -> Outcome:
        self.files.copy(file.bucket, file.key, self.archive_bucket)
        summary = counts.to_dict()
        self.ledger.put(sha256, {"status": "loaded", "bucket": file.bucket, "key": file.key, "counts": summary})
        body = {"kind": "file-loaded", "file": f"s3://{file.bucket}/{file.key}", "sha256": sha256,
                "archived_to": f"s3://{self.archive_bucket}/{file.key}", **summary}
        subject = f"shopstream: {_short_name(file.key)} loaded, {counts.invoices:,} invoices, {counts.rejected:,} rejected"
        message_id = self.publisher.publish(subject=subject, message=json.dumps(body),
                                            attributes={"kind": "file-loaded", "key": file.key})
        self.ledger.put(sha256, {"status": "loaded", "bucket": file.bucket, "key": file.key, "counts": summary,
                                 "message_id": message_id})
        self.files.delete(file.bucket, file.key)
        return Outcome(file, "loaded", counts, message_id=message_id)

    def _failed(self, file: DroppedFile, sha256: str, counts: Counts, error: str) -> Outcome:
        self.ledger.put(sha256, {"status": "failed", "bucket": file.bucket, "key": file.key, "error": error})
        body = {"kind": "file-failed", "file": f"s3://{file.bucket}/{file.key}", "sha256": sha256, "error": error}
        message_id = self.publisher.publish(subject=f"shopstream: {_short_name(file.key)} could not be loaded",
                                            message=json.dumps(body), attributes={"kind": "file-failed", "key": file.key})
        self.ledger.put(sha256, {"status": "failed", "bucket": file.bucket, "key": file.key, "error": error,
                                 "message_id": message_id})
        return Outcome(file, "failed", counts, error=error, message_id=message_id)

    def _already(self, file: DroppedFile, sha256: str, done: dict[str, Any]) -> Outcome:
        """Content loaded (or refused) before: nothing is sent again; a loaded file's copy is
        archived (if its key is not there yet) and removed from the drop bucket."""
        if done["status"] == "failed":
            return Outcome(file, "already", error=done.get("error"), message_id=done.get("message_id"))
        if not self.files.exists(self.archive_bucket, file.key):
            self.files.copy(file.bucket, file.key, self.archive_bucket)
        if done.get("message_id") is None:  # the earlier load ended between its record and its message
            return self._loaded(file, sha256, Counts.from_dict(done["counts"]))
        self.files.delete(file.bucket, file.key)
        log.info("file content loaded before; nothing sent", extra={"key": file.key, "sha256": sha256})
        return Outcome(file, "already", Counts.from_dict(done["counts"]), message_id=done.get("message_id"))


class _KaggleLayout:
    """The Kaggle (UCI Online Retail) layout: rows carry their product's description and their
    customer's country, so they introduce new products and customers themselves."""

    def __init__(self, header: list[str], emitted: dict[str, str]):
        self._get = operator.itemgetter(*[header.index(c) for c in COLUMNS])
        self._grouper = InvoiceGrouper(emitted=emitted)
        self._previous: str | None = None

    @property
    def emitted(self) -> dict[str, str]:
        return self._grouper.emitted

    def parse(self, values: list[str]) -> Any:
        return parse_text_row(*self._get(values))

    def starts_new(self, parsed: Any) -> bool:
        return parsed.invoice_no != self._previous and not self._grouper.is_open(parsed.invoice_no)

    def add(self, source: str, line: int, parsed: Any) -> tuple[list[InvoiceEvent], str | None]:
        self._previous = parsed.invoice_no
        events = self._grouper.add(source, line, parsed)
        refused = None
        if self._grouper.errors:
            refused = "; ".join(e.reason for e in self._grouper.errors)
            self._grouper.errors.clear()
        return events, refused

    def flush(self) -> list[InvoiceEvent]:
        return self._grouper.flush()


class _TransactionLayout:
    """The transaction layout (:mod:`pipeline.transactions`), joined to the warehouse's dimensions."""

    def __init__(self, header: list[str], emitted: dict[str, str], dimensions: Any):
        self._get = operator.itemgetter(*[header.index(c) for c in TRANSACTION_COLUMNS])
        self._grouper = TransactionGrouper()
        self._grouper.ended = emitted
        self._dimensions = dimensions

    @property
    def emitted(self) -> dict[str, str]:
        return self._grouper.ended

    def parse(self, values: list[str]) -> Any:
        return parse_transaction_row(self._get(values), self._dimensions)

    def starts_new(self, parsed: Any) -> bool:
        return parsed.version_key != self._grouper.open_key

    def add(self, source: str, line: int, parsed: Any) -> tuple[list[InvoiceEvent], str | None]:
        return self._grouper.add(f"{source}:{line}", parsed)

    def flush(self) -> list[InvoiceEvent]:
        return self._grouper.flush()


def _row_bytes(values: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue().encode("utf-8")


def _short_name(key: str) -> str:
    """The file's name as an SNS subject may hold it (printable ASCII, the subject under 100 characters)."""
    name = (key.rsplit("/", 1)[-1] or key).encode("ascii", "replace").decode("ascii")
    name = "".join(c if c.isprintable() else "?" for c in name)
    return name if len(name) <= 40 else name[:39] + "~"
