"""Daily files dropped in the local drop bucket, end to end on the package's stack: S3's
notification (delivered by the runtime) → the batch function → the stream → every sink.

This module runs after test_stack.py (which leaves the sample, and invoices of its own,
in the sinks): the sample dropped as files must change no stored row; a re-drop must
change nothing at all; a hostile transaction-layout file lands row by row where the rules
say. The whole dataset dropped as one file and as 305 daily files, reconciled on a fresh
stack, is bench/drop_acceptance.py (minutes on the full data)."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from devstack import stack
from devstack.runtime.client import wait_until_drained
from pipeline.kaggle import read_invoices
from tests.conftest import SAMPLE
from tests.e2e.test_stack import fact_snapshot, merge_now, replay_and_drain, table_snapshot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running(local_stack):
    return local_stack


def shopstream(config, *argv: str) -> int:
    from devstack import cli

    return cli.main(["--state-dir", str(config.state_dir), "--emulator-port", str(config.emulator_port),
                     "--gateway-port", str(config.gateway_port), "--admin-port", str(config.admin_port), *argv])


def outcomes(config, capsys) -> list[dict]:
    assert shopstream(config, "notifications", "--topic", "file-outcomes", "--json") == 0
    return [m["message"] for m in json.loads(capsys.readouterr().out)["messages"]]


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def daily_files(tmp_path) -> list[str]:
    """The sample split into its days (the shape of the 305 daily files), plus the sample whole."""
    import csv
    import io

    from pipeline.kaggle import parse_timestamp

    header, *rows = SAMPLE.read_text("utf-8").splitlines(keepends=True)
    days: dict[str, list[str]] = {}
    for row in rows:
        [values] = list(csv.reader(io.StringIO(row)))
        days.setdefault(parse_timestamp(values[4])[:10], []).append(row)
    out = []
    for day, lines in sorted(days.items()):
        path = tmp_path / f"transactions_{day}.csv"
        path.write_text(header + "".join(lines), "utf-8")
        out.append(str(path))
    return out


def test_the_sample_dropped_as_daily_files_and_whole_lands_as_the_replay_did_and_a_redrop_changes_nothing(
        running, capsys, tmp_path):
    config, info = running
    s3, dynamodb_table = stack.clients(config)("s3"), info.outputs["invoices_table_name"]
    # GIVEN the sample delivered over HTTP (test_stack.py did; again changes nothing) and merged
    assert replay_and_drain(config).ok
    merge_now(config, info)
    facts, items = fact_snapshot(config, info), table_snapshot(config, dynamodb_table)
    already = len(outcomes(config, capsys))
    files = [*daily_files(tmp_path), str(SAMPLE)]
    # WHEN the sample's three days and the whole sample are dropped
    assert shopstream(config, "drop", *files, "--json") == 0
    dropped = json.loads(capsys.readouterr().out)
    # THEN each file was loaded under the hive-style key of its dates, whole
    assert [d["key"] for d in dropped] == [
        "transactions/year=2010/month=12/day=01/transactions_2010-12-01.csv",
        "transactions/year=2010/month=12/day=02/transactions_2010-12-02.csv",
        "transactions/year=2010/month=12/day=03/transactions_2010-12-03.csv",
        f"transactions/from=2010-12-01/to=2010-12-03/{SAMPLE.name}"]
    source = list(read_invoices(str(SAMPLE)))
    assert sum(d["counts"]["lines"] for d in dropped[:3]) == dropped[3]["counts"]["lines"] == 7419
    assert all(d["status"] == "loaded" and d["counts"]["rejected"] == 0 for d in dropped)
    assert Decimal(dropped[3]["counts"]["total"]) == sum((e.total for e in source), Decimal(0))
    # one outcome message per file, each file moved to the archive bucket under its key
    messages = outcomes(config, capsys)[already:]
    assert sorted(m["file"].split("/", 3)[3] for m in messages) == sorted(d["key"] for d in dropped)
    assert all(m["kind"] == "file-loaded" for m in messages)
    assert keys(s3, info.outputs["drop_archive_bucket_name"], "transactions/") == sorted(d["key"] for d in dropped)
    assert keys(s3, info.outputs["drop_bucket_name"]) == []
    # and the sinks took the files' events as the replays' own: not a row changed
    wait_until_drained(config.admin_url, since=time.time(), timeout=120)
    merge_now(config, info)
    assert fact_snapshot(config, info) == facts
    assert table_snapshot(config, dynamodb_table) == items
    # WHEN the same files are dropped again
    ledger = stack.clients(config)("dynamodb").scan(TableName=info.outputs["dropped_files_table_name"])["Items"]
    assert shopstream(config, "drop", *files, "--json") == 0
    again = json.loads(capsys.readouterr().out)
    # THEN nothing happens: the same outcomes, no message, the ledger as it was, the drop bucket empty
    assert [d["counts"] for d in again] == [d["counts"] for d in dropped]
    assert len(outcomes(config, capsys)) == already + len(dropped)
    after = stack.clients(config)("dynamodb").scan(TableName=info.outputs["dropped_files_table_name"])["Items"]
    assert sorted(json.dumps(i, sort_keys=True) for i in after) == sorted(json.dumps(i, sort_keys=True) for i in ledger)
    assert keys(s3, info.outputs["drop_bucket_name"]) == []


TRANSACTIONS = "transaction_id,customer_id,product_id,quantity,price,transaction_date,payment_type,status\n"


def test_a_hostile_transaction_file_lands_where_the_rules_say_and_the_newest_version_wins(running, capsys, tmp_path):
    from devstack.reconcile import loader_quarantined

    config, info = running
    clients = stack.clients(config)
    before = loader_quarantined(clients, info.outputs)
    # GIVEN a transaction-layout file: a transaction in three versions (the oldest arriving last),
    # an unknown product, an unknown customer, a malformed row (products and customers of the sample)
    path = tmp_path / "transactions_2010-12-04.csv"
    path.write_text(TRANSACTIONS + "".join([
        "TX-1,17850,85123A,6,2.55,2010-12-04 10:00:00,card,pending\n",
        "TX-1,17850,85123A,6,2.55,2010-12-04 12:00:00,card,completed\n",
        "TX-1,17850,71053,2,3.39,2010-12-04 12:00:00,card,completed\n",
        "TX-2,17850,NO-SUCH-PRODUCT,1,1.00,2010-12-04,card,completed\n",
        "TX-3,99999999,85123A,1,2.55,2010-12-04,card,completed\n",
        "TX-4,17850,85123A,many,2.55,2010-12-04,card,completed\n",
        "TX-1,17850,85123A,1,2.55,2010-12-03 09:00:00,card,pending\n",
    ]), "utf-8")
    # WHEN it is dropped
    assert shopstream(config, "drop", str(path), "--json") == 0
    [outcome] = json.loads(capsys.readouterr().out)
    # THEN its counts say what happened, by reason
    counts = outcome["counts"]
    assert (counts["rows"], counts["invoices"], counts["lines"], counts["rejected"]) == (7, 3, 4, 3)
    assert set(counts["rejected_by_reason"]) == {
        "product_id: unknown product: not in the warehouse's dim_products",
        "customer_id: unknown customer: not in the warehouse's dim_customers",
        "quantity: must be an integer"}, counts["rejected_by_reason"]
    assert loader_quarantined(clients, info.outputs) == before + 3  # what `shopstream reconcile` counts
    # AND the newest version of TX-1 (completed, two lines) is what DynamoDB and the warehouse hold
    wait_until_drained(config.admin_url, since=time.time(), timeout=120)
    merge_now(config, info)
    rows = stack.warehouse_executor(config, info).execute(
        "SELECT line_no, stock_code, quantity, status FROM fact_invoice_lines WHERE invoice_no = 'TX-1' "
        "ORDER BY line_no").rows
    assert [tuple(r) for r in rows] == [(1, "85123A", 6, "completed"), (2, "71053", 2, "completed")]
    item = clients("dynamodb").scan(TableName=info.outputs["invoices_table_name"],
                                    FilterExpression="invoice_no = :n",
                                    ExpressionAttributeValues={":n": {"S": "TX-1"}})["Items"]
    assert item and {i["status"]["S"] for i in item} == {"completed"}
