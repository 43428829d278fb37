#!/usr/bin/env python3
"""Replay the Kaggle "ecommerce-data" set (UCI Online Retail) into shopstream.

    python scripts/replay_kaggle.py data.zip --max                      # as fast as the pipeline takes
    python scripts/replay_kaggle.py data.zip --speedup 3600             # one hour of shop time per second
    python scripts/replay_kaggle.py by-day/ --rate 200 --from 2011-01-01 --to 2011-01-31
    python scripts/replay_kaggle.py data.csv --stream shopstream-events # straight onto the stream

The source is anything :mod:`pipeline.kaggle` reads (Kaggle's zip as downloaded, a CSV, a
directory or glob of CSVs), streamed. Events go to the HTTP API (``POST /events``, batched
per request) or, with ``--stream``, onto the Kinesis stream through the same producer the
ingest function uses. Writes downstream are idempotent, so a request that failed for a
transient reason is simply sent again.

The exit status is non-zero if any source row could not be read or any item was
rejected or could not be delivered; the summary says which and where.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from devstack.auth import ENV_TOKEN  # noqa: E402
from pipeline.errors import SourceError  # noqa: E402
from pipeline.events import InvoiceEvent, money_display, money_str, size_problem  # noqa: E402
from pipeline.kaggle import DEFAULT_GROUP_WINDOW, InvoiceGrouper, read_invoices, resolve_sources  # noqa: E402

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
DEFAULT_BATCH_EVENTS = 250
DEFAULT_BATCH_BYTES = 1_500_000  # the ingest API takes 2,000,000 bytes per request (pipeline/settings.py)
# A transient failure (no connection, 5xx, 408, 429) is retried with backoff, as long as
# this lasts: a runtime restarting or an emulator busy for a minute loses nothing. Only
# after it is the request counted as failed (and said so): a replay must end.
RETRY_FOR_SECONDS = 300.0
MAX_BACKOFF_SECONDS = 5.0
FLUSH_SECONDS = 0.1


@dataclass
class ReplayStats:
    source: str = ""
    target: str = ""
    mode: str = ""
    events_read: int = 0
    lines_read: int = 0
    events_sent: int = 0
    lines_sent: int = 0
    requests: int = 0
    retries: int = 0
    rejected_items: int = 0
    failed_events: int = 0
    source_errors: int = 0
    source_total: str = "0.00"
    sent_total: str = "0.00"
    elapsed_s: float = 0.0
    first_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.rejected_items or self.failed_events or self.source_errors)

    def note(self, problem: str) -> None:
        if len(self.first_problems) < 20:
            self.first_problems.append(problem)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["events_per_s"] = round(self.events_sent / self.elapsed_s, 1) if self.elapsed_s else None
        out["lines_per_s"] = round(self.lines_sent / self.elapsed_s, 1) if self.elapsed_s else None
        return out


# ---- pacing ---------------------------------------------------------------------------


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def schedule(events: Iterable[InvoiceEvent], *, rate: float | None, speedup: float | None,
             clock: Callable[[], float] = time.monotonic) -> Iterator[tuple[float, InvoiceEvent]]:
    """Each event with the (monotonic) time it is due. ``rate``: evenly spaced;
    ``speedup``: the real gaps between invoices, divided; neither: due at once."""
    start = clock()
    first_time: float | None = None
    for i, event in enumerate(events):
        if rate:
            due = start + i / rate
        elif speedup:
            when = _epoch(event.invoice_date)
            if first_time is None:
                first_time = when
            due = start + max(0.0, when - first_time) / speedup
        else:
            due = start
        yield due, event


def batches(scheduled: Iterable[tuple[float, InvoiceEvent]], *, max_events: int, max_bytes: int,
            clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
            ) -> Iterator[list[tuple[InvoiceEvent, bytes]]]:
    """Group due events into requests: full ones at once, a partial one when the next
    event is not due for a while (so paced replays are not delayed by batching)."""
    batch: list[tuple[InvoiceEvent, bytes]] = []
    size = 2
    for due, event in scheduled:
        wait = due - clock()
        if wait > FLUSH_SECONDS and batch:
            yield batch
            batch, size = [], 2
        if wait > 0:
            sleep(wait)
        data = event.to_json()
        if batch and (len(batch) >= max_events or size + len(data) + 1 > max_bytes):
            yield batch
            batch, size = [], 2
        batch.append((event, data))
        size += len(data) + 1
    if batch:
        yield batch


# ---- senders --------------------------------------------------------------------------


class HttpSender:
    """POST /events with keep-alive sessions, one per worker thread."""

    def __init__(self, endpoint: str, stats: ReplayStats, lock: threading.Lock, *, timeout: float = 60.0,
                 retry_for: float = RETRY_FOR_SECONDS, sleep=None, clock=None, token: str | None = None):
        import requests

        self._requests = requests
        self.url = endpoint.rstrip("/") + "/events"
        self.stats, self.lock, self.timeout = stats, lock, timeout
        self.retry_for = retry_for
        self._sleep = sleep or (lambda seconds: time.sleep(seconds))
        self._clock = clock or (lambda: time.monotonic())
        self._local = threading.local()
        self.headers = {"Content-Type": "application/json"}
        if token:  # a producer's access token (scope shopstream/events.write)
            self.headers["Authorization"] = f"Bearer {token}"

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._requests.Session()
        return session

    def send(self, batch: list[tuple[InvoiceEvent, bytes]]) -> None:
        body = b"[" + b",".join(data for _, data in batch) + b"]"
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                response = self._session().post(self.url, data=body, timeout=self.timeout, headers=self.headers)
            except self._requests.RequestException as exc:
                status, detail = None, f"{type(exc).__name__}: {exc}"
            else:
                status, detail = response.status_code, response.text[:300]
                with self.lock:
                    self.stats.requests += 1
                if status == 202:
                    self._sent(batch)
                    return
                if status in (207, 400) or status == 403 and '"rejected"' in response.text:
                    # 207: some written, 400: none; 403: none, each another producer's; all list the rejected
                    self._partly_rejected(batch, response)
                    return
                if status == 413 and len(batch) > 1:  # split and try the halves
                    half = len(batch) // 2
                    self.send(batch[:half])
                    self.send(batch[half:])
                    return
                retry_after = _seconds(response.headers.get("Retry-After"))
            transient = status is None or status >= 500 or status in (408, 429)
            if not transient or self._clock() - started > self.retry_for:
                break
            with self.lock:
                self.stats.retries += 1
                if attempt == 3:  # said once per request, not per attempt
                    self.stats.note(f"still retrying a request of {len(batch)} events: "
                                    f"{'HTTP ' + str(status) if status else 'no connection'}: {detail[:200]}")
            self._sleep(min(MAX_BACKOFF_SECONDS, max(retry_after or 0.0, 0.2 * 2 ** min(attempt - 1, 5))))
        with self.lock:
            self.stats.failed_events += len(batch)
            waited = f" after retrying for {self._clock() - started:.0f}s" if transient else ""
            self.stats.note(f"request of {len(batch)} events failed{waited}: "
                            f"{'HTTP ' + str(status) if status else 'no connection'}: {detail}")

    def _sent(self, batch: list[tuple[InvoiceEvent, bytes]]) -> None:
        with self.lock:
            self.stats.events_sent += len(batch)
            self.stats.lines_sent += sum(len(e.lines) for e, _ in batch)
            self.stats.sent_total = money_str(Decimal(self.stats.sent_total) + sum((e.total for e, _ in batch), Decimal(0)))

    def _partly_rejected(self, batch, response) -> None:
        try:
            body = response.json()
            rejected = {r["index"]: r["problems"] for r in body.get("rejected", [])}
            if response.status_code in (400, 403):  # nothing was written
                written = []
            else:  # 207: the items written are listed (or, from an older API, all but the rejected)
                written = body.get("accepted", {}).get("indexes") or [i for i in range(len(batch)) if i not in rejected]
        except (ValueError, KeyError, TypeError, AttributeError):
            body, rejected, written = {}, {}, []
        written_set = set(written)
        self._sent([item for i, item in enumerate(batch) if i in written_set])
        total = len(batch) - len(written_set)  # every item not written is rejected, listed or not
        if not rejected and total:
            with self.lock:
                self.stats.note(f"request of {len(batch)} events rejected: HTTP {response.status_code}: "
                                f"{(body.get('problems') or [{}])[0].get('reason') or body.get('message') or response.text[:200]}")
        with self.lock:
            self.stats.rejected_items += total
            for index, problems in list(rejected.items())[:5]:
                first = problems[0] if problems else {}
                self.stats.note(f"invoice {batch[index][0].invoice_no} rejected: {first.get('field')}: {first.get('reason')}")


def _seconds(value: str | None) -> float | None:
    """A Retry-After given in seconds (the form our API sends), else None."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class StreamSender:
    """Straight onto the Kinesis stream through the ingest function's producer."""

    def __init__(self, stream: str, stats: ReplayStats, lock: threading.Lock):
        from ingest.producer import KinesisProducer
        from pipeline.clients import make_client
        from pipeline.settings import Settings

        settings = Settings(region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1",
                            endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
        self._local = threading.local()
        self._make = lambda: KinesisProducer(make_client("kinesis", settings), stream)
        self.stats, self.lock = stats, lock

    def send(self, batch: list[tuple[InvoiceEvent, bytes]]) -> None:
        from pipeline.errors import ShopstreamError

        producer = getattr(self._local, "producer", None) or self._make()
        self._local.producer = producer
        events = []
        for event, _ in batch:  # what the API refuses, the stream is not sent either
            problem = size_problem(event)
            if problem is None:
                events.append(event)
                continue
            with self.lock:
                self.stats.rejected_items += 1
                self.stats.note(f"invoice {event.invoice_no} rejected: {problem.field}: {problem.reason}")
        if not events:
            return
        try:
            result = producer.send(events)
        except ShopstreamError as exc:
            with self.lock:
                self.stats.failed_events += len(events)
                self.stats.note(f"{len(events)} events not delivered: {exc}")
            return
        with self.lock:
            self.stats.requests += result.calls
            self.stats.retries += result.retried_records
            self.stats.events_sent += len(events)
            self.stats.lines_sent += result.lines
            self.stats.sent_total = money_str(Decimal(self.stats.sent_total) + sum((e.total for e in events), Decimal(0)))


# ---- the replay -----------------------------------------------------------------------


def count_rows(path: str) -> int | None:
    """Data rows behind ``path`` (newlines minus headers), fast, for the progress bar."""
    import zipfile

    total = 0
    try:
        for file in resolve_sources(path):
            if file.lower().endswith(".zip"):
                with zipfile.ZipFile(file) as archive:
                    for name in archive.namelist():
                        if name.lower().endswith(".csv"):
                            with archive.open(name) as fh:
                                total += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) - 1
            elif file.lower().endswith(".gz"):
                return None
            else:
                with open(file, "rb") as fh:
                    total += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) - 1
    except (OSError, SourceError):
        return None
    return total


