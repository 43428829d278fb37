"""The fault suite: the real stack (emulator, Terraform, runtime, handlers) under the faults
a pipeline on AWS meets — redelivery, crashes, poison, throttling, reordering — each case
ending in ``reconcile`` of every sink with 0 lines lost and 0 lines doubled.

Fast on the bundled sample (``make test``); ``make faults`` runs the same cases on the full
dataset. The cases run in file order on one stack; the last one kills the emulator and
brings the stack back as the README says to.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from decimal import Decimal

import pytest

from devstack import stack
from ingest.producer import KinesisProducer
from pipeline.codec import aggregate
from pipeline.events import InvoiceEvent, InvoiceLine
from pipeline.partitioning import ShardMap
from scripts.replay_kaggle import replay
from tests.faults import harness
from tests.faults.harness import (
    Background,
    CaseResult,
    kill_emulator,
    kill_runtime,
    settle,
    source,
    source_events,
    stored_items,
)
from tests.fixtures.tokens import producer_token

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


def http_replay(s: harness.Stack, **options):
    return replay(str(harness.DATA), endpoint=s.config.api_url, progress=False,
                  token=producer_token(s.config.state_dir), **options)


def stream_replay(s: harness.Stack, **options):
    return replay(str(harness.DATA), stream=s.outputs["stream_name"], progress=False, **options)


def producer(s: harness.Stack) -> KinesisProducer:
    return KinesisProducer(s.client("kinesis"), s.outputs["stream_name"])


def test_the_same_data_twice_and_duplicates_at_the_producer(case):
    s, _, result = case
    # WHEN the data is replayed through the HTTP API twice
    first, second = http_replay(s), http_replay(s)
    assert first.ok and second.ok, (first.first_problems, second.first_problems)
    # AND every 7th invoice is put on the stream twice more, once with a copy in the same aggregate
    events = source_events()
    duplicates = events[::7]
    producer(s).send([e for event in duplicates for e in (event, event)])
    result.events_delivered = first.events_sent + second.events_sent + 2 * len(duplicates)
    # THEN every sink holds the source once
    harness.check(s, result)
    merges = s.execute("SELECT SUM(staged_rows), SUM(invoices_inserted), SUM(lines_inserted) "
                       "FROM shopstream_merge_runs").rows[0]
    # the warehouse staged every delivery and inserted each line once
    assert int(merges[0]) >= 2 * source().lines and int(merges[2]) == source().lines


def test_the_runtime_killed_during_the_http_replay(case):
    s, _, result = case
    invoices = len(source().invoices)
    sender = Background(lambda: http_replay(s, rate=harness.HTTP_RATE, batch_events=10))
    # WHEN the runtime (gateway, pollers, workers) is SIGKILLed while the replay runs
    harness.wait_for_progress(s, sender, invoices // 4)
    at_kill = stored_items(s)
    kill_runtime(s)
    assert sender.running, "the replay ended before the kill"
    assert "the local runtime is not running" in " ".join(stack.status(s.config)["problems"])
    time.sleep(1.5)  # the replay meets the dead gateway (a request every ~0.2 s)
    # AND it is restarted as documented while the replay keeps retrying
    stack.restart(s.config, say=lambda line: None)
    stats = sender.result(timeout=harness.SETTLE_TIMEOUT)
    # THEN the replay counted nothing as failed, and every sink holds the source
    assert stats.ok and stats.events_sent == stats.events_read, stats.first_problems
    assert stats.retries > 0 and at_kill > 0
    result.events_delivered = stats.events_sent
    result.faults["runtime SIGKILL (HTTP replay)"] = 1
    harness.check(s, result, notifications_may_repeat=1)  # a kill between a publish and its record


def test_the_runtime_killed_during_the_stream_replay(case):
    s, _, result = case
    invoices = len(source().invoices)
    sender = Background(lambda: stream_replay(s, rate=harness.HTTP_RATE))
    # WHEN the runtime is SIGKILLed while its consumers work through the stream
    harness.wait_for_progress(s, sender, invoices // 4)
    at_kill = stored_items(s)
    kill_runtime(s)
    stats = sender.result(timeout=harness.SETTLE_TIMEOUT)  # straight to Kinesis: the runtime is not in its way
    assert stats.ok, stats.first_problems
    # AND restarted: every consumer goes on from its checkpoint
    stack.restart(s.config, say=lambda line: None)
    result.events_delivered = stats.events_sent
    result.faults["runtime SIGKILL (stream replay)"] = 1
    harness.check(s, result, notifications_may_repeat=1)  # a kill between a publish and its record
    assert 0 < at_kill < stored_items(s), "the kill did not land while the consumers worked"


# -- poison -------------------------------------------------------------------------------------
REFUSED = "FAULT-999901"  # a valid event DynamoDB refuses every time (a rule of the fault injector)


def poisoned_records(neighbours: list[InvoiceEvent], shards: ShardMap) -> tuple[list, list[InvoiceEvent], int]:
    """KPL aggregates where poison sits between valid events, and records that are poison
    whole. Returns (records, the valid events they carry, how many poison inputs)."""
    refused = InvoiceEvent(REFUSED, "2011-06-01T10:00:00", "12345", "Iceland",
                           (InvoiceLine(1, "85123A", "FAULT LINE", 3, Decimal("2.55")),))
    valid = json.loads(neighbours[0].to_json())
    def with_literal(field: str, where: str, literal: str) -> bytes:
        """The valid event with one value replaced by a raw JSON literal."""
        changed = {**valid, "lines": [{**valid["lines"][0], field: "PLACEHOLDER"}]} if where == "line" \
            else {**valid, field: "PLACEHOLDER"}
        return json.dumps(changed).replace('"PLACEHOLDER"', literal).encode()

    poison = [
        with_literal("quantity", "line", "1e1000000"),      # a number that once took a minute of CPU to parse
        with_literal("unit_price", "line", "9" * 4300),     # a 4,300-digit number
        with_literal("country", "event", '"\\ud800"'),      # a lone surrogate in a text field
        b"[" * 100_000 + b"]" * 100_000,           # JSON nested 100,000 deep
        "Iceland;536365;£2,55".encode("iso-8859-1"),   # not UTF-8, not JSON
        json.dumps({**valid, "lines": []}).encode(),   # a schema violation: no lines
    ]
    pk = neighbours[0].partition_key
    mixed = [(pk, neighbours[0].to_json())]
    for n, item in enumerate(poison):
        mixed += [(pk, item), (pk, neighbours[n + 1].to_json())]
    mixed.append((pk, refused.to_json()))
    records = aggregate(mixed, shards)
    carried = [*neighbours[:len(poison) + 1], refused]
    return records, carried, len(poison)


def test_poison_mixed_in_is_set_aside_alone_and_everything_else_arrives(case):
    s, faults, result = case
    kinesis = s.client("kinesis")
    stream = s.outputs["stream_name"]
    faults.install({"action": "DynamoDB.BatchWriteItem", "match": f'{{"S": "{REFUSED}"}}',
                    "code": "ValidationException", "status": 400,
                    "message": "Item size has exceeded the maximum allowed size (injected)"})
    shards = ShardMap.from_list_shards(kinesis.list_shards(StreamName=stream)["Shards"])
    events = source_events()
    neighbours = events[:7]
    records, carried, poison = poisoned_records(neighbours, shards)
    # WHEN aggregates mixing poison with valid events, and records that are poison whole,
    # are put on the stream among the rest of the data (the neighbours travel only with the poison)
    for record in records:
        kinesis.put_record(StreamName=stream, Data=record.data, PartitionKey=record.partition_key,
                           ExplicitHashKey=record.explicit_hash_key)
    whole = [b"\xff\xfe\x00 not an aggregate, not UTF-8", b"\xf3\x89\x9a\xc2" + b"\x00" * 40]  # the second: a damaged KPL header
    for n, data in enumerate(whole):
        kinesis.put_record(StreamName=stream, Data=data, PartitionKey=f"poison-{n}")
    rest = events[len(carried) - 1:]
    producer(s).send(rest)
    result.events_delivered = len(carried) + len(rest) + poison + len(whole)
    result.poison = poison + len(whole) + 1
    # THEN every sink holds the source; the refused event is in the archive and the warehouse, not DynamoDB;
    # each poison input is set aside once by each consumer, with its reason, and no batch failed
    settle(s)
    extra = {"archive": harness.with_extra(source(), carried[-1:]),
             "warehouse": harness.with_extra(source(), carried[-1:])}
    harness.check(s, result, expected=extra, faults=faults, set_aside={
        "dynamodb": {"quarantined": poison + len(whole) + 1},
        "archive": {"quarantined": poison + len(whole)},
        "warehouse": {"processing_failed": poison + len(whole)},
    })
    assert result.faults["DynamoDB.BatchWriteItem error ValidationException"] >= 1
    from devstack.reconcile import queue_messages

    bodies = [json.loads(m["Body"]) for m in queue_messages(s.client("sqs"), s.outputs["quarantine_queue_url"])]
    refused = [b for b in bodies if "the invoice store refused" in b.get("reason", "")]
    assert len(refused) == 1 and refused[0]["source"]["consumer"] == "invoice-writer"
    assert all(b["source"].get("sequence_number") for b in bodies)


# -- throttling ---------------------------------------------------------------------------------
def test_throttles_and_failing_calls_on_every_aws_service_are_retried_and_nothing_is_lost(case):
    s, faults, result = case
    times = 40 if harness.FULL else 8
    faults.install(
        {"action": "Kinesis.PutRecords", "mode": "partial", "every": 3, "times": times},
        {"action": "DynamoDB.BatchWriteItem", "mode": "partial", "every": 4, "times": times},
        {"action": "DynamoDB.BatchWriteItem", "code": "ProvisionedThroughputExceededException", "status": 400,
         "times": 6},
        {"action": "S3.PutObject", "match": f"/{s.outputs['archive_bucket_name']}/", "code": "SlowDown",
         "status": 503, "times": 6},  # more than one call's retries: the archive writer's batch fails once
        {"action": "S3.PutObject", "match": f"/{s.outputs['delivery_bucket_name']}/", "code": "InternalError",
         "status": 500, "times": 2},
        {"action": "RedshiftData.ExecuteStatement", "match": "COPY ", "code": "ExecuteStatementException",
         "status": 400, "times": 1, "message": "ERROR: Load into table failed (injected)"},
    )
    # WHEN the data goes through the HTTP API while each of those calls fails as often as asked
    stats = http_replay(s, batch_events=10)  # small requests: many PutRecords calls to fail
    assert stats.ok, stats.first_problems
    result.events_delivered = stats.events_sent
    # THEN every sink holds the source, and every fault did fire as often as it was set to
    harness.check(s, result, faults=faults)
    rules = faults.rules()
    assert all(rule["spent"] for rule in rules), [(r["action"], r["fired"], r["times"]) for r in rules if not r["spent"]]


# -- ordering -----------------------------------------------------------------------------------
def test_cancellations_arriving_before_the_invoices_they_cancel(case):
    s, _, result = case
    events = source_events()
    cancellations = [e for e in events if e.is_cancellation]
    others = [e for e in events if not e.is_cancellation]
    assert cancellations, "the data holds no cancellation"
    # WHEN every cancellation is delivered first, then the other invoices newest first
    send = producer(s)
    send.send(cancellations)
    send.send(list(reversed(others)))
    result.events_delivered = len(events)
    harness.check(s, result)
    # THEN the daily view is what the source says, day by day and country by country
    expected: dict[tuple[str, str], list] = defaultdict(lambda: [set(), set(), 0, Decimal(0), Decimal(0), Decimal(0)])
    for e in events:
        row = expected[(e.country, e.invoice_date[:10])]
        row[0].add(e.invoice_no)
        if e.is_cancellation:
            row[1].add(e.invoice_no)
        row[2] += len(e.lines)
        money = sum((line.amount for line in e.lines), Decimal(0))
        kind = 4 if e.is_cancellation else 5 if e.is_adjustment else 3
        row[kind] += money
    rows = s.execute("SELECT country, CAST(day AS VARCHAR), invoices, cancellation_invoices, lines, gross_sales, "
                     "cancellations, adjustments FROM mv_sales_by_country_day").rows
    actual = {(r[0], str(r[1])[:10]): (int(r[2]), int(r[3]), int(r[4]), Decimal(str(r[5])), Decimal(str(r[6])),
                                        Decimal(str(r[7]))) for r in rows}
    assert actual == {key: (len(v[0]), len(v[1]), v[2], v[3], v[4], v[5]) for key, v in expected.items()}


# -- dead letters and redrive ------------------------------------------------------------------
STUCK = "FAULT-999902"  # a valid event whose DynamoDB write keeps failing as a transient error would


def test_a_batch_that_keeps_failing_goes_to_the_dead_letters_and_redrive_stores_it_once(case, capsys):
    from devstack import cli
    from devstack.reconcile import queue_messages

    s, faults, result = case
    sqs = s.client("sqs")
    dead_letters = s.outputs["failures_queue_urls"]["invoice-writer"]
    # GIVEN DynamoDB failing every write of one invoice with an error the writer retries (not a refusal)
    faults.install({"action": "DynamoDB.BatchWriteItem", "match": f'{{"S": "{STUCK}"}}',
                    "code": "ItemCollectionSizeLimitExceededException", "status": 400})
    stuck = InvoiceEvent(STUCK, "2011-06-02T10:00:00", "12346", "Iceland",
                         (InvoiceLine(1, "85123A", "STUCK LINE", 2, Decimal("3.10")),))
    send = producer(s)
    # WHEN it is put on the stream, alone in its record, among the rest of the data
    events = source_events()
    send.send(events[: len(events) // 2])
    send.send([stuck])
    send.send(events[len(events) // 2:])
    result.events_delivered = len(events) + 1
    # THEN after its retries the record is in the invoice writer's dead letters with its shard and range,
    # and the shard kept flowing: everything else is stored
    harness.wait_until(lambda: harness.reconcile.queue_depth(sqs, dead_letters) >= 1, harness.SETTLE_TIMEOUT,
                       "the failure record in the dead letters", every=1.0)
    settle(s)
    [failure] = [json.loads(m["Body"]) for m in queue_messages(sqs, dead_letters)]
    info = failure["KinesisBatchInfo"]
    assert info["shardId"].startswith("shardId-") and int(info["startSequenceNumber"]) <= int(info["endSequenceNumber"])
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    held = {"archive": harness.with_extra(source(), [stuck]), "warehouse": harness.with_extra(source(), [stuck])}
    harness.check(s, CaseResult(case="(before the redrive)", data=""), expected=held,
                  set_aside={"dynamodb": {"failed_batches": 1}})
    # WHEN the cause is fixed and the dead letters are redriven
    result.faults["DynamoDB.BatchWriteItem error (until fixed)"] = faults.rules()[0]["fired"]
    faults.clear()
    args = ["--state-dir", str(s.config.state_dir), "--emulator-port", str(s.config.emulator_port),
            "--gateway-port", str(s.config.gateway_port), "--admin-port", str(s.config.admin_port)]
    capsys.readouterr()
    assert cli.main([*args, "redrive", "--consumer", "invoice-writer", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["invoice-writer"]
    assert (stats["messages"], stats["redriven_messages"], stats["kept"]) == (1, 1, 0), stats
    # the range starts at the stuck record; with ReportBatchItemFailures the records after it in its
    # batch were given up with it (as on AWS), so their events go back on the stream too, harmlessly
    assert stats["records"] >= 1 and stats["events"] >= 1 and stats["undecodable"] == 0
    # THEN every sink holds the source and the stuck invoice exactly once, and the dead letters are empty
    everywhere = harness.with_extra(source(), [stuck])
    harness.check(s, result, expected={"dynamodb": everywhere, "archive": everywhere, "warehouse": everywhere})


# -- the emulator killed (last: it re-creates the stack) ------------------------------------------
def test_the_emulator_killed_and_the_stack_recovered_as_documented(case):
    s, _, result = case
    invoices = len(source().invoices)
    sender = Background(lambda: http_replay(s, rate=harness.HTTP_RATE))
    # WHEN the emulator is SIGKILLed while the replay runs: the stream, tables and buckets are gone
    harness.wait_for_progress(s, sender, invoices // 4)
    kill_emulator(s)
    status = stack.status(s.config)
    assert not status["ok"] and any("emulator's process has exited" in p for p in status["problems"]), status
    assert "shopstream down && shopstream up" in " ".join(status["problems"])
    # AND the stack is brought back as the README says: down, up, replay
    stack.down(s.config, quiet=True)
    s.info = stack.up(s.config, say=lambda line: None)
    sender.result(timeout=harness.SETTLE_TIMEOUT)  # whatever it managed; the documented step is the replay
    stats = http_replay(s)
    assert stats.ok, stats.first_problems
    result.events_delivered = stats.events_sent
    result.faults["emulator SIGKILL"] = 1
    # THEN the new stack holds the source exactly
    harness.check(s, result)
