"""What the archive writer does with one batch of Kinesis records (pure: ports are passed in).

Every valid event of the batch becomes rows (:mod:`.format`), one Parquet object per day
partition the batch touches, keyed by the batch's shard and first and last sequence
numbers: a retried batch writes the same keys and overwrites instead of duplicating, and
objects are as large as a batch (the event source mapping's batch size and window decide),
not one per event. Poison goes to the quarantine through the shared decoding step
(:mod:`consumers.records`). A transient failure of S3 propagates: the batch is retried.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from consumers.archive.format import DEFAULT_PREFIX, Delivered, object_key, tables_by_day, to_parquet
from consumers.records import EventDecoder, KinesisRecord, Quarantine

CONSUMER = "archive-writer"


class ArchiveStore(Protocol):
    def put(self, key: str, body: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class BatchResult:
    objects: list[str]
    events: int
    lines: int
    quarantined: int
    bytes: int


class ArchiveWriter:
    def __init__(self, store: ArchiveStore, quarantine: Quarantine, *, prefix: str = DEFAULT_PREFIX):
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self._store = store
        self._decoder = EventDecoder(quarantine, consumer=CONSUMER)
        self.prefix = prefix

    def handle(self, records: Sequence[KinesisRecord]) -> BatchResult:
        if not records:
            return BatchResult([], 0, 0, 0, 0)
        delivered: list[Delivered] = []
        quarantined = 0
        for record in records:
            decoded = self._decoder.decode(record)
            quarantined += decoded.quarantined
            delivered.extend(Delivered(d.event, record.shard_id, record.sequence_number, d.sub_sequence_number,
                                       record.arrival) for d in decoded.events)
        shard = records[0].shard_id or "shard"
        first, last = records[0].sequence_number, records[-1].sequence_number
        keys, size = [], 0
        for day, table in sorted(tables_by_day(delivered).items()):
            key = object_key(self.prefix, day, shard, first, last)
            body = to_parquet(table)
            self._store.put(key, body)
            keys.append(key)
            size += len(body)
        return BatchResult(keys, len(delivered), sum(len(d.event.lines) for d in delivered), quarantined, size)
