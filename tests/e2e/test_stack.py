"""The whole stack as a user runs it: `shopstream up` (emulator + terraform apply + local
runtime), the bundled sample replayed through the HTTP API, results checked through the
HTTP API and in DynamoDB, a second replay changing nothing, bad input refused."""
from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest
import requests

from devstack import stack
from devstack.demo import count_stored, queue_depth, verify_through_api
from devstack.emulator import free_port
from devstack.runtime.client import wait_until_drained
from pipeline.kaggle import read_invoices
from scripts.replay_kaggle import replay
from tests.conftest import SAMPLE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    config = stack.StackConfig(
        state_dir=tmp_path_factory.mktemp("stack"),
        emulator_port=free_port(), gateway_port=free_port(), admin_port=free_port(),
    )
    info = stack.up(config, say=lambda line: None)
    yield config, info
    stack.down(config, quiet=True)


def replay_and_drain(config):
    import time

    stats = replay(str(SAMPLE), endpoint=config.api_url, progress=False)
    wait_until_drained(config.admin_url, since=time.time(), timeout=120)
    return stats


def table_snapshot(config, table):
    client = boto3.client("dynamodb", endpoint_url=config.emulator_url, region_name=config.region,
                          aws_access_key_id="test", aws_secret_access_key="test")
    items, kwargs = [], {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda i: (i["invoice_no"]["S"], int(i["part"]["N"])))
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_the_sample_arrives_whole_and_a_replay_changes_nothing(running):
    config, info = running
    table = info.outputs["invoices_table_name"]
    # WHEN the bundled sample is replayed through the HTTP API and the consumers drain
    stats = replay_and_drain(config)
    # THEN everything read was delivered, stored and reconciles to the penny
    assert stats.ok, stats.first_problems
    stored = count_stored(config, table)
    assert (stats.events_sent, stats.lines_sent) == (418, 7419)
    assert (stored.invoices, stored.lines) == (418, 7419)
    assert stored.total == Decimal(stats.source_total) == Decimal("150463.30")
    assert queue_depth(config, info.outputs["quarantine_queue_url"]) == 0
    assert all(queue_depth(config, url) == 0 for url in info.outputs["failures_queue_urls"].values())
    # AND every invoice comes back through the API with the source's lines and total
    verification = verify_through_api(config.api_url, str(SAMPLE), progress=False)
    assert verification.checked == 418 and verification.ok, (verification.missing, verification.mismatched)
    before = table_snapshot(config, table)
    # WHEN the same data is replayed again
    assert replay_and_drain(config).ok
    # THEN not a byte changed
    assert table_snapshot(config, table) == before


def test_the_http_api_as_a_client_sees_it(running):
    config, info = running
    api = config.api_url
    events = {e.invoice_no: e for e in read_invoices(str(SAMPLE))}
    replay_and_drain(config)

    invoice = requests.get(f"{api}/invoices/536365", timeout=10).json()
    assert invoice["customer_id"] == "17850" and invoice["invoice_date"] == "2010-12-01T08:26:00"
    assert Decimal(invoice["total"]) == events["536365"].total == sum(Decimal(l["amount"]) for l in invoice["lines"])
    assert [l["line_no"] for l in invoice["lines"]] == list(range(1, len(events["536365"].lines) + 1))

    cancellation = requests.get(f"{api}/invoices/C536379", timeout=10).json()
    assert cancellation["is_cancellation"] is True and Decimal(cancellation["total"]) < 0

    mine = sorted((e for e in events.values() if e.customer_id == "17850"), key=lambda e: (e.invoice_date, e.invoice_no), reverse=True)
    first = requests.get(f"{api}/customers/17850/invoices", params={"limit": 5}, timeout=10).json()
    second = requests.get(f"{api}/customers/17850/invoices", params={"limit": 5, "cursor": first["next_cursor"]}, timeout=10).json()
    assert [i["invoice_no"] for i in first["invoices"] + second["invoices"]] == [e.invoice_no for e in mine[:10]]

    spec = requests.get(f"{api}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.") and "/customers/{customer_id}/invoices" in spec["paths"]


