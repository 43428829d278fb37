"""The invoice event: the unit on the stream.

One event is one invoice with all its lines, in source order. It is the business fact a
shop emits, it keeps an invoice atomic for readers, and it costs one Kinesis user record,
one DynamoDB item and one Lambda record instead of ~21 (the mean line count).

Wire format (``schema_version`` 1), as JSON::

    {"schema_version": 1, "event_type": "invoice", "event_id": "4f0c…",
     "invoice_no": "536365", "invoice_date": "2010-12-01T08:26:00",
     "customer_id": "17850", "country": "United Kingdom",
     "is_cancellation": false, "is_adjustment": false, "has_non_product_lines": false,
     "lines": [{"line_no": 1, "stock_code": "85123A",
                "description": "WHITE HANGING HEART T-LIGHT HOLDER",
                "quantity": 6, "unit_price": "2.55"}, …]}

* Money is exact: ``unit_price`` is a decimal string (a JSON number is accepted on input
  and read as a decimal, never as a float); amounts and totals are computed with
  ``Decimal`` and printed by :func:`money_str`.
* ``invoice_date`` is ISO 8601 local shop time, as recorded by the source (no zone).
  A line carries its own ``invoice_date`` only when it differs from the invoice's (43
  invoices of the real data straddle a minute boundary); the invoice's is the earliest.
* ``customer_id`` is optional: about a quarter of the real lines have none. It is a
  customer number: ``17850``, ``"17850"``, ``"17850.0"`` (the source's own spelling),
  ``17850.0`` and ``"017850"`` are all customer ``"17850"``.
* Text is valid Unicode (no lone surrogates) and at most :data:`MAX_TEXT` characters; an
  event's wire JSON is at most :data:`MAX_EVENT_BYTES` bytes (one Kinesis record): a larger
  invoice is refused, not split.
* Every check is bounded in work: numbers are range-checked on their exponent before any
  conversion, number literals longer than :data:`MAX_NUMBER_CHARS` are refused unread,
  and JSON nested deeper than the decoder's limit is refused (:func:`load_json`).
* The flags are derived from the data; if a producer sends them they must agree.
* ``event_id`` is a digest of the content, so the same invoice always has the same id
  and a replay is recognisable as such.
* ``status`` is optional, one of :data:`STATUSES` (read case-insensitively, stored
  lowercase), and present on the wire only when set: an event without one is byte for
  byte what it was before the field existed, with the same ``event_id``. A status is
  content: the same invoice with another status has another ``event_id``.

Versions. Some sources (daily transaction files) deliver several versions of one
transaction over time (pending, then completed, then refunded). Where a source carries a
status, an event's version (:attr:`InvoiceEvent.version`) is ``(invoice_date, status
rank)`` as one string that sorts in version order, e.g. ``"2023-03-15T10:00:00/1"``; the
rank, the position in :data:`STATUSES`, only orders two versions with the same date. The
newest version wins everywhere (DynamoDB, the warehouse), whatever order the versions
arrive in: an older version delivered late is skipped. Without a status the version is
``""`` and versions of an invoice are ordered by delivery (the Kinesis sequence), as
before.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from json.encoder import encode_basestring as _json_str  # C-accelerated, non-ASCII kept
from typing import Any, NamedTuple

from pipeline.errors import InvalidEvent, Problem

SCHEMA_VERSION = 1
EVENT_TYPE = "invoice"
# lifecycle order: used only to order two versions of a transaction with the same date
STATUSES = ("pending", "completed", "failed", "cancelled", "refunded")
_STATUS_RANK = {status: rank for rank, status in enumerate(STATUSES)}
MAX_LINES_PER_INVOICE = 10_000
MAX_QUANTITY = 10**9
MAX_PRICE = Decimal(10**9)
MAX_PRICE_DECIMALS = 6
_MAX_PRICE_DIGITS = 9  # Decimal.adjusted() of 10**9: the first out of range
_MAX_QUANTITY_DIGITS = 9
MAX_TEXT = 500
# One event travels as one Kinesis user record (1 MiB with its partition key; the KPL
# envelope adds a few bytes): an invoice whose wire JSON is larger is refused at the API
# with the reason, never split. The real data's largest invoice (573585, 1,114 lines) is
# 128 KB; at its ~115 bytes a line, about 8,700 lines fit.
MAX_EVENT_BYTES = 1_000_000
MAX_NUMBER_CHARS = 64  # a number's text (a price, a quantity, a JSON literal): longer is refused unread
MAX_SHOWN_CHARS = 60  # how much of a bad value a problem echoes

# Stock codes that are charges, fees and adjustments rather than goods. Everything else
# (including the dotcom "DCGS…" items and gift vouchers, which are sold) is a product.
NON_PRODUCT_STOCK_CODES = frozenset(
    {"POST", "DOT", "C2", "M", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"}
)

_INVOICE_NO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
_CUSTOMER_ID = re.compile(r"[0-9]{1,20}")
_ISO_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?")
_CENT = Decimal("0.01")

_TOP_FIELDS = frozenset(
    {
        "schema_version", "event_type", "event_id", "invoice_no", "invoice_date",
        "customer_id", "country", "is_cancellation", "is_adjustment",
        "has_non_product_lines", "lines", "status",
    }
)
_LINE_FIELDS = frozenset({"line_no", "stock_code", "description", "quantity", "unit_price", "invoice_date"})


@lru_cache(maxsize=65_536)
def money_str(value: Decimal) -> str:
    """Canonical text of an exact amount: at least two decimals, never exponent form.

    ``2.55`` → ``"2.55"``, ``2.1`` → ``"2.10"``, ``15`` → ``"15.00"``, ``0.001`` → ``"0.001"``.
    """
    if value == 0:
        return "0.00"
    normal = value.normalize()
    if normal.as_tuple().exponent > -2:  # type: ignore[operator]
        normal = normal.quantize(_CENT)
    return format(normal, "f")


def money_display(value: Decimal | str) -> str:
    """An exact amount for people: ``9747747.934`` → ``9,747,747.934``, ``15`` → ``15.00``."""
    return format(Decimal(money_str(Decimal(value))), ",")


def is_cancellation(invoice_no: str) -> bool:
    return invoice_no[:1] in ("C", "c")


def is_adjustment(invoice_no: str) -> bool:
    return invoice_no[:1] in ("A", "a")


@lru_cache(maxsize=65_536)
def is_product(stock_code: str) -> bool:
    return stock_code.upper() not in NON_PRODUCT_STOCK_CODES


# ---- bounded checks shared by every input path ------------------------------------------


class InvalidJson(ValueError):
    """A body or record that is not JSON the contract can read; the message says why."""


def _decimal_literal(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidJson(f"holds a number literal of {len(text):,} characters (at most {MAX_NUMBER_CHARS})")
    return Decimal(text)


def load_json(raw: bytes | str) -> Any:
    """JSON as the contract reads it: a number with a fraction or an exponent as an exact
    :class:`~decimal.Decimal` (never a float), in work bounded by the input's size.

    Raises :class:`InvalidJson` naming the problem: bytes that are not UTF-8 (with the
    offset), a number literal over :data:`MAX_NUMBER_CHARS` characters, nesting deeper
    than the decoder's recursion limit, or plain bad syntax.
    """
    try:
        return json.loads(raw, parse_float=_decimal_literal)
    except InvalidJson:
        raise
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start] if isinstance(exc.object, (bytes, bytearray)) else None
        byte = f"byte 0x{bad:02x}" if bad is not None else "a byte"
        raise InvalidJson(f"is not valid UTF-8: {byte} at offset {exc.start} (JSON is UTF-8; transcode a Latin-1 "
                          f"file first)") from None
    except RecursionError:
        raise InvalidJson("is nested too deeply (an event needs four levels: array, event, lines, line)") from None
    except ValueError as exc:  # JSONDecodeError, and Python's 4,300-digit limit on integers
        raise InvalidJson(f"is not valid JSON: {exc}") from None


def text_problem(value: str) -> str | None:
    """Why a string cannot be a text field (too long, or not valid Unicode), or None."""
    if len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters, got {len(value):,}"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"holds a lone surrogate (U+{ord(value[exc.start]):04X} at character {exc.start}); "
                    "text must be valid Unicode")
    return None


def shown(value: Any) -> str:
    """A bad value as a problem quotes it: short, and always encodable as UTF-8."""
    if isinstance(value, str):
        return repr(value if len(value) <= MAX_SHOWN_CHARS else value[:MAX_SHOWN_CHARS] + "…")
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"  # str() may refuse it
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


def shown_field(name: str) -> str:
    """A field name from the input (an unknown key), safe to put in a problem."""
    if name.isascii() and name.isprintable() and len(name) <= MAX_SHOWN_CHARS:
        return name
    return shown(name)[1:-1]


def size_problem(event: InvoiceEvent, field: str = "lines") -> Problem | None:
    """A problem if the event's wire JSON does not fit one Kinesis record."""
    size = len(event.to_json())
    if size <= MAX_EVENT_BYTES:
        return None
    return Problem(field, f"the invoice is {size:,} bytes as an event ({len(event.lines):,} lines); an event "
                          f"must fit one Kinesis record, at most {MAX_EVENT_BYTES:,} bytes: send fewer or shorter lines")


