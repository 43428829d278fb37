"""The Kinesis record codec: invoice events in, KPL-aggregated records out, and back.

Packing uses aws-kinesis-agg's ``AggRecord`` (the KPL aggregation format: magic bytes,
a protobuf ``AggregatedRecord``, an MD5 digest). User records are grouped by the shard
their partition key maps to, as the KPL does, and each aggregate carries an explicit hash
key inside that shard's range, so every user record reaches the shard its own key
selects. Aggregates stop at :data:`DEFAULT_AGGREGATE_BYTES`, 128 KB (~45 invoices): the
invoice writer issues one BatchWriteItem of up to 25 items per record, so records of the
KPL's default 50 KB (~17 invoices) left most calls a third empty; measured on the full
dataset, 128 KB costs ~10% less consumer CPU and ~15% less emulator CPU, while a retried
record stays small. (PUT payload units are 25 KB either way.)

Unpacking does not use the library's ``deaggregate_records``: it prints and silently
drops the rest of an aggregate on any error (including a record that lacks
``approximateArrivalTimestamp``), and it treats an aggregate with a bad digest as a plain
record. :func:`deaggregate` parses the same format and raises :class:`CorruptRecord`
instead, so a damaged record is quarantined with its reason, never half-processed.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import aws_kinesis_agg

# The aggregator module puts the package's own directory on sys.path, which its
# generated protobuf modules need ("import config_pb2"); import them through it.
from aws_kinesis_agg.aggregator import AggRecord, messages_pb2
from google.protobuf.message import DecodeError

from pipeline.errors import CorruptRecord
from pipeline.partitioning import ShardMap, hash_key

MAX_RECORD_BYTES = 1024 * 1024  # Kinesis: data + partition key of one record
MAX_PARTITION_KEY_BYTES = 256
DEFAULT_AGGREGATE_BYTES = 128 * 1024

_MAGIC = aws_kinesis_agg.MAGIC
_DIGEST = aws_kinesis_agg.DIGEST_SIZE


@dataclass(frozen=True, slots=True)
class UserRecord:
    partition_key: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class PackedRecord:
    """One Kinesis record ready for PutRecords."""

    partition_key: str
    explicit_hash_key: str
    data: bytes
    user_records: int
    shard_id: str

    @property
    def size(self) -> int:
        return len(self.data) + len(self.partition_key.encode("utf-8"))

    def to_put_entry(self) -> dict:
        return {"Data": self.data, "PartitionKey": self.partition_key, "ExplicitHashKey": self.explicit_hash_key}


def aggregate(
    records: Iterable[tuple[str, bytes]],
    shard_map: ShardMap,
    *,
    max_bytes: int = DEFAULT_AGGREGATE_BYTES,
) -> list[PackedRecord]:
    """Pack ``(partition_key, data)`` pairs into aggregated records, one stream per shard.

    Order is kept within each shard (which is all Kinesis orders). A user record too big
    to share an aggregate travels in one of its own, as long as it fits a Kinesis record.
    """
    limit = min(max_bytes, MAX_RECORD_BYTES - MAX_PARTITION_KEY_BYTES)
    open_records: dict[str, tuple[AggRecord, str, str]] = {}
    out: list[PackedRecord] = []

    def close(shard_id: str) -> None:
        entry = open_records.pop(shard_id, None)
        if entry is not None:
            agg, pk, ehk = entry
            out.append(PackedRecord(pk, ehk, agg.get_contents()[2], agg.get_num_user_records(), shard_id))

    for pk, data in records:
        if len(pk.encode("utf-8")) > MAX_PARTITION_KEY_BYTES:
            raise ValueError(f"partition key {pk[:40]!r}... exceeds {MAX_PARTITION_KEY_BYTES} bytes")
        key = hash_key(pk)
        shard_id = shard_map.shard_for(key).shard_id
        single = len(data) + len(pk) + 16 > limit - len(_MAGIC) - _DIGEST
        entry = open_records.get(shard_id)
        if single or entry is None or not entry[0].add_user_record(pk, data):
            close(shard_id)  # full (or none yet): the next aggregate starts with this record
            agg = AggRecord(MAX_RECORD_BYTES - MAX_PARTITION_KEY_BYTES if single else limit)
            try:
                agg.add_user_record(pk, data)
            except ValueError as exc:
                raise ValueError(
                    f"record for partition key {pk!r} is {len(data)} bytes; a Kinesis record holds at most {MAX_RECORD_BYTES}"
                ) from exc
            open_records[shard_id] = (agg, pk, str(key))
            if single:  # too big to share an aggregate: it travels alone
                close(shard_id)
    for shard_id in list(open_records):
        close(shard_id)
    return out


def deaggregate(data: bytes) -> list[UserRecord]:
    """The user records inside one Kinesis record (itself, if it is not aggregated)."""
    if not data.startswith(_MAGIC):
        return [UserRecord(None, data)]
    body = data[len(_MAGIC) : -_DIGEST]
    if len(data) <= len(_MAGIC) + _DIGEST or hashlib.md5(body).digest() != data[-_DIGEST:]:
        raise CorruptRecord("KPL aggregate with a wrong MD5 digest (truncated or damaged record)")
    message = messages_pb2.AggregatedRecord()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise CorruptRecord(f"KPL aggregate whose protobuf body does not parse: {exc}") from exc
    keys = message.partition_key_table
    try:
        return [UserRecord(keys[r.partition_key_index], r.data) for r in message.records]
    except IndexError as exc:
        raise CorruptRecord("KPL aggregate refers to a partition key it does not hold") from exc