def in_window(events: Iterable[InvoiceEvent], date_from: str | None, date_to: str | None, limit: int | None) -> Iterator[InvoiceEvent]:
    n = 0
    for event in events:
        if date_from and event.invoice_date < date_from:
            continue
        if date_to and event.invoice_date > date_to:
            continue
        if limit is not None and n >= limit:
            return
        n += 1
        yield event


def replay(
    source: str,
    *,
    endpoint: str | None = DEFAULT_ENDPOINT,
    stream: str | None = None,
    rate: float | None = None,
    speedup: float | None = None,
    limit: int | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    batch_events: int = DEFAULT_BATCH_EVENTS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    concurrency: int = 4,
    window: int = DEFAULT_GROUP_WINDOW,
    encoding: str | None = None,
    progress: bool = True,
    token: str | None = None,
) -> ReplayStats:
    """Replay ``source``; returns the statistics (see :class:`ReplayStats`). ``token``: the
    producer's access token sent with every request (default: ``$SHOPSTREAM_TOKEN``)."""
    resolve_sources(source)  # fail early and clearly on a bad path
    grouper = InvoiceGrouper(window)
    total = count_rows(source) if progress and limit is None and not (date_from or date_to) else None
    stats = deliver(in_window(read_invoices(source, grouper, encoding=encoding), date_from, date_to, limit),
                    source=source, endpoint=endpoint, stream=stream, rate=rate, speedup=speedup,
                    batch_events=batch_events, batch_bytes=batch_bytes, concurrency=concurrency, progress=progress,
                    token=token, progress_total=total, rows_read=lambda: grouper.rows_read,
                    source_errors=lambda: len(grouper.errors))
    stats.source_errors = len(grouper.errors)
    for error in grouper.errors[:10]:
        stats.note(f"unreadable row {error}")
    return stats


