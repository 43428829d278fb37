"""The archive writer (consumers/archive): events → Parquet per day partition, and back."""
from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from consumers.archive.core import ArchiveWriter
from consumers.archive.format import (
    CorruptArchive,
    Delivered,
    day_prefixes,
    events_from_table,
    read_parquet,
    tables_by_day,
    to_parquet,
)
from consumers.records import KinesisRecord
from pipeline.codec import aggregate
from pipeline.errors import TransientError
from pipeline.partitioning import ShardMap, ShardRange
from tests.factories import event, line
from tests.unit.test_invoice_writer import MemoryQuarantine

ONE_SHARD = ShardMap([ShardRange("s", 0, 2**128 - 1)])
ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/events"
SHARD = "shardId-000000000001"


class MemoryStore:
    def __init__(self, fail: Exception | None = None):
        self.objects: dict[str, bytes] = {}
        self.puts = 0
        self.fail = fail

    def put(self, key, body):
        if self.fail:
            raise self.fail
        self.puts += 1
        self.objects[key] = body


def record(seq: str, *events_or_bytes) -> KinesisRecord:
    payloads = [e if isinstance(e, bytes) else e.to_json() for e in events_or_bytes]
    (packed,) = aggregate([(str(i), p) for i, p in enumerate(payloads)], ONE_SHARD)
    return KinesisRecord(ARN, seq, "0", packed.data, shard_id=SHARD, arrival=1291191960.5)


def tricky_events():
    return [
        event("536365", invoice_date="2010-12-01T08:26:00"),
        event("C536379", invoice_date="2010-12-01T09:41:00", customer_id=None,
              lines=[line(1, "D", None, -1, "27.50")]),
        event("536381", invoice_date="2010-12-02T23:59:00", country="Côte d'Ivoire £",
              lines=[line(1, unit_price="0.001", quantity=999_999_999 - 1),
                     line(2, unit_price="2.55", invoice_date="2010-12-03T00:00:00")]),
    ]


def test_a_batch_becomes_one_object_per_day_named_by_shard_and_sequence_range():
    store, quarantine = MemoryStore(), MemoryQuarantine()
    first, second, third = tricky_events()
    # WHEN a batch of two records (three invoices over two days) is archived
    result = ArchiveWriter(store, quarantine).handle([record("100", first, second), record("205", third)])
    # THEN there is one object per day, keyed by shard and the batch's first and last sequence numbers
    assert sorted(store.objects) == [
        f"archive/year=2010/month=12/day=01/{SHARD}-100-205.parquet",
        f"archive/year=2010/month=12/day=02/{SHARD}-100-205.parquet",
    ]
    assert (result.events, result.lines, result.quarantined) == (3, 5, 0)
    day1 = read_parquet(store.objects[result.objects[0]])
    assert day1.num_rows == 3 and set(day1.column("invoice_no").to_pylist()) == {"536365", "C536379"}


def test_a_retried_batch_overwrites_the_same_objects():
    store = MemoryStore()
    writer = ArchiveWriter(store, MemoryQuarantine())
    batch = [record("100", *tricky_events())]
    writer.handle(batch)
    before = dict(store.objects)
    writer.handle(batch)
    assert store.objects == before and store.puts == 2 * len(before)


def test_rows_rebuild_to_the_original_events_with_their_ids_and_exact_money():
    originals = tricky_events()
    tables = tables_by_day(Delivered(e, SHARD, "7", i, 1291191960.0) for i, e in enumerate(originals))
    rebuilt = [a for t in tables.values() for a in events_from_table(read_parquet(to_parquet(t)))]
    assert sorted(a.event.event_id for a in rebuilt) == sorted(e.event_id for e in originals)
    by_no = {a.event.invoice_no: a.event for a in rebuilt}
    assert by_no["536381"].lines[1].invoice_date == "2010-12-03T00:00:00"
    assert by_no["536381"].total == originals[2].total and by_no["C536379"].customer_id is None
    table = tables["year=2010/month=12/day=02"]
    assert table.schema.field("unit_price").type == pa.decimal128(15, 6)
    assert table.column("amount").to_pylist()[0] == Decimal("999999.998")


def test_altered_rows_are_refused_naming_the_invoice():
    table = tables_by_day([Delivered(event("536365"), SHARD, "7", 0, 0.0)])["year=2010/month=12/day=01"]
    altered = table.set_column(table.schema.get_field_index("quantity"), "quantity", pa.array([6, 7], pa.int32()))
    with pytest.raises(CorruptArchive, match="536365"):
        list(events_from_table(altered))


def test_poison_is_quarantined_and_its_neighbours_archived():
    store, quarantine = MemoryStore(), MemoryQuarantine()
    bad = json.loads(event("536366").to_json())
    bad["lines"][0]["quantity"] = "many"
    result = ArchiveWriter(store, quarantine).handle([record("1", event("536365"), json.dumps(bad).encode())])
    assert (result.events, result.quarantined) == (1, 1)
    assert quarantine.messages[0]["source"]["consumer"] == "archive-writer"
    assert quarantine.messages[0]["source"]["shard_id"] == SHARD


def test_a_transient_store_failure_propagates_for_a_retry():
    with pytest.raises(TransientError):
        ArchiveWriter(MemoryStore(fail=TransientError("slow down")), MemoryQuarantine()).handle([record("1", event())])


def test_day_prefixes_cover_a_range_inclusively():
    assert day_prefixes("archive/", "2011-01-30", "2011-02-01") == [
        "archive/year=2011/month=01/day=30/", "archive/year=2011/month=01/day=31/", "archive/year=2011/month=02/day=01/"]


def test_a_versioned_event_round_trips_with_its_status_and_old_objects_read_without_one():
    # GIVEN a completed transaction and a status-less invoice archived on the same day
    versioned = event("T1001", status="completed")
    plain = event("536365")
    tables = tables_by_day([Delivered(versioned, SHARD, "7", 0, 0.0), Delivered(plain, SHARD, "8", 0, 0.0)])
    # WHEN the object is read back into events
    [table] = tables.values()
    rebuilt = {a.event.invoice_no: a.event for a in events_from_table(read_parquet(to_parquet(table)))}
    # THEN each is the original, id and status included
    assert rebuilt["T1001"] == versioned and rebuilt["T1001"].event_id == versioned.event_id
    assert rebuilt["536365"] == plain and rebuilt["536365"].status is None
    # AND an object written before the status column existed still reads back
    old = table.drop_columns(["status"]).filter(pc.equal(table.column("invoice_no"), "536365"))
    [archived] = events_from_table(read_parquet(to_parquet(old)))
    assert archived.event == plain
