"""The whole stack as a user runs it: `shopstream up` (emulator + terraform apply + local
runtime), the bundled sample replayed through the HTTP API, results checked through the
HTTP API, in DynamoDB, the S3 archive and the warehouse (reconciled to the penny), a
second replay and a backfill changing nothing, bad input refused or set aside with its
reason. Tests run in file order on one stack: the reconciling ones come before the
tests that add invoices of their own."""
from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest
import requests

from devstack import stack
from devstack.demo import count_stored, queue_depth, verify_through_api
from devstack.runtime.client import wait_until_drained
from pipeline.kaggle import read_invoices
from scripts.replay_kaggle import replay
from tests.conftest import SAMPLE
from tests.fixtures.tokens import authorized_session, customer_token, producer_token, staff_token, trusted_token

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running(local_stack):
    """The package's stack (tests/e2e/conftest.py), still empty: this module runs first."""
    return local_stack


_clients: dict = {}


def client(config) -> requests.Session:
    """The stack's trusted client: the sample's producer, with staff's scope to read."""
    if config.state_dir not in _clients:
        _clients[config.state_dir] = authorized_session(trusted_token(config.state_dir))
    return _clients[config.state_dir]


def replay_and_drain(config):
    import time

    stats = replay(str(SAMPLE), endpoint=config.api_url, progress=False, token=producer_token(config.state_dir))
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
    verification = verify_through_api(config.api_url, str(SAMPLE), progress=False, token=staff_token(config.state_dir))
    assert verification.checked == 418 and verification.ok, (verification.missing, verification.mismatched)
    before = table_snapshot(config, table)
    # WHEN the same data is replayed again
    assert replay_and_drain(config).ok
    # THEN not a byte changed
    assert table_snapshot(config, table) == before


def merge_now(config, info):
    """Run the scheduled merge now and wait for it (as `shopstream demo` does)."""
    import time

    from devstack.runtime.client import run_schedule, wait_for_schedule

    rule = info.outputs["warehouse"][stack.MERGE_RULE_OUTPUT]
    since = time.time()
    run_schedule(config.admin_url, rule)
    return wait_for_schedule(config.admin_url, rule, since=since, timeout=120)


def reconcile_sample(config, info):
    from devstack import reconcile

    source, problems = reconcile.source_figures(str(SAMPLE))
    sinks = reconcile.sink_figures(clients=stack.clients(config), outputs=info.outputs,
                                   execute=stack.warehouse_executor(config, info).execute)
    return reconcile.reconcile(source, sinks, problems)


def fact_snapshot(config, info):
    return stack.warehouse_executor(config, info).execute(
        "SELECT * FROM fact_invoice_lines ORDER BY invoice_no, line_no").rows


def test_every_sink_reconciles_and_neither_a_replay_nor_a_backfill_changes_a_fact_row(running):
    import time

    from consumers.archive.store import S3ArchiveStore
    from ingest.producer import KinesisProducer
    from scripts.backfill_archive import backfill

    config, info = running
    # GIVEN the sample delivered (the first test replayed it twice) and merged
    merge_now(config, info)
    # THEN DynamoDB, the archive and the warehouse hold exactly the source, to the penny
    report = reconcile_sample(config, info)
    assert report.ok, {name: (c.countries, c.invoices) for name, c in report.sinks.items()}
    for comparison in report.sinks.values():
        f = comparison.figures
        assert (len(f.invoices), f.lines, f.revenue) == (418, 7419, Decimal("150463.30"))
        assert not any(f.set_aside.values()), f.set_aside
    before = fact_snapshot(config, info)
    assert len(before) == 7419
    executor = stack.warehouse_executor(config, info)
    runs_before = executor.execute("select count(*) from shopstream_merge_runs").scalar()
    # WHEN the sample is replayed once more and a day of the archive is backfilled
    replay_and_drain(config)
    clients = stack.clients(config)
    stats = backfill(store=S3ArchiveStore(clients("s3"), info.outputs["archive_bucket_name"]),
                     producer=KinesisProducer(clients("kinesis"), info.outputs["stream_name"]),
                     prefix=info.outputs["archive_prefix"], date_from="2010-12-02", date_to="2010-12-02",
                     progress=False)
    assert stats.ok and stats.events > 100, stats
    wait_until_drained(config.admin_url, since=time.time(), timeout=120)
    merge_now(config, info)
    # THEN not one fact row changed: the merges since saw every redelivery and skipped it
    assert fact_snapshot(config, info) == before
    runs = executor.execute("select staged_rows, invoices_inserted, invoices_replaced, lines_inserted, lines_deleted "
                            "from shopstream_merge_runs order by merged_at").rows[runs_before:]
    assert sum(r[0] for r in runs) >= 7419 + stats.lines  # the replay's lines and the backfilled day's were staged
    assert all(r[1:] == (0, 0, 0, 0) for r in runs), runs
    assert reconcile_sample(config, info).ok


