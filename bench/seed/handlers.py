"""The baseline: shopstream's seed design, rebuilt faithfully for comparison only.

* one HTTP request per CSV row, one ``put_record`` per row (no aggregation);
* one ``update_item`` per line into a customer table and one into an invoice table keyed
  by invoice number and **stock code** (so repeated stock codes within an invoice
  overwrite each other: lines are lost), prices stored as floats.

It runs on the same local runtime and emulator as shopstream, deployed next to it by
``bench/run.py``; nothing in shopstream uses it.
"""
from __future__ import annotations

import base64
import json
import os

import boto3

_clients: dict[str, object] = {}


def _client(name: str):
    if name not in _clients:
        _clients[name] = boto3.client(name)
    return _clients[name]


def ingest(event, context):
    row = json.loads(event["body"])
    _client("kinesis").put_record(
        StreamName=os.environ["SEED_STREAM"], Data=json.dumps(row).encode(), PartitionKey=str(row["InvoiceNo"])
    )
    return {"statusCode": 200, "body": json.dumps({"ok": True})}


def consumer(event, context):
    dynamodb = _client("dynamodb")
    for record in event["Records"]:
        row = json.loads(base64.b64decode(record["kinesis"]["data"]))
        customer = str(row.get("CustomerID") or "unknown")
        dynamodb.update_item(
            TableName=os.environ["SEED_CUSTOMERS"],
            Key={"customer_id": {"S": customer}},
            UpdateExpression="SET country = :country ADD invoices :invoice, line_count :one",
            ExpressionAttributeValues={":country": {"S": row["Country"]}, ":invoice": {"SS": [str(row["InvoiceNo"])]},
                                       ":one": {"N": "1"}},
        )
        dynamodb.update_item(
            TableName=os.environ["SEED_INVOICES"],
            Key={"invoice_no": {"S": str(row["InvoiceNo"])}, "stock_code": {"S": str(row["StockCode"])}},
            UpdateExpression="SET description = :d, quantity = :q, unit_price = :p, invoice_date = :t, customer_id = :c",
            ExpressionAttributeValues={
                ":d": {"S": row.get("Description") or ""}, ":q": {"N": str(int(row["Quantity"]))},
                ":p": {"N": repr(float(row["UnitPrice"]))}, ":t": {"S": row["InvoiceDate"]}, ":c": {"S": customer},
            },
        )
    return {}
