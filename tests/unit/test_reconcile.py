"""devstack.reconcile: a sink that differs is found, named and reported; the quarantine is
counted whole."""
from __future__ import annotations

import json
from decimal import Decimal

import boto3
from moto import mock_aws

from devstack.reconcile import Figures, format_report, quarantine_counts, queue_messages, reconcile


def figures(*invoices: tuple[str, str, int, str]) -> Figures:
    out = Figures()
    for no, country, lines, revenue in invoices:
        out.add(no, country, lines, Decimal(revenue))
    return out


SOURCE = [("536365", "United Kingdom", 7, "139.12"), ("536366", "France", 2, "22.20"),
          ("536367", "France", 12, "278.73")]


def test_equal_sinks_reconcile():
    report = reconcile(figures(*SOURCE), {"dynamodb": figures(*SOURCE), "warehouse": figures(*reversed(SOURCE))})
    assert report.ok and all(c.ok for c in report.sinks.values())
    assert format_report(report).endswith("every sink reconciles with the source")


def test_a_penny_and_a_missing_invoice_are_found_named_and_reported():
    penny = [SOURCE[0], ("536366", "France", 2, "22.21"), SOURCE[2]]
    report = reconcile(figures(*SOURCE), {"dynamodb": figures(*SOURCE), "archive": figures(*penny),
                                          "warehouse": figures(*SOURCE[:2])})
    assert not report.ok
    archive, warehouse = report.sinks["archive"], report.sinks["warehouse"]
    assert report.sinks["dynamodb"].ok
    assert (archive.countries, archive.invoices, archive.differing_invoices) == (["France"], ["536366"], 1)
    assert (warehouse.countries, warehouse.invoices) == (["France"], ["536367"])
    text = format_report(report)
    assert "invoice 536366: source 2 lines, 22.20 · archive 2 lines, 22.21" in text
    assert "invoice 536367: source 12 lines, 278.73 · warehouse absent" in text
    assert text.endswith("MISMATCH")
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["ok"] is False and as_json["dynamodb"]["ok"] is True
    assert as_json["archive"]["first_differing_invoices"] == ["536366"]
    assert as_json["archive"]["by_country"]["France"]["revenue"] == "300.94"  # exact, as a string
    assert as_json["warehouse"]["differing_countries"] == ["France"] and as_json["warehouse"]["invoices"] == 2


def test_lines_missing_and_lines_beyond_the_source_are_counted_apart():
    doubled = [SOURCE[0], ("536366", "France", 4, "44.40"), ("536399", "Spain", 3, "9.00")]
    report = reconcile(figures(*SOURCE), {"archive": figures(*doubled)})
    archive = report.sinks["archive"]
    # 536367's 12 lines are missing; 536366 holds 2 lines twice and 536399 is not in the source
    assert (archive.lost_lines, archive.extra_lines, archive.differing_invoices) == (12, 5, 3)
    assert "12 source lines missing, 5 lines beyond the source's" in format_report(report)
    assert report.to_dict()["archive"]["lost_lines"] == 12


@mock_aws
def test_every_quarantined_message_is_counted_and_left_in_the_queue():
    sqs = boto3.client("sqs", region_name="eu-west-1")
    url = sqs.create_queue(QueueName="quarantine")["QueueUrl"]
    for n in range(35):
        consumer = "invoice-writer" if n % 5 else "archive-writer"
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"reason": "invalid", "source": {"consumer": consumer}}))
    assert quarantine_counts(sqs, url) == {"invoice-writer": 28, "archive-writer": 7}
    # the messages are visible again at once: a second count sees them all
    assert len(queue_messages(sqs, url)) == 35
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "35"
