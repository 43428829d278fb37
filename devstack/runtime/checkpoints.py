"""Kinesis checkpoints that survive a restart of the runtime (SQLite under the state dir).

One row per (consumer, shard id) — a consumer is an event source mapping (its UUID) or a
Firehose delivery stream (``firehose:<name>``), each with its own position in each
shard: the position after which the next record is read. ``kind`` is ``AFTER_SEQUENCE_NUMBER`` (``value`` = the last sequence
number fully handled: processed, or sent to the on-failure destination),
``AT_TIMESTAMP`` (``value`` = epoch seconds; the anchor of a ``LATEST`` mapping that has
not processed a record yet, so a restart does not skip what arrived meanwhile) or
``SHARD_END`` (a closed shard read to its end). Rows are written after every successful
step, so a restarted runtime resumes exactly where the previous one stopped.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Checkpoint:
    kind: str  # AFTER_SEQUENCE_NUMBER | AT_TIMESTAMP | SHARD_END
    value: str = ""

    @classmethod
    def after(cls, sequence_number: str) -> Checkpoint:
        return cls("AFTER_SEQUENCE_NUMBER", str(sequence_number))

    @classmethod
    def at_timestamp(cls, epoch: float) -> Checkpoint:
        return cls("AT_TIMESTAMP", repr(float(epoch)))

    @classmethod
    def shard_end(cls) -> Checkpoint:
        return cls("SHARD_END", "")

    @property
    def sequence_number(self) -> str | None:
        return self.value if self.kind == "AFTER_SEQUENCE_NUMBER" else None

    def describe(self) -> str | None:
        if self.kind == "AFTER_SEQUENCE_NUMBER":
            return self.value
        if self.kind == "AT_TIMESTAMP":
            return f"AT_TIMESTAMP {self.value}"
        return self.kind


class CheckpointStore:
    """Thread-safe; one connection guarded by a lock (writes are one row, a few per second)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS shard_checkpoints ("
            " consumer_id TEXT NOT NULL, shard_id TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,"
            " updated_at REAL NOT NULL, PRIMARY KEY (consumer_id, shard_id))"
        )

    def get(self, consumer_id: str, shard_id: str) -> Checkpoint | None:
        with self._lock:
            row = self._db.execute("SELECT kind, value FROM shard_checkpoints WHERE consumer_id=? AND shard_id=?",
                                   (consumer_id, shard_id)).fetchone()
        return Checkpoint(row[0], row[1]) if row else None

    def put(self, consumer_id: str, shard_id: str, checkpoint: Checkpoint) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO shard_checkpoints (consumer_id, shard_id, kind, value, updated_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT(consumer_id, shard_id) DO UPDATE SET kind=excluded.kind, value=excluded.value,"
                " updated_at=excluded.updated_at",
                (consumer_id, shard_id, checkpoint.kind, checkpoint.value, time.time()))

    def close(self) -> None:
        with self._lock:
            self._db.close()