def test_shopstream_sql_answers_from_the_views(running, capsys):
    from devstack import cli

    config, _ = running
    args = ["--state-dir", str(config.state_dir), "--emulator-port", str(config.emulator_port),
            "--gateway-port", str(config.gateway_port), "--admin-port", str(config.admin_port)]
    assert cli.main([*args, "sql", "--format", "json", "select count(*) as n from fact_invoice_lines"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 7419}]
    query = ("select * from mv_top_products_by_country where country = 'France' order by rank limit 3")
    assert cli.main([*args, "sql", query]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["country", "stock_code", "description"] and table[-1] == "(3 rows)"
    assert cli.main([*args, "sql", "--format", "csv", "select stock_code, gross_sales from mv_top_products_by_country "
                                                     "where country = 'France' order by rank limit 1"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header == "stock_code,gross_sales" and Decimal(row.split(",")[1]) > 0
    assert cli.main([*args, "sql", "select * from no_such_table"]) == 1
    assert "no_such_table" in capsys.readouterr().err


def test_shopstream_reconcile_exits_zero_and_prints_every_sink(running, capsys):
    from devstack import cli

    config, _ = running
    code = cli.main(["--state-dir", str(config.state_dir), "--emulator-port", str(config.emulator_port),
                     "--gateway-port", str(config.gateway_port), "--admin-port", str(config.admin_port),
                     "reconcile", "--data", str(SAMPLE), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"]
    assert {name: report[name]["lines"] for name in ("source", "dynamodb", "archive", "warehouse")} == {
        "source": 7419, "dynamodb": 7419, "archive": 7419, "warehouse": 7419}
    assert report["warehouse"]["by_country"]["France"] == report["source"]["by_country"]["France"]


def test_each_large_order_is_announced_exactly_once_however_often_it_is_delivered(running, capsys):
    import time

    from consumers.notifications.core import is_large
    from devstack import cli
    from pipeline.codec import aggregate
    from pipeline.partitioning import ShardMap
    from pipeline.settings import DEFAULT_LARGE_ORDER_FROM

    config, info = running
    # GIVEN the sample delivered three times over HTTP and a day of it backfilled (the tests above)
    large = [e for e in read_invoices(str(SAMPLE)) if is_large(e, DEFAULT_LARGE_ORDER_FROM)]
    assert len(large) >= 2
    # WHEN a large invoice's event is also put straight onto the stream twice, in one aggregate
    kinesis = stack.clients(config)("kinesis")
    stream = info.outputs["stream_name"]
    shard_map = ShardMap.from_list_shards(kinesis.list_shards(StreamName=stream)["Shards"])
    twice = [(large[0].invoice_no, large[0].to_json())] * 2
    for packed in aggregate(twice, shard_map):
        kinesis.put_record(StreamName=stream, Data=packed.data, PartitionKey=packed.partition_key,
                           ExplicitHashKey=packed.explicit_hash_key)
    wait_until_drained(config.admin_url, since=time.time(), timeout=120)
    # THEN `shopstream notifications` shows one message per large invoice of the source, with its exact total
    code = cli.main(["--state-dir", str(config.state_dir), "--emulator-port", str(config.emulator_port),
                     "--gateway-port", str(config.gateway_port), "--admin-port", str(config.admin_port),
                     "notifications", "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert code == 0 and shown["topic"] == "large-orders"
    bodies = [m["message"] for m in shown["messages"]]
    assert sorted(b["invoice_no"] for b in bodies) == sorted(e.invoice_no for e in large)
    assert {b["invoice_no"]: Decimal(b["total"]) for b in bodies} == {e.invoice_no: e.total for e in large}
    # AND the ledger holds one item per announced invoice, naming the message published
    dynamodb = stack.clients(config)("dynamodb")
    items = dynamodb.scan(TableName=info.outputs["order_notifications_table_name"])["Items"]
    assert {i["invoice_no"]["S"]: i["message_id"]["S"] for i in items} == {
        b["invoice_no"]: m["message_id"] for b, m in zip(bodies, shown["messages"])}


def test_the_http_api_as_a_client_sees_it(running):
    config, info = running
    api = config.api_url
    events = {e.invoice_no: e for e in read_invoices(str(SAMPLE))}
    replay_and_drain(config)

    invoice = client(config).get(f"{api}/invoices/536365", timeout=10).json()
    assert invoice["customer_id"] == "17850" and invoice["invoice_date"] == "2010-12-01T08:26:00"
    assert Decimal(invoice["total"]) == events["536365"].total == sum(Decimal(item["amount"]) for item in invoice["lines"])
    assert [item["line_no"] for item in invoice["lines"]] == list(range(1, len(events["536365"].lines) + 1))

    cancellation = client(config).get(f"{api}/invoices/C536379", timeout=10).json()
    assert cancellation["is_cancellation"] is True and Decimal(cancellation["total"]) < 0

    mine = sorted((e for e in events.values() if e.customer_id == "17850"), key=lambda e: (e.invoice_date, e.invoice_no), reverse=True)
    first = client(config).get(f"{api}/customers/17850/invoices", params={"limit": 5}, timeout=10).json()
    second = client(config).get(f"{api}/customers/17850/invoices", params={"limit": 5, "cursor": first["next_cursor"]}, timeout=10).json()
    assert [i["invoice_no"] for i in first["invoices"] + second["invoices"]] == [e.invoice_no for e in mine[:10]]

    spec = requests.get(f"{api}/openapi.json", timeout=10).json()  # public
    assert spec["openapi"].startswith("3.") and "/customers/{customer_id}/invoices" in spec["paths"]


def test_without_a_token_nothing_but_the_document_is_served(running):
    config, _ = running
    for method, path in (("GET", "/invoices/536365"), ("GET", "/customers/17850/invoices"), ("POST", "/events")):
        response = requests.request(method, f"{config.api_url}{path}", data=b"[]", timeout=10)
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"}), (method, path)
        signed = customer_token(config.state_dir, "17850").split(".")
        response = requests.request(method, f"{config.api_url}{path}", timeout=10,
                                    headers={"Authorization": "Bearer " + ".".join([signed[0], signed[1], "x"])})  # bad signature
        assert response.status_code == 401, (method, path)
    assert requests.get(f"{config.api_url}/openapi.json", timeout=10).status_code == 200


def test_a_customer_reads_their_own_invoices_only_and_staff_read_any(running):
    config, _ = running
    replay_and_drain(config)
    events = {e.invoice_no: e for e in read_invoices(str(SAMPLE))}
    other = next(e for e in events.values() if e.customer_id not in (None, "17850"))
    with authorized_session(customer_token(config.state_dir, "17850")) as customer:
        assert customer.get(f"{config.api_url}/invoices/536365", timeout=10).status_code == 200
        history = customer.get(f"{config.api_url}/customers/17850/invoices", timeout=10)
        assert history.status_code == 200 and history.json()["invoices"]
        refused = customer.get(f"{config.api_url}/invoices/{other.invoice_no}", timeout=10)
        assert refused.status_code == 403 and refused.json()["problems"][0]["field"] == "invoice_no"
        refused = customer.get(f"{config.api_url}/customers/{other.customer_id}/invoices", timeout=10)
        assert refused.status_code == 403 and refused.json()["problems"][0]["field"] == "customer_id"
        # nor may a customer send events
        assert customer.post(f"{config.api_url}/events", data=events["536365"].to_json(), timeout=10).status_code == 403
    with authorized_session(staff_token(config.state_dir)) as staff:
        assert staff.get(f"{config.api_url}/invoices/{other.invoice_no}", timeout=10).status_code == 200
        assert staff.get(f"{config.api_url}/customers/{other.customer_id}/invoices", timeout=10).status_code == 200
        response = staff.post(f"{config.api_url}/events", data=events["536365"].to_json(), timeout=10)
        assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})  # no producer scope


def test_a_producer_cannot_overwrite_another_producers_invoice(running):
    import time

    config, _ = running
    replay_and_drain(config)  # the sample's invoices belong to the producer "replay"
    before = client(config).get(f"{config.api_url}/invoices/536365", timeout=10).json()
    forged = json.loads(next(iter(read_invoices(str(SAMPLE)))).to_json())
    assert forged["invoice_no"] == "536365"
    forged.update(event_id=None, customer_id="99998")
    mine = dict(forged, invoice_no="800001")
    with authorized_session(producer_token(config.state_dir, "another-shop")) as other:
        response = other.post(f"{config.api_url}/events", json=[forged, mine], timeout=10)
        assert response.status_code == 207, response.text
        body = response.json()
        assert body["accepted"]["indexes"] == [1]
        [rejection] = body["rejected"]
        assert rejection["index"] == 0 and rejection["problems"][0]["field"] == "invoice_no"
        assert other.post(f"{config.api_url}/events", json=forged, timeout=10).status_code == 403
    wait_until_drained(config.admin_url, since=time.time(), timeout=60)
    assert client(config).get(f"{config.api_url}/invoices/536365", timeout=10).json() == before
    # AND the invoice the other producer did send is its own: the sample's producer cannot take it over
    assert client(config).post(f"{config.api_url}/events", json=dict(mine, customer_id="17850"),
                               timeout=10).status_code == 403


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
        # hostile bodies through the real gateway (which passes bytes that are not UTF-8 as base64)
        ("POST", "/events", '[{"InvoiceNo": "536365", "Description": "\u00a3"}]'.encode("latin-1"), 400, "body"),
        ("POST", "/events", b"[" * 1000 + b"]" * 1000, 400, "body"),
        ("POST", "/events", b'{"country": "\\ud800"}', 400, "country"),
        ("GET", "/customers/17850/invoices?limit=%EF%BC%91%EF%BC%90", None, 400, "limit"),
    ],
)
def test_bad_requests_get_a_clear_4xx(running, method, path, body, status, field):
    config, _ = running
    response = client(config).request(method, f"{config.api_url}{path}", data=body, timeout=10,
                                headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["message"]
    if field:
        problems = payload.get("problems") or payload["rejected"][0]["problems"]
        assert field in [p["field"] for p in problems], problems


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
    response = client(config).post(f"{config.api_url}/events", json=[good, bad, *rows], timeout=10)
    assert response.status_code == 207  # some written: which ones is said, the rest listed
    body = response.json()
    assert body["accepted"]["events"] == 1 and body["accepted"]["indexes"] == [0]
    rejected = {r["index"]: r["problems"][0] for r in body["rejected"]}
    assert rejected[1]["field"] == "country" and rejected[3]["field"] == "Quantity"
    assert "rejected with its invoice" in rejected[2]["reason"]
    import time

    wait_until_drained(config.admin_url, since=time.time(), timeout=60)
    assert client(config).get(f"{config.api_url}/invoices/900001", timeout=10).status_code == 200
    assert client(config).get(f"{config.api_url}/invoices/900002", timeout=10).status_code == 404
    assert client(config).get(f"{config.api_url}/invoices/900003", timeout=10).status_code == 404  # not half-written


@pytest.mark.parametrize(
    "size, message",
    [(int(5.5 * 1024 * 1024), "the limit is 2000000 bytes"),  # refused by the ingest function
     (7 * 1024 * 1024, "Request Entity Too Large")],          # refused before any function runs
)
def test_an_oversize_body_is_refused_with_413(running, size, message):
    config, _ = running
    response = client(config).post(f"{config.api_url}/events", data=b"[" + b" " * size + b"]", timeout=30,
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


def test_poison_written_straight_onto_the_stream_is_set_aside_by_every_sink_with_its_reason(running):
    import time

    from devstack import reconcile
    from pipeline.codec import aggregate
    from pipeline.partitioning import ShardMap

    config, info = running
    clients = stack.clients(config)
    kinesis = clients("kinesis")
    stream = info.outputs["stream_name"]
    # GIVEN a producer that skips the API's validation: one aggregate with a good and a bad event
    good = next(iter(read_invoices(str(SAMPLE))))
    good = type(good)("990001", good.invoice_date, good.customer_id, good.country, good.lines)
    bad = json.loads(good.to_json())
    bad.update(invoice_no="990002", event_id=None)
    bad["lines"][0]["quantity"] = "a dozen"
    shard_map = ShardMap.from_list_shards(kinesis.list_shards(StreamName=stream)["Shards"])
    for record in aggregate([("990001", good.to_json()), ("990002", json.dumps(bad).encode())], shard_map):
        kinesis.put_record(StreamName=stream, Data=record.data, PartitionKey=record.partition_key,
                           ExplicitHashKey=record.explicit_hash_key)
    wait_until_drained(config.admin_url, since=time.time(), timeout=120)
    merge_now(config, info)
    # THEN the good event is in every sink and the bad one in none,
    executor = stack.warehouse_executor(config, info)
    assert executor.execute("select count(*) from fact_invoice_lines where invoice_no = '990001'").scalar() == len(good.lines)
    assert executor.execute("select count(*) from fact_invoice_lines where invoice_no = '990002'").scalar() == 0
    assert client(config).get(f"{config.api_url}/invoices/990002", timeout=10).status_code == 404
    # AND each sink set it aside: quarantined by the two consumers, processing-failed by Firehose, with the reason
    sinks = reconcile.sink_figures(clients=clients, outputs=info.outputs, execute=executor.execute)
    assert sinks["dynamodb"].set_aside["quarantined"] == 1 and sinks["archive"].set_aside["quarantined"] == 1
    assert sinks["warehouse"].set_aside["processing_failed"] == 1
    [reason] = sinks["warehouse"].reasons
    assert "Lambda.ProcessingFailed" in reason and "lines[0].quantity" in reason


def test_a_killed_runtime_comes_back_with_up_and_the_replay_in_flight_loses_nothing(running, capsys):
    """The runtime killed (SIGKILL) while a replay runs: the replay retries what could not
    be sent, `status` says the runtime is gone and how to bring it back, `up` on the
    running emulator restarts it from its checkpoints, and the table ends as it was."""
    import os
    import signal
    import threading
    import time

    from devstack import cli

    config, info = running
    replay_and_drain(config)
    table = info.outputs["invoices_table_name"]
    before = table_snapshot(config, table)
    runtime_pid = int((config.run_dir / "runtime.pid").read_text())
    os.killpg(runtime_pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while stack._pid(config, "runtime") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    args = ["--state-dir", str(config.state_dir), "--emulator-port", str(config.emulator_port),
            "--gateway-port", str(config.gateway_port), "--admin-port", str(config.admin_port)]
    assert cli.main([*args, "status"]) == 1
    assert "the local runtime is not running: `shopstream restart`" in capsys.readouterr().out

    result = {}
    sender = threading.Thread(target=lambda: result.update(stats=replay(
        str(SAMPLE), endpoint=config.api_url, progress=False, token=producer_token(config.state_dir))))
    sender.start()  # no connection at first: retried, not counted as failed
    time.sleep(1.0)
    assert stack.can_restart(config)
    stack.up(config, say=lambda line: None)  # the emulator runs with its deployment: the runtime is restarted
    sender.join(timeout=300)
    stats = result["stats"]
    assert stats.ok and stats.failed_events == 0 and stats.events_sent == stats.events_read, stats.first_problems
    assert stats.retries > 0  # it did meet the dead runtime
    wait_until_drained(config.admin_url, since=time.time(), timeout=120)
    assert table_snapshot(config, table) == before
    assert cli.main([*args, "status"]) == 0, capsys.readouterr().out
