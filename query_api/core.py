"""The query API's logic, independent of Lambda and DynamoDB (the reader is a port).

Who may read what (the caller is the identity API Gateway verified, :mod:`pipeline.auth`):
staff (scope ``shopstream/invoices.read``) read everything; a customer (scope
``shopstream/invoices.read.own``) reads an invoice only if it carries their customer
number and only their own history, else 403. A missing invoice is 404 for everyone:
invoice numbers are sequential and not secret, their content is.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from pipeline.auth import ANONYMOUS, Principal
from pipeline.errors import BadRequest, Forbidden, NotFound
from pipeline.events import _INVOICE_NO, normalize_customer_id, normalize_timestamp, shown, shown_field

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_CHARS = 2048
LIST_PARAMETERS = ("from", "to", "limit", "cursor")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class InvoiceReader(Protocol):
    def get_invoice(self, invoice_no: str) -> Any: ...

    def customer_invoices(self, customer_id: str, *, date_from: str | None, date_to: str | None, limit: int, cursor: str | None) -> Any: ...

    def customer_exists(self, customer_id: str) -> bool: ...


def parse_invoice_no(value: str) -> str:
    if _INVOICE_NO.fullmatch(value or "") is None:
        raise BadRequest("invoice_no", f"must be 1-40 letters, digits, '-' or '_' (like 536365 or C536379), got {shown(value)}")
    return value


def parse_customer_id(value: str) -> str:
    customer = normalize_customer_id(value)
    if customer is None or not isinstance(customer, str):
        raise BadRequest("customer_id", f"must be a customer number (digits, like 17850), got {shown(value)}")
    return customer


def parse_bound(name: str, value: str | None, *, end_of_day: bool) -> str | None:
    if value is None or value == "":
        return None
    text = value.strip()
    if _DATE.fullmatch(text):
        text += " 23:59:59" if end_of_day else " 00:00:00"
    stamp = normalize_timestamp(text)
    if stamp is None:
        raise BadRequest(name, f"must be a date (2011-01-31) or ISO 8601 date-time (2011-01-31T17:00:00), got {shown(value)}")
    return stamp


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    if not (value.isascii() and value.isdigit() and len(value) <= 6):
        raise BadRequest("limit", f"must be an integer from 1 to {MAX_LIMIT}, got {shown(value)}")
    limit = int(value)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest("limit", f"must be from 1 to {MAX_LIMIT}, got {limit}")
    return limit


class QueryService:
    def __init__(self, reader: InvoiceReader):
        self._reader = reader

    def invoice(self, invoice_no: str, caller: Principal = ANONYMOUS) -> dict[str, Any]:
        invoice = self._reader.get_invoice(parse_invoice_no(invoice_no))
        if invoice is None:
            raise NotFound(f"invoice {invoice_no} not found")
        body = invoice.to_api()
        if not caller.is_staff and (caller.customer_id is None or body.get("customer_id") != caller.customer_id):
            raise Forbidden("invoice_no", f"invoice {invoice_no} is not one of your invoices")
        return body

    def customer_invoices(self, customer_id: str, query: Mapping[str, str] | None,
                          caller: Principal = ANONYMOUS) -> dict[str, Any]:
        customer = parse_customer_id(customer_id)
        if not caller.is_staff and caller.customer_id != customer:
            raise Forbidden("customer_id", f"you may read only your own invoices, not customer {customer}'s")
        params = dict(query or {})
        unknown = sorted(set(params) - set(LIST_PARAMETERS))
        if unknown:
            raise BadRequest(shown_field(unknown[0]), f"is not a parameter of this listing (use {', '.join(LIST_PARAMETERS)})")
        date_from = parse_bound("from", params.get("from"), end_of_day=False)
        date_to = parse_bound("to", params.get("to"), end_of_day=True)
        if date_from and date_to and date_from > date_to:
            raise BadRequest("from", f"({date_from}) is after to ({date_to})")
        limit = parse_limit(params.get("limit"))
        cursor = params.get("cursor") or None
        if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
            raise BadRequest("cursor", "is not a cursor issued by this API")
        page = self._reader.customer_invoices(customer, date_from=date_from, date_to=date_to, limit=limit, cursor=cursor)
        if not page.invoices and cursor is None and not self._reader.customer_exists(customer):
            raise NotFound(f"customer {customer} has no invoices")
        return {
            "customer_id": customer,
            "from": date_from,
            "to": date_to,
            "invoices": [summary.to_api() for summary in page.invoices],
            "next_cursor": page.next_cursor,
        }
