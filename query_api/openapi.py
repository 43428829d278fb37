"""The OpenAPI 3.1 document of shopstream's HTTP API, served at ``GET /openapi.json``.

It documents every route of the HTTP API (the ingest route included); the contract test
``tests/contract/test_openapi_routes.py`` proves its paths equal Terraform's routes, and
``tests/e2e/test_stack_openapi.py`` sends generated requests to every operation of
the local stack and checks each answer against it. Patterns and limits come from the
constants the code checks with, so the two cannot drift apart.
"""
from __future__ import annotations

from typing import Any

from pipeline.auth import SCOPE_EVENTS_WRITE, SCOPE_INVOICES_READ, SCOPE_INVOICES_READ_OWN
from pipeline.events import (
    _CUSTOMER_ID,
    _INVOICE_NO,
    _ISO_DATETIME,
    MAX_LINES_PER_INVOICE,
    MAX_PRICE_DECIMALS,
    MAX_QUANTITY,
    MAX_TEXT,
    STATUSES,
)
from query_api.core import DEFAULT_LIMIT, MAX_CURSOR_CHARS, MAX_LIMIT

_INVOICE_NO_TEXT = {"type": "string", "pattern": f"^{_INVOICE_NO.pattern}$", "examples": ["536365", "C536379"]}
# A customer number as a client may spell it: 17850, 017850 or 17850.0 are one customer.
_CUSTOMER_ID_PATTERN = r"^0{0,20}[0-9]{1,20}(\.0)?$"
_CUSTOMER_ID_OUT = {"type": ["string", "null"], "pattern": f"^{_CUSTOMER_ID.pattern}$", "examples": ["17850"]}
# The shop's local time, without an offset (the source's own clock): not RFC 3339.
_LOCAL_DATETIME_IN = {"type": "string", "pattern": f"^{_ISO_DATETIME.pattern}$",
                      "description": "local date-time without offset: 2010-12-01T08:26:00 (or a space, or no seconds)",
                      "examples": ["2010-12-01T08:26:00"]}
_LOCAL_DATETIME_OUT = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$",
                       "description": "local date-time without offset", "examples": ["2010-12-01T08:26:00"]}
_BOUND = {"type": "string", "pattern": r"^(\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?\s*)?$",
          "examples": ["2010-12-01", "2010-12-01T17:00:00"]}
_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": r"\S", "description": "not blank"}
_QUANTITY = {"type": "integer", "exclusiveMinimum": -MAX_QUANTITY, "exclusiveMaximum": MAX_QUANTITY}
_PRICE_IN = {"type": "string", "pattern": rf"^-?\d{{1,9}}(\.\d{{1,{MAX_PRICE_DECIMALS}}})?$",
             "description": "exact decimal, e.g. \"2.55\"", "examples": ["2.55"]}
_MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2,}$", "description": "exact decimal amount (never a float)", "examples": ["15.30"]}
_PROBLEMS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["field", "reason"],
        "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
    },
}
_ERROR = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "problems": _PROBLEMS,
        "reason": {"type": "string", "description": "why the service is unavailable (503)"},
    },
}
_LINE_IN = {
    "type": "object",
    "required": ["line_no", "stock_code", "quantity", "unit_price"],
    "additionalProperties": False,
    "properties": {
        "line_no": {"type": "integer", "minimum": 1, "description": "position of the line in the source invoice; unique in the invoice"},
        "stock_code": _TEXT,
        "description": {"type": ["string", "null"], "maxLength": MAX_TEXT},
        "quantity": {**_QUANTITY, "description": "negative on cancellations"},
        "unit_price": _PRICE_IN,
        "invoice_date": {**_LOCAL_DATETIME_IN, "description": "only when this line's time differs from the invoice's "
                                                              "(never earlier than the invoice's)"},
    },
}
_INVOICE_EVENT = {
    "type": "object",
    "required": ["schema_version", "invoice_no", "invoice_date", "country", "lines"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": 1},
        "event_type": {"const": "invoice"},
        "event_id": {"type": "string", "description": "digest of the content; optional, checked when given"},
        "invoice_no": _INVOICE_NO_TEXT,
        "invoice_date": _LOCAL_DATETIME_IN,
        "customer_id": {"type": ["string", "integer", "null"], "pattern": _CUSTOMER_ID_PATTERN, "minimum": 0, "maximum": 10**20 - 1,
                        "examples": ["17850"]},
        "country": _TEXT,
        "is_cancellation": {"type": "boolean", "description": "derived (C prefix); checked when given"},
        "is_adjustment": {"type": "boolean", "description": "derived (A prefix); checked when given"},
        "has_non_product_lines": {"type": "boolean", "description": "derived; checked when given"},
        "status": {"type": ["string", "null"], "examples": list(STATUSES),
                   "description": f"optional transaction status, one of {', '.join(STATUSES)} (any case; stored "
                                  "lowercase); with one, the newest version of an invoice (invoice_date, then "
                                  "that lifecycle rank) wins wherever it is stored"},
        "lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES_PER_INVOICE, "items": _LINE_IN},
    },
}
_RAW_ROW = {
    "type": "object",
    "description": "one row of the Kaggle CSV; rows of one invoice in one request are grouped",
    "required": ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "Country"],
    "properties": {
        "InvoiceNo": _INVOICE_NO_TEXT,
        "StockCode": _TEXT,
        "Description": {"type": ["string", "null"], "maxLength": MAX_TEXT},
        "Quantity": {"type": ["integer", "string"], "exclusiveMinimum": -MAX_QUANTITY, "exclusiveMaximum": MAX_QUANTITY,
                     "pattern": r"^\s*-?\d{1,9}\s*$"},
        "InvoiceDate": {"type": "string", "examples": ["12/1/2010 8:26", "2010-12-01 08:26:00"]},
        "UnitPrice": {"type": ["string", "number"], "examples": ["2.55"]},
        "CustomerID": {"type": ["string", "integer", "number", "null"], "examples": ["17850.0"]},
        "Country": _TEXT,
    },
}
_SUMMARY = {
    "type": "object",
    "required": ["invoice_no", "invoice_date", "customer_id", "country", "line_count", "total", "is_cancellation",
                 "is_adjustment", "has_non_product_lines"],
    "properties": {
        "invoice_no": _INVOICE_NO_TEXT,
        "invoice_date": _LOCAL_DATETIME_OUT,
        "customer_id": _CUSTOMER_ID_OUT,
        "country": {"type": "string"},
        "line_count": {"type": "integer", "minimum": 1},
        "total": _MONEY,
        "is_cancellation": {"type": "boolean"},
        "is_adjustment": {"type": "boolean"},
        "has_non_product_lines": {"type": "boolean"},
    },
}
_INVOICE = {
    "allOf": [
        {"$ref": "#/components/schemas/InvoiceSummary"},
        {
            "type": "object",
            "required": ["lines"],
            "properties": {
                "total": {**_MONEY, "description": "sum of the lines' amounts"},
                "status": {"type": "string", "enum": list(STATUSES),
                           "description": "only for an invoice whose source carries a status"},
                "lines": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["line_no", "stock_code", "description", "quantity", "unit_price", "amount", "is_product"],
                        "properties": {
                            "line_no": {"type": "integer", "minimum": 1},
                            "stock_code": {"type": "string"},
                            "description": {"type": ["string", "null"]},
                            "quantity": {"type": "integer"},
                            "unit_price": _MONEY,
                            "amount": _MONEY,
                            "is_product": {"type": "boolean"},
                            "invoice_date": {**_LOCAL_DATETIME_OUT, "description": "only when this line's time differs from the invoice's"},
                        },
                    },
                },
            },
        },
    ]
}
_ACCEPTED = {
    "type": "object",
    "required": ["items", "events", "lines"],
    "properties": {
        "items": {"type": "integer", "minimum": 0, "description": "items of the body accepted"},
        "events": {"type": "integer", "minimum": 0, "description": "invoice events written (raw rows grouped)"},
        "lines": {"type": "integer", "minimum": 0},
        "records": {"type": "integer", "minimum": 0, "description": "Kinesis records (KPL aggregates) written"},
        "indexes": {"type": "array", "items": {"type": "integer"}, "description": "the items written (207 only)"},
    },
}
_UNAVAILABLE = {
    "description": "temporarily unavailable (the stream refuses records, the table does not answer, or the local "
                   "runtime has not read the deployment yet); retry after Retry-After seconds (writes are idempotent)",
    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


_UNAUTHORIZED = {
    "description": "no token, or one that is invalid or expired (API Gateway's own answer)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
# Each operation's scopes: any one of them suffices (alternatives of the security requirement).
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "postEvents": [{"bearer": [SCOPE_EVENTS_WRITE]}],
    "getInvoice": [{"bearer": [SCOPE_INVOICES_READ]}, {"bearer": [SCOPE_INVOICES_READ_OWN]}],
    "listCustomerInvoices": [{"bearer": [SCOPE_INVOICES_READ]}, {"bearer": [SCOPE_INVOICES_READ_OWN]}],
    "getOpenApi": [],
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, ref: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "shopstream",
        "version": "1.0.0",
        "description": "Invoice events in (POST /events), invoices and customer histories out. Every operation "
                       "but this document needs an access token (Authorization: Bearer …) with one of the scopes "
                       "its security lists: producers send events, staff read everything, a customer (the token's "
                       "customer_id claim) reads their own invoices and history.",
    },
    "paths": {
        "/events": {
            "post": {
                "operationId": "postEvents",
                "summary": "Send invoice events or raw Kaggle rows",
                "requestBody": {
                    "required": True,
                    "description": "UTF-8 JSON, at most 2,000,000 bytes. The body is read as JSON whatever its Content-Type says "
                                   "(curl -d sends application/x-www-form-urlencoded); a body that is not JSON, a "
                                   "multipart form among them, is a 400.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/InvoiceEvent"},
                                    {"$ref": "#/components/schemas/RawRow"},
                                    {"type": "array", "minItems": 1, "items": {"oneOf": [
                                        {"$ref": "#/components/schemas/InvoiceEvent"},
                                        {"$ref": "#/components/schemas/RawRow"},
                                    ]}},
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json("every item accepted", "IngestAccepted"),
                    "207": _json("some items written (accepted.indexes), the others rejected (listed by index, field and "
                                 "reason; resend only those, fixed; an invoice another producer sent first is "
                                 "rejected with the field invoice_no)", "IngestRejected"),
                    "400": {
                        "description": "every item rejected (listed by index, field and reason), or the body is unusable "
                                       "(empty, not UTF-8, not JSON, nested too deeply, a number literal over 64 "
                                       "characters, not base64 although flagged so: an Error naming the body)",
                        "content": {"application/json": {"schema": {"anyOf": [
                            {"$ref": "#/components/schemas/IngestRejected"}, {"$ref": "#/components/schemas/Error"}]}}},
                    },
                    "401": _UNAUTHORIZED,
                    "403": {
                        "description": "a token without the scope shopstream/events.write (API Gateway's "
                                       "{\"message\": \"Forbidden\"}), or every item is an invoice another "
                                       "producer sent first (listed like rejected items)",
                        "content": {"application/json": {"schema": {"anyOf": [
                            {"$ref": "#/components/schemas/IngestRejected"}, {"$ref": "#/components/schemas/Error"}]}}},
                    },
                    "413": _error("body over the size limit (2,000,000 bytes), or a request API Gateway cannot pass to the function"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/invoices/{invoice_no}": {
            "get": {
                "operationId": "getInvoice",
                "summary": "One invoice with all its lines",
                "parameters": [{"name": "invoice_no", "in": "path", "required": True, "schema": _INVOICE_NO_TEXT}],
                "responses": {
                    "200": _json("the invoice", "Invoice"),
                    "400": _error("malformed invoice number"),
                    "401": _UNAUTHORIZED,
                    "403": _error("the token has neither scope, or it is a customer's and the invoice is not theirs"),
                    "404": _error("no such invoice"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/customers/{customer_id}/invoices": {
            "get": {
                "operationId": "listCustomerInvoices",
                "summary": "A customer's invoices, newest first",
                "parameters": [
                    {"name": "customer_id", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": _CUSTOMER_ID_PATTERN, "examples": ["17850"]},
                     "description": "customer number; 17850, 017850 and 17850.0 are one customer"},
                    {"name": "from", "in": "query", "schema": _BOUND, "description": "date or date-time, inclusive (empty: no bound)"},
                    {"name": "to", "in": "query", "schema": _BOUND,
                     "description": "date (the whole day) or date-time, inclusive; not before from"},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": MAX_CURSOR_CHARS},
                     "description": "next_cursor of the previous page (with the same customer, from and to)"},
                ],
                "responses": {
                    "200": _json("a page of invoice summaries", "InvoicePage"),
                    "400": _error("a malformed or unknown parameter (named in problems)"),
                    "401": _UNAUTHORIZED,
                    "403": _error("the token has neither scope, or it is another customer's"),
                    "404": _error("the customer has no invoices"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "responses": {
                    "200": {"description": "OpenAPI 3.1 document", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["openapi", "info", "paths"]}}}},
                    "503": _UNAVAILABLE,
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "description": "an OAuth 2.0 access token (JWT) of the API's issuer: the Cognito user pool, "
                                      "or locally `shopstream token`"},
        },
        "schemas": {
            "Error": _ERROR,
            "InvoiceEvent": _INVOICE_EVENT,
            "RawRow": _RAW_ROW,
            "InvoiceSummary": _SUMMARY,
            "Invoice": _INVOICE,
            "InvoicePage": {
                "type": "object",
                "required": ["customer_id", "from", "to", "invoices", "next_cursor"],
                "properties": {
                    "customer_id": {**_CUSTOMER_ID_OUT, "type": "string"},
                    "from": {**_LOCAL_DATETIME_OUT, "type": ["string", "null"]},
                    "to": {**_LOCAL_DATETIME_OUT, "type": ["string", "null"]},
                    "invoices": {"type": "array", "maxItems": MAX_LIMIT, "items": {"$ref": "#/components/schemas/InvoiceSummary"}},
                    "next_cursor": {"type": ["string", "null"], "maxLength": MAX_CURSOR_CHARS},
                },
            },
            "IngestAccepted": {
                "type": "object",
                "required": ["accepted", "rejected"],
                "properties": {
                    "accepted": _ACCEPTED,
                    "rejected": {"type": "array", "maxItems": 0},
                },
            },
            "IngestRejected": {
                "type": "object",
                "required": ["message", "accepted", "rejected", "rejected_total"],
                "properties": {
                    "message": {"type": "string"},
                    "accepted": _ACCEPTED,
                    "rejected_total": {"type": "integer", "minimum": 1},
                    "rejected": {
                        "type": "array",
                        "description": "the first 1,000 rejected items",
                        "items": {
                            "type": "object",
                            "required": ["index", "problems"],
                            "properties": {"index": {"type": "integer", "minimum": 0}, "problems": _PROBLEMS},
                        },
                    },
                },
            },
        }
    },
}


for _path in DOCUMENT["paths"].values():
    for _operation in _path.values():
        _operation["security"] = SECURITY[_operation["operationId"]]