class InvoiceLine(NamedTuple):
    """One line of an invoice (a NamedTuple: half a million are built per full replay)."""

    line_no: int
    stock_code: str
    description: str | None
    quantity: int
    unit_price: Decimal
    invoice_date: str | None = None  # only when it differs from the invoice's

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def is_product(self) -> bool:
        return is_product(self.stock_code)

    def to_json_text(self) -> str:
        description = "null" if self.description is None else _json_str(self.description)
        extra = "" if self.invoice_date is None else f',"invoice_date":"{self.invoice_date}"'
        return (
            f'{{"line_no":{self.line_no},"stock_code":{_json_str(self.stock_code)},"description":{description},'
            f'"quantity":{self.quantity},"unit_price":"{money_str(self.unit_price)}"{extra}}}'
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "line_no": self.line_no,
            "stock_code": self.stock_code,
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": money_str(self.unit_price),
        }
        if self.invoice_date is not None:
            out["invoice_date"] = self.invoice_date
        return out


@dataclass(frozen=True, slots=True)
class InvoiceEvent:
    invoice_no: str
    invoice_date: str
    customer_id: str | None
    country: str
    lines: tuple[InvoiceLine, ...]
    status: str | None = None  # one of STATUSES, lowercase; None for sources without one
    # serialisation memo: validating the event id and then sending the event encode once
    _wire: tuple[str, str, str] | None = field(default=None, init=False, repr=False, compare=False, hash=False)
    _non_product: bool | None = field(default=None, init=False, repr=False, compare=False, hash=False)
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False, hash=False)  # to_json's memo

    # ---- derived -------------------------------------------------------------------
    @property
    def is_cancellation(self) -> bool:
        return is_cancellation(self.invoice_no)

    @property
    def is_adjustment(self) -> bool:
        return is_adjustment(self.invoice_no)

    @property
    def has_non_product_lines(self) -> bool:
        if self._non_product is None:
            codes = {line.stock_code for line in self.lines}
            object.__setattr__(self, "_non_product", not all(is_product(code) for code in codes))
        return self._non_product  # type: ignore[return-value]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def partition_key(self) -> str:
        from pipeline.partitioning import partition_key

        return partition_key(self)

    @property
    def event_id(self) -> str:
        return self._serialize()[0]

    @property
    def version(self) -> str:
        """``""`` without a status, else ``"<invoice_date>/<status rank>"``: a string that
        sorts lexicographically in version order (the module docstring, "Versions")."""
        if self.status is None:
            return ""
        return f"{self.invoice_date}/{_STATUS_RANK[self.status]}"

    # ---- wire format ----------------------------------------------------------------
    def _serialize(self) -> tuple[str, str, str]:
        """``(event_id, header JSON members, lines JSON array)``, computed once.

        The event id is the first 32 hex digits of the SHA-256 of the canonical content
        JSON: ``{"invoice_no":…,"invoice_date":…,"customer_id":…,"country":…,"lines":[…]}``
        in that order, compact, UTF-8, lines as in :meth:`InvoiceLine.to_json_text`; an
        event with a status has ``"status":…`` after ``country`` (absent otherwise).
        """
        if self._wire is not None:
            return self._wire
        customer = "null" if self.customer_id is None else _json_str(self.customer_id)
        header = (
            f'"invoice_no":{_json_str(self.invoice_no)},"invoice_date":"{self.invoice_date}",'
            f'"customer_id":{customer},"country":{_json_str(self.country)}'
        )
        if self.status is not None:
            header += f',"status":"{self.status}"'
        lines = "[" + ",".join(line.to_json_text() for line in self.lines) + "]"
        digest = hashlib.sha256(f'{{{header},"lines":{lines}}}'.encode()).hexdigest()[:32]
        result = (digest, header, lines)
        object.__setattr__(self, "_wire", result)  # memo on an immutable value
        return result

    def lines_json(self) -> str:
        """The lines as the canonical JSON array (as in the wire format)."""
        return self._serialize()[2]

    def to_json(self) -> bytes:
        """The event as compact UTF-8 JSON (the wire format in the module docstring);
        computed once (the API's size check and the producer both need it)."""
        if self._json is not None:
            return self._json
        digest, header, lines = self._serialize()
        flags = (
            f'"is_cancellation":{_BOOL[self.is_cancellation]},"is_adjustment":{_BOOL[self.is_adjustment]},'
            f'"has_non_product_lines":{_BOOL[self.has_non_product_lines]}'
        )
        text = (
            f'{{"schema_version":{SCHEMA_VERSION},"event_type":"{EVENT_TYPE}","event_id":"{digest}",'
            f'{header},{flags},"lines":{lines}}}'
        )
        data = text.encode("utf-8")
        object.__setattr__(self, "_json", data)  # memo on an immutable value
        return data

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.to_json(), parse_float=Decimal)

    @classmethod
    def from_dict(cls, data: Any, *, path: str = "") -> InvoiceEvent:
        """Validate a decoded JSON object against the contract.

        Raises :class:`InvalidEvent` listing every problem found, each naming its field
        (``lines[3].unit_price``) prefixed by ``path``.
        """
        return _parse_event(data, path)

    @classmethod
    def from_json(cls, raw: bytes | str) -> InvoiceEvent:
        try:
            data = load_json(raw)
        except InvalidJson as exc:
            raise InvalidEvent([Problem("$", str(exc))]) from None
        return _parse_event(data, "")


