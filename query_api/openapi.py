"""The OpenAPI 3.1 document of shopstream's HTTP API, served at ``GET /openapi.json``.

It documents every route of the HTTP API (the ingest route included); the contract test
``tests/contract/test_openapi_routes.py`` proves its paths equal Terraform's routes.
"""
from __future__ import annotations

from typing import Any

_MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2,}$", "description": "exact decimal amount (never a float)", "examples": ["15.30"]}
_ERROR = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}
_LINE_IN = {
    "type": "object",
    "required": ["line_no", "stock_code", "quantity", "unit_price"],
    "additionalProperties": False,
    "properties": {
        "line_no": {"type": "integer", "minimum": 1, "description": "position of the line in the source invoice"},
        "stock_code": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "quantity": {"type": "integer", "description": "negative on cancellations"},
        "unit_price": {"type": "string", "description": "exact decimal, e.g. \"2.55\""},
        "invoice_date": {"type": "string", "description": "only when this line's time differs from the invoice's"},
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
        "invoice_no": {"type": "string", "examples": ["536365", "C536379"]},
        "invoice_date": {"type": "string", "format": "date-time", "examples": ["2010-12-01T08:26:00"]},
        "customer_id": {"type": ["string", "null"], "examples": ["17850"]},
        "country": {"type": "string"},
        "is_cancellation": {"type": "boolean", "description": "derived (C prefix); checked when given"},
        "is_adjustment": {"type": "boolean", "description": "derived (A prefix); checked when given"},
        "has_non_product_lines": {"type": "boolean", "description": "derived; checked when given"},
        "lines": {"type": "array", "minItems": 1, "maxItems": 10000, "items": _LINE_IN},
    },
}
_RAW_ROW = {
    "type": "object",
    "description": "one row of the Kaggle CSV; rows of one invoice in one request are grouped",
    "required": ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "Country"],
    "properties": {
        "InvoiceNo": {"type": "string"},
        "StockCode": {"type": "string"},
        "Description": {"type": ["string", "null"]},
        "Quantity": {"type": ["integer", "string"]},
        "InvoiceDate": {"type": "string", "examples": ["12/1/2010 8:26", "2010-12-01 08:26:00"]},
        "UnitPrice": {"type": ["string", "number"]},
        "CustomerID": {"type": ["string", "integer", "number", "null"]},
        "Country": {"type": "string"},
    },
}
_SUMMARY = {
    "type": "object",
    "properties": {
        "invoice_no": {"type": "string"},
        "invoice_date": {"type": "string", "format": "date-time"},
        "customer_id": {"type": ["string", "null"]},
        "country": {"type": "string"},
        "line_count": {"type": "integer"},
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
            "properties": {
                "total": {**_MONEY, "description": "sum of the lines' amounts"},
                "lines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "line_no": {"type": "integer"},
                            "stock_code": {"type": "string"},
                            "description": {"type": ["string", "null"]},
                            "quantity": {"type": "integer"},
                            "unit_price": _MONEY,
                            "amount": _MONEY,
                            "is_product": {"type": "boolean"},
                            "invoice_date": {"type": "string"},
                        },
                    },
                },
            },
        },
    ]
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
        "description": "Invoice events in (POST /events), invoices and customer histories out.",
    },
    "paths": {
        "/events": {
            "post": {
                "operationId": "postEvents",
                "summary": "Send invoice events or raw Kaggle rows",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/InvoiceEvent"},
                                    {"$ref": "#/components/schemas/RawRow"},
                                    {"type": "array", "minItems": 1, "items": {"oneOf": [{"$ref": "#/components/schemas/InvoiceEvent"}, {"$ref": "#/components/schemas/RawRow"}]}},
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json("every item accepted", "IngestAccepted"),
                    "207": _json("some items written (accepted.indexes), the others rejected (listed by index, field and "
                                 "reason; resend only those, fixed)", "IngestRejected"),
                    "400": _json("every item rejected (listed by index, field and reason), or the body is unusable (not "
                                 "UTF-8, not JSON, nested too deeply, a number literal over 64 characters, not base64 "
                                 "although flagged so)", "IngestRejected"),
                    "413": _error("body over the size limit (5 MiB)"),
                    "503": _error("the stream is not accepting records; retry (writes are idempotent)"),
                },
            }
        },
        "/invoices/{invoice_no}": {
            "get": {
                "operationId": "getInvoice",
                "summary": "One invoice with all its lines",
                "parameters": [{"name": "invoice_no", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json("the invoice", "Invoice"),
                    "400": _error("malformed invoice number"),
                    "404": _error("no such invoice"),
                },
            }
        },
        "/customers/{customer_id}/invoices": {
            "get": {
                "operationId": "listCustomerInvoices",
                "summary": "A customer's invoices, newest first",
                "parameters": [
                    {"name": "customer_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "date or date-time, inclusive"},
                    {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "date or date-time, inclusive"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor of the previous page"},
                ],
                "responses": {
                    "200": _json("a page of invoice summaries", "InvoicePage"),
                    "400": _error("a malformed parameter (named in problems)"),
                    "404": _error("the customer has no invoices"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1 document", "content": {"application/json": {}}}},
            }
        },
    },
    "components": {
        "schemas": {
            "Error": _ERROR,
            "InvoiceEvent": _INVOICE_EVENT,
            "RawRow": _RAW_ROW,
            "InvoiceSummary": _SUMMARY,
            "Invoice": _INVOICE,
            "InvoicePage": {
                "type": "object",
                "properties": {
                    "customer_id": {"type": "string"},
                    "from": {"type": ["string", "null"]},
                    "to": {"type": ["string", "null"]},
                    "invoices": {"type": "array", "items": {"$ref": "#/components/schemas/InvoiceSummary"}},
                    "next_cursor": {"type": ["string", "null"]},
                },
            },
            "IngestAccepted": {
                "type": "object",
                "properties": {
                    "accepted": {"type": "object", "properties": {"items": {"type": "integer"}, "events": {"type": "integer"}, "lines": {"type": "integer"}, "records": {"type": "integer"}}},
                    "rejected": {"type": "array", "maxItems": 0},
                },
            },
            "IngestRejected": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "accepted": {"type": "object", "properties": {
                        "items": {"type": "integer"}, "events": {"type": "integer"}, "lines": {"type": "integer"},
                        "records": {"type": "integer"},
                        "indexes": {"type": "array", "items": {"type": "integer"}, "description": "the items written (207 only)"}}},
                    "rejected_total": {"type": "integer"},
                    "rejected": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"index": {"type": "integer"}, "problems": {"$ref": "#/components/schemas/Error/properties/problems"}},
                        },
                    },
                    "problems": {"$ref": "#/components/schemas/Error/properties/problems"},
                },
            },
        }
    },
}
