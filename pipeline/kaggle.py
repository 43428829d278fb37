"""Reading the Kaggle "ecommerce-data" set (UCI Online Retail) into invoice events.

Sources, all streamed (never loaded whole):

* the ``.zip`` exactly as Kaggle serves it (``data.csv`` inside; every ``.csv`` member is read),
* a single ``.csv`` (or ``.csv.gz``),
* a directory of CSVs (read in name order, e.g. the 305 daily files),
* a glob pattern (``data/by-day/2011-0*.csv``).

Both encodings in circulation are handled line by line: UTF-8 first, ISO-8859-1 when a
line is not valid UTF-8 (Kaggle's file is ISO-8859-1: ``£`` is the single byte 0xA3).
Both timestamp styles are accepted (Kaggle ``12/1/2010 8:26``, ISO ``2010-12-01 08:26:00``).

Rows become invoice events by :class:`InvoiceGrouper`. Rows of an invoice are contiguous
in the source except in rare cases (one invoice of the real data is split by 6 rows), so
an invoice is emitted once no row of it has been seen for ``window`` rows: memory stays
bounded and nothing is split. Line numbers are positions in the source, so repeated
identical lines are kept as distinct lines. Every row that cannot be used is reported as
a :class:`~pipeline.errors.SourceRowError` with its file and line; nothing is dropped
silently.
"""
from __future__ import annotations

import csv
import glob
import gzip
import operator
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import IO, Any

from pipeline.errors import Problem, SourceError, SourceRowError
from pipeline.events import (
    _INVOICE_NO,
    MAX_TEXT,
    InvoiceEvent,
    build_event,
    normalize_customer_id,
    normalize_timestamp,
    parse_price,
    parse_quantity,
    shown,
    text_problem,
)

COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
DEFAULT_GROUP_WINDOW = 5_000

_KAGGLE_DATETIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?")


@lru_cache(maxsize=65_536)
def parse_timestamp(value: str) -> str | None:
    """Either source style → ISO 8601 (``2010-12-01T08:26:00``); None if neither."""
    text = value.strip()
    m = _KAGGLE_DATETIME.fullmatch(text)
    if m is not None:
        month, day, year, hour, minute, second = m.groups()
        return normalize_timestamp(f"{year}-{int(month):02d}-{int(day):02d} {int(hour):02d}:{minute}:{second or '00'}")
    return normalize_timestamp(text)


@dataclass(frozen=True, slots=True)
class SourceLine:
    """One line of an invoice as read from a source row, validated."""

    invoice_no: str
    customer_id: str | None
    country: str
    stock_code: str
    description: str | None
    quantity: int
    unit_price: Decimal
    invoice_date: str

    def as_line(self) -> tuple[str, str | None, int, Decimal, str]:
        return (self.stock_code, self.description, self.quantity, self.unit_price, self.invoice_date)


def parse_row(row: Mapping[str, Any]) -> SourceLine | list[Problem]:
    """Validate one raw row (Kaggle column names; values as CSV text or JSON values)."""
    values = [row.get(c) for c in COLUMNS]
    if all(v is None or isinstance(v, str) for v in values):
        return parse_text_row(*values)  # type: ignore[arg-type]
    return parse_text_row(*(_as_text(c, v) for c, v in zip(COLUMNS, values)))