_BOOL = {True: "true", False: "false"}


# ---- validation helpers (shared with the raw row parser) --------------------------------


def normalize_timestamp(value: Any) -> str | None:
    """``2010-12-01 08:26:00`` / ``2010-12-01T08:26`` → ``2010-12-01T08:26:00``; None if invalid."""
    if not isinstance(value, str):
        return None
    m = _ISO_DATETIME.fullmatch(value.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month) and hour < 24 and minute < 60 and second < 60):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_price(value: Any) -> Decimal | str:
    """A price as an exact Decimal, or the reason it is not one.

    The range is checked on the exponent before any arithmetic, so ``1e1000000`` costs
    what ``1`` does (abs() of it would overflow the decimal context).
    """
    if isinstance(value, bool):
        return "must be a decimal string, got a boolean"
    if isinstance(value, float):
        return "must be a decimal string or exact JSON number, got a binary float"
    if isinstance(value, int):
        if abs(value) >= MAX_PRICE:
            return f"must be below {MAX_PRICE} in absolute value"
        price = Decimal(value)
    elif isinstance(value, Decimal):
        price = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_CHARS:
            return f"must be a decimal number of at most {MAX_NUMBER_CHARS} characters, got {len(text):,}"
        try:
            price = Decimal(text)
        except InvalidOperation:
            return f"must be a decimal number, got {shown(value)}"
    else:
        return f"must be a decimal string, got {type(value).__name__}"
    if not price.is_finite():
        return f"must be finite, got {shown(value)}"
    if not price:
        return price
    if price.adjusted() >= _MAX_PRICE_DIGITS:
        return f"must be below {MAX_PRICE} in absolute value"
    _, digits, exponent = price.as_tuple()
    trailing = len(digits) - len(bytes(digits).rstrip(b"\0"))  # zeros after the last significant digit
    if -(exponent + trailing) > MAX_PRICE_DECIMALS:  # type: ignore[operator]
        return f"has more than {MAX_PRICE_DECIMALS} decimal places"
    return price


