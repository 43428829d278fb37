"""Reading Kinesis shards for the local runtime's stream consumers.

Every kind of stream consumer the runtime plays — a Lambda event source mapping
(:mod:`.esm`), a Firehose delivery stream with a Kinesis source (:mod:`.firehose`) — reads
its shards the same way, with its own position in each. This module is that part, and
only that part:

:class:`ShardTail`, one per (consumer, shard)
    The iterator, a buffer of records read but not yet handled, and the checkpoint. The
    first position comes from the checkpoint (:mod:`.checkpoints`) if there is one, else
    from the consumer's starting position: ``TRIM_HORIZON``; ``AT_TIMESTAMP`` (with a
    timestamp, else TRIM_HORIZON with a warning); ``LATEST`` means "what arrives after the
    consumer was created": AWS starts reading at creation, but the runtime may discover a
    consumer seconds later (or start after ``terraform apply``), so it reads
    ``AT_TIMESTAMP`` = the consumer's creation time (clamped to now) and persists that
    anchor so a restart does not skip what arrived meanwhile. A closed shard (no next
    iterator, or ListShards gives its EndingSequenceNumber and an empty read started past
    it) is read to its end, then marked ``SHARD_END``; a child shard starts once its
    parent is finished. The consumer commits a position once it has handled the records
    up to it; a restarted runtime resumes from there, so at most what was in hand is
    handled again.

:class:`ShardPoller`, a thread per (consumer, shard)
    Runs the consumer's :class:`ShardProcessor` step by step; read errors (throttling,
    the emulator restarting) are logged and retried with backoff and never stop it.

:class:`StreamConsumer`, one per consumer
    The pollers of all shards of the consumer's stream, started as ListShards reveals
    shards, children after parents; status and stop.

Drain detection
    Each shard keeps ``last_empty_poll_started_at``: the wall-clock time at which a
    GetRecords that returned no records (and was 0 ms behind the tip) was *started*
    while nothing was buffered or in flight for that shard. A writer that finished at T
    knows a consumer has drained when every one of its shards shows a value greater than
    T (or is finished). See :func:`devstack.runtime.client.wait_until_drained`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from devstack.runtime.checkpoints import Checkpoint, CheckpointStore
from devstack.runtime.model import arn_resource_name

log = logging.getLogger("devstack.runtime.shards")

GET_RECORDS_LIMIT = 10000
DEFAULT_RETENTION_SECONDS = 24 * 3600

# What a processor's step() reports to its poller.
IDLE, WAITING, INVOKED, FINISHED, STOPPED = "idle", "waiting", "invoked", "finished", "stopped"


# -- values and ports ----------------------------------------------------------------------
@dataclass
class StreamRecord:
    """A Kinesis record as GetRecords returns it (one KPL aggregate, for shopstream's producer)."""

    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float  # epoch seconds
    encoded: str | None = field(default=None, repr=False, compare=False)  # a consumer's memo of its encoding


@dataclass
class RecordsPage:
    records: list[StreamRecord]
    next_iterator: str | None
    millis_behind_latest: int = 0


class ShardReader(Protocol):
    def get_shard_iterator(self, shard_id: str, iterator_type: str, value: str | float | None = None) -> str: ...

    def get_records(self, iterator: str, limit: int) -> RecordsPage: ...


class ExpiredIterator(Exception):
    """The shard iterator is no longer valid: get a new one from the last position."""


class Stopped(Exception):
    """The consumer is stopping: abandon what is in hand; a restart resumes from the checkpoint."""


@dataclass(frozen=True)
class PollerSettings:
    idle_delay: float = 0.2
    retry_base_delay: float = 0.05
    retry_max_delay: float = 2.0
    error_base_delay: float = 0.2
    error_max_delay: float = 5.0
    retention_seconds: int = DEFAULT_RETENTION_SECONDS

    def retry_delay(self, failures: int) -> float:
        """The wait before retrying something that failed ``failures`` times."""
        return min(self.retry_max_delay, self.retry_base_delay * 2 ** max(0, failures - 1))

    def error_delay(self, errors: int) -> float:
        """The wait after ``errors`` consecutive failures of a read or of a send."""
        return min(self.error_max_delay, self.error_base_delay * 2 ** min(errors - 1, 8))


@dataclass(frozen=True)
class StartingPosition:
    """Where a consumer without a checkpoint starts: TRIM_HORIZON, LATEST or AT_TIMESTAMP."""

    kind: str = "TRIM_HORIZON"
    timestamp: float | None = None   # AT_TIMESTAMP's timestamp
    created_at: float | None = None  # LATEST: when the consumer was created


@dataclass
class ShardStats:
    """What every consumer's shard reports about reading (the consumer adds its own counters)."""

    shard_id: str
    parent_shard_id: str | None = None
    checkpoint: str | None = None
    polls: int = 0
    last_empty_poll_started_at: float | None = None
    in_flight: bool = False
    pending_records: int = 0
    millis_behind_latest: int | None = None
    finished: bool = False
    last_error: str | None = None
    consecutive_read_errors: int = 0

    def to_status(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# -- one shard of one consumer -------------------------------------------------------------
class ShardTail:
    """Position, buffer and checkpoint of one consumer in one shard (no threads inside)."""

    def __init__(self, consumer_id: str, shard_id: str, *, reader: ShardReader, store: CheckpointStore,
                 start: StartingPosition = StartingPosition(), parent_shard_id: str | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 context: str = "") -> None:
        self.consumer_id = consumer_id
        self.shard_id = shard_id
        self.reader = reader
        self.store = store
        self.start = start
        self.clock = clock
        self.monotonic = monotonic
        self.context = context or f"consumer={consumer_id} shard={shard_id}"
        self.stats = ShardStats(shard_id, parent_shard_id)
        self.iterator: str | None = None
        self.buffer: deque[StreamRecord] = deque()
        self.last_fetched: str | None = None
        self.closed = False
        self.ending_sequence_number: str | None = None  # set when ListShards reports the shard closed
        self.window_started: float | None = None  # monotonic time the oldest buffered record was read
        checkpoint = store.get(consumer_id, shard_id)
        self.checkpoint = checkpoint
        if checkpoint is not None:
            self.stats.checkpoint = checkpoint.describe()
            self.stats.finished = checkpoint.kind == "SHARD_END"

    # -- reading ---------------------------------------------------------------------------
    def _starting_position(self) -> tuple[str, Any]:
        position = (self.start.kind or "TRIM_HORIZON").upper()
        if position == "AT_TIMESTAMP":
            if self.start.timestamp is not None:
                return "AT_TIMESTAMP", float(self.start.timestamp)
            log.warning("starting position AT_TIMESTAMP without a timestamp from the emulator; "
                        "reading from TRIM_HORIZON %s", self.context)
            return "TRIM_HORIZON", None
        if position == "LATEST":
            anchor = self.start.created_at if self.start.created_at is not None else self.clock()
            anchor = min(anchor, self.clock())
            self.save(Checkpoint.at_timestamp(anchor))
            return "AT_TIMESTAMP", anchor
        return "TRIM_HORIZON", None

    def _ensure_iterator(self) -> None:
        if self.iterator is not None or self.closed:
            return
        if self.last_fetched is not None:
            kind, value = "AFTER_SEQUENCE_NUMBER", self.last_fetched
        elif self.checkpoint is not None and self.checkpoint.kind == "AFTER_SEQUENCE_NUMBER":
            kind, value = "AFTER_SEQUENCE_NUMBER", self.checkpoint.value
        elif self.checkpoint is not None and self.checkpoint.kind == "AT_TIMESTAMP":
            kind, value = "AT_TIMESTAMP", float(self.checkpoint.value)
        else:
            kind, value = self._starting_position()
        self.iterator = self.reader.get_shard_iterator(self.shard_id, kind, value)
        log.debug("shard iterator %s %s %s", kind, value, self.context)

    def read(self, wanted: int) -> None:
        """One GetRecords (when fewer than ``wanted`` records are buffered and the shard is open)."""
        if len(self.buffer) >= wanted or self.closed:
            return
        self._ensure_iterator()
        if self.closed:
            return
        started = self.clock()
        nothing_pending = not self.buffer
        try:
            page = self.reader.get_records(self.iterator, max(1, min(wanted - len(self.buffer), GET_RECORDS_LIMIT)))
        except ExpiredIterator:
            self.iterator = None
            raise
        self.stats.polls += 1
        self.stats.millis_behind_latest = page.millis_behind_latest
        self.iterator = page.next_iterator
        if page.next_iterator is None:
            self.closed = True
        if page.records:
            self.buffer.extend(page.records)
            self.last_fetched = page.records[-1].sequence_number
            if self.window_started is None:
                self.window_started = self.monotonic()
        elif nothing_pending and not page.millis_behind_latest:
            self.stats.last_empty_poll_started_at = started
        self.stats.pending_records = len(self.buffer)

    def at_end(self) -> bool:
        """Nothing buffered and the shard is closed and read to its end (moto, unlike AWS,
        keeps returning an iterator at the end of a closed shard: ListShards tells)."""
        if self.buffer:
            return False
        if self.closed:
            return True
        ending = self.ending_sequence_number
        if ending is None or self.stats.last_empty_poll_started_at is None:
            return False
        position = self.last_fetched or (self.checkpoint.sequence_number if self.checkpoint else None)
        try:
            return position is None or int(position) >= int(ending)
        except ValueError:
            return False

    def window_age(self) -> float:
        """Seconds since the oldest buffered record was read (0 with nothing buffered)."""
        return 0.0 if self.window_started is None else self.monotonic() - self.window_started

    def take(self, count: int) -> list[StreamRecord]:
        """Remove up to ``count`` records from the front of the buffer."""
        out = [self.buffer.popleft() for _ in range(min(count, len(self.buffer)))]
        if not self.buffer:
            self.window_started = None
        self.stats.pending_records = len(self.buffer)
        return out

    # -- positions -------------------------------------------------------------------------
    def save(self, checkpoint: Checkpoint) -> None:
        self.store.put(self.consumer_id, self.shard_id, checkpoint)
        self.checkpoint = checkpoint
        self.stats.checkpoint = checkpoint.describe()

    def commit(self, sequence_number: str) -> None:
        """Everything up to and including ``sequence_number`` is handled."""
        self.save(Checkpoint.after(sequence_number))

    def finish(self) -> None:
        self.stats.finished = True
        self.stats.last_empty_poll_started_at = self.clock()
        self.save(Checkpoint.shard_end())
        log.info("shard finished (closed and fully read) %s", self.context)

    def note_not_run(self, what: str, result: Any, attempt: int) -> None:
        """A function this consumer called was not run (throttled): said in the status, and
        logged at the first attempts and every 20th, since it is retried without end."""
        self.stats.last_error = f"{what} not run: {result.service_error}: {result.error_message}"
        if attempt <= 2 or attempt % 20 == 0:
            log.warning("%s; retrying without consuming a retry (attempt %d) %s", self.stats.last_error, attempt,
                        self.context)

    def abandon(self) -> None:
        """Forget what is buffered; the next read starts again from the checkpoint."""
        self.buffer.clear()
        self.iterator = None
        self.closed = False  # a closed shard's last page is read again, not taken as its end
        self.last_fetched = None
        self.stats.last_empty_poll_started_at = None  # only a poll after the rewind proves the end
        self.window_started = None
        self.stats.pending_records = 0
        self.stats.in_flight = False


class ShardProcessor(Protocol):
    """What a kind of consumer does with its shard: one step of reading and handling."""

    tail: ShardTail
    stop_event: threading.Event

    def step(self) -> str: ...

    def wait_hint(self) -> float:
        """Seconds the poller may wait after a WAITING step (a batching window's rest)."""
        ...

    def status(self) -> dict: ...


# -- threads -------------------------------------------------------------------------------
class Precedence:
    """Which stream consumers go first while they are behind: the local runtime's share of
    a few cores.

    On AWS each consumer of a stream has compute of its own; locally every consumer, the
    functions, the emulator and the warehouse share the machine, so a bulk load through
    every sink makes each of them late. The consumers named ``first`` (the operational
    sink: the invoice writer, whose table the query API reads) report after each step
    whether a shard of theirs is behind (records left in the shard or in hand); while one
    is, every other consumer waits before its next step, for at most ``max_hold`` seconds
    in a row, then takes one step: under a long load they lag, they never stop. Nothing
    changes what is delivered or in which order, only when; a consumer at the tip of its
    stream holds no one back, so single events reach every sink as before.
    """

    def __init__(self, first: Iterable[str] = (), *, max_hold: float = 60.0) -> None:
        self.first = frozenset(first)
        self.max_hold = max_hold
        self._behind: set[tuple[str, str]] = set()
        self._changed = threading.Condition()
        self.held_seconds = 0.0
        self.holds = 0

    def is_first(self, consumer_name: str) -> bool:
        return consumer_name in self.first

    def report(self, key: tuple[str, str], behind: bool) -> None:
        with self._changed:
            if behind:
                self._behind.add(key)
            elif key in self._behind:
                self._behind.discard(key)
                if not self._behind:
                    self._changed.notify_all()

    def hold(self, stop: threading.Event) -> float:
        """Wait while a first consumer is behind (at most ``max_hold``); the seconds waited."""
        started = time.monotonic()
        with self._changed:
            if not self._behind:
                return 0.0
            while self._behind and not stop.is_set():
                remaining = self.max_hold - (time.monotonic() - started)
                if remaining <= 0:
                    break
                self._changed.wait(min(remaining, 0.25))
            held = time.monotonic() - started
            self.held_seconds += held
            self.holds += 1
        return held

    def status(self) -> dict:
        with self._changed:
            return {"first": sorted(self.first), "behind": sorted(f"{c}/{s}" for c, s in self._behind),
                    "holds": self.holds, "held_seconds": round(self.held_seconds, 1), "max_hold": self.max_hold}


class ShardPoller(threading.Thread):
    """Runs a :class:`ShardProcessor` until stopped; read errors are retried with backoff.
    With a :class:`Precedence`, a first consumer's poller reports whether it is behind
    after each step, and any other waits before each step while a first one is."""

    def __init__(self, processor: ShardProcessor, settings: PollerSettings, *, name: str,
                 can_start: Callable[[], bool] = lambda: True, precedence: Precedence | None = None,
                 first: bool = False) -> None:
        super().__init__(name=name, daemon=True)
        self.processor = processor
        self.settings = settings
        self.can_start = can_start
        self.precedence = precedence
        self.first = first

    def stop(self) -> None:
        self.processor.stop_event.set()

    def run(self) -> None:
        p = self.processor
        stats = p.tail.stats
        stop = p.stop_event
        settings = self.settings
        precedence = self.precedence
        key = (p.tail.consumer_id, p.tail.shard_id)
        while not stop.is_set() and not self.can_start():
            stop.wait(settings.idle_delay)
        try:
            self._run(p, stats, stop, settings, precedence, key)
        finally:
            if precedence is not None and self.first:
                precedence.report(key, False)

    def _run(self, p, stats, stop, settings, precedence, key) -> None:
        while not stop.is_set():
            if precedence is not None and not self.first:
                precedence.hold(stop)
                if stop.is_set():
                    break
            try:
                outcome = p.step()
            except Exception as exc:
                if precedence is not None and self.first:
                    precedence.report(key, False)  # failing is not a reason to hold the others back
                stats.consecutive_read_errors += 1
                n = stats.consecutive_read_errors
                stats.last_error = f"{type(exc).__name__}: {exc}"
                (log.warning if n in (1, 2) or n % 20 == 0 else log.debug)(
                    "reading the shard failed (%s), retrying (attempt %d) %s", stats.last_error, n, p.tail.context)
                stop.wait(settings.error_delay(n))
                continue
            if stats.consecutive_read_errors:
                log.info("reading the shard recovered after %d errors %s", stats.consecutive_read_errors,
                         p.tail.context)
                stats.consecutive_read_errors = 0
                stats.last_error = None
            if precedence is not None and self.first:
                precedence.report(key, outcome not in (FINISHED, STOPPED) and (
                    (stats.millis_behind_latest or 0) > 0 or bool(p.tail.buffer)))
            if outcome in (FINISHED, STOPPED):
                break
            if outcome == IDLE:
                stop.wait(settings.idle_delay)
            elif outcome == WAITING:
                stop.wait(max(0.001, min(settings.idle_delay, p.wait_hint())))


class StreamConsumer:
    """Every shard poller of one consumer of one stream.

    ``make_processor(shard_id, parent_shard_id, settings)`` builds the consumer's
    :class:`ShardProcessor` of a shard; :meth:`sync_shards` starts one as ListShards
    reveals a shard, a child once its parent is finished.
    """

    kind = "stream-consumer"
    precedence: Precedence | None = None  # set by the runtime before the first sync_shards

    def __init__(self, consumer_id: str, stream_arn: str, *, store: CheckpointStore,
                 settings: PollerSettings = PollerSettings()) -> None:
        self.consumer_id = consumer_id
        self.stream_arn = stream_arn
        self.store = store
        self.settings = settings
        self.pollers: dict[str, ShardPoller] = {}
        self._lock = threading.Lock()

    # what a kind of consumer provides
    def make_processor(self, shard_id: str, parent_shard_id: str | None) -> ShardProcessor:
        raise NotImplementedError

    def describe(self) -> dict:
        """The consumer's own part of its status (configuration)."""
        return {}

    @property
    def name(self) -> str:
        return self.consumer_id

    @property
    def stream_name(self) -> str:
        return arn_resource_name(self.stream_arn)

    def processors(self) -> list[ShardProcessor]:
        with self._lock:
            return [poller.processor for poller in self.pollers.values()]

    def sync_shards(self, shards: Iterable[tuple], retention_seconds: int | None = None) -> None:
        """``shards``: (shard id, parent shard id, ending sequence number or None while open,
        adjacent parent shard id of a merge, optional)."""
        if retention_seconds and retention_seconds != self.settings.retention_seconds:
            self.settings = replace(self.settings, retention_seconds=retention_seconds)
        shards = list(shards)
        with self._lock:
            known = {s[0] for s in shards} | set(self.pollers)
            for shard_id, parent, ending, *adjacent in shards:
                if shard_id in self.pollers:
                    if ending is not None:
                        self.pollers[shard_id].processor.tail.ending_sequence_number = ending
                    continue
                processor = self.make_processor(shard_id, parent)
                processor.tail.ending_sequence_number = ending
                precedence = self.precedence
                poller = ShardPoller(processor, self.settings, name=f"{self.kind}-{self.consumer_id[:8]}-{shard_id}",
                                     can_start=self._parents_done((parent, *adjacent), known), precedence=precedence,
                                     first=precedence is not None and precedence.is_first(self.name))
                self.pollers[shard_id] = poller
                log.info("polling shard kind=%s consumer=%s stream=%s shard=%s from=%s", self.kind, self.name,
                         self.stream_name, shard_id, processor.tail.stats.checkpoint or "the starting position")
                poller.start()

    def _parents_done(self, parents: tuple[str | None, ...], known: set[str]) -> Callable[[], bool]:
        """A child starts once every parent it has is read to its end: the one it split
        from, or both shards it merged from (per-key order across the reshard)."""
        def finished(parent: str | None) -> bool:
            if parent is None or parent not in known:
                return True
            poller = self.pollers.get(parent)
            if poller is not None:
                return poller.processor.tail.stats.finished
            checkpoint = self.store.get(self.consumer_id, parent)
            return checkpoint is not None and checkpoint.kind == "SHARD_END"

        def done() -> bool:
            return all(finished(parent) for parent in parents)
        return done

    def stop(self) -> None:
        for poller in list(self.pollers.values()):
            poller.stop()

    def is_alive(self) -> bool:
        """Some poller still has work in hand (stopping waits for it)."""
        return any(poller.is_alive() for poller in list(self.pollers.values()))

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for poller in list(self.pollers.values()):
            poller.join(max(0.0, deadline - time.monotonic()))
            if poller.is_alive():
                log.warning("poller did not stop in time (work is still in hand) %s", poller.name)

    def status(self) -> dict:
        data = {"kind": self.kind, "id": self.consumer_id, "name": self.name, "stream_arn": self.stream_arn}
        data.update(self.describe())
        data["shards"] = [p.processor.status() for _, p in sorted(self.pollers.items())]
        return data


# -- boto3 adapter -------------------------------------------------------------------------
class BotoShardReader:
    """Reads a stream of the emulator (or AWS) with a boto3 Kinesis client."""

    def __init__(self, client, stream_arn: str) -> None:
        self.client = client
        self.stream_arn = stream_arn
        self.stream_name = arn_resource_name(stream_arn)

    def get_shard_iterator(self, shard_id: str, iterator_type: str, value: str | float | None = None) -> str:
        # StreamName, not StreamARN: moto builds the iterator from the name it was given.
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard_id,
                                  "ShardIteratorType": iterator_type}
        if iterator_type in ("AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER"):
            kwargs["StartingSequenceNumber"] = str(value)
        elif iterator_type == "AT_TIMESTAMP":
            kwargs["Timestamp"] = float(value)
        return self.client.get_shard_iterator(**kwargs)["ShardIterator"]

    def get_records(self, iterator: str, limit: int) -> RecordsPage:
        try:
            response = self.client.get_records(ShardIterator=iterator, Limit=limit)
        except self.client.exceptions.ExpiredIteratorException as exc:
            raise ExpiredIterator(str(exc)) from exc
        records = [
            StreamRecord(
                sequence_number=r["SequenceNumber"],
                partition_key=r.get("PartitionKey", ""),
                data=r.get("Data", b""),
                arrival=_arrival(r.get("ApproximateArrivalTimestamp")),
            )
            for r in response.get("Records", [])
        ]
        return RecordsPage(records, response.get("NextShardIterator"), int(response.get("MillisBehindLatest") or 0))


def _arrival(value: Any) -> float:
    if value is None:
        return time.time()
    if hasattr(value, "timestamp"):
        return round(value.timestamp(), 3)
    return float(value)
