"""The Firehose transformation: invoice events → staging rows, and Firehose's three results."""
from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from firehose.core import DROPPED, OK, PROCESSING_FAILED, SizeClasses, SourceRecord, Transformer
from tests.factories import FakeLambdaContext, event, line
from warehouse.schema import STAGING_COLUMN_NAMES, source_sequence

SEQ = "49590338271490256608559692538361571095921575989136588898"


def rows_of(outcome) -> list[dict]:
    """Each NDJSON array as a dict keyed by the staging columns (what the JSONPaths file maps)."""
    text = outcome.data.decode("utf-8")
    assert text.endswith("\n")
    rows = [json.loads(row, parse_float=Decimal) for row in text.splitlines()]
    assert all(isinstance(row, list) and len(row) == len(STAGING_COLUMN_NAMES) for row in rows)
    return [dict(zip(STAGING_COLUMN_NAMES, row)) for row in rows]


def test_one_row_per_line_with_a_value_per_staging_column_in_order():
    # GIVEN an invoice of three lines, one a non-product code
    invoice = event("536365", lines=[line(1, quantity=6, unit_price="2.55"), line(2, "POST", "POSTAGE", 1, "18.00"),
                                    line(3, quantity=48, unit_price="3.39")])
    # WHEN it is transformed
    outcome = Transformer().transform_one(SourceRecord("r1", invoice.to_json(), SEQ, 3, 1291191960123))
    # THEN each line is one row (a JSON array in the staging columns' order), exact money and the flags
    assert outcome.result == OK and outcome.lines == 3
    first, post, third = rows_of(outcome)
    assert first["amount"] == "15.30" and first["unit_price"] == "2.55"
    assert third["amount"] == "162.72" and third["size_class"] == "Large"
    assert (first["size_class"], post["size_class"]) == ("Medium", "Medium")
    assert post["is_product"] is False and first["is_product"] is True
    assert first["invoice_date"] == "2010-12-01 08:26:00" and first["event_id"] == invoice.event_id
    assert first["source_sequence"] == source_sequence(SEQ, 3) and first["arrived_at"] == "2010-12-01 08:26:00.123"


def test_money_is_written_as_its_exact_decimal_text_never_through_a_float():
    invoice = event("C536379", customer_id=None, lines=[line(1, "D", None, -1, "27.50"), line(2, quantity=3, unit_price="0.001"),
                                                       line(3, quantity=999_999_999 - 1, unit_price="999999999.999999")])
    outcome = Transformer().transform_one(SourceRecord("r", invoice.to_json(), SEQ))
    text = outcome.data.decode()
    assert ',"27.50","-27.50",' in text and ',"0.001","0.003",' in text
    big = Decimal("999999999.999999") * (999_999_999 - 1)
    assert big == Decimal("999999997999999000.000002") and f',"{big}",' in text  # 18 integer digits: no float holds it
    rows = rows_of(outcome)
    assert rows[0]["customer_id"] is None and rows[0]["description"] is None
    assert rows[0]["is_cancellation"] is True and rows[0]["size_class"] == "Medium"


def test_sequence_text_sorts_like_the_stream():
    assert source_sequence("9", 5) < source_sequence("10", 0) < source_sequence("10", 1) < source_sequence("11", 0)
    assert source_sequence(SEQ, 3) == f"056{SEQ}:0000000003" and len(source_sequence("9" * 129, 10**10 - 1)) == 143
    for bad in ("12a", "0123", "1" * 130):
        with pytest.raises(ValueError):
            source_sequence(bad)


def test_rows_stay_small_enough_for_firehoses_6_mb_response():
    # the densest real shape: many short lines. A 1 MB call (Firehose's default processor
    # buffer) must answer under 6 MB once base64-encoded, with room to spare
    invoice = event("536365", lines=[line(i, "A", None, 1, "1") for i in range(1, 2001)])
    source = invoice.to_json()
    rows = Transformer().transform_one(SourceRecord("r", source, SEQ)).data
    growth = len(rows) / len(source) * 4 / 3
    assert growth * 1.5 < 6, f"{growth:.2f}x: the largest allowed processor buffer (1.5 MB) would answer over 6 MB"


@pytest.mark.parametrize("data, reason", [
    (b"not json", "not valid JSON"),
    (json.dumps({**json.loads(event().to_json()), "country": 7}).encode(), "country"),
])
def test_what_the_contract_rejects_is_processing_failed_with_its_reason(data, reason):
    outcome = Transformer().transform_one(SourceRecord("r", data, SEQ))
    assert outcome.result == PROCESSING_FAILED and reason in outcome.reason and outcome.data == b""


def test_other_event_types_are_dropped_not_failed():
    data = json.dumps({"schema_version": 1, "event_type": "customer", "customer_id": "1"}).encode()
    outcome = Transformer().transform_one(SourceRecord("r", data, SEQ))
    assert outcome.result == DROPPED and "customer" in outcome.reason


def test_size_thresholds_are_configurable_and_must_be_ordered():
    sizes = SizeClasses(Decimal("1"), Decimal("2"))
    assert [sizes.classify(Decimal(v)) for v in ("0.99", "1", "-1.5", "2")] == ["Small", "Medium", "Medium", "Large"]
    with pytest.raises(ValueError):
        SizeClasses(Decimal("5"), Decimal("5"))


def test_the_handler_answers_every_record_id_in_firehoses_response_shape(monkeypatch):
    # GIVEN a Firehose transformation event with a good and a bad record, thresholds from the environment
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "shopstream-test")
    monkeypatch.setenv("SHOPSTREAM_SIZE_MEDIUM_FROM", "1")
    monkeypatch.setenv("SHOPSTREAM_SIZE_LARGE_FROM", "1000")
    import importlib

    import firehose.handler

    handler = importlib.reload(firehose.handler)  # Powertools reads its namespace when the module loads
    good = event("536365", lines=[line(1, quantity=6, unit_price="2.55")])
    meta = {"shardId": "shardId-000000000000", "partitionKey": "536365", "approximateArrivalTimestamp": 1291191960000,
            "sequenceNumber": SEQ, "subsequenceNumber": 0}
    records = [{"recordId": rid, "approximateArrivalTimestamp": 1291191960000, "data": base64.b64encode(data).decode(),
                "kinesisRecordMetadata": meta} for rid, data in (("a", good.to_json()), ("b", b"{}"))]
    fh_event = {"invocationId": "i", "deliveryStreamArn": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/d",
                "sourceKinesisStreamArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/s", "region": "eu-west-1",
                "records": records}
    # WHEN the handler runs
    response = handler.lambda_handler(fh_event, FakeLambdaContext())
    handler.transformer.cache_clear()
    # THEN each record comes back with its result, Ok data decoding to the rows
    assert [(r["recordId"], r["result"]) for r in response["records"]] == [("a", OK), ("b", PROCESSING_FAILED)]
    (row,) = [dict(zip(STAGING_COLUMN_NAMES, json.loads(x)))
              for x in base64.b64decode(response["records"][0]["data"]).decode().splitlines()]
    assert row["size_class"] == "Medium" and row["invoice_no"] == "536365"