@pytest.mark.parametrize(
    "method, path, body, status, field",
    [
        ("GET", "/invoices/999999", None, 404, None),
        ("GET", "/invoices/53%206365", None, 400, "invoice_no"),
        ("GET", "/customers/abc/invoices", None, 400, "customer_id"),
        ("GET", "/customers/17850/invoices?limit=1000", None, 400, "limit"),
        ("GET", "/customers/99999/invoices", None, 404, None),
        ("POST", "/events", b'{"schema_version": 1, "invoice_no": ', 400, "body"),
        ("POST", "/events", b"", 400, "body"),
    ],
)
def test_bad_requests_get_a_clear_4xx(running, method, path, body, status, field):
    config, _ = running
    response = requests.request(method, f"{config.api_url}{path}", data=body, timeout=10,
                                headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["message"]
    if field:
        assert payload["problems"][0]["field"] == field


def test_invalid_items_are_named_and_nothing_of_them_is_written(running):
    config, info = running
    good = json.loads(next(iter(read_invoices(str(SAMPLE)))).to_json())
    good.update(invoice_no="900001", event_id=None, customer_id="12345")
    bad = dict(good, invoice_no="900002", country=7)
    rows = [
        {"InvoiceNo": "900003", "StockCode": "A", "Description": "x", "Quantity": "1", "InvoiceDate": "12/1/2010 8:26",
         "UnitPrice": "1.00", "CustomerID": "12345", "Country": "United Kingdom"},
        {"InvoiceNo": "900003", "StockCode": "B", "Description": "y", "Quantity": "one", "InvoiceDate": "12/1/2010 8:26",
         "UnitPrice": "1.00", "CustomerID": "12345", "Country": "United Kingdom"},
    ]
    response = requests.post(f"{config.api_url}/events", json=[good, bad, *rows], timeout=10)
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"]["events"] == 1
    rejected = {r["index"]: r["problems"][0] for r in body["rejected"]}
    assert rejected[1]["field"] == "country" and rejected[3]["field"] == "Quantity"
    assert "rejected with its invoice" in rejected[2]["reason"]
    import time

    wait_until_drained(config.admin_url, since=time.time(), timeout=60)
    assert requests.get(f"{config.api_url}/invoices/900001", timeout=10).status_code == 200
    assert requests.get(f"{config.api_url}/invoices/900002", timeout=10).status_code == 404
    assert requests.get(f"{config.api_url}/invoices/900003", timeout=10).status_code == 404  # not half-written


@pytest.mark.parametrize(
    "size, message",
    [(int(5.5 * 1024 * 1024), "the limit is 5242880 bytes"),  # refused by the ingest function
     (7 * 1024 * 1024, "Request Entity Too Large")],          # refused before any function runs
)
def test_an_oversize_body_is_refused_with_413(running, size, message):
    config, _ = running
    response = requests.post(f"{config.api_url}/events", data=b"[" + b" " * size + b"]", timeout=30,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert message in response.json()["message"]


def test_localstack_clients_reach_what_terraform_deployed(running):
    # The emulator speaks the AWS wire protocols on the LocalStack edge port layout, so a
    # localstack-client session (given the host:port; 4566 by default) sees the stack.
    import localstack_client.session

    config, info = running
    session = localstack_client.session.Session(localstack_host=f"127.0.0.1:{config.emulator_port}", region_name=config.region)
    assert info.outputs["stream_name"] in session.client("kinesis").list_streams()["StreamNames"]
    table = session.client("dynamodb").describe_table(TableName=info.outputs["invoices_table_name"])["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["invoice_no", "part"]
    functions = {f["FunctionName"] for f in session.client("lambda").list_functions()["Functions"]}
    assert set(info.outputs["function_names"].values()) <= functions


def test_shopstream_status_names_every_stream_consumer_with_its_kind_and_stream(running, capsys):
    from devstack import cli

    config, info = running
    replay_and_drain(config)
    # WHEN a user asks for the status of the running stack
    code = cli.main(["--state-dir", str(config.state_dir), "--emulator-port", str(config.emulator_port),
                     "--gateway-port", str(config.gateway_port), "--admin-port", str(config.admin_port), "status"])
    out = capsys.readouterr().out
    # THEN each consumer is listed with its kind, function and stream, and its shards with counts
    assert code == 0, out
    stream = info.outputs["stream_name"]
    assert f"event-source-mapping  {info.outputs['function_names']['invoice-writer']} ← {stream}" in out
    shard_lines = [line for line in out.splitlines() if line.strip().startswith("shardId-")]
    assert len(shard_lines) >= 2 and all("records" in line and "checkpoint" in line for line in shard_lines)
    assert sum(int(line.split(": ", 1)[1].split(" records")[0].replace(",", "")) for line in shard_lines) > 0