def _as_text(column: str, value: Any) -> Any:
    """JSON values of a raw row, as the CSV would have spelt them (bools stay invalid)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if column == "CustomerID":
            return value  # read as a number by normalize_customer_id, range first
        if value.is_finite() and -30 <= value.adjusted() <= 30:
            return format(value, "f")
        return str(value)  # 1E+1000000 stays short, and the range check refuses it
    return value


def parse_text_row(
    invoice_no: Any, stock_code: Any, description: Any, quantity: Any,
    invoice_date: Any, unit_price: Any, customer_id: Any, country: Any,
) -> SourceLine | list[Problem]:
    """Validate one row given column by column (the CSV path: all text, mostly cached)."""
    header = _header(invoice_no, customer_id, country) if _hashable(invoice_no, customer_id, country) else None
    qty = _quantity(quantity) if isinstance(quantity, str) else _type_problem("Quantity", quantity, "an integer")
    price = _price(unit_price) if isinstance(unit_price, str) else _type_problem("UnitPrice", unit_price, "a decimal")
    when = parse_timestamp(invoice_date) if isinstance(invoice_date, str) else None
    if (
        isinstance(header, tuple) and type(qty) is int and type(price) is Decimal and when is not None
        and isinstance(stock_code, str) and stock_code.strip() and stock_code.isascii() and len(stock_code) <= MAX_TEXT
        and (description is None or (isinstance(description, str) and description.isascii() and len(description) <= MAX_TEXT))
    ):
        return SourceLine(header[0], header[1], header[2], stock_code, description or None, qty, price, when)

    problems: list[Problem] = []
    if header is None:
        problems.append(Problem("InvoiceNo", "must be text"))
    elif isinstance(header, list):
        problems.extend(header)
    if not isinstance(stock_code, str) or not stock_code.strip():
        problems.append(Problem("StockCode", "is required" if stock_code in (None, "") else "must be text"))
    elif (reason := text_problem(stock_code)) is not None:
        problems.append(Problem("StockCode", reason))
    if description is not None and not isinstance(description, str):
        problems.append(Problem("Description", f"must be text, got {type(description).__name__}"))
    elif description is not None and (reason := text_problem(description)) is not None:
        problems.append(Problem("Description", reason))
    if isinstance(qty, str):
        problems.append(Problem("Quantity", qty))
    if isinstance(price, str):
        problems.append(Problem("UnitPrice", price))
    if when is None:
        problems.append(Problem("InvoiceDate", f"must look like 12/1/2010 8:26 or 2010-12-01 08:26:00, got {shown(invoice_date)}"))
    if not problems:  # non-ASCII text, checked and valid
        return SourceLine(header[0], header[1], header[2], stock_code, description or None, qty, price, when)  # type: ignore[index,arg-type]
    return problems


def _hashable(*values: Any) -> bool:
    return all(v is None or isinstance(v, (str, bool, int, Decimal)) for v in values)


def _type_problem(column: str, value: Any, expected: str) -> str:
    if value is None or value == "":
        return "is required"
    return f"must be {expected}, got {type(value).__name__}"


@lru_cache(maxsize=65_536)
def _header(invoice_no: Any, customer_id: Any, country: Any) -> tuple[str, str | None, str] | list[Problem]:
    problems: list[Problem] = []
    if not isinstance(invoice_no, str) or not invoice_no.strip():
        problems.append(Problem("InvoiceNo", "is required" if invoice_no in (None, "") else "must be text"))
    elif _INVOICE_NO.fullmatch(invoice_no.strip()) is None:
        problems.append(Problem("InvoiceNo", f"must be letters and digits, got {shown(invoice_no)}"))
    customer = normalize_customer_id(customer_id)
    if isinstance(customer, Problem):
        problems.append(Problem("CustomerID", customer.reason))
    if not isinstance(country, str) or not country.strip():
        problems.append(Problem("Country", "is required"))
    elif (reason := text_problem(country)) is not None:
        problems.append(Problem("Country", reason))
    if problems:
        return problems
    return invoice_no.strip(), customer, country  # type: ignore[union-attr,return-value]


@lru_cache(maxsize=65_536)
def _quantity(text: str) -> int | str:
    return parse_quantity(text) if text.strip() else "is required"


@lru_cache(maxsize=65_536)
def _price(text: str) -> Decimal | str:
    return parse_price(text) if text.strip() else "is required"


# ---- sources ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceRow:
    source: str
    line: int
    values: tuple[str, ...] | None  # in COLUMNS order; None when the row is unreadable
    error: str | None = None


def resolve_sources(path: str) -> list[str]:
    """The files a path stands for: a file, a directory's CSVs, or a glob's matches."""
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, name)
            for name in os.listdir(path)
            if name.lower().endswith((".csv", ".csv.gz", ".zip"))
        )
        if not files:
            raise SourceError(f"{path}: directory holds no .csv or .zip files")
        return files
    if os.path.isfile(path):
        return [path]
    if any(ch in path for ch in "*?["):
        files = sorted(f for f in glob.glob(path) if os.path.isfile(f))
        if not files:
            raise SourceError(f"{path}: pattern matches no files")
        return files
    raise SourceError(f"{path}: no such file or directory")


def iter_source_rows(path: str, *, encoding: str | None = None) -> Iterator[SourceRow]:
    """Every data row of every file behind ``path``, with its file and line number."""
    for file in resolve_sources(path):
        if file.lower().endswith(".zip"):
            yield from _iter_zip(file, encoding)
        elif file.lower().endswith(".gz"):
            with gzip.open(file, "rb") as fh:
                yield from _iter_csv(fh, file, encoding)
        else:
            with open(file, "rb") as fh:
                yield from _iter_csv(fh, file, encoding)


def _iter_zip(file: str, encoding: str | None) -> Iterator[SourceRow]:
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{file}: not a readable zip archive ({exc})") from exc
    with archive:
        members = sorted(n for n in archive.namelist() if n.lower().endswith(".csv") and not n.startswith("__MACOSX/"))
        if not members:
            raise SourceError(f"{file}: the archive holds no .csv file (Kaggle's holds data.csv)")
        for member in members:
            with archive.open(member) as fh:
                yield from _iter_csv(fh, f"{file}!{member}", encoding)


def decoded_lines(lines: Iterable[bytes], encoding: str | None) -> Iterator[str]:
    first = True
    for raw in lines:
        if encoding is not None:
            text = raw.decode(encoding)
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("iso-8859-1")
        if first:
            text = text.lstrip("\ufeff")
            first = False
        yield text


def _iter_csv(fh: IO[bytes], name: str, encoding: str | None) -> Iterator[SourceRow]:
    reader = csv.reader(decoded_lines(fh, encoding))
    try:
        header = next(reader)
    except StopIteration:
        raise SourceError(f"{name}: the file is empty") from None
    except csv.Error as exc:
        raise SourceError(f"{name}:1: not a CSV file ({exc})") from exc
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise SourceError(f"{name}:1: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    index = [header.index(c) for c in COLUMNS]
    getter = operator.itemgetter(*index)
    width = len(header)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield SourceRow(name, reader.line_num, None, f"malformed CSV: {exc}")
            continue
        if not values:
            continue
        if len(values) != width:
            yield SourceRow(name, reader.line_num, None, f"expected {width} fields, found {len(values)}")
            continue
        yield SourceRow(name, reader.line_num, getter(values))


# ---- grouping ---------------------------------------------------------------------------


@dataclass(slots=True)
class _OpenInvoice:
    first: SourceLine
    where: str
    lines: list[tuple[str, str | None, int, Decimal, str]] = field(default_factory=list)
    last_row: int = 0


class InvoiceGrouper:
    """Turns a stream of source lines into invoice events (see the module docstring)."""

    def __init__(self, window: int = DEFAULT_GROUP_WINDOW, *, emitted: dict[str, str] | None = None):
        """``emitted``: invoice → where its first row was, for invoices already sent (by an earlier
        part of the same file): a later row of one is refused, never sent as a second, partial copy."""
        if window < 1:
            raise ValueError("window must be at least 1 row")
        self.window = window
        self.errors: list[SourceRowError] = []
        self.rows_read = 0
        self._open: dict[str, _OpenInvoice] = {}
        self._emitted: dict[str, str] = {} if emitted is None else emitted

    @property
    def emitted(self) -> dict[str, str]:
        return self._emitted

    def is_open(self, invoice_no: str) -> bool:
        return invoice_no in self._open

    def add(self, source: str, line: int, parsed: SourceLine) -> list[InvoiceEvent]:
        self.rows_read += 1
        current = self._open.get(parsed.invoice_no)
        if current is None:
            where = self._emitted.get(parsed.invoice_no)
            if where is not None:
                self.errors.append(
                    SourceRowError(
                        source, line,
                        f"invoice {parsed.invoice_no} (first row at {where}) was complete: no row of it in the "
                        f"{self.window} rows before this one; raise the grouping window to keep this row",
                    )
                )
                return self._flush_stale()
            current = _OpenInvoice(parsed, f"{source}:{line}")
            self._open[parsed.invoice_no] = current
            current.lines.append(parsed.as_line())
            current.last_row = self.rows_read
            return self._flush_stale()
        elif parsed.customer_id != current.first.customer_id or parsed.country != current.first.country:
            self.errors.append(
                SourceRowError(
                    source, line,
                    f"invoice {parsed.invoice_no} has customer {parsed.customer_id!r}/{parsed.country!r} here but "
                    f"{current.first.customer_id!r}/{current.first.country!r} at {current.where}",
                )
            )
            return self._flush_stale()
        current.lines.append(parsed.as_line())
        current.last_row = self.rows_read
        return []

    def reject(self, source: str, line: int, reason: str) -> None:
        self.rows_read += 1
        self.errors.append(SourceRowError(source, line, reason))

    def _flush_stale(self) -> list[InvoiceEvent]:
        out: list[InvoiceEvent] = []
        while self._open:
            key = next(iter(self._open))
            oldest = self._open[key]
            if self.rows_read - oldest.last_row < self.window:
                break
            out.append(self._emit(key))
        return out

    def flush(self) -> list[InvoiceEvent]:
        return [self._emit(key) for key in list(self._open)]

    def _emit(self, key: str) -> InvoiceEvent:
        invoice = self._open.pop(key)
        self._emitted[key] = invoice.where
        first = invoice.first
        return build_event(first.invoice_no, first.customer_id, first.country, invoice.lines)


def read_invoices(
    path: str,
    grouper: InvoiceGrouper | None = None,
    *,
    encoding: str | None = None,
) -> Iterator[InvoiceEvent]:
    """Invoice events from a Kaggle source, streamed. Unusable rows land in
    ``grouper.errors`` (pass your own grouper to read them)."""
    grouper = grouper if grouper is not None else InvoiceGrouper()
    for row in iter_source_rows(path, encoding=encoding):
        if row.values is None:
            grouper.reject(row.source, row.line, row.error or "unreadable row")
            continue
        parsed = parse_text_row(*row.values)
        if isinstance(parsed, list):
            grouper.reject(row.source, row.line, "; ".join(f"{p.field}: {p.reason}" for p in parsed))
            continue
        yield from grouper.add(row.source, row.line, parsed)
    yield from grouper.flush()


def group_rows(rows: Iterable[tuple[int, SourceLine]]) -> tuple[list[tuple[list[int], InvoiceEvent]], list[tuple[int, Problem]]]:
    """Group validated rows of one API request by invoice (first-appearance order).

    Returns ``(events, problems)``: each event with the item indexes it came from, and
    ``(item index, problem)`` for rows whose customer or country contradicts the
    invoice's first row (that invoice is then rejected whole, never half-written).
    """
    groups: dict[str, list[tuple[int, SourceLine]]] = {}
    for index, parsed in rows:
        groups.setdefault(parsed.invoice_no, []).append((index, parsed))
    events: list[tuple[list[int], InvoiceEvent]] = []
    problems: list[tuple[int, Problem]] = []
    for invoice_no, members in groups.items():
        first = members[0][1]
        conflicts = [
            (i, p) for i, p in members if p.customer_id != first.customer_id or p.country != first.country
        ]
        if conflicts:
            for i, p in conflicts:
                problems.append(
                    (i, Problem("CustomerID" if p.customer_id != first.customer_id else "Country",
                                f"contradicts item {members[0][0]} of invoice {invoice_no}"))
                )
            continue
        events.append(
            ([i for i, _ in members], build_event(invoice_no, first.customer_id, first.country, [p.as_line() for _, p in members]))
        )
    return events, problems
