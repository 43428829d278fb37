"""The file loader (batch/core.py) with in-memory buckets, ledger, topic, stream and quarantine."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from batch.core import CONTINUATIONS_PREFIX, DroppedFile, FileLoader, files_of, reason_class
from batch.store import InMemoryFileLedger, InMemoryFiles
from pipeline.kaggle import read_invoices

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "online-retail-2010-12-01_to_03.csv"
DROP, ARCHIVE = "drops", "drop-archive"
KEY = "transactions/range=2010-12-01_2010-12-03/online retail.csv"


class Topic:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def publish(self, *, subject: str, message: str, attributes: dict[str, str]) -> str:
        assert len(subject) < 100 and subject.isascii()
        self.messages.append({"subject": subject, "body": json.loads(message), "attributes": attributes})
        return f"m-{len(self.messages)}"


class Stream:
    def __init__(self) -> None:
        self.events: list = []

    def send(self, events) -> None:
        self.events.extend(events)


class Quarantine:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def send(self, *, reason, problems, source, data) -> None:
        self.rows.append({"reason": reason, "source": source, "data": data})


@pytest.fixture
def world():
    files, ledger, topic, stream, quarantine = InMemoryFiles(), InMemoryFileLedger(), Topic(), Stream(), Quarantine()
    loader = FileLoader(files, ledger, topic, stream, quarantine, drop_bucket=DROP, archive_bucket=ARCHIVE,
                        send_events=50)
    return loader, files, ledger, topic, stream, quarantine


def drain(loader: FileLoader, files: InMemoryFiles, first: DroppedFile, **kwargs):
    """Handle a file and every continuation marker it leaves, as the notifications would."""
    outcomes = [loader.handle(first, **kwargs)]
    while markers := sorted(k for b, k in files.objects if b == DROP and k.startswith(CONTINUATIONS_PREFIX)):
        outcomes.append(loader.handle(DroppedFile(DROP, markers[0]), **kwargs))
    return outcomes


def test_a_dropped_file_goes_onto_the_stream_as_the_replay_reads_it_then_is_archived(world):
    # GIVEN the bundled sample dropped in the bucket
    loader, files, ledger, topic, stream, quarantine = world
    files.objects[(DROP, KEY)] = SAMPLE.read_bytes()
    expected = list(read_invoices(str(SAMPLE)))
    # WHEN it is loaded
    outcome = loader.handle(DroppedFile(DROP, KEY))
    # THEN the stream got exactly the replay's events, in order
    assert outcome.status == "loaded"
    assert [e.event_id for e in stream.events] == [e.event_id for e in expected]
    # one message with exact counts, the file moved to the archive under the same key
    assert len(topic.messages) == 1
    body = topic.messages[0]["body"]
    assert body["kind"] == "file-loaded" and body["invoices"] == len(expected)
    assert body["lines"] == sum(len(e.lines) for e in expected) == body["rows"] - body["rejected"]
    assert Decimal(body["total"]) == sum((e.total for e in expected), Decimal(0))
    assert (ARCHIVE, KEY) in files.objects and (DROP, KEY) not in files.objects
    assert files.objects[(ARCHIVE, KEY)] == SAMPLE.read_bytes()
    assert next(iter(ledger.items.values()))["message_id"] == "m-1"
    assert quarantine.rows == []


def test_dropping_the_same_content_again_changes_nothing(world):
    loader, files, ledger, topic, stream, quarantine = world
    files.objects[(DROP, KEY)] = SAMPLE.read_bytes()
    loader.handle(DroppedFile(DROP, KEY))
    sent, ledger_before = len(stream.events), json.dumps(ledger.items, sort_keys=True)
    # WHEN the same bytes are dropped again (and the notification delivered twice)
    files.objects[(DROP, KEY)] = SAMPLE.read_bytes()
    first = loader.handle(DroppedFile(DROP, KEY))
    second = loader.handle(DroppedFile(DROP, KEY)) if (DROP, KEY) in files.objects else None
    # THEN no event, no message, the ledger as it was; the drop is cleared
    assert first.status == "already" and second is None
    assert len(stream.events) == sent and len(topic.messages) == 1
    assert json.dumps(ledger.items, sort_keys=True) == ledger_before
    assert (DROP, KEY) not in files.objects and (ARCHIVE, KEY) in files.objects


def test_a_latin1_kaggle_file_reads_like_its_utf8_twin(world):
    loader, files, _, _, stream, _ = world
    text = SAMPLE.read_text("utf-8")
    header, *rows = text.splitlines(keepends=True)
    latin = (header + "".join(rows[:200]) + '536999,22222,CAFÉ £ MUG,1,12/1/2010 8:26,1.5,17850,United Kingdom\n')
    files.objects[(DROP, "transactions/a.csv")] = latin.encode("iso-8859-1")
    files.objects[(DROP, "transactions/b.csv")] = latin.encode("utf-8")
    loader.handle(DroppedFile(DROP, "transactions/a.csv"))
    latin_events = list(stream.events)
    stream.events.clear()
    loader.handle(DroppedFile(DROP, "transactions/b.csv"))
    assert [e.event_id for e in latin_events] == [e.event_id for e in stream.events]
    assert latin_events[-1].lines[-1].description == "CAFÉ £ MUG"


def test_rows_that_cannot_be_used_are_quarantined_with_file_line_and_reason(world):
    loader, files, _, topic, stream, quarantine = world
    header = SAMPLE.read_text("utf-8").splitlines()[0]
    body = "\n".join([
        header,
        "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom",
        "536365,71053,WHITE METAL LANTERN,six,12/1/2010 8:26,3.39,17850,United Kingdom",
        "536366,22633,HAND WARMER,6,not a date,1.85,17850,United Kingdom",
        "536367,22633,HAND WARMER,6,12/1/2010 8:28",
        "536368,22633,HAND WARMER,6,12/1/2010 8:28,1.85,17850,United Kingdom",
    ]) + "\n"
    files.objects[(DROP, "transactions/hostile.csv")] = body.encode()
    outcome = loader.handle(DroppedFile(DROP, "transactions/hostile.csv"))
    assert outcome.status == "loaded"
    assert [e.invoice_no for e in stream.events] == ["536365", "536368"]
    lines = {q["source"]["line"]: q["reason"] for q in quarantine.rows}
    assert set(lines) == {3, 4, 5}
    assert "Quantity" in lines[3] and "InvoiceDate" in lines[4] and "expected 8 fields, found 5" in lines[5]
    assert all(q["source"]["consumer"] == "batch" for q in quarantine.rows)
    message = topic.messages[0]["body"]
    assert (message["rows"], message["lines"], message["rejected"]) == (5, 2, 3)
    assert sum(message["rejected_by_reason"].values()) == 3


def test_a_file_that_is_not_the_layout_fails_loudly_and_stays(world):
    loader, files, ledger, topic, stream, _ = world
    files.objects[(DROP, "transactions/x.csv")] = b"a,b,c\n1,2,3\n"
    outcome = loader.handle(DroppedFile(DROP, "transactions/x.csv"))
    assert outcome.status == "failed" and "missing column(s) InvoiceNo" in outcome.error
    assert stream.events == [] and topic.messages[0]["body"]["kind"] == "file-failed"
    assert (DROP, "transactions/x.csv") in files.objects and (ARCHIVE, "transactions/x.csv") not in files.objects
    # a second delivery of the same notification sends no second message
    loader.handle(DroppedFile(DROP, "transactions/x.csv"))
    assert len(topic.messages) == 1


@pytest.mark.parametrize("every", [1, 7, 100])
def test_a_load_paused_at_invoice_boundaries_continues_to_the_same_result(world, every):
    # GIVEN a load that must pause every `every` invoices (as when an invocation's time runs low)
    loader, files, ledger, topic, stream, quarantine = world
    files.objects[(DROP, KEY)] = SAMPLE.read_bytes()
    expected = list(read_invoices(str(SAMPLE)))
    calls = {"n": 0}

    def should_pause() -> bool:
        calls["n"] += 1
        return calls["n"] % every == 0

    # WHEN it runs part after part from its continuation markers
    outcomes = drain(loader, files, DroppedFile(DROP, KEY), should_pause=should_pause)
    # THEN the stream holds the one-pass events, each once, and one message counts every part
    assert sorted(e.event_id for e in stream.events) == sorted(e.event_id for e in expected)
    assert outcomes[-1].status == "loaded" and len(outcomes) > 1
    assert all(o.status == "paused" for o in outcomes[:-1])
    assert len(topic.messages) == 1
    body = topic.messages[0]["body"]
    assert body["parts"] == len(outcomes) and body["invoices"] == len(expected) and body["rejected"] == 0
    assert not any(k.startswith(CONTINUATIONS_PREFIX) for _, k in files.objects)
    assert quarantine.rows == []


def test_a_paused_load_reports_rejected_rows_at_their_lines_in_the_whole_file(world):
    loader, files, _, _, _, quarantine = world
    lines = SAMPLE.read_text("utf-8").splitlines()[:400]
    lines[350] = ",".join(lines[350].split(",")[:3] + ["many"] + lines[350].split(",")[4:])
    files.objects[(DROP, KEY)] = ("\n".join(lines) + "\n").encode()
    calls = {"n": 0}

    def should_pause() -> bool:
        calls["n"] += 1
        return calls["n"] % 5 == 0

    drain(loader, files, DroppedFile(DROP, KEY), should_pause=should_pause)
    assert [q["source"]["line"] for q in quarantine.rows] == [351]


def test_s3_notification_keys_are_url_decoded():
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "drops"},
        "object": {"key": "transactions/year%3D2011/month%3D03/online+retail+%C2%A3.csv", "size": 10}}},
        {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "drops"}, "object": {"key": "x"}}}]}
    assert files_of(event) == [DroppedFile("drops", "transactions/year=2011/month=03/online retail £.csv", 10)]


def test_reason_classes_leave_out_the_values():
    assert reason_class("Quantity: must be an integer, got 'six'") == "Quantity: must be an integer"
    assert reason_class("expected 8 fields, found 5") == "wrong number of fields"


# ---- the transaction layout -------------------------------------------------------------

TRANSACTIONS = "transaction_id,customer_id,product_id,quantity,price,transaction_date,payment_type,status\n"


def transaction_world(world):
    from batch.store import KnownDimensions

    loader = world[0]
    loader.dimensions = KnownDimensions({"85123A": "WHITE HANGING HEART T-LIGHT HOLDER", "POST": "POSTAGE"},
                                        {"17850": "United Kingdom", "12583": "France"})
    return world


def test_a_hostile_transaction_file_lands_row_by_row_where_the_rules_say(world):
    # GIVEN a transaction-layout file with a good transaction in two versions (the older one late),
    # unknown products and customers, malformed rows and a late row of an ended version
    loader, files, _, topic, stream, quarantine = transaction_world(world)
    body = TRANSACTIONS + "".join([
        "T1,17850,85123A,6,2.55,2023-03-15 10:00:00,card,completed\n",      # 2
        "T1,17850,POST,1,18.00,2023-03-15 10:00:00,card,completed\n",       # 3: same version, a 2nd line
        "T2,12583,85123A,2,2.55,2023-03-15,cash,Pending\n",                 # 4
        "T3,17850,NOPE-1,1,1.00,2023-03-15,card,completed\n",               # 5: unknown product
        "T4,99999,85123A,1,2.55,2023-03-15,card,completed\n",               # 6: unknown customer
        "T5,17850,85123A,lots,2.55,2023-03-15,card,completed\n",            # 7: bad quantity
        "T6,17850,85123A,1,2.55,yesterday,card,shipped\n",                  # 8: bad date, bad status
        "T7,17850,85123A,1\n",                                               # 9: short row
        "T1,17850,85123A,6,2.55,2023-03-14 09:00:00,card,pending\n",        # 10: an older version, late
        "T1,17850,85123A,1,2.55,2023-03-15 10:00:00,card,completed\n",      # 11: a late row of the first version
    ])
    files.objects[(DROP, "transactions/t.csv")] = body.encode()
    # WHEN it is loaded
    outcome = loader.handle(DroppedFile(DROP, "transactions/t.csv"))
    # THEN the usable versions are events with their status, joined to the dimensions
    assert outcome.status == "loaded"
    sent = [(e.invoice_no, e.status, e.invoice_date, len(e.lines)) for e in stream.events]
    assert sent == [("T1", "completed", "2023-03-15T10:00:00", 2), ("T2", "pending", "2023-03-15T00:00:00", 1),
                    ("T1", "pending", "2023-03-14T09:00:00", 1)]
    t1 = stream.events[0]
    assert t1.country == "United Kingdom" and t1.lines[0].description == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert stream.events[2].version < t1.version  # the sinks keep T1's completed version
    # and every other row is quarantined at its line, with its reason
    reasons = {q["source"]["line"]: q["reason"] for q in quarantine.rows}
    assert sorted(reasons) == [5, 6, 7, 8, 9, 11]
    assert "unknown product 'NOPE-1'" in reasons[5] and "unknown customer '99999'" in reasons[6]
    assert "quantity" in reasons[7] and "transaction_date" in reasons[8] and "status: must be one of" in reasons[8]
    assert "expected 8 fields, found 4" in reasons[9] and "ended at an earlier row" in reasons[11]
    body = topic.messages[0]["body"]
    assert (body["rows"], body["invoices"], body["lines"], body["rejected"]) == (10, 3, 4, 6)
    assert body["rejected_by_reason"]["product_id: unknown product: not in the warehouse's dim_products"] == 1
    assert Decimal(body["total"]) == Decimal("15.30") + Decimal("18.00") + Decimal("5.10") + Decimal("15.30")


def test_a_transaction_file_without_dimensions_to_check_against_fails_loudly(world):
    loader, files, _, topic, stream, _ = world
    files.objects[(DROP, "transactions/t.csv")] = (TRANSACTIONS + "T1,17850,85123A,6,2.55,2023-03-15,card,completed\n").encode()
    outcome = loader.handle(DroppedFile(DROP, "transactions/t.csv"))
    assert outcome.status == "failed" and "dimensions" in outcome.error and stream.events == []


def test_a_transaction_file_paused_between_versions_continues_to_the_same_events(world):
    loader, files, _, topic, stream, _ = transaction_world(world)
    rows = [f"T{n},17850,85123A,{n},2.55,2023-03-{1 + n % 28:02d},card,completed\n" for n in range(1, 60)]
    files.objects[(DROP, "transactions/t.csv")] = (TRANSACTIONS + "".join(rows)).encode()
    calls = {"n": 0}

    def should_pause() -> bool:
        calls["n"] += 1
        return calls["n"] % 9 == 0

    outcomes = drain(loader, files, DroppedFile(DROP, "transactions/t.csv"), should_pause=should_pause)
    assert len(outcomes) > 3 and [e.invoice_no for e in stream.events] == [f"T{n}" for n in range(1, 60)]
    assert topic.messages[0]["body"]["invoices"] == 59
