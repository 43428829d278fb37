"""``shopstream reconcile``: the source against every sink, per country and in total.

For each sink — DynamoDB (the invoices table), the archive (Parquet in S3), the warehouse
(``fact_invoice_lines``) — invoices, lines and revenue (exact, ``Decimal``) per country
and in total are compared with the source file; the first invoices that differ are
named; what each sink set aside is counted in its own column:

* DynamoDB and the archive: the quarantine queue's messages of each consumer (events
  the contract rejects, damaged aggregates) and the consumer's failures queue (batches
  that still failed after retries);
* the warehouse: records under Firehose's ``processing-failed/`` error prefix (each with
  its reason, recomputed from the record by the event contract) and COPY manifests under
  ``errors/manifests/`` (batches skipped after the retry duration).

How each sink is counted: DynamoDB holds one item per invoice (the latest delivered
version); the archive is the raw record of deliveries, so it is counted as distinct
(invoice, line, event id) — a redelivery is not a second line; the warehouse fact is
keyed by (invoice, line). The result is a mismatch whenever any count or amount differs,
and the exit status says so.
"""
from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from batch.core import CONSUMER as LOADER  # source.consumer of the rows of dropped files the loader quarantined
from pipeline.events import InvoiceEvent, money_display, money_str

SINKS = ("dynamodb", "archive", "warehouse")
FIRST_DIFFERENCES = 10


@dataclass
class Figures:
    """Invoices, lines and revenue of one sink (or the source), per invoice."""

    invoices: dict[str, tuple[str, int, Decimal]] = field(default_factory=dict)  # no -> (country, lines, revenue)
    set_aside: dict[str, int] = field(default_factory=dict)                       # what it quarantined, and where
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, invoice_no: str, country: str, lines: int, revenue: Decimal) -> None:
        known = self.invoices.get(invoice_no)
        if known is not None:  # several versions or parts: lines and money add up under the first country
            self.invoices[invoice_no] = (known[0], known[1] + lines, known[2] + revenue)
        else:
            self.invoices[invoice_no] = (country, lines, revenue)

    @property
    def lines(self) -> int:
        return sum(v[1] for v in self.invoices.values())

    @property
    def revenue(self) -> Decimal:
        return sum((v[2] for v in self.invoices.values()), Decimal(0))

    def by_country(self) -> dict[str, tuple[int, int, Decimal]]:
        out: dict[str, list] = defaultdict(lambda: [0, 0, Decimal(0)])
        for country, lines, revenue in self.invoices.values():
            entry = out[country]
            entry[0] += 1
            entry[1] += lines
            entry[2] += revenue
        return {country: (v[0], v[1], v[2]) for country, v in sorted(out.items())}

    def to_dict(self) -> dict[str, Any]:
        return {
            "invoices": len(self.invoices), "lines": self.lines, "revenue": money_str(self.revenue),
            "by_country": {c: {"invoices": i, "lines": n, "revenue": money_str(r)} for c, (i, n, r)
                           in self.by_country().items()},
            "set_aside": dict(self.set_aside), "set_aside_reasons": self.reasons[:20], "notes": self.notes,
        }


@dataclass
class Comparison:
    sink: str
    figures: Figures
    countries: list[str]          # countries whose figures differ
    invoices: list[str]           # the first invoices that differ
    differing_invoices: int
    lost_lines: int = 0           # source lines the sink lacks (an absent invoice: all of its lines)
    extra_lines: int = 0          # lines the sink holds beyond the source's (duplicated, or not in the source)

    @property
    def ok(self) -> bool:
        return not self.countries and not self.differing_invoices


@dataclass
class Report:
    source: Figures
    sinks: dict[str, Comparison]
    source_problems: int = 0
    loader_quarantined: int = 0  # rows of dropped files the file loader (batch/) set aside

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.sinks.values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "source": {**self.source.to_dict(), "unreadable_rows": self.source_problems},
                               "dropped_files": {"rows_quarantined": self.loader_quarantined}}
        for name, comparison in self.sinks.items():
            out[name] = {**comparison.figures.to_dict(), "ok": comparison.ok,
                         "differing_countries": comparison.countries,
                         "differing_invoices": comparison.differing_invoices,
                         "lost_lines": comparison.lost_lines, "extra_lines": comparison.extra_lines,
                         "first_differing_invoices": comparison.invoices}
        return out


# -- reading the figures -------------------------------------------------------------------
def source_figures(path: str, *, progress: bool = False) -> tuple[Figures, int]:
    from pipeline.kaggle import InvoiceGrouper, read_invoices

    grouper = InvoiceGrouper()
    figures = Figures()
    for event in read_invoices(path, grouper):
        figures.add(event.invoice_no, event.country, len(event.lines), event.total)
    return figures, len(grouper.errors)


