"""The partition key, and how Kinesis maps it to a shard.

The partition key is the **invoice number**:

* every delivery of the same invoice (a retry, a replay, a correction) lands on the same
  shard, so a consumer sees one invoice's events in order;
* it spreads evenly: 25,900 distinct keys through MD5 over the shards' hash ranges;
* the customer id would not: a quarter of the lines have no customer (all on one key)
  and the busiest customers have thousands of lines (hot shards), while no consumer needs
  a customer's invoices in stream order (history is ordered by invoice date at read time).

The KPL packs user records that share a shard into one aggregated Kinesis record and
routes it with an explicit hash key inside that shard's range; :class:`ShardMap` is that
prediction.
"""
from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.events import InvoiceEvent


def partition_key(event: InvoiceEvent) -> str:
    return event.invoice_no


def hash_key(partition_key: str) -> int:
    """Kinesis' mapping of a partition key into the 128-bit hash key space."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


@dataclass(frozen=True, slots=True)
class ShardRange:
    shard_id: str
    starting_hash_key: int
    ending_hash_key: int


class ShardMap:
    """Open shards of a stream by hash key range (from ``ListShards``)."""

    def __init__(self, shards: Iterable[ShardRange]):
        self._shards = sorted(shards, key=lambda s: s.starting_hash_key)
        if not self._shards:
            raise ValueError("a stream has at least one open shard")
        self._starts = [s.starting_hash_key for s in self._shards]

    @classmethod
    def from_list_shards(cls, shards: Iterable[dict]) -> ShardMap:
        return cls(
            ShardRange(
                s["ShardId"],
                int(s["HashKeyRange"]["StartingHashKey"]),
                int(s["HashKeyRange"]["EndingHashKey"]),
            )
            for s in shards
            if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})  # open shards only
        )

    @property
    def shards(self) -> list[ShardRange]:
        return list(self._shards)

    def shard_for(self, key: int) -> ShardRange:
        index = bisect.bisect_right(self._starts, key) - 1
        return self._shards[max(index, 0)]