def parse_quantity(value: Any) -> int | str:
    if isinstance(value, bool):
        return "must be an integer, got a boolean"
    if isinstance(value, int):
        qty = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_CHARS:
            return f"must be an integer of at most {MAX_NUMBER_CHARS} characters, got {len(text):,}"
        try:
            qty = int(text)
        except ValueError:
            return f"must be an integer, got {shown(value)}"
    elif isinstance(value, Decimal):
        # range first, on the exponent: int(Decimal("1e1000000")) would take a minute
        if not value.is_finite():
            return f"must be an integer, got {shown(value)}"
        if value and value.adjusted() >= _MAX_QUANTITY_DIGITS:
            return f"must be below {MAX_QUANTITY} in absolute value"
        if value != value.to_integral_value():
            return f"must be an integer, got {shown(value)}"
        qty = int(value)
    else:
        return f"must be an integer, got {type(value).__name__}"
    if abs(qty) >= MAX_QUANTITY:
        return f"must be below {MAX_QUANTITY} in absolute value"
    return qty


def normalize_customer_id(value: Any) -> str | None | Problem:
    """A customer number in its one spelling: ``17850``, ``"17850"``, ``"17850.0"``,
    ``17850.0`` and ``"017850"`` are all ``"17850"``; empty → None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return Problem("customer_id", "must be a string of digits or null, got a boolean")
    if isinstance(value, int):
        if value < 0 or value.bit_length() > 70:
            return Problem("customer_id", f"must be a customer number of at most 20 digits, got {shown(value)}")
        text = str(value)
    elif isinstance(value, Decimal):
        if not value.is_finite() or value < 0 or (value and value.adjusted() >= 20) or value != value.to_integral_value():
            return Problem("customer_id", f"must be a whole customer number of at most 20 digits, got {shown(value)}")
        text = str(int(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.endswith(".0"):
            text = text[:-2]
    else:
        return Problem("customer_id", f"must be a string of digits or null, got {type(value).__name__}")
    if len(text) > 40 or not text.isascii() or not text.isdigit():
        return Problem("customer_id", f"must be digits, got {shown(value)}")
    text = text.lstrip("0") or "0"
    if _CUSTOMER_ID.fullmatch(text) is None:
        return Problem("customer_id", f"must be a customer number of at most 20 digits, got {shown(value)}")
    return text


def normalize_status(value: Any) -> str | None | Problem:
    """A transaction status in its one spelling (lowercase, one of :data:`STATUSES`);
    None or absent → None."""
    if value is None:
        return None
    accepted = ", ".join(STATUSES)
    if not isinstance(value, str):
        return Problem("status", f"must be one of {accepted} or null, got {type(value).__name__}")
    status = value.strip().lower()
    if status not in _STATUS_RANK:
        return Problem("status", f"must be one of {accepted}, got {shown(value)}")
    return status


def _text(value: Any, field: str, problems: list[Problem], *, required: bool = True) -> str | None:
    if value is None or (value == "" and not required):
        if required:
            problems.append(Problem(field, "is required"))
        return None
    if not isinstance(value, str):
        problems.append(Problem(field, f"must be a string, got {type(value).__name__}"))
        return None
    if required and not value.strip():
        problems.append(Problem(field, "must not be empty"))
        return None
    reason = text_problem(value)
    if reason is not None:
        problems.append(Problem(field, reason))
        return None
    return value


def _parse_event(data: Any, path: str) -> InvoiceEvent:
    p = f"{path}." if path else ""
    if not isinstance(data, dict):
        raise InvalidEvent([Problem(path or "$", f"must be a JSON object, got {type(data).__name__}")])
    problems: list[Problem] = []

    unknown = data.keys() - _TOP_FIELDS
    if unknown:
        problems.append(Problem(f"{p}{shown_field(sorted(unknown)[0])}", f"unknown field (allowed: {', '.join(sorted(_TOP_FIELDS))})"))

    version = data.get("schema_version")
    if version is None:
        problems.append(Problem(f"{p}schema_version", "is required"))
    elif isinstance(version, bool) or version != SCHEMA_VERSION:
        problems.append(Problem(f"{p}schema_version", f"must be {SCHEMA_VERSION}, got {shown(version)}"))
    event_type = data.get("event_type", EVENT_TYPE)
    if event_type != EVENT_TYPE:
        problems.append(Problem(f"{p}event_type", f"must be {EVENT_TYPE!r}, got {shown(event_type)}"))

    invoice_no = data.get("invoice_no")
    if invoice_no is None:
        problems.append(Problem(f"{p}invoice_no", "is required"))
    elif not isinstance(invoice_no, str) or _INVOICE_NO.fullmatch(invoice_no) is None:
        problems.append(Problem(f"{p}invoice_no", f"must be 1-40 letters, digits, '-' or '_', got {shown(invoice_no)}"))
        invoice_no = None

    raw_date = data.get("invoice_date")
    invoice_date = normalize_timestamp(raw_date)
    if raw_date is None:
        problems.append(Problem(f"{p}invoice_date", "is required"))
    elif invoice_date is None:
        problems.append(Problem(f"{p}invoice_date", f"must be an ISO 8601 date-time like 2010-12-01T08:26:00, got {shown(raw_date)}"))

    customer = normalize_customer_id(data.get("customer_id"))
    if isinstance(customer, Problem):
        problems.append(Problem(f"{p}customer_id", customer.reason))
        customer = None

    country = _text(data.get("country"), f"{p}country", problems)
    status = normalize_status(data.get("status"))
    if isinstance(status, Problem):
        problems.append(Problem(f"{p}status", status.reason))
        status = None

    raw_lines = data.get("lines")
    lines: list[InvoiceLine] = []
    if raw_lines is None:
        problems.append(Problem(f"{p}lines", "is required"))
    elif not isinstance(raw_lines, list):
        problems.append(Problem(f"{p}lines", f"must be an array, got {type(raw_lines).__name__}"))
    elif not raw_lines:
        problems.append(Problem(f"{p}lines", "must hold at least one line"))
    elif len(raw_lines) > MAX_LINES_PER_INVOICE:
        problems.append(Problem(f"{p}lines", f"must hold at most {MAX_LINES_PER_INVOICE} lines, got {len(raw_lines)}"))
    else:
        seen: set[int] = set()
        for i, raw in enumerate(raw_lines):
            line = _fast_line(raw)
            if line is None:  # anything unusual: the full check, with its messages
                line = _parse_line(raw, f"{p}lines[{i}]", invoice_date, problems)
            if line is not None:
                if line.line_no in seen:
                    problems.append(Problem(f"{p}lines[{i}].line_no", f"duplicates line_no {line.line_no}"))
                seen.add(line.line_no)
                lines.append(line)

    if problems:
        raise InvalidEvent(problems)
    lines.sort(key=lambda line: line.line_no)
    event = InvoiceEvent(
        invoice_no=invoice_no,  # type: ignore[arg-type]
        invoice_date=invoice_date,  # type: ignore[arg-type]
        customer_id=customer,  # type: ignore[arg-type]
        country=country,  # type: ignore[arg-type]
        lines=tuple(lines),
        status=status,
    )
    _check_derived(data, event, p)
    return event


@lru_cache(maxsize=65_536)
def _cached_price(text: str) -> Decimal | str:
    return parse_price(text)


def _fast_line(raw: Any) -> InvoiceLine | None:
    """The common case (a well-formed line without a date of its own), or None."""
    if type(raw) is not dict or len(raw) != 5:
        return None
    line_no = raw.get("line_no")
    code = raw.get("stock_code")
    description = raw.get("description")
    quantity = raw.get("quantity")
    price = raw.get("unit_price")
    if (
        type(line_no) is int and line_no >= 1
        and type(code) is str and 0 < len(code) <= MAX_TEXT and code.isascii() and not code.isspace()
        and (description is None or (type(description) is str and len(description) <= MAX_TEXT and description.isascii()))
        and type(quantity) is int and -MAX_QUANTITY < quantity < MAX_QUANTITY
        and type(price) is str
    ):
        value = _cached_price(price)
        if type(value) is Decimal:
            return InvoiceLine(line_no, code, description or None, quantity, value, None)
    return None


def _parse_line(raw: Any, path: str, invoice_date: str | None, problems: list[Problem]) -> InvoiceLine | None:
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"must be a JSON object, got {type(raw).__name__}"))
        return None
    start = len(problems)
    unknown = raw.keys() - _LINE_FIELDS
    if unknown:
        problems.append(Problem(f"{path}.{shown_field(sorted(unknown)[0])}", f"unknown field (allowed: {', '.join(sorted(_LINE_FIELDS))})"))
    line_no = raw.get("line_no")
    if line_no is None:
        problems.append(Problem(f"{path}.line_no", "is required"))
    elif isinstance(line_no, bool) or not isinstance(line_no, int) or line_no < 1:
        problems.append(Problem(f"{path}.line_no", f"must be a positive integer, got {shown(line_no)}"))
    stock_code = _text(raw.get("stock_code"), f"{path}.stock_code", problems)
    description = raw.get("description")
    if description is not None:
        description = _text(description, f"{path}.description", problems, required=False)
    if "quantity" not in raw:
        problems.append(Problem(f"{path}.quantity", "is required"))
        quantity: int | str = 0
    else:
        quantity = parse_quantity(raw["quantity"])
        if isinstance(quantity, str):
            problems.append(Problem(f"{path}.quantity", quantity))
    if "unit_price" not in raw:
        problems.append(Problem(f"{path}.unit_price", "is required"))
        price: Decimal | str = Decimal(0)
    else:
        price = parse_price(raw["unit_price"])
        if isinstance(price, str):
            problems.append(Problem(f"{path}.unit_price", price))
    line_date = None
    if raw.get("invoice_date") is not None:
        line_date = normalize_timestamp(raw["invoice_date"])
        if line_date is None:
            problems.append(Problem(f"{path}.invoice_date", f"must be an ISO 8601 date-time, got {shown(raw['invoice_date'])}"))
        elif line_date == invoice_date:
            line_date = None
    if len(problems) > start:
        return None
    return InvoiceLine(line_no, stock_code, description, quantity, price, line_date)  # type: ignore[arg-type]


def _check_derived(data: Mapping[str, Any], event: InvoiceEvent, p: str) -> None:
    problems = []
    for name in ("is_cancellation", "is_adjustment", "has_non_product_lines"):
        if name in data and data[name] != getattr(event, name):
            problems.append(Problem(f"{p}{name}", f"is derived from the data and must be {getattr(event, name)} here"))
    if data.get("event_id") is not None and data["event_id"] != event.event_id:
        problems.append(Problem(f"{p}event_id", f"is a digest of the content and must be {event.event_id!r} here"))
    for line in event.lines:
        if line.invoice_date is not None and line.invoice_date < event.invoice_date:
            problems.append(
                Problem(f"{p}invoice_date", f"must be the earliest of the invoice; line {line.line_no} is dated {line.invoice_date}")
            )
            break
    if problems:
        raise InvalidEvent(problems)


def build_event(
    invoice_no: str,
    customer_id: str | None,
    country: str,
    lines: Iterable[tuple[str, str | None, int, Decimal, str]],
    *,
    status: str | None = None,
) -> InvoiceEvent:
    """Assemble an event from already-validated source lines
    ``(stock_code, description, quantity, unit_price, invoice_date)`` in source order;
    line numbers are positions, the invoice date is the earliest line's. ``status`` (any
    case) must be one of :data:`STATUSES` or None (:class:`InvalidEvent` otherwise)."""
    checked = normalize_status(status)
    if isinstance(checked, Problem):
        raise InvalidEvent([checked])
    rows = list(lines)
    invoice_date = min(row[4] for row in rows)
    return InvoiceEvent(
        invoice_no=invoice_no,
        invoice_date=invoice_date,
        customer_id=customer_id,
        country=country,
        lines=tuple(
            InvoiceLine(i, code, desc, qty, price, None if when == invoice_date else when)
            for i, (code, desc, qty, price, when) in enumerate(rows, start=1)
        ),
        status=checked,
    )