def dynamodb_figures(client: Any, table: str) -> Figures:
    figures = Figures()
    kwargs: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": "#i, #p, #c, #n, #t",
        "ExpressionAttributeNames": {"#i": "invoice_no", "#p": "part", "#c": "country", "#n": "line_count",
                                     "#t": "total"},
    }
    while True:
        page = client.scan(**kwargs)
        for item in page["Items"]:
            if item["part"]["N"] == "0":
                figures.add(item["invoice_no"]["S"], item["country"]["S"], int(item["line_count"]["N"]),
                            Decimal(item["total"]["N"]))
        if "LastEvaluatedKey" not in page:
            return figures
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def archive_figures(store: Any, prefix: str) -> Figures:
    """Distinct (invoice, line, event id) of every archived row."""
    from consumers.archive.format import read_parquet

    figures = Figures()
    seen: set[tuple[str, int, str]] = set()
    objects = 0
    for key in store.keys(prefix):
        objects += 1
        table = read_parquet(store.get(key)).select(["invoice_no", "line_no", "event_id", "country", "amount"])
        columns = [table.column(name).to_pylist() for name in table.column_names]
        for invoice_no, line_no, event_id, country, amount in zip(*columns):
            marker = (invoice_no, line_no, event_id)
            if marker in seen:
                continue
            seen.add(marker)
            figures.add(invoice_no, country, 1, amount)
    figures.notes.append(f"{objects} objects read under {prefix}")
    return figures


def warehouse_figures(execute: Callable[[str], Any]) -> Figures:
    figures = Figures()
    result = execute("SELECT invoice_no, MIN(country) AS country, COUNT(*) AS lines, SUM(amount) AS revenue "
                     "FROM fact_invoice_lines GROUP BY invoice_no")
    for invoice_no, country, lines, revenue in result.rows:
        figures.add(invoice_no, country, int(lines), Decimal(revenue))
    return figures


READ_VISIBILITY_SECONDS = 60


def queue_messages(sqs: Any, url: str | None, *, limit: int = 100_000) -> list[dict]:
    """Every message of a queue, read without removing it: each is hidden while the queue
    is read (so the next receive returns others), then made visible again at once."""
    if not url:
        return []
    messages: dict[str, dict] = {}
    try:
        while len(messages) < limit:
            page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=READ_VISIBILITY_SECONDS,
                                       WaitTimeSeconds=0)
            batch = page.get("Messages", [])
            if not batch:
                break
            for message in batch:
                messages.setdefault(message["MessageId"], message)
    finally:
        handles = [m["ReceiptHandle"] for m in messages.values()]
        for start in range(0, len(handles), 10):
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(handles[start:start + 10])])
    return list(messages.values())


def quarantine_counts(sqs: Any, url: str | None) -> Counter:
    """Quarantined items per consumer (``source.consumer`` of each message)."""
    counts: Counter = Counter()
    for message in queue_messages(sqs, url):
        try:
            counts[json.loads(message["Body"]).get("source", {}).get("consumer") or "unknown"] += 1
        except ValueError:
            counts["unknown"] += 1
    return counts


def queue_depth(sqs: Any, url: str | None) -> int:
    if not url:
        return 0
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def firehose_set_aside(s3: Any, bucket: str, error_prefix: str, figures: Figures) -> None:
    """Count what Firehose put under its error prefix, naming each record's reason."""
    processing_failed = skipped_batches = 0
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": error_prefix}
    while True:
        page = s3.list_objects_v2(**kwargs)
        for item in page.get("Contents", []):
            key = item["Key"]
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if key.startswith(f"{error_prefix}processing-failed/"):
                for line in body.decode("utf-8").splitlines():
                    if not line.strip():
                        continue
                    processing_failed += 1
                    figures.reasons.append(_failed_reason(json.loads(line)))
            elif key.startswith(f"{error_prefix}manifests/"):
                skipped_batches += 1
        if not page.get("IsTruncated"):
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    figures.set_aside["processing_failed"] = processing_failed
    figures.set_aside["copy_batches_skipped"] = skipped_batches


def _failed_reason(record: dict) -> str:
    from pipeline.errors import InvalidEvent

    data = base64.b64decode(record.get("rawData") or "")
    try:
        event = InvoiceEvent.from_json(data)
    except InvalidEvent as exc:
        return f"{record.get('errorCode')}: {exc}"
    return f"{record.get('errorCode')}: invoice {event.invoice_no} is valid; {record.get('errorMessage')}"


# -- comparing -----------------------------------------------------------------------------
def compare(sink: str, source: Figures, figures: Figures) -> Comparison:
    expected, actual = source.by_country(), figures.by_country()
    countries = sorted(c for c in set(expected) | set(actual) if expected.get(c) != actual.get(c))
    differing = sorted(n for n in set(source.invoices) | set(figures.invoices)
                       if source.invoices.get(n) != figures.invoices.get(n))
    lost = extra = 0
    for invoice_no in differing:
        expected_lines = source.invoices[invoice_no][1] if invoice_no in source.invoices else 0
        actual_lines = figures.invoices[invoice_no][1] if invoice_no in figures.invoices else 0
        lost += max(0, expected_lines - actual_lines)
        extra += max(0, actual_lines - expected_lines)
    return Comparison(sink, figures, countries, differing[:FIRST_DIFFERENCES], len(differing), lost, extra)