def deliver(
    events: Iterable[InvoiceEvent],
    *,
    source: str,
    endpoint: str | None = DEFAULT_ENDPOINT,
    stream: str | None = None,
    rate: float | None = None,
    speedup: float | None = None,
    batch_events: int = DEFAULT_BATCH_EVENTS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    concurrency: int = 4,
    progress: bool = True,
    token: str | None = None,
    progress_total: int | None = None,
    rows_read: Callable[[], int] | None = None,
    source_errors: Callable[[], int] = lambda: 0,
) -> ReplayStats:
    """Send ``events`` (any iterable, read as it is sent) paced, batched and retried as a
    replay is; ``source`` names them in the statistics. The progress bar counts
    ``rows_read()`` against ``progress_total`` (default: the lines of the events read)."""
    token = token if token is not None else os.environ.get(ENV_TOKEN) or None
    stats = ReplayStats(source=source, target=f"stream {stream}" if stream else f"{endpoint}/events",
                        mode=f"rate {rate}/s" if rate else f"speedup x{speedup:g}" if speedup else "max")
    lock = threading.Lock()
    sender = StreamSender(stream, stats, lock) if stream else HttpSender(endpoint or DEFAULT_ENDPOINT, stats, lock,
                                                                                  token=token)
    position = rows_read or (lambda: stats.lines_read)
    bar = _progress_bar(progress_total, progress)
    source_total = Decimal(0)

    def counted(events: Iterable[InvoiceEvent]) -> Iterator[InvoiceEvent]:
        nonlocal source_total
        for event in events:
            stats.events_read += 1
            stats.lines_read += len(event.lines)
            source_total += event.total
            yield event

    started = time.monotonic()
    in_flight: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="replay") as pool:
        events = counted(events)
        for batch in batches(schedule(events, rate=rate, speedup=speedup), max_events=batch_events, max_bytes=batch_bytes):
            while len(in_flight) >= concurrency * 2:  # backpressure: never read far ahead of the pipeline
                in_flight.popleft().result()
            in_flight.append(pool.submit(sender.send, batch))
            if bar is not None:
                bar.update(position() - bar.n)
                elapsed = max(time.monotonic() - started, 1e-6)
                bar.set_postfix_str(
                    f"{stats.events_sent / elapsed:,.0f} ev/s  {stats.lines_sent / elapsed:,.0f} lines/s  "
                    f"errors {stats.rejected_items + stats.failed_events + source_errors()}", refresh=False)
        for future in in_flight:
            future.result()
    if bar is not None:
        bar.update(position() - bar.n)
        bar.close()
    stats.elapsed_s = round(time.monotonic() - started, 3)
    stats.source_total = money_str(source_total)
    return stats


