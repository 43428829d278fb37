"""The transaction layout of daily files: one row per product of a transaction, by id.

Some order systems drop files with the columns::

    transaction_id, customer_id, product_id, quantity, price, transaction_date, payment_type, status

Unlike the Kaggle layout, a row names its product and customer only by id: the product's
description and the customer's country come from the warehouse's dimensions
(``dim_products``, ``dim_customers``), and a row whose product or customer the
dimensions do not know is refused with that reason (it is quarantined, never dropped).
A product or customer becomes known when an invoice that carries its description or
country is loaded (a POST, a replay, a Kaggle-layout file) and merged; a refused row can
be dropped again once it is.

The mapping onto the invoice event contract (:mod:`pipeline.events`):

==================  =========================================================
transaction_id      ``invoice_no`` (letters, digits, ``-`` and ``_``)
customer_id         ``customer_id`` (required: the country is the customer's)
product_id          a line's ``stock_code``; its description from ``dim_products``
quantity, price     a line's ``quantity`` and exact ``unit_price``
transaction_date    ``invoice_date`` (either timestamp style, or a bare date)
status              ``status`` (one of :data:`pipeline.events.STATUSES`)
payment_type        checked as text; the contract has no payment field, so it is
                    not carried (the source file, archived whole, keeps it)
==================  =========================================================

The rows of one version of a transaction (same id, date and status) are contiguous and
become one event; several versions of one transaction in a file are several events,
and the sinks keep the newest (by date, then status: the version rule in
:mod:`pipeline.events`). A row of a version that already ended earlier in the file is
refused, never sent as a partial second copy.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from pipeline.errors import Problem
from pipeline.events import (
    _INVOICE_NO,
    STATUSES,
    InvoiceEvent,
    build_event,
    normalize_customer_id,
    parse_price,
    parse_quantity,
    shown,
    text_problem,
)

COLUMNS = ("transaction_id", "customer_id", "product_id", "quantity", "price", "transaction_date",
           "payment_type", "status")


def parse_when(value: str) -> str | None:
    from pipeline.kaggle import parse_timestamp

    text = value.strip()
    if len(text) == 10 and text[4:5] == "-" and text[7:8] == "-":
        text += " 00:00:00"
    return parse_timestamp(text)


class Dimensions(Protocol):
    def product_description(self, stock_code: str) -> tuple[bool, str | None]: ...
    def customer_country(self, customer_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TransactionRow:
    transaction_id: str
    customer_id: str
    country: str
    stock_code: str
    description: str | None
    quantity: int
    unit_price: Decimal
    when: str
    status: str

    @property
    def version_key(self) -> tuple[str, str, str]:
        return (self.transaction_id, self.when, self.status)


def parse_row(values: Mapping[str, Any] | tuple[str, ...], dimensions: Dimensions) -> TransactionRow | list[Problem]:
    """One row (values in :data:`COLUMNS` order), checked and joined to the dimensions."""
    row = dict(zip(COLUMNS, values)) if not isinstance(values, Mapping) else values
    problems: list[Problem] = []
    tid = (row.get("transaction_id") or "").strip()
    if not tid:
        problems.append(Problem("transaction_id", "is required"))
    elif _INVOICE_NO.fullmatch(tid) is None:
        problems.append(Problem("transaction_id", f"must be letters and digits (and - or _), got {shown(tid)}"))
    customer = normalize_customer_id(row.get("customer_id") or None)
    if isinstance(customer, Problem):
        problems.append(Problem("customer_id", customer.reason))
        customer = None
    elif customer is None:
        problems.append(Problem("customer_id", "is required in the transaction layout (the country is the customer's)"))
    code = (row.get("product_id") or "").strip()
    if not code:
        problems.append(Problem("product_id", "is required"))
    elif (reason := text_problem(code)) is not None:
        problems.append(Problem("product_id", reason))
        code = ""
    quantity = parse_quantity(row.get("quantity") or "") if (row.get("quantity") or "").strip() else "is required"
    if isinstance(quantity, str):
        problems.append(Problem("quantity", quantity))
    price = parse_price(row.get("price") or "") if (row.get("price") or "").strip() else "is required"
    if isinstance(price, str):
        problems.append(Problem("price", price))
    when = parse_when(row.get("transaction_date") or "")
    if when is None:
        problems.append(Problem("transaction_date", "must look like 2023-03-15, 2023-03-15 10:00:00 or 3/15/2023 10:00, "
                                                    f"got {shown(row.get('transaction_date'))}"))
    status = (row.get("status") or "").strip().lower()
    if status not in STATUSES:
        problems.append(Problem("status", f"must be one of {', '.join(STATUSES)}, got {shown(row.get('status'))}"))
    payment = row.get("payment_type") or ""
    if (reason := text_problem(payment)) is not None:
        problems.append(Problem("payment_type", reason))
    # joined to the dimensions only when the row is otherwise sound: the reason names the real fault
    if not problems:
        known, description = dimensions.product_description(code)
        if not known:
            problems.append(Problem("product_id", f"unknown product {shown(code)}: not in the warehouse's dim_products"))
        country = dimensions.customer_country(customer)  # type: ignore[arg-type]
        if country is None:
            problems.append(Problem("customer_id", f"unknown customer {shown(customer)}: not in the warehouse's "
                                                   "dim_customers"))
        if not problems:
            return TransactionRow(tid, customer, country, code, description, quantity, price, when, status)  # type: ignore[arg-type]
    return problems


class TransactionGrouper:
    """Contiguous rows of one version of a transaction → one event (see the module docstring)."""

    def __init__(self) -> None:
        self._key: tuple[str, str, str] | None = None
        self._rows: list[TransactionRow] = []
        self._where = ""
        self.ended: dict[str, str] = {}  # "id|date|status" → where its first row was

    @staticmethod
    def _name(key: tuple[str, str, str]) -> str:
        return "|".join(key)

    def add(self, where: str, row: TransactionRow) -> tuple[list[InvoiceEvent], str | None]:
        """The events completed by this row, and why the row is refused (or None)."""
        key = row.version_key
        if key == self._key:
            self._rows.append(row)
            return [], None
        first = self.ended.get(self._name(key))
        if first is not None:
            return [], (f"transaction {row.transaction_id} ({row.status}, {row.when}) ended at an earlier row "
                        f"(first row at {first}); the rows of one version must be contiguous")
        out = self.flush()
        self._key, self._rows, self._where = key, [row], where
        return out, None

    @property
    def open_key(self) -> tuple[str, str, str] | None:
        """The version whose rows are being gathered."""
        return self._key

    def flush(self) -> list[InvoiceEvent]:
        if self._key is None:
            return []
        rows, key = self._rows, self._key
        self.ended[self._name(key)] = self._where
        self._key, self._rows = None, []
        first = rows[0]
        return [build_event(first.transaction_id, first.customer_id, first.country,
                            [(r.stock_code, r.description, r.quantity, r.unit_price, r.when) for r in rows],
                            status=first.status)]