def reconcile(source: Figures, sinks: dict[str, Figures], source_problems: int = 0, loader_quarantined: int = 0) -> Report:
    return Report(source, {name: compare(name, source, figures) for name, figures in sinks.items()}, source_problems,
                  loader_quarantined)




def loader_quarantined(clients: Callable[[str], Any], outputs: dict[str, Any]) -> int:
    """Rows of dropped files the file loader quarantined: unusable rows, and rows naming a product or
    customer the warehouse does not know."""
    return quarantine_counts(clients("sqs"), outputs.get("quarantine_queue_url")).get(LOADER, 0)


def format_report(report: Report) -> str:
    tick = lambda good: "✓" if good else "✗"  # noqa: E731
    s = report.source
    lines = [
        "reconcile: the source against every sink",
        f"  {'':<10} {'invoices':>9} {'lines':>9} {'revenue':>16}   set aside",
        f"  {'source':<10} {len(s.invoices):>9,} {s.lines:>9,} {money_display(s.revenue):>16}   "
        f"{report.source_problems:,} unreadable rows",
    ]
    if report.loader_quarantined:
        lines.append(f"  {'drops':<10} {report.loader_quarantined:,} rows of dropped files quarantined by the file "
                     "loader, each with its file, line and reason (not in the source's figures)")
    for name, c in report.sinks.items():
        f = c.figures
        aside = ", ".join(f"{count:,} {what.replace('_', ' ')}" for what, count in f.set_aside.items()) or "-"
        lines.append(f"  {name:<10} {len(f.invoices):>9,} {f.lines:>9,} {money_display(f.revenue):>16}   "
                     f"{aside}  {tick(c.ok)}")
    for name, c in report.sinks.items():
        if c.ok:
            continue
        expected, actual = report.source.by_country(), c.figures.by_country()
        lines.append(f"  {name}: {len(c.countries)} countries and {c.differing_invoices:,} invoices differ; "
                     f"{c.lost_lines:,} source lines missing, {c.extra_lines:,} lines beyond the source's")
        for country in c.countries[:10]:
            e, a = expected.get(country, (0, 0, Decimal(0))), actual.get(country, (0, 0, Decimal(0)))
            lines.append(f"    {country}: source {e[0]:,} invoices / {e[1]:,} lines / {money_display(e[2])}"
                         f" · {name} {a[0]:,} / {a[1]:,} / {money_display(a[2])}")
        for invoice_no in c.invoices:
            e, a = report.source.invoices.get(invoice_no), c.figures.invoices.get(invoice_no)
            describe = lambda v: "absent" if v is None else f"{v[1]} lines, {money_display(v[2])}"  # noqa: E731
            lines.append(f"    invoice {invoice_no}: source {describe(e)} · {name} {describe(a)}")
    for name, c in report.sinks.items():
        for reason in c.figures.reasons[:5]:
            lines.append(f"  {name} set aside: {reason}")
    lines.append(f"  result     {'every sink reconciles with the source' if report.ok else 'MISMATCH'}")
    return "\n".join(lines)


def sink_figures(*, clients: Callable[[str], Any], outputs: dict[str, Any], execute: Callable[[str], Any],
                 sinks: Iterable[str] = SINKS, say: Callable[[str], None] = lambda text: None,
                 quarantined: Counter | None = None) -> dict[str, Figures]:
    """Read every sink of a deployed stack (names from its Terraform outputs); ``quarantined``: the
    quarantine queue's counts when the caller has read them already (:func:`quarantine_counts`)."""
    from consumers.archive.store import S3ArchiveStore

    sqs, s3 = clients("sqs"), clients("s3")
    if quarantined is None:
        quarantined = quarantine_counts(sqs, outputs.get("quarantine_queue_url"))
    failures = {key: queue_depth(sqs, url) for key, url in (outputs.get("failures_queue_urls") or {}).items()}
    out: dict[str, Figures] = {}
    if "dynamodb" in sinks:
        say(f"scanning DynamoDB {outputs['invoices_table_name']}")
        out["dynamodb"] = dynamodb_figures(clients("dynamodb"), outputs["invoices_table_name"])
        out["dynamodb"].set_aside = {"quarantined": quarantined.get("invoice-writer", 0),
                                     "failed_batches": failures.get("invoice-writer", 0)}
    if "archive" in sinks:
        say(f"reading the archive s3://{outputs['archive_bucket_name']}/{outputs.get('archive_prefix') or 'archive/'}")
        store = S3ArchiveStore(s3, outputs["archive_bucket_name"])
        out["archive"] = archive_figures(store, outputs.get("archive_prefix") or "archive/")
        out["archive"].set_aside = {"quarantined": quarantined.get("archive-writer", 0),
                                    "failed_batches": failures.get("archive-writer", 0)}
    if "warehouse" in sinks:
        say("querying the warehouse fact and Firehose's error prefix")
        out["warehouse"] = warehouse_figures(execute)
        prefixes = outputs.get("firehose_prefixes") or {}
        firehose_set_aside(s3, outputs["delivery_bucket_name"], prefixes.get("errors", "firehose/errors/"),
                           out["warehouse"])
    return out