def _progress_bar(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=" lines", unit_scale=True, dynamic_ncols=True, mininterval=0.5, file=sys.stderr)


def format_summary(stats: ReplayStats) -> str:
    rate = (f"{stats.events_sent / stats.elapsed_s:,.0f} events/s, {stats.lines_sent / stats.elapsed_s:,.0f} lines/s"
            if stats.elapsed_s else "-")
    lines = [
        f"replay of {stats.source} → {stats.target} ({stats.mode})",
        f"  read       {stats.events_read:>9,} invoices  {stats.lines_read:>9,} lines   total £{money_display(stats.source_total)}",
        f"  delivered  {stats.events_sent:>9,} invoices  {stats.lines_sent:>9,} lines   total £{money_display(stats.sent_total)}",
        f"  requests   {stats.requests:>9,}  retries {stats.retries:,}  in {stats.elapsed_s:.1f}s ({rate})",
    ]
    if stats.ok:
        lines.append("  result     everything read was delivered")
    else:
        lines.append(f"  PROBLEMS   {stats.source_errors:,} unreadable rows, {stats.rejected_items:,} rejected items, "
                     f"{stats.failed_events:,} undelivered events")
        lines += [f"    - {p}" for p in stats.first_problems]
    return "\n".join(lines)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="replay_kaggle.py", description=__doc__.split("\n\n")[0],
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="Kaggle zip, CSV file, directory or glob of CSVs")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--endpoint", default=None, help=f"HTTP API base URL (default {DEFAULT_ENDPOINT})")
    target.add_argument("--stream", help="send straight to this Kinesis stream instead of the HTTP API")
    parser.add_argument("--token", default=None,
                        help=f"a producer's access token for the HTTP API (default ${ENV_TOKEN}; `shopstream replay` "
                             "against the local stack gets one itself)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="events (invoices) per second")
    pace.add_argument("--speedup", type=float, help="event-time compression: 3600 = one hour of shop time per second")
    pace.add_argument("--max", action="store_true", help="as fast as the pipeline takes (the default)")
    parser.add_argument("--limit", type=int, help="stop after this many invoices")
    parser.add_argument("--from", dest="date_from", help="first invoice date (2011-01-01 or an ISO date-time)")
    parser.add_argument("--to", dest="date_to", help="last invoice date, inclusive")
    parser.add_argument("--batch-events", type=int, default=DEFAULT_BATCH_EVENTS, help="invoices per request")
    parser.add_argument("--batch-bytes", type=int, default=DEFAULT_BATCH_BYTES, help="bytes per request")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--encoding", help="force the source encoding (default: UTF-8, else ISO-8859-1, per line)")
    parser.add_argument("--window", type=int, default=DEFAULT_GROUP_WINDOW, help="rows an invoice may be split by")
    parser.add_argument("--report", help="write the summary as JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _bound(text: str | None, end_of_day: bool) -> str | None:
    from pipeline.errors import BadRequest
    from query_api.core import parse_bound

    try:
        return parse_bound("--to" if end_of_day else "--from", text, end_of_day=end_of_day)
    except BadRequest as exc:
        raise SystemExit(f"replay: {exc}") from None


def run(args: argparse.Namespace) -> int:
    if args.rate is not None and args.rate <= 0 or args.speedup is not None and args.speedup <= 0:
        print("replay: --rate and --speedup must be positive", file=sys.stderr)
        return 2
    try:
        stats = replay(
            args.source, endpoint=args.endpoint or DEFAULT_ENDPOINT, stream=args.stream, rate=args.rate,
            speedup=args.speedup, limit=args.limit, date_from=_bound(args.date_from, False), date_to=_bound(args.date_to, True),
            batch_events=args.batch_events, batch_bytes=args.batch_bytes, concurrency=args.concurrency,
            window=args.window, encoding=args.encoding, progress=not args.quiet, token=args.token,
        )
    except SourceError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    print(format_summary(stats))
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(stats.to_dict(), fh, indent=2)
    return 0 if stats.ok else 1


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
